"""Cross-modal mapping (Eq. 9-11): align the incoming (stronger) modality to the state carried so far."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def thresholded_correlation(weak: torch.Tensor, strong: torch.Tensor, threshold: float) -> torch.Tensor:
    """Eq. 9-10 over the rows of two matrices.

    Args:
        weak (`torch.Tensor` of shape `(..., R, k)`): rows `X_r^(i)` of the weak side.
        strong (`torch.Tensor` of shape `(..., R, k)`): rows `X_q^(j)` of the strong side.
        threshold (`float`): `tau`; entries `<= tau` are zeroed.

    Returns:
        `torch.Tensor` of shape `(..., R, R)`: `C_rq = cos(weak_r, strong_q) * 1(C_rq > tau)`, diagonal set to 1.
    """
    c = F.normalize(weak, dim=-1) @ F.normalize(strong, dim=-1).transpose(-1, -2)  # (..., R, R)
    c = c * (c > threshold)
    eye = torch.eye(c.shape[-1], dtype=torch.bool, device=c.device)
    return c.masked_fill(eye, 1.0)


class CrossModalMapping(nn.Module):
    """Map the incoming modality's adapted features through a thresholded correlation with the carried state.

    With `level="sample"` (the default) the paper's feature matrices are `d x B` (one column per sample), so
    `C` is `B x B` and, in row-major code, `X_hat = C^T @ X_strong`: each sample receives the features of the
    samples of its batch whose strong features correlate with its own carried state above `tau`. In eval mode
    `at_eval="identity"` uses `C = I` so that a prediction never depends on the rest of its batch.

    With `level="feature"`, `C` is `d x d` over feature dimensions (cosines across the batch) and
    `X_hat = X_strong @ C`; a running estimate of `C` (momentum `momentum`) is used in eval mode.

    Args:
        hidden_size (`int`): Feature size `d`.
        threshold (`float`): `tau` of Eq. 10.
        level (`str`): `"sample"` or `"feature"`.
        at_eval (`str`): `"identity"` or `"batch"` (sample level only).
        normalize (`bool`): Normalise the columns of `C` to sum to 1 (a weighted mean instead of a sum).
        momentum (`float`): Momentum of the running feature-level correlation.
    """

    def __init__(
        self,
        hidden_size: int,
        threshold: float = 0.2,
        level: str = "sample",
        at_eval: str = "identity",
        normalize: bool = False,
        momentum: float = 0.1,
    ):
        super().__init__()
        self.threshold = float(threshold)
        self.level = level
        self.at_eval = at_eval
        self.normalize = normalize
        self.momentum = float(momentum)
        if level == "feature":
            self.register_buffer("running_correlation", torch.eye(hidden_size))

    @property
    def depends_on_state(self) -> bool:
        """Whether the mapped feature depends on the carried state (False in eval mode unless `at_eval="batch"`)."""
        return self.training or (self.level == "sample" and self.at_eval == "batch")

    def _normalize_columns(self, c: torch.Tensor) -> torch.Tensor:
        return c / c.sum(dim=-2, keepdim=True) if self.normalize else c

    def forward(self, weak: torch.Tensor | None, strong: torch.Tensor) -> torch.Tensor:
        """Return `X_hat`, the mapped strong features (Eq. 11).

        Args:
            weak (`torch.Tensor` of shape `(..., B, d)`): the state carried so far (`X^(i)`); may be `None`
                when `depends_on_state` is False.
            strong (`torch.Tensor` of shape `(..., B, d)`): the incoming modality's adapted features (`X^(j)`).
        """
        if self.level == "sample":
            if not self.training and self.at_eval == "identity":
                return strong
            c = self._normalize_columns(thresholded_correlation(weak, strong, self.threshold))  # (..., B, B)
            return c.transpose(-1, -2) @ strong  # Eq. 11 with samples as columns: (..., B, d)
        if self.training:
            # columns are feature dimensions: cosines across the batch
            c = thresholded_correlation(weak.transpose(-1, -2), strong.transpose(-1, -2), self.threshold)
            c = c.reshape(-1, *c.shape[-2:]).mean(0) if c.dim() > 2 else c  # (d, d)
            with torch.no_grad():
                self.running_correlation.lerp_(c.detach(), self.momentum)
        else:
            c = self.running_correlation
        return strong @ self._normalize_columns(c)  # Eq. 11, X_hat = X C: (..., B, d)
