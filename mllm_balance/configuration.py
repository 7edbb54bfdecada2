"""Configuration of the trainable part of a balanced multimodal classifier."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

MAPPING_LEVELS = ("sample", "feature")
MAPPING_AT_EVAL = ("identity", "batch")
INFERENCE_MODES = ("hybrid", "train_order", "entropy")
HYBRID_WEIGHTINGS = ("mean", "confidence")
HYBRID_STATES = ("final", "all")


@strict(accept_kwargs=True)
class FeatureClassifierConfig(PreTrainedConfig):
    r"""
    What every classifier on frozen per-modality features is configured with: the modalities and their feature
    sizes, the adapters' size, and what the trainer records. [`BalanceConfig`] and every baseline's config
    (`mllm_balance.baselines`) extend it with their own fields.

    Args:
        modality_dims (`dict[str, int]`):
            Feature size `D_m` of every modality, in the dataset's declared order (the default first training
            order), e.g. `{"text": 384, "image": 1280}`.
        modality_names (`list[str]`, *optional*):
            The declared order of the modalities; defaults to the key order of `modality_dims`.
        hidden_size (`int`, *optional*, defaults to 256):
            Size `d` of every adapter's output `a_m(x) = ReLU(W_m x + b_m)`.
        adapter_dropout (`float`, *optional*, defaults to 0.0):
            Dropout applied to every adapter's input during training.
        train_order (`list[str]`, *optional*):
            Last training order (weakest first), set by the trainer.
        shapley_history (`list[dict[str, float]]`, *optional*):
            Shapley values after every scored epoch, set by the trainer.
        label_prior (`list[float]`, *optional*):
            Share of every label among the training samples, set by the trainer; the value of the empty coalition
            of per-sample contributions (`mllm_balance.contributions`) and the majority label of a saved model.
        backbone_id (`str`, *optional*):
            Hub id or path of the frozen backbone whose features the adapters were trained on.
        backbone_revision (`str`, *optional*):
            Revision of that backbone.
    """

    modality_dims: dict[str, int] | None = None
    modality_names: list[str] | None = None
    hidden_size: int = 256
    adapter_dropout: float | int = 0.0
    train_order: list[str] | None = None
    shapley_history: list[dict[str, float]] | None = None
    label_prior: list[float] | None = None
    backbone_id: str | None = None
    backbone_revision: str | None = None

    def __post_init__(self, **kwargs):
        dims = {str(k): int(v) for k, v in (self.modality_dims or {}).items()}
        # JSON serialisation sorts dict keys: the declared order is kept in `modality_names`.
        names = list(self.modality_names) if self.modality_names else list(dims)
        if sorted(names) != sorted(dims):
            raise ValueError(f"modality_names {names} do not match the keys of modality_dims {list(dims)}")
        self.modality_names = names
        self.modality_dims = {m: dims[m] for m in names}
        if self.train_order is not None:
            self.train_order = list(self.train_order)
        self.check_values()
        super().__post_init__(**kwargs)

    def check_values(self):
        """Raise a `ValueError` naming the first value the model cannot run with."""
        for m, dim in self.modality_dims.items():
            if dim <= 0:
                raise ValueError(f"modality_dims[{m!r}] must be positive, got {dim}")
        if self.train_order is not None:
            self.check_order(self.train_order)
        if self.label_prior is not None and (
            any(not p >= 0 for p in self.label_prior) or abs(sum(self.label_prior) - 1) > 1e-6
        ):
            raise ValueError(f"label_prior must be non-negative shares summing to 1, got {self.label_prior}")

    def validate_architecture(self):
        """Run on assignment by the strict dataclass as well."""
        self.check_values()

    @property
    def modalities(self) -> list[str]:
        """Modality names in the declared order."""
        return list(self.modality_names)

    @property
    def label_names(self) -> list[str]:
        """Label names in class-index order (`id2label`)."""
        id2label = self.id2label or {}
        return [str(id2label.get(i, id2label.get(str(i), i))) for i in range(self.num_labels)]

    def check_order(self, order) -> list[str]:
        """Return `order` as a list after checking that it names known modalities, each once."""
        order = list(order)
        unknown = [m for m in order if m not in self.modality_dims]
        if unknown:
            raise ValueError(f"order names unknown modalities {unknown}; known: {self.modalities}")
        if len(set(order)) != len(order):
            raise ValueError(f"order names a modality twice: {order}")
        return order


@strict(accept_kwargs=True)
class BalanceConfig(FeatureClassifierConfig):
    r"""
    Configuration of a [`BalancedModel`]: per-modality adapters, cross-modal mapping, modality memory and a
    shared classifier on top of frozen per-modality features. The modalities, `hidden_size` (also the size of the
    memory state and of the classifier input) and the trainer's records are the fields of
    [`FeatureClassifierConfig`].

    Args:
        mapping_threshold (`float`, *optional*, defaults to 0.2):
            `tau` of Eq. 10: correlations at or below it are zeroed.
        mapping_level (`str`, *optional*, defaults to `"sample"`):
            `"sample"`: the correlation matrix is B x B over the samples of the batch (Eq. 1 notation);
            `"feature"`: d x d over feature dimensions, with a running estimate used in eval mode.
        mapping_at_eval (`str`, *optional*, defaults to `"identity"`):
            Sample-level mapping in eval mode: `"identity"` (C = I, so a prediction never depends on the rest of
            its batch) or `"batch"` (the paper's in-batch mapping).
        mapping_normalize (`bool`, *optional*, defaults to `True`):
            Normalise the columns of C to sum to 1, making the mapped feature a weighted mean instead of a sum.
            Without it the training-time sum over correlated samples has a much larger scale than the identity
            mapping used in eval mode: on kaomoji-sentiment at the paper's learning rate (1e-4, 20 epochs) the
            un-normalised mapping reached 46.7 % test accuracy, the normalised one 79.2 %.
        mapping_momentum (`float`, *optional*, defaults to 0.1):
            Momentum of the running feature-level correlation.
        use_mapping (`bool`, *optional*, defaults to `True`):
            Ablation switch: `False` feeds the incoming adapter output to the memory unmapped.
        use_memory (`bool`, *optional*, defaults to `True`):
            Ablation switch: `False` replaces the memory unit by `h' = (h + x_hat) / 2`.
        memory_residual (`bool`, *optional*, defaults to `True`):
            Add the state back after the memory unit, `h' = h + o * tanh(c)` (Eq. 14 is `h' = o * tanh(c)`), so a
            fused state stays in the space of the unimodal states that the shared classifier also scores. The
            `paper` preset turns it off.
        inference_mode (`str`, *optional*, defaults to `"hybrid"`):
            Eval-mode fusion: `"hybrid"` (Algorithm 1), `"train_order"` or `"entropy"` (MLA-style weighting).
        hybrid_weighting (`str`, *optional*, defaults to `"mean"`):
            How hybrid-order fusion combines the orders: `"mean"` (Algorithm 1: the plain mean of the fused features)
            or `"confidence"` (per sample, each order weighted by `softmax(-entropy)` of its prediction).
        hybrid_states (`str`, *optional*, defaults to `"all"`):
            Which states of each order hybrid-order fusion averages: `"final"` (Algorithm 1: the fused `h_k`) or
            `"all"` (every prefix state `h_1 .. h_k`, so each modality's own state `a_m(x_m)` joins the mean).
        max_orders (`int`, *optional*, defaults to 24):
            Largest number of orders averaged by hybrid-order fusion; beyond it orders are sampled (seeded).
        order_seed (`int`, *optional*, defaults to 0):
            Seed of the order sampling of hybrid-order fusion.
    """

    model_type = "mllm_balance"

    mapping_threshold: float | int = 0.2
    mapping_level: str = "sample"
    mapping_at_eval: str = "identity"
    mapping_normalize: bool = True
    mapping_momentum: float | int = 0.1
    use_mapping: bool = True
    use_memory: bool = True
    memory_residual: bool = True
    inference_mode: str = "hybrid"
    hybrid_weighting: str = "mean"
    hybrid_states: str = "all"
    max_orders: int = 24
    order_seed: int = 0

    def check_values(self):
        """Raise a `ValueError` naming the first value the model cannot run with."""
        super().check_values()
        if self.mapping_level not in MAPPING_LEVELS:
            raise ValueError(f"mapping_level must be one of {MAPPING_LEVELS}, got {self.mapping_level!r}")
        if self.mapping_at_eval not in MAPPING_AT_EVAL:
            raise ValueError(f"mapping_at_eval must be one of {MAPPING_AT_EVAL}, got {self.mapping_at_eval!r}")
        if self.inference_mode not in INFERENCE_MODES:
            raise ValueError(f"inference_mode must be one of {INFERENCE_MODES}, got {self.inference_mode!r}")
        if self.hybrid_weighting not in HYBRID_WEIGHTINGS:
            raise ValueError(f"hybrid_weighting must be one of {HYBRID_WEIGHTINGS}, got {self.hybrid_weighting!r}")
        if self.hybrid_states not in HYBRID_STATES:
            raise ValueError(f"hybrid_states must be one of {HYBRID_STATES}, got {self.hybrid_states!r}")
        if self.max_orders < 1:
            raise ValueError(f"max_orders must be >= 1, got {self.max_orders}")


__all__ = ["BalanceConfig", "FeatureClassifierConfig"]
