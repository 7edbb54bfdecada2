"""Modality memory unit (Eq. 12-14): an LSTM-like gate that merges the mapped modality into the state."""

from __future__ import annotations

import torch
from torch import nn


class ModalityMemory(nn.Module):
    """`[f; i; o] = sigmoid(W [h; x_hat] + b)`, `c = f * h + i * x_hat`, `h' = o * tanh(c)`.

    One unit is shared by every step of the chain; no cell state is carried between steps beyond `h`.

    Args:
        hidden_size (`int`): Size `d` of `h` and `x_hat`.
        residual (`bool`, *optional*, defaults to `False`): add the state back, `h' = h + o * tanh(c)`, so a fused
            state is the state before it plus what the incoming modality changes (Eq. 14 has no such path).
    """

    def __init__(self, hidden_size: int, residual: bool = False):
        super().__init__()
        self.gates = nn.Linear(2 * hidden_size, 3 * hidden_size)
        self.residual = residual

    def project_input(self, x_hat: torch.Tensor) -> torch.Tensor:
        """The `x_hat` half of the gate pre-activation, `W_x x_hat + b`: `(..., d) -> (..., 3d)`.

        Hybrid-order fusion reuses it for every order in which a modality appears.
        """
        d = x_hat.shape[-1]
        return nn.functional.linear(x_hat, self.gates.weight[:, d:], self.gates.bias)

    def forward_projected(self, h: torch.Tensor, x_hat: torch.Tensor, x_proj: torch.Tensor) -> torch.Tensor:
        """[`forward`] given `x_proj = project_input(x_hat)`: `(..., d), (..., d), (..., 3d) -> (..., d)`."""
        d = h.shape[-1]
        pre = nn.functional.linear(h, self.gates.weight[:, :d]) + x_proj  # (..., 3d)
        return self.update(h, x_hat, pre)

    def forward(self, h: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """Eq. 12-14: `(..., d), (..., d) -> (..., d)`.

        The pre-activation `W [h; x_hat] + b` is one product here (the projected path splits it, which rounds
        differently in the last bits; training keeps the one product, so seeded runs stay reproducible bit for bit).
        """
        return self.update(h, x_hat, self.gates(torch.cat([h, x_hat], dim=-1)))

    def update(self, h: torch.Tensor, x_hat: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        """Eq. 12-14 from the gate pre-activation `pre = W [h; x_hat] + b` `(..., 3d)`: the new state `(..., d)`."""
        f, i, o = torch.sigmoid(pre).chunk(3, dim=-1)  # Eq. 12: 3 x (..., d)
        memory = f * h + i * x_hat  # Eq. 13
        out = o * torch.tanh(memory)  # Eq. 14
        return h + out if self.residual else out
