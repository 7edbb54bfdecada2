"""`BalanceTrainingArguments`: `TrainingArguments` plus the fields of Shapley-ordered alternating training."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

ALTERNATIONS = ("step", "epoch", "joint")
ORDER_SCHEDULES = ("shapley", "fixed", "random")
STEP_ORDERS = ("shapley", "all")


@dataclass
class BalanceTrainingArguments(TrainingArguments):
    r"""
    [`~transformers.TrainingArguments`] for [`BalanceTrainer`]; only the fields below are new.

    Args:
        alternation (`str`, *optional*, defaults to `"step"`):
            `"step"`: every batch is used once per modality, in the current order, the step for `m_t` training
            `CE(g(h_t), y)` with `h_{t-1}` detached (one optimizer update per modality). `"epoch"`: each epoch
            trains one modality, cycling through the order, which is re-scored after every full round.
            `"joint"`: the plain joint baseline (all adapters, loss on the fused feature).
        order_schedule (`str`, *optional*, defaults to `"shapley"`):
            How the next order is chosen: `"shapley"` (Eq. 8, weakest first), `"fixed"` (the initial order
            throughout) or `"random"` (a seeded random order every epoch). The latter two are ablations.
        step_orders (`str`, *optional*, defaults to `"all"`):
            Which chains an alternating step trains its modality in. `"shapley"` (the paper): the current order only,
            at the modality's place in it. `"all"`: the mean loss over every order that hybrid-order inference
            averages for the sample's present modalities (all of them up to `max_orders` of the model's config, a
            seeded sample beyond), the prefix before the modality detached as in the paper; the Shapley order still
            decides which modality steps first.
        unimodal_loss_weight (`float`, *optional*, defaults to 0.0):
            Adds `weight * CE(g(a_m(x_m)), y)` to the alternating step of every modality `m` (0 = the paper).
        hybrid_loss_weight (`float`, *optional*, defaults to 0.0):
            Adds `weight * CE(g(X*), y)` to the last alternating step of every batch, `X*` the hybrid-order fused
            feature that inference classifies (Algorithm 1, as `hybrid_states` and `hybrid_weighting` of the
            model's config compute it), with no prefix detached: every adapter, the mapping, the memory and the
            classifier learn from the prediction the model makes (0 in both presets: README gives what it was worth).
        initial_order (`str`, *optional*):
            First-epoch order: comma-separated modality names, `"shapley"` (score the untrained model) or
            unset for the dataset's declared order.
        shapley_every (`int`, *optional*, defaults to 1):
            Score the modalities every this many epochs (rounds under `alternation="epoch"`).
        shapley_method (`str`, *optional*, defaults to `"auto"`):
            `"exact"`, `"permutation"`, or `"auto"` (exact up to 8 modalities).
        shapley_permutations (`int`, *optional*, defaults to 200):
            Orders sampled by the permutation estimator.
        empty_value (`str`, *optional*, defaults to `"prior"`):
            Value of the empty coalition: `"prior"` (accuracy of always predicting the majority training label)
            or `"zero"`.
    """

    alternation: str = field(default="step", metadata={"help": "Alternation: step, epoch or joint."})
    order_schedule: str = field(default="shapley", metadata={"help": "Order schedule: shapley, fixed or random."})
    step_orders: str = field(
        default="all", metadata={"help": "Chains an alternating step trains: all, or shapley (the paper's)."}
    )
    unimodal_loss_weight: float = field(
        default=0.0, metadata={"help": "Weight of each modality's unimodal loss in its alternating step."}
    )
    hybrid_loss_weight: float = field(
        default=0.0, metadata={"help": "Weight of the loss on the hybrid-fused prediction in each batch's last step."}
    )
    initial_order: str | None = field(
        default=None, metadata={"help": "First order: comma-separated modalities, 'shapley', or unset (declared)."}
    )
    shapley_every: int = field(default=1, metadata={"help": "Score modalities every N epochs."})
    shapley_method: str = field(default="auto", metadata={"help": "Shapley estimator: auto, exact or permutation."})
    shapley_permutations: int = field(default=200, metadata={"help": "Orders sampled by the permutation estimator."})
    empty_value: str = field(default="prior", metadata={"help": "Value of the empty coalition: prior or zero."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Feature datasets carry their own columns; keep them."}
    )
    ddp_find_unused_parameters: bool | None = field(
        default=True, metadata={"help": "Alternating steps leave other adapters unused; DDP must know."}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.dataloader_pin_memory and (self.use_cpu or not torch.accelerator.is_available()):
            # pinned memory only helps copies to an accelerator; without one PyTorch warns on every epoch
            self.dataloader_pin_memory = False
        if self.alternation not in ALTERNATIONS:
            raise ValueError(f"alternation must be one of {ALTERNATIONS}, got {self.alternation!r}")
        if self.order_schedule not in ORDER_SCHEDULES:
            raise ValueError(f"order_schedule must be one of {ORDER_SCHEDULES}, got {self.order_schedule!r}")
        if self.step_orders not in STEP_ORDERS:
            raise ValueError(f"step_orders must be one of {STEP_ORDERS}, got {self.step_orders!r}")
        if self.unimodal_loss_weight < 0:
            raise ValueError(f"unimodal_loss_weight must be >= 0, got {self.unimodal_loss_weight}")
        if self.hybrid_loss_weight < 0:
            raise ValueError(f"hybrid_loss_weight must be >= 0, got {self.hybrid_loss_weight}")
        if self.shapley_method not in ("auto", "exact", "permutation"):
            raise ValueError(f"shapley_method must be auto, exact or permutation, got {self.shapley_method!r}")
        if self.empty_value not in ("prior", "zero"):
            raise ValueError(f"empty_value must be 'prior' or 'zero', got {self.empty_value!r}")
        if self.shapley_every < 1:
            raise ValueError(f"shapley_every must be >= 1, got {self.shapley_every}")
        if self.alternation == "step" and self.gradient_accumulation_steps != 1:
            raise ValueError("alternation='step' steps once per modality and batch: set gradient_accumulation_steps=1")


__all__ = ["BalanceTrainingArguments"]
