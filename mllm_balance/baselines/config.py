"""The configurations of the baselines: `BaselineConfig`, their shared parent, and one small config per method."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict

from ..configuration import FeatureClassifierConfig

OGM_FORMS = ("release", "shifted")
# Names of the first version of this module, still accepted (and resolved by `ogm_coefficients`): "code" was the
# release's form, "paper" the shifted one (the release's comment gives its own form as the paper's Eq. 10).
OGM_FORM_ALIASES = {"code": "release", "paper": "shifted"}
OGM_FUSIONS = ("concat", "sum")
LATE_FUSION_COMBINES = ("prob", "logprob")
LFM_ALIGNMENTS = ("release", "js", "contrastive")
LFM_SCHEDULES = ("release", "linear")


@strict(accept_kwargs=True)
class BaselineConfig(FeatureClassifierConfig):
    r"""
    Parent of the baselines' configurations ([`get_baseline`]). Its fields are the ones of
    [`FeatureClassifierConfig`] (modalities, feature sizes, `hidden_size`, labels), so every baseline sees the same
    per-modality adapters `a_m(x) = ReLU(W_m x + b_m)` on the same cached features as the balanced model, and
    [`BalanceTrainer`] trains it unchanged. Each method's config adds only its own fields.
    """

    method_name = ""

    @property
    def method(self) -> str:
        """Registry name of the baseline (`"sum"`, `"concat"`, `"late_fusion"`, `"ogm"`, `"ogm_ge"`, `"mla"`,
        `"lfm"`, `"crmt"`, `"joint"`), also the `method` of its results."""
        return self.method_name


@strict(accept_kwargs=True)
class SumConfig(BaselineConfig):
    """Configuration of [`SumModel`]: no field of its own."""

    model_type = "mllm_balance_sum"
    method_name = "sum"


@strict(accept_kwargs=True)
class ConcatConfig(BaselineConfig):
    """Configuration of [`ConcatModel`]: no field of its own."""

    model_type = "mllm_balance_concat"
    method_name = "concat"


@strict(accept_kwargs=True)
class LateFusionConfig(BaselineConfig):
    r"""
    Configuration of [`LateFusionModel`].

    Args:
        combine (`str`, *optional*, defaults to `"prob"`):
            Average the unimodal probabilities (`"prob"`) or sum their log-probabilities (`"logprob"`).
    """

    model_type = "mllm_balance_late_fusion"
    method_name = "late_fusion"

    combine: str = "prob"

    def check_values(self):
        super().check_values()
        _check_choice("combine", self.combine, LATE_FUSION_COMBINES)


@strict(accept_kwargs=True)
class OGMConfig(BaselineConfig):
    r"""
    Configuration of [`OGMModel`] (OGM, and OGM-GE with `gradient_enhancement`).

    Args:
        fusion (`str`, *optional*, defaults to `"concat"`):
            The fusion that is modulated, `"concat"` (the authors' default) or `"sum"`.
        alpha (`float`, *optional*, defaults to 0.1):
            `alpha` of the coefficient: the "default modulation setting" of the authors' README (which recommends
            0.1 for VGGSound and 0.8 for CREMA-D).
        form (`str`, *optional*, defaults to `"release"`):
            The coefficient of the dominant modality. `"release"`: `k = 1 - tanh(alpha * relu(rho))`, the form of the
            authors' released `main.py` (whose comment gives it as the paper's Eq. 10); it is at most
            `1 - tanh(alpha)`, so the dominant modality is slowed down even when the pair is balanced. `"shifted"`:
            `k = 1 - tanh(alpha * relu(rho - 1))`, 1 when balanced (continuous in `rho`), the form of the release's
            commit of 2022-03-30, replaced two months later. The former names `"code"` (= `"release"`) and
            `"paper"` (= `"shifted"`) are still accepted.
        gradient_enhancement (`bool`, *optional*, defaults to `False`):
            Add the Gaussian enhancement (GE) noise: `OGM-GE` sets it, `OGM` does not.
        noise_scale (`float`, *optional*, defaults to 1.0):
            The GE noise of a parameter is `N(0, (noise_scale * std(g))^2)` element-wise, `g` its unmodulated
            gradient.
        start_epoch (`int`, *optional*, defaults to 0):
            First epoch (0-based) with modulation.
        end_fraction (`float`, *optional*, defaults to 0.5):
            Last epoch with modulation as a share of the run: epoch `e` (0-based) is modulated while
            `e <= end_fraction * num_train_epochs`, the release's `modulation_starts <= epoch <= modulation_ends`
            with its defaults 0 and 50 of 100 epochs (epochs 0-50 of 100, 0-10 of 20). `None`: the whole run.
        end_epoch (`int`, *optional*):
            Last epoch with modulation (inclusive), in epochs; when set it replaces `end_fraction`.
    """

    model_type = "mllm_balance_ogm"

    fusion: str = "concat"
    alpha: float | int = 0.1
    form: str = "release"
    gradient_enhancement: bool = False
    noise_scale: float | int = 1.0
    start_epoch: int = 0
    end_fraction: float | int | None = 0.5
    end_epoch: int | None = None

    @property
    def method(self) -> str:
        return "ogm_ge" if self.gradient_enhancement else "ogm"

    def check_values(self):
        super().check_values()
        _check_choice("fusion", self.fusion, OGM_FUSIONS)
        _check_choice("form", self.form, (*OGM_FORMS, *OGM_FORM_ALIASES))
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.end_fraction is not None and not 0 <= self.end_fraction <= 1:
            raise ValueError(f"end_fraction must be in [0, 1] or None, got {self.end_fraction}")
        if self.noise_scale < 0:
            raise ValueError(f"noise_scale must be >= 0, got {self.noise_scale}")


@strict(accept_kwargs=True)
class MLAConfig(BaselineConfig):
    r"""
    Configuration of [`MLAModel`].

    Args:
        max_directions (`int`, *optional*, defaults to 16):
            Stored input directions of the shared head kept per modality (most recent batch means).
    """

    model_type = "mllm_balance_mla"
    method_name = "mla"

    max_directions: int = 16

    def check_values(self):
        super().check_values()
        if self.max_directions < 1:
            raise ValueError(f"max_directions must be >= 1, got {self.max_directions}")


@strict(accept_kwargs=True)
class LFMConfig(BaselineConfig):
    r"""
    Configuration of [`LFMModel`].

    Args:
        alignment (`str`, *optional*, defaults to `"release"`):
            The unsupervised term between two modalities' predictions `p, q`, `m = (p + q) / 2`: `"release"`,
            `0.5 * (KL(m || p) + KL(m || q))`, the `Alignment` of the authors' released `Crema_epoch.py` (which
            calls it Jensen-Shannon); `"js"`, the Jensen-Shannon divergence `0.5 * (KL(p || m) + KL(q || m))`; or
            `"contrastive"`, a symmetric InfoNCE between the adapted features.
        schedule (`str`, *optional*, defaults to `"release"`):
            The weight `w` of the supervised term over training. `"release"`: the degree-5 polynomial of the
            epoch of the authors' released `Crema_epoch.py` (fitted to their learned weights over its 200 epochs),
            evaluated at `progress * 199`, so any run traverses the release's epochs 0-199: `w` goes from 0.205 to
            about 1.01 near 92 % of the run and ends at 0.916. `"linear"`: from `cls_weight_start` to
            `cls_weight_end`, linear in the progress.
        cls_weight_start / cls_weight_end (`float`, *optional*, default to 0.2 / 0.5):
            `schedule="linear"` only: weight of the supervised term at the start / end of training; the
            unsupervised term gets one minus it.
        temperature (`float`, *optional*, defaults to 0.1):
            Temperature of the contrastive term.
    """

    model_type = "mllm_balance_lfm"
    method_name = "lfm"

    alignment: str = "release"
    schedule: str = "release"
    cls_weight_start: float | int = 0.2
    cls_weight_end: float | int = 0.5
    temperature: float | int = 0.1

    def check_values(self):
        super().check_values()
        _check_choice("alignment", self.alignment, LFM_ALIGNMENTS)
        _check_choice("schedule", self.schedule, LFM_SCHEDULES)
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


@strict(accept_kwargs=True)
class CRMTConfig(BaselineConfig):
    r"""
    Configuration of [`CRMTModel`].

    Args:
        rho (`float`, *optional*, defaults to 2.0):
            Weight of the margin regulariser of the first stage.
        stage2_fraction (`float`, *optional*, defaults to 0.25):
            Share of the epochs spent in the second stage (integration weights only).
        init_weight (`float`, *optional*, defaults to 0.1):
            Initial value of the integration weights `a^(m)`.
    """

    model_type = "mllm_balance_crmt"
    method_name = "crmt"

    rho: float | int = 2.0
    stage2_fraction: float | int = 0.25
    init_weight: float | int = 0.1

    def check_values(self):
        super().check_values()
        if not 0 <= self.stage2_fraction < 1:
            raise ValueError(f"stage2_fraction must be in [0, 1), got {self.stage2_fraction}")


@strict(accept_kwargs=True)
class JointConfig(BaselineConfig):
    r"""
    Configuration of [`JointModel`].

    Args:
        transformer_config (`dict`, *optional*):
            kwargs of `AutoConfig.for_model` for a transformer built from a config (random weights), used when no
            backbone is passed to the model.
        lora_r / lora_alpha / lora_dropout (*optional*, default to 8 / 16 / 0.0):
            LoRA rank, scaling and dropout (peft).
        target_modules (`list[str]`, *optional*):
            Names of the backbone's linear layers that get LoRA; defaults to every linear layer of the backbone and
            the modality connectors.
        connector_seed (`int`, *optional*, defaults to 0):
            Seed of the frozen connectors that map a modality's features to the backbone's hidden size.
    """

    model_type = "mllm_balance_joint"
    method_name = "joint"

    transformer_config: dict | None = None
    lora_r: int = 8
    lora_alpha: float | int = 16
    lora_dropout: float | int = 0.0
    target_modules: list[str] | None = None
    connector_seed: int = 0

    def check_values(self):
        super().check_values()
        if self.lora_r < 1:
            raise ValueError(f"lora_r must be >= 1, got {self.lora_r}")


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


__all__ = [
    "BaselineConfig",
    "CRMTConfig",
    "ConcatConfig",
    "JointConfig",
    "LFMConfig",
    "LateFusionConfig",
    "MLAConfig",
    "OGMConfig",
    "SumConfig",
]
