"""`FeatureClassifier`: the base of every classifier on frozen per-modality features (the balanced model and every
baseline): per-modality adapters, input checks, the saved weights and coalition scoring through one hook."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn
from transformers import PreTrainedModel

from .configuration import FeatureClassifierConfig
from .modules import ModalityAdapter

Features = Mapping[str, torch.Tensor]
Mask = Mapping[str, torch.Tensor]


class FeatureClassifier(PreTrainedModel):
    """Base of the models that classify dicts of cached features `{modality: (B, D_m)}`.

    A missing modality is a missing key or a `False` entry of `modality_mask[m]`. Every subclass's `forward` takes
    `features`, `labels`, `modality_mask`, `order`, `active_modality`, `inference_mode` and `check_values`, so
    [`BalanceTrainer`] trains and scores all of them alike; the alternating-step options a model honours beyond
    these are named by `step_options`.

    Subclasses implement `score_subset` (the logits of a coalition of modalities), which `subset_logits` and so
    Shapley scoring, per-modality accuracy and missing-modality robustness read.

    Args:
        config ([`FeatureClassifierConfig`]): the modalities, feature sizes and `hidden_size`.
        build_adapters (`bool`, *optional*, defaults to `True`): build `adapters[m] = a_m`, a Linear + ReLU
            `D_m -> hidden_size` per modality (a model with its own input path, e.g. Joint, turns it off).
    """

    config_class = FeatureClassifierConfig
    main_input_name = "features"
    accepts_loss_kwargs = False
    _no_split_modules: list[str] = []
    step_options: tuple[str, ...] = ()
    """Alternating-step options of [`BalanceTrainingArguments`] that `forward` takes (e.g. `"step_orders"`)."""

    def __init__(self, config: FeatureClassifierConfig, build_adapters: bool = True):
        super().__init__(config)
        if build_adapters:
            self.adapters = nn.ModuleDict(
                {
                    m: ModalityAdapter(dim, config.hidden_size, config.adapter_dropout)
                    for m, dim in config.modality_dims.items()
                }
            )

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            module.reset_parameters()

    @property
    def modalities(self) -> list[str]:
        return self.config.modalities

    @property
    def train_order(self) -> list[str]:
        """The last training order (weakest first); the declared order before any training."""
        return list(self.config.train_order or self.config.modalities)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint or a Hub upload holds: the parameters that train plus the buffers (running
        statistics); frozen parameters (e.g. a backbone) are left out."""
        frozen = {n for n, p in self.named_parameters() if not p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k not in frozen}

    # ------------------------------------------------------------- validation
    def check_inputs(
        self,
        features: Features,
        modality_mask: Mask | None = None,
        labels: torch.Tensor | None = None,
        check_values: bool = True,
    ) -> tuple[dict[str, torch.Tensor], int]:
        """Validate inputs and return `(present, batch)`: the presence mask `{m: (B,)}` of every modality given
        (in the declared order) and the batch size.

        Raises:
            `ValueError`: on an unknown modality, a feature of the wrong size, NaN or inf in a present feature
            (`check_values`), mismatched batch sizes, a label outside the label set, or a sample with no modality
            present.
        """
        if not isinstance(features, Mapping) or not features:
            raise ValueError("features must be a non-empty dict {modality: Tensor[B, D_m]}")
        unknown = [m for m in features if m not in self.config.modality_dims]
        if unknown:
            raise ValueError(f"unknown modality {unknown}; this model was built for {self.modalities}")
        batch = None
        present: dict[str, torch.Tensor] = {}
        for m in self.modalities:
            if m not in features:
                continue
            x = features[m]
            if x.dim() != 2 or x.shape[-1] != self.config.modality_dims[m]:
                raise ValueError(
                    f"feature {m!r} has shape {tuple(x.shape)}; expected (batch, {self.config.modality_dims[m]})"
                )
            if batch is None:
                batch = x.shape[0]
            elif x.shape[0] != batch:
                raise ValueError(f"feature {m!r} has batch size {x.shape[0]}, others have {batch}")
            mask = torch.ones(batch, dtype=torch.bool, device=x.device)
            if modality_mask is not None and m in modality_mask:
                mask = modality_mask[m].to(device=x.device, dtype=torch.bool).reshape(-1)
                if mask.shape[0] != batch:
                    raise ValueError(f"modality_mask[{m!r}] has {mask.shape[0]} entries for a batch of {batch}")
            if check_values and not torch.isfinite(x).all():  # fast path first: a NaN only matters in a present row
                rows = (~torch.isfinite(x).all(-1) & mask).nonzero().flatten().tolist()
                if rows:
                    raise ValueError(f"feature {m!r} holds NaN or inf in present samples {rows[:10]}")
            present[m] = mask
        any_present = torch.stack(list(present.values())).any(0)
        if not any_present.all():
            rows = (~any_present).nonzero().flatten().tolist()
            raise ValueError(f"samples {rows[:10]} have no modality present")
        if labels is not None:
            labels = labels.reshape(-1)
            if labels.shape[0] != batch:
                raise ValueError(f"labels have {labels.shape[0]} entries for a batch of {batch}")
            bad = (labels < 0) | (labels >= self.config.num_labels)
            if bad.any():
                raise ValueError(
                    f"labels {sorted(set(labels[bad].tolist()))[:10]} are outside the label set "
                    f"0..{self.config.num_labels - 1}"
                )
        return present, batch

    # ---------------------------------------------------------------- subsets
    def adapt(self, features: Features, present: Mask) -> dict[str, torch.Tensor]:
        """Adapter outputs `{m: (B, d)}` of the present modalities."""
        return {m: self.adapters[m](features[m]) for m in present}

    def scoring_order(self, order: Sequence[str] | None) -> list[str]:
        """The modalities, in the order the presence dicts given to `score_subset` follow (the declared order;
        the balanced model's chain order)."""
        return self.modalities

    def score_subset(self, adapted: Features, present: Mask, order: Sequence[str]) -> torch.Tensor:
        """Logits `(b, C)` of `b` samples from the modalities of one coalition.

        Args:
            adapted (`dict[str, torch.Tensor]`): `{m: (b, d)}` outputs of [`adapt`] for the coalition's modalities.
            present (`dict[str, torch.BoolTensor]`): `{m: (b,)}` presence restricted to the coalition; every row has
                at least one of them.
            order (`list[str]`): [`scoring_order`].
        """
        raise NotImplementedError

    @torch.no_grad()
    def subset_logits(
        self,
        features: Features,
        subsets: Iterable[Iterable[str]],
        modality_mask: Mask | None = None,
        order: Sequence[str] | None = None,
    ) -> dict[frozenset[str], torch.Tensor]:
        """Logits of the model restricted to each subset of modalities (a coalition), adapters run once.

        Rows with no modality of the subset present are NaN (the caller decides, e.g. the prior prediction).

        Args:
            order (`list[str]`, *optional*): the chain order of a model that has one (defaults to the last training
                order); checked and otherwise unused.

        Returns:
            `dict[frozenset[str], torch.Tensor]`: `{subset: (B, num_labels)}`.
        """
        present, batch = self.check_inputs(features, modality_mask)
        if order is not None:
            order = self.config.check_order(order)
        sequence = self.scoring_order(order)
        adapted = self.adapt(features, present)

        def score(rows: torch.Tensor, part: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.score_subset({m: adapted[m][rows] for m in part}, part, sequence)

        return subset_scores(present, subsets, sequence, batch, self.config.num_labels, score)


def subset_scores(
    present: Mask,
    subsets: Iterable[Iterable[str]],
    modalities: Sequence[str],
    batch: int,
    num_labels: int,
    score: Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor],
) -> dict[frozenset[str], torch.Tensor]:
    """`{subset: (B, num_labels)}` logits, `score(rows, presence restricted to the subset)` filling the rows that
    have a modality of the subset and NaN the others.

    Args:
        present (`dict[str, torch.BoolTensor]`): `{modality: (B,)}` presence of the batch.
        modalities (`Sequence[str]`): all modalities, in the order the restricted presence dicts follow.
        score (`Callable`): `(rows (b,), {m: (b,) bool}) -> (b, num_labels)` logits of those rows.
    """
    device = next(iter(present.values())).device
    out = {}
    for subset in subsets:
        subset = frozenset(subset)
        unknown = subset - set(modalities)
        if unknown:
            raise ValueError(f"subset names unknown modalities {sorted(unknown)}; known: {list(modalities)}")
        sub_present = {m: present[m] for m in modalities if m in subset and m in present}
        logits = torch.full((batch, num_labels), float("nan"), device=device)
        if sub_present:
            has_any = torch.stack(list(sub_present.values())).any(0)
            if has_any.any():
                rows = has_any.nonzero().flatten()
                part = {m: sub_present[m][rows] for m in sub_present}
                logits[rows] = score(rows, part).to(logits.dtype)
        out[subset] = logits
    return out


def take(x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """The `rows` of `x` (all of them when `rows` is None)."""
    return x if rows is None else x[rows]


def put(dest: torch.Tensor, rows: torch.Tensor | None, src: torch.Tensor) -> torch.Tensor:
    """`dest` with `src` written into `rows` (out of place, so autograd follows); all rows when `rows` is None."""
    return src.to(dest.dtype) if rows is None else dest.index_copy(0, rows, src.to(dest.dtype))


__all__ = ["FeatureClassifier", "put", "subset_scores", "take"]
