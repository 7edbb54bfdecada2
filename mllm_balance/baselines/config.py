"""`BaselineConfig`: the configuration shared by every baseline of the comparison."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict

from ..configuration import BalanceConfig

OGM_FORMS = ("paper", "code")
OGM_FUSIONS = ("concat", "sum")
LATE_FUSION_COMBINES = ("prob", "logprob")
LFM_ALIGNMENTS = ("js", "contrastive")


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
        ogm_alpha (`float`, *optional*, defaults to 0.3):
            `alpha` of the OGM coefficient.
        ogm_form (`str`, *optional*, defaults to `"paper"`):
            `"paper"`: `k = 1 - tanh(alpha * relu(rho - 1))` for the dominant modality (1 when balanced, so the
            coefficient is continuous in `rho`); `"code"`: `k = 1 - tanh(alpha * relu(rho))`, the form of the authors'
            released training script (at most `1 - tanh(alpha)` even for a balanced pair).
        ogm_gradient_enhancement (`bool`, *optional*, defaults to `False`):
            Add the Gaussian enhancement (GE) noise: `OGM-GE` sets it, `OGM` does not.
        ogm_noise_scale (`float`, *optional*, defaults to 1.0):
            The GE noise of a parameter is `N(0, (ogm_noise_scale * std(g))^2)` element-wise, `g` its unmodulated
            gradient.
        ogm_start_epoch (`int`, *optional*, defaults to 0):
            First epoch (0-based) with modulation.
        ogm_end_epoch (`int`, *optional*):
            Last epoch with modulation (inclusive); unset for the whole run.
        late_fusion_combine (`str`, *optional*, defaults to `"prob"`):
            Late fusion: average the unimodal probabilities (`"prob"`) or sum their log-probabilities (`"logprob"`).
        mla_max_directions (`int`, *optional*, defaults to 16):
            MLA: stored input directions of the shared head kept per modality (most recent batch means).
        lfm_alignment (`str`, *optional*, defaults to `"js"`):
            LFM: the unsupervised term, `"js"` (Jensen-Shannon divergence between the modalities' predictions, as in
            the authors' released script) or `"contrastive"` (symmetric InfoNCE between the adapted features).
        lfm_cls_weight_start / lfm_cls_weight_end (`float`, *optional*, default to 0.2 / 0.5):
            LFM: weight of the supervised term at the start / end of training (linear in between); the unsupervised
            term gets one minus it.
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
    ogm_alpha: float | int = 0.3
    ogm_form: str = "paper"
    ogm_gradient_enhancement: bool = False
    ogm_noise_scale: float | int = 1.0
    ogm_start_epoch: int = 0
    ogm_end_epoch: int | None = None
    late_fusion_combine: str = "prob"
    mla_max_directions: int = 16
    lfm_alignment: str = "js"
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
            "ogm_form": OGM_FORMS,
            "late_fusion_combine": LATE_FUSION_COMBINES,
            "lfm_alignment": LFM_ALIGNMENTS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.ogm_alpha < 0:
            raise ValueError(f"ogm_alpha must be >= 0, got {self.ogm_alpha}")
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
