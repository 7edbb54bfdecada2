"""`BaselineConfig`: the configuration shared by every baseline of the comparison."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict

from ..configuration import BalanceConfig

OGM_FORMS = ("release", "shifted")
# Names of the first version of this module, still accepted (and resolved by `ogm_coefficients`): "code" was the
# release's form, "paper" the shifted one (the release's comment gives its own form as the paper's Eq. 10).
OGM_FORM_ALIASES = {"code": "release", "paper": "shifted"}
OGM_FUSIONS = ("concat", "sum")
LATE_FUSION_COMBINES = ("prob", "logprob")
LFM_ALIGNMENTS = ("release", "js", "contrastive")
LFM_SCHEDULES = ("release", "linear")


@strict(accept_kwargs=True)
class BaselineConfig(BalanceConfig):
    r"""
    Configuration of a baseline model ([`get_baseline`]). It extends [`BalanceConfig`] (modalities, feature sizes,
    `hidden_size`, labels), so every baseline sees the same per-modality adapters `a_m(x) = ReLU(W_m x + b_m)` on the
    same cached features as the balanced model, and [`BalanceTrainer`] trains it unchanged. Only the fields of the
    chosen `method` are read; the chain fields of [`BalanceConfig`] (mapping, memory, orders) are ignored.

    Args:
        method (`str`, *optional*, defaults to `"concat"`):
            Registry name of the baseline (`"sum"`, `"concat"`, `"late_fusion"`, `"ogm"`, `"ogm_ge"`, `"mla"`,
            `"lfm"`, `"crmt"`, `"joint"`).
        fusion (`str`, *optional*, defaults to `"concat"`):
            OGM / OGM-GE only: the fusion they modulate, `"concat"` (the authors' default) or `"sum"`.
        ogm_alpha (`float`, *optional*, defaults to 0.1):
            `alpha` of the OGM coefficient: the "default modulation setting" of the authors' README (which recommends
            0.1 for VGGSound and 0.8 for CREMA-D).
        ogm_form (`str`, *optional*, defaults to `"release"`):
            The coefficient of the dominant modality. `"release"`: `k = 1 - tanh(alpha * relu(rho))`, the form of the
            authors' released `main.py` (whose comment gives it as the paper's Eq. 10); it is at most
            `1 - tanh(alpha)`, so the dominant modality is slowed down even when the pair is balanced. `"shifted"`:
            `k = 1 - tanh(alpha * relu(rho - 1))`, 1 when balanced (continuous in `rho`), the form of the release's
            commit of 2022-03-30, replaced two months later. The former names `"code"` (= `"release"`) and
            `"paper"` (= `"shifted"`) are still accepted.
        ogm_gradient_enhancement (`bool`, *optional*, defaults to `False`):
            Add the Gaussian enhancement (GE) noise: `OGM-GE` sets it, `OGM` does not.
        ogm_noise_scale (`float`, *optional*, defaults to 1.0):
            The GE noise of a parameter is `N(0, (ogm_noise_scale * std(g))^2)` element-wise, `g` its unmodulated
            gradient.
        ogm_start_epoch (`int`, *optional*, defaults to 0):
            First epoch (0-based) with modulation.
        ogm_end_fraction (`float`, *optional*, defaults to 0.5):
            Last epoch with modulation as a share of the run: epoch `e` (0-based) is modulated while
            `e <= ogm_end_fraction * num_train_epochs`, the release's `modulation_starts <= epoch <= modulation_ends`
            with its defaults 0 and 50 of 100 epochs (epochs 0-50 of 100, 0-10 of 20). `None`: the whole run.
        ogm_end_epoch (`int`, *optional*):
            Last epoch with modulation (inclusive), in epochs; when set it replaces `ogm_end_fraction`.
        late_fusion_combine (`str`, *optional*, defaults to `"prob"`):
            Late fusion: average the unimodal probabilities (`"prob"`) or sum their log-probabilities (`"logprob"`).
        mla_max_directions (`int`, *optional*, defaults to 16):
            MLA: stored input directions of the shared head kept per modality (most recent batch means).
        lfm_alignment (`str`, *optional*, defaults to `"release"`):
            LFM: the unsupervised term between two modalities' predictions `p, q`, `m = (p + q) / 2`: `"release"`,
            `0.5 * (KL(m || p) + KL(m || q))`, the `Alignment` of the authors' released `Crema_epoch.py` (which
            calls it Jensen-Shannon); `"js"`, the Jensen-Shannon divergence `0.5 * (KL(p || m) + KL(q || m))`; or
            `"contrastive"`, a symmetric InfoNCE between the adapted features.
        lfm_schedule (`str`, *optional*, defaults to `"release"`):
            LFM: the weight `w` of the supervised term over training. `"release"`: the degree-5 polynomial of the
            epoch of the authors' released `Crema_epoch.py` (fitted to their learned weights over its 200 epochs),
            evaluated at `progress * 199`, so any run traverses the release's epochs 0-199: `w` goes from 0.205 to
            about 1.01 near 92 % of the run and ends at 0.916. `"linear"`: from `lfm_cls_weight_start` to
            `lfm_cls_weight_end`, linear in the progress.
        lfm_cls_weight_start / lfm_cls_weight_end (`float`, *optional*, default to 0.2 / 0.5):
            LFM, `lfm_schedule="linear"` only: weight of the supervised term at the start / end of training; the
            unsupervised term gets one minus it.
        lfm_temperature (`float`, *optional*, defaults to 0.1):
            LFM: temperature of the contrastive term.
        crmt_rho (`float`, *optional*, defaults to 2.0):
            CRMT: weight of the margin regulariser of the first stage.
        crmt_stage2_fraction (`float`, *optional*, defaults to 0.25):
            CRMT: share of the epochs spent in the second stage (integration weights only).
        crmt_init_weight (`float`, *optional*, defaults to 0.1):
            CRMT: initial value of the integration weights `a^(m)`.
        joint_backbone_config (`dict`, *optional*):
            Joint: kwargs of `AutoConfig.for_model` for a backbone built from a config (random weights), used when no
            backbone is passed to the model.
        joint_lora_r / joint_lora_alpha / joint_lora_dropout (*optional*, default to 8 / 16 / 0.0):
            Joint: LoRA rank, scaling and dropout (peft).
        joint_target_modules (`list[str]`, *optional*):
            Joint: names of the backbone's linear layers that get LoRA; defaults to every linear layer of the
            backbone and the modality connectors.
        joint_connector_seed (`int`, *optional*, defaults to 0):
            Joint: seed of the frozen connectors that map a modality's features to the backbone's hidden size.
    """

    model_type = "mllm_balance_baseline"

    method: str = "concat"
    fusion: str = "concat"
    ogm_alpha: float | int = 0.1
    ogm_form: str = "release"
    ogm_gradient_enhancement: bool = False
    ogm_noise_scale: float | int = 1.0
    ogm_start_epoch: int = 0
    ogm_end_fraction: float | int | None = 0.5
    ogm_end_epoch: int | None = None
    late_fusion_combine: str = "prob"
    mla_max_directions: int = 16
    lfm_alignment: str = "release"
    lfm_schedule: str = "release"
    lfm_cls_weight_start: float | int = 0.2
    lfm_cls_weight_end: float | int = 0.5
    lfm_temperature: float | int = 0.1
    crmt_rho: float | int = 2.0
    crmt_stage2_fraction: float | int = 0.25
    crmt_init_weight: float | int = 0.1
    joint_backbone_config: dict | None = None
    joint_lora_r: int = 8
    joint_lora_alpha: float | int = 16
    joint_lora_dropout: float | int = 0.0
    joint_target_modules: list[str] | None = None
    joint_connector_seed: int = 0

    def validate_architecture(self):
        """Check the values that the baselines cannot run with."""
        super().validate_architecture()
        choices = {
            "fusion": OGM_FUSIONS,
            "ogm_form": (*OGM_FORMS, *OGM_FORM_ALIASES),
            "late_fusion_combine": LATE_FUSION_COMBINES,
            "lfm_alignment": LFM_ALIGNMENTS,
            "lfm_schedule": LFM_SCHEDULES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.ogm_alpha < 0:
            raise ValueError(f"ogm_alpha must be >= 0, got {self.ogm_alpha}")
        if self.ogm_end_fraction is not None and not 0 <= self.ogm_end_fraction <= 1:
            raise ValueError(f"ogm_end_fraction must be in [0, 1] or None, got {self.ogm_end_fraction}")
        if self.ogm_noise_scale < 0:
            raise ValueError(f"ogm_noise_scale must be >= 0, got {self.ogm_noise_scale}")
        if self.mla_max_directions < 1:
            raise ValueError(f"mla_max_directions must be >= 1, got {self.mla_max_directions}")
        if not 0 <= self.crmt_stage2_fraction < 1:
            raise ValueError(f"crmt_stage2_fraction must be in [0, 1), got {self.crmt_stage2_fraction}")
        if self.lfm_temperature <= 0:
            raise ValueError(f"lfm_temperature must be positive, got {self.lfm_temperature}")
        if self.joint_lora_r < 1:
            raise ValueError(f"joint_lora_r must be >= 1, got {self.joint_lora_r}")


__all__ = ["BaselineConfig"]
