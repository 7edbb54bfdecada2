"""OGM and OGM-GE: on-the-fly gradient modulation of the dominant modality, with Gaussian enhancement."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from transformers import TrainerCallback

from .base import BaselineModel, Features, Mask
from .concat import ConcatHead
from .config import OGM_FORM_ALIASES, OGM_FORMS, OGMConfig
from .sum import SumHead


def ogm_scores(unimodal_logits: Mapping[str, torch.Tensor], labels: torch.Tensor, present: Mask) -> dict[str, float]:
    """Confidence of every modality in the true class: mean over its present samples of `softmax(u_m)[i, y_i]`.

    The authors sum over the batch; with every modality present the ratios are the same, and the mean stays
    comparable when modalities are missing for some samples.

    Args:
        unimodal_logits (`dict[str, torch.Tensor]`): `{m: (B, C)}` unimodal parts of the fused logits.
        labels (`torch.LongTensor` of shape `(B,)`): class indices.
        present (`dict[str, torch.BoolTensor]`): `{m: (B,)}`.
    """
    scores = {}
    for m, logits in unimodal_logits.items():
        rows = present[m]
        p_true = F.softmax(logits[rows].detach().float(), dim=-1).gather(1, labels[rows].unsqueeze(1))  # (b, 1)
        scores[m] = float(p_true.mean()) if rows.any() else 0.0
    return scores


def ogm_coefficients(
    scores: Mapping[str, float], alpha: float, form: str = "release", eps: float = 1e-12
) -> tuple[dict[str, float], dict[str, float]]:
    """Modulation coefficients of OGM, extended to n modalities.

    The discrepancy ratio of modality m is `rho_m = s_m / mean_{j != m} s_j` (for two modalities, the paper's
    `s_a / s_v`). Only the dominant modality (largest score; the first one of a tie) is slowed down:
    `k = 1 - tanh(alpha * relu(rho))` (`form="release"`, the authors' released `main.py`) or
    `k = 1 - tanh(alpha * relu(rho - 1))` (`form="shifted"`, 1 for a balanced pair); every other modality keeps
    `k = 1`. The former names `"code"` and `"paper"` mean `"release"` and `"shifted"`.

    Args:
        scores (`dict[str, float]`): per-modality confidence in the true class ([`ogm_scores`]).
        alpha (`float`): modulation strength.
        form (`str`): `"release"` or `"shifted"`.

    Returns:
        `(coefficients, ratios)`: two dicts keyed by modality.
    """
    form = OGM_FORM_ALIASES.get(form, form)
    if form not in OGM_FORMS:
        raise ValueError(f"form must be one of {OGM_FORMS}, got {form!r}")
    mods = list(scores)
    ratios = {}
    for m in mods:
        others = [scores[j] for j in mods if j != m]
        ratios[m] = scores[m] / max(sum(others) / len(others), eps) if others else 1.0
    coefficients = dict.fromkeys(mods, 1.0)
    if len(mods) > 1:
        dominant = max(mods, key=lambda m: scores[m])
        rho = ratios[dominant]
        shift = rho if form == "release" else rho - 1.0
        coefficients[dominant] = 1.0 - math.tanh(alpha * max(shift, 0.0))
    return coefficients, ratios


@torch.no_grad()
def modulate_gradients(
    parameters: Mapping[str, Iterable[torch.nn.Parameter]],
    coefficients: Mapping[str, float],
    enhancement: bool,
    noise_scale: float = 1.0,
) -> None:
    """Scale every modality's gradients by its coefficient and, for OGM-GE, add Gaussian noise.

    `g <- k_m * g + n`, `n ~ N(0, (noise_scale * std(g))^2)` element-wise, `std(g)` the standard deviation of the
    parameter's unmodulated gradient (plus 1e-8), as the authors implement the paper's `N(0, Sigma_sgd)`. Without
    enhancement, `g <- k_m * g`.

    Args:
        parameters (`dict[str, Iterable[Parameter]]`): the parameters that belong to each modality's branch.
        coefficients (`dict[str, float]`): `k_m` ([`ogm_coefficients`]).
        enhancement (`bool`): add the GE noise (to every modality, as the authors do).
        noise_scale (`float`): multiplier of the noise's standard deviation.
    """
    for m, params in parameters.items():
        k = coefficients.get(m, 1.0)
        for p in params:
            if p.grad is None:
                continue
            grad = p.grad
            if enhancement:
                std = (grad.float().std() if grad.numel() > 1 else grad.new_zeros(())).item() + 1e-8
                noise = torch.randn_like(grad) * (noise_scale * std)
                p.grad = grad * k + noise
            else:
                grad.mul_(k)


class OGMModel(BaselineModel):
    """**OGM** / **OGM-GE** baseline: joint training of a concatenation (or sum) fusion whose dominant modality's
    gradients are scaled down on the fly, plus Gaussian enhancement noise for OGM-GE.

    Peng, Wei, Deng, Wang & Hu, "Balanced Multimodal Learning via On-the-fly Gradient Modulation", CVPR 2022.
    Every training step computes, from the additive unimodal parts of the fused logits (`W_m h_m + b / n`), the
    per-modality confidence in the true class, the discrepancy ratio and the coefficients ([`ogm_coefficients`]);
    [`OGMCallback`] (added by the registry) applies them to the gradients of each modality's branch before the
    optimizer step ([`modulate_gradients`]).

    Defaults follow the authors' released `main.py` (GeWu-Lab/OGM-GE_CVPR2022): the coefficient
    `1 - tanh(alpha * relu(rho))` (`form="release"`), `alpha = 0.1` (the README's default setting; it
    recommends 0.8 for CREMA-D), modulation from epoch 0 to `end_fraction = 0.5` of the run inclusive (its
    `modulation_starts <= epoch <= modulation_ends`, 0 and 50 of 100 epochs), and, through the registry's training
    arguments, SGD with momentum 0.9 and weight decay 1e-4.

    Departures from the authors' code: the branches are the trainable adapters on frozen features (their encoders
    when encoders train: override `modality_parameters`), and every parameter of a branch is modulated (the authors
    modulate the 4-d convolution weights of their ResNets only); `fusion="sum"` sums the features before one shared
    head (the release's `SumFusion` adds two heads); the scores are means over the present samples
    rather than sums; n modalities use `rho_m = s_m / mean_{j!=m} s_j` (the MLA authors' three-modality script
    divides by the sum of the others instead); modulation follows the Trainer's gradient clipping when
    `max_grad_norm > 0` (the release does not clip); the learning rate follows the Trainer's scheduler (the release
    uses StepLR, x0.1 after epoch 70 of 100), and the Trainer exempts biases and norm weights from weight decay.
    """

    config_class = OGMConfig

    def __init__(self, config: OGMConfig):
        super().__init__(config)
        if config.fusion == "sum":
            self.head = SumHead(config.hidden_size, config.num_labels, len(config.modalities))
        else:
            self.head = ConcatHead(config.modalities, config.hidden_size, config.num_labels)
        self.ogm_state: dict[str, dict[str, float]] = {}
        self.post_init()

    def fuse(self, adapted: Features, present: Mask):
        return self.head(adapted, present)

    def training_loss(self, adapted, present, labels, logits, features):
        scores = ogm_scores(self.head.unimodal(adapted), labels, present)
        coefficients, ratios = ogm_coefficients(scores, self.config.alpha, self.config.form)
        self.ogm_state = {"scores": scores, "ratios": ratios, "coefficients": coefficients}
        return F.cross_entropy(logits, labels)

    def modality_parameters(self) -> dict[str, list[torch.nn.Parameter]]:
        """The parameters of each modality's branch (its adapter)."""
        return {m: list(self.adapters[m].parameters()) for m in self.modalities}

    def modulation_active(self, epoch: int, num_epochs: float | None = None) -> bool:
        """Whether epoch `epoch` (0-based) of a run of `num_epochs` epochs is modulated.

        `start_epoch <= epoch <= end`, `end` being `end_epoch` when set, else
        `end_fraction * num_epochs` (no end when `end_fraction` is `None`).
        """
        config = self.config
        if epoch < config.start_epoch:
            return False
        if config.end_epoch is not None:
            return epoch <= config.end_epoch
        if config.end_fraction is None:
            return True
        if not num_epochs:
            raise ValueError("end_fraction needs the number of training epochs (num_epochs)")
        return epoch <= config.end_fraction * num_epochs

    def modulate(self) -> None:
        """Apply the coefficients of the last training forward to the current gradients."""
        if not self.ogm_state:
            return
        modulate_gradients(
            self.modality_parameters(),
            self.ogm_state["coefficients"],
            enhancement=self.config.gradient_enhancement,
            noise_scale=self.config.noise_scale,
        )


class OGMCallback(TrainerCallback):
    """Modulates an [`OGMModel`]'s gradients right before every optimizer step (after gradient clipping), in the
    epochs of [`OGMModel.modulation_active`] (the run's length is `state.num_train_epochs`, else
    `args.num_train_epochs`).

    With gradient accumulation, the coefficients of the last micro-batch apply to the accumulated gradient.
    """

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if not isinstance(model, OGMModel):
            return
        epoch = int(math.floor((state.epoch or 0.0) + 1e-6))
        num_epochs = state.num_train_epochs or getattr(args, "num_train_epochs", None)
        if model.modulation_active(epoch, num_epochs):
            model.modulate()


__all__ = ["OGMModel", "OGMCallback", "ogm_scores", "ogm_coefficients", "modulate_gradients"]
