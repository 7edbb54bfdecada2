"""`BalancedModel`: adapters -> chain over an order (mapping + memory) -> shared classifier."""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration import BalanceConfig
from .modules import CrossModalMapping, ModalityAdapter, ModalityMemory

Features = Mapping[str, torch.Tensor]
Mask = Mapping[str, torch.Tensor]


@dataclass
class BalancedModelOutput(ModelOutput):
    """Output of [`BalancedModel`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): Cross-entropy, returned when `labels` are given.
        logits (`torch.FloatTensor` of shape `(B, num_labels)`): Classifier scores before softmax.
        fused (`torch.FloatTensor` of shape `(B, hidden_size)`, *optional*): The fused feature fed to the
            classifier (the averaged one for hybrid-order fusion); `None` for entropy-weighted inference.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    fused: torch.Tensor | None = None


def entropy_weights(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """MLA-style fusion weights from the entropy of each modality's prediction.

    Args:
        logits (`torch.Tensor` of shape `(M, B, C)`): unimodal logits of M modalities.
        mask (`torch.BoolTensor` of shape `(M, B)`, *optional*): `False` where a modality is missing.

    Returns:
        `torch.Tensor` of shape `(M, B)`: `w_m = exp(-H_m) / sum_k exp(-H_k)` over the present modalities,
        with `H_m` the entropy of `softmax(logits_m)`: the more certain a modality, the larger its weight.
    """
    log_p = F.log_softmax(logits, dim=-1)  # (M, B, C)
    entropy = -(log_p.exp() * log_p).sum(-1)  # (M, B)
    if mask is not None:
        entropy = entropy.masked_fill(~mask, float("inf"))
    return torch.softmax(-entropy, dim=0)


class BalancedModel(PreTrainedModel):
    """Trainable part of a balanced multimodal classifier on frozen per-modality features.

    Holds only the per-modality adapters, the cross-modal mapping (with its running statistics), the modality
    memory unit and the shared classifier; the backbone stays outside and is referenced by
    `config.backbone_id`.

    Inputs are dicts keyed by modality name. A missing modality is a missing key or a `False` entry of
    `modality_mask[m]`. Samples are grouped by presence pattern and each group runs the chain over the present
    modalities only, so a sample missing a modality is predicted exactly as by the chain over its present ones.
    """

    config_class = BalanceConfig
    base_model_prefix = "balanced"
    main_input_name = "features"
    accepts_loss_kwargs = False
    _no_split_modules: list[str] = []

    def __init__(self, config: BalanceConfig):
        super().__init__(config)
        self.adapters = nn.ModuleDict(
            {
                m: ModalityAdapter(dim, config.hidden_size, config.adapter_dropout)
                for m, dim in config.modality_dims.items()
            }
        )
        self.mapping = CrossModalMapping(
            config.hidden_size,
            threshold=config.mapping_threshold,
            level=config.mapping_level,
            at_eval=config.mapping_at_eval,
            normalize=config.mapping_normalize,
            momentum=config.mapping_momentum,
        )
        self.memory = ModalityMemory(config.hidden_size)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self._order_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[str, ...]]] = {}
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            module.reset_parameters()
        elif isinstance(module, CrossModalMapping) and hasattr(module, "running_correlation"):
            module.running_correlation.copy_(torch.eye(module.running_correlation.shape[0]))

    # ------------------------------------------------------------------ orders
    @property
    def modalities(self) -> list[str]:
        return self.config.modalities

    @property
    def train_order(self) -> list[str]:
        """The last training order (weakest first); the declared order before any training."""
        return list(self.config.train_order or self.config.modalities)

    def hybrid_orders(self, present: Sequence[str]) -> list[tuple[str, ...]]:
        """Orders averaged by hybrid-order fusion for a sample whose present modalities are `present`.

        All `|S|!` orders when that is at most `config.max_orders`; otherwise `max_orders` distinct orders drawn
        with a seed fixed by `config.order_seed` and the modality set, always including the last training order.
        """
        train = tuple(m for m in self.train_order if m in present)
        key = (tuple(sorted(present)), train)
        if key not in self._order_cache:
            k = self.config.max_orders
            if math.factorial(len(train)) <= k:
                orders = list(itertools.permutations(train))
            else:
                seed = [self.config.order_seed, zlib.crc32(",".join(key[0]).encode())]
                rng = np.random.default_rng(seed)
                chosen = {train: None}
                while len(chosen) < k:
                    chosen.setdefault(tuple(train[i] for i in rng.permutation(len(train))), None)
                orders = list(chosen)
            self._order_cache[key] = orders
        return self._order_cache[key]

    # ------------------------------------------------------------- validation
    def check_inputs(
        self,
        features: Features,
        modality_mask: Mask | None = None,
        labels: torch.Tensor | None = None,
        check_values: bool = True,
    ) -> tuple[dict[str, torch.Tensor], int]:
        """Validate inputs and return the presence mask of every modality (missing key -> all False).

        Raises:
            `ValueError`: on an unknown modality, a feature of the wrong size, NaN or inf in a present feature,
            mismatched batch sizes, a label outside the label set, or a sample with no modality present.
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

    # ------------------------------------------------------------------ chain
    def chain(self, adapted: Features, order: Sequence[str]) -> list[torch.Tensor]:
        """Run the chain over `order` and return every prefix state `h_1 .. h_k`.

        Args:
            adapted (`dict[str, torch.Tensor]`): adapter outputs, each of shape `(..., B, d)`.
            order (`Sequence[str]`): modalities in chain order (weakest first during training).
        """
        h = adapted[order[0]]  # (..., B, d)
        states = [h]
        for m in order[1:]:
            h = self.step(h, adapted[m])
            states.append(h)
        return states

    def step(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """One chain step: `Memory(h, Map(h, x))`, honouring the ablation switches."""
        x_hat = self.mapping(h, x) if self.config.use_mapping else x  # (..., B, d)
        if self.config.use_memory:
            return self.memory(h, x_hat)
        return (h + x_hat) / 2

    def adapt(self, features: Features, modalities: Iterable[str], grad: Iterable[str] | None = None):
        """Adapter outputs `{m: (B, d)}`; modalities outside `grad` (when given) run without gradients."""
        out = {}
        for m in modalities:
            if grad is None or m in grad:
                out[m] = self.adapters[m](features[m])
            else:
                with torch.no_grad():
                    out[m] = self.adapters[m](features[m])
        return out

    @staticmethod
    def presence_groups(present: Mask, modalities: Sequence[str]):
        """Yield `(rows, present_modalities)` for every presence pattern of the batch (modalities in order);
        `rows` is `None` when the whole batch shares one pattern."""
        pattern = torch.stack([present[m] for m in modalities], dim=1)  # (B, n)
        if bool(pattern.all()):
            yield None, list(modalities)
            return
        patterns, inverse = torch.unique(pattern, dim=0, return_inverse=True)
        for p_idx, p in enumerate(patterns.tolist()):
            rows = (inverse == p_idx).nonzero().flatten()
            yield rows, [m for m, on in zip(modalities, p) if on]

    def fuse(self, adapted: Features, present: Mask, mode: str, order: Sequence[str]) -> torch.Tensor:
        """Fused feature `(B, d)` of every sample, each group of presence pattern on its own.

        Args:
            mode (`str`): `"hybrid"` (average over the hybrid orders) or `"order"` (the chain over `order`).
        """
        mods = [m for m in order if m in present]
        ref = adapted[mods[0]]
        fused = ref.new_zeros(ref.shape[0], self.config.hidden_size)  # (B, d)
        for rows, group in self.presence_groups(present, mods):
            if not group:
                continue
            sub = {m: _take(adapted[m], rows) for m in group}  # (b, d) each
            if mode == "hybrid":
                h = self._hybrid_mean(sub, self.hybrid_orders(group))
            else:
                h = self.chain(sub, group)[-1]
            fused = _put(fused, rows, h)
        return fused

    def _hybrid_mean(self, adapted: Features, orders: Sequence[tuple[str, ...]]) -> torch.Tensor:
        """Hybrid-order fusion of `{m: (b, d)}` into `(b, d)`: the mean over `orders` of the fused feature, or, with
        `config.hybrid_weighting="confidence"`, the per-sample weighted mean `sum_k w_k h^(k)` with
        `w = softmax_k(-H(softmax(g(h^(k)))))` (the more certain an order's prediction, the larger its weight).
        With `config.hybrid_states="all"`, every prefix state `h_1 .. h_k` of every order is averaged, not only
        `h_k` (so the unimodal states `a_m(x_m)` that start the orders join the mean)."""
        states = self._order_states(adapted, orders, every_state=self.config.hybrid_states == "all")  # (K, b, d)
        if self.config.hybrid_weighting == "confidence" and states.shape[0] > 1:
            log_p = F.log_softmax(self.classifier(states), dim=-1)  # (K, b, C)
            entropy = -(log_p.exp() * log_p).sum(-1)  # (K, b)
            weights = torch.softmax(-entropy, dim=0).unsqueeze(-1)  # (K, b, 1)
            return (weights * states).sum(0)  # (b, d)
        return states.mean(0)  # (b, d)

    def _order_states(
        self, adapted: Features, orders: Sequence[tuple[str, ...]], every_state: bool = False
    ) -> torch.Tensor:
        """Fused feature of the chain over each of `orders`, all orders batched: `{m: (b, d)} -> (K, b, d)`; with
        `every_state`, every prefix state of every order: `(K * k, b, d)`."""
        k = len(orders[0])
        if not (self.config.use_memory and (not self.config.use_mapping or not self.mapping.depends_on_state)):
            stacked = {t: torch.stack([adapted[o[t]] for o in orders]) for t in range(k)}  # (K, b, d)
            states = self.chain(stacked, list(range(k)))
            return torch.cat(states) if every_state else states[-1]
        # The mapped feature does not depend on the state: map and project each modality once, reuse per order.
        x_hat = {m: self.mapping(None, x) if self.config.use_mapping else x for m, x in adapted.items()}
        x_proj = {m: self.memory.project_input(x) for m, x in x_hat.items()}  # (b, 3d)
        h = torch.stack([adapted[o[0]] for o in orders])  # (K, b, d)
        states = [h]
        for t in range(1, k):
            step_x = torch.stack([x_hat[o[t]] for o in orders])  # (K, b, d)
            step_proj = torch.stack([x_proj[o[t]] for o in orders])  # (K, b, 3d)
            h = self.memory.forward_projected(h, step_x, step_proj)
            states.append(h)
        return torch.cat(states) if every_state else h  # (K * k, b, d) or (K, b, d)

    # ---------------------------------------------------------------- forward
    def forward(
        self,
        features: Features,
        labels: torch.Tensor | None = None,
        modality_mask: Mask | None = None,
        order: Sequence[str] | None = None,
        active_modality: str | None = None,
        inference_mode: str | None = None,
        check_values: bool = True,
        step_orders: str = "shapley",
        unimodal_loss_weight: float = 0.0,
        return_dict: bool = True,
    ) -> BalancedModelOutput:
        r"""
        Args:
            features (`dict[str, torch.Tensor]`): `{modality: (B, D_m)}` frozen features.
            labels (`torch.LongTensor` of shape `(B,)`, *optional*): class indices; the loss is returned.
            modality_mask (`dict[str, torch.BoolTensor]`, *optional*): `{modality: (B,)}`, `False` = missing.
            order (`list[str]`, *optional*): chain order. Given, it overrides `inference_mode` and the model
                runs the chain over it (restricted to each sample's present modalities). Defaults to the last
                training order while training.
            active_modality (`str`, *optional*): training only. The alternating step for this modality:
                the loss is `CE(g(h_t), y)` with `h_{t-1}` computed without gradients, so only this modality's
                adapter, the memory, the mapping and the classifier learn; samples missing it are left out.
                Without it, training is joint (loss on the fused feature, all adapters learn).
            inference_mode (`str`, *optional*): overrides `config.inference_mode` in eval mode.
            check_values (`bool`, *optional*, defaults to `True`): scan present features for NaN/inf and labels
                for values outside the label set (a trainer that validated its datasets turns it off).
            step_orders (`str`, *optional*, defaults to `"shapley"`): with `active_modality`, the orders whose
                chains the step trains ([`BalanceTrainingArguments.step_orders`]): `"shapley"` (the paper: `order`
                only) or `"all"` (the mean loss over the hybrid orders of the sample's present modalities).
            unimodal_loss_weight (`float`, *optional*, defaults to 0.0): with `active_modality`, adds this times
                `CE(g(a_m(x_m)), y)` for the active modality `m` ([`BalanceTrainingArguments.unimodal_loss_weight`]).

        Returns:
            [`BalancedModelOutput`]
        """
        present, _ = self.check_inputs(features, modality_mask, labels if check_values else None, check_values)
        if order is not None:
            order = self.config.check_order(order)
            missing = [m for m in present if m not in order]
            if missing:
                raise ValueError(f"order {order} leaves out present modalities {missing}")
        if active_modality is not None:
            if not self.training:
                raise ValueError("active_modality is only meaningful in training mode")
            return self.alternating_step(
                features, present, labels, order or self.train_order, active_modality, step_orders,
                unimodal_loss_weight,
            )  # fmt: skip

        fused = None
        if order is not None:
            fused = self.fuse(self.adapt(features, present), present, "order", order)
            logits = self.classifier(fused)
        else:
            mode = "train_order" if self.training else (inference_mode or self.config.inference_mode)
            if mode not in ("hybrid", "train_order", "entropy"):
                raise ValueError(f"unknown inference_mode {mode!r}")
            adapted = self.adapt(features, present)
            if mode == "entropy":
                logits = self._entropy_logits(adapted, present)
            else:
                fused = self.fuse(adapted, present, "hybrid" if mode == "hybrid" else "order", self.train_order)
                logits = self.classifier(fused)
        loss = F.cross_entropy(logits, labels.reshape(-1)) if labels is not None else None
        return BalancedModelOutput(loss=loss, logits=logits, fused=fused)

    def _entropy_logits(self, adapted: Features, present: Mask) -> torch.Tensor:
        mods = list(adapted)
        uni = torch.stack([self.classifier(adapted[m]) for m in mods])  # (M, B, C)
        weights = entropy_weights(uni, torch.stack([present[m] for m in mods]))  # (M, B)
        return (weights.unsqueeze(-1) * uni).sum(0)  # (B, C)

    def alternating_step(
        self,
        features: Features,
        present: Mask,
        labels: torch.Tensor | None,
        order: Sequence[str],
        active: str,
        step_orders: str = "shapley",
        unimodal_loss_weight: float = 0.0,
    ) -> BalancedModelOutput:
        r"""One alternating step (Section 4.3): train modality `active` with every other adapter fixed.

        For an order `pi` in which `active` sits at position `t`, the step's loss is `CE(g(h_t), y)` with
        `h_t = Memory(h_{t-1}, Map(h_{t-1}, a_active(x_active)))` and the prefix state `h_{t-1}` (the chain over the
        modalities before `active`) computed without gradients; `h_t = a_active(x_active)` when `t = 1`. So only
        `a_active`, the memory, the mapping statistics and `g` learn. Samples missing `active` are left out; every
        sample runs the chain over its present modalities only.

        Args:
            order (`Sequence[str]`): the current training order (weakest first).
            active (`str`): the modality this step trains.
            step_orders (`str`): `"shapley"` (the paper): the loss of `order` alone. `"all"`: the mean of the loss
                over the hybrid orders ([`hybrid_orders`]) of the sample's present modalities, i.e. the orders that
                hybrid-order inference averages, so `active` also learns at the front and in the middle of a chain.
            unimodal_loss_weight (`float`): weight `lambda` of an added unimodal term `lambda * CE(g(a_active(x)), y)`.
        """
        if active not in self.config.modality_dims:
            raise ValueError(f"active_modality {active!r} is not one of {self.modalities}")
        if active not in order:
            raise ValueError(f"active_modality {active!r} is not in the order {list(order)}")
        if step_orders not in ("shapley", "all"):
            raise ValueError(f"step_orders must be 'shapley' or 'all', got {step_orders!r}")
        if step_orders == "shapley" and not unimodal_loss_weight:
            return self._paper_step(features, present, labels, order, active)
        mods = [m for m in order if m in present]
        adapted = self.adapt(features, mods, grad=[active])
        ref = adapted[active]
        logits = ref.new_zeros(ref.shape[0], self.config.num_labels)  # (B, C) mean over the trained orders
        row_loss = ref.new_zeros(ref.shape[0])  # (B,)
        used = torch.zeros(ref.shape[0], dtype=torch.bool, device=ref.device)
        for rows, group in self.presence_groups(present, mods):
            if active not in group:
                continue
            sub = {m: _take(adapted[m], rows) for m in group}  # (b, d) each
            orders = self.hybrid_orders(group) if step_orders == "all" else [tuple(group)]
            # Orders sharing the prefix before `active` share the step: run each distinct prefix once, weighted.
            prefixes: dict[tuple[str, ...], int] = {}
            for o in orders:
                prefix = tuple(o[: o.index(active)])
                prefixes[prefix] = prefixes.get(prefix, 0) + 1
            group_logits, group_loss = 0.0, 0.0
            y = _take(labels.reshape(-1), rows) if labels is not None else None
            for prefix, count in prefixes.items():
                if prefix:
                    with torch.no_grad():
                        h_prev = self.chain(sub, prefix)[-1]  # (b, d), the weaker side, detached
                    h = self.step(h_prev, sub[active])
                else:
                    h = sub[active]
                step_logits = self.classifier(h)  # (b, C)
                group_logits = group_logits + step_logits * (count / len(orders))
                if y is not None:
                    group_loss = group_loss + F.cross_entropy(step_logits, y, reduction="none") * (count / len(orders))
            if y is not None and unimodal_loss_weight:
                uni = F.cross_entropy(self.classifier(sub[active]), y, reduction="none")  # (b,)
                group_loss = group_loss + unimodal_loss_weight * uni
            logits = _put(logits, rows, group_logits)
            if y is not None:
                row_loss = _put(row_loss, rows, group_loss)
            used = _put(used, rows, torch.ones_like(used[: sub[active].shape[0]]))
        loss = None
        if labels is not None:
            # nobody in this batch has the active modality: a zero loss that touches no weight
            loss = row_loss[used].mean() if used.any() else logits.sum() * 0.0
        return BalancedModelOutput(loss=loss, logits=logits, fused=None)

    def _paper_step(
        self, features: Features, present: Mask, labels: torch.Tensor | None, order: Sequence[str], active: str
    ) -> BalancedModelOutput:
        """[`alternating_step`] over `order` alone, computed as the `paper` preset always has (bit for bit)."""
        mods = [m for m in order if m in present]
        adapted = self.adapt(features, mods, grad=[active])
        ref = adapted[mods[0]]
        logits = ref.new_zeros(ref.shape[0], self.config.num_labels)  # (B, C)
        used = torch.zeros(ref.shape[0], dtype=torch.bool, device=ref.device)
        for rows, group in self.presence_groups(present, mods):
            if active not in group:
                continue
            t = group.index(active)
            sub = {m: _take(adapted[m], rows) for m in group[: t + 1]}
            if t == 0:
                h = sub[active]
            else:
                with torch.no_grad():
                    h_prev = self.chain(sub, group[:t])[-1]  # (b, d), the weaker side, detached
                h = self.step(h_prev, sub[active])
            logits = _put(logits, rows, self.classifier(h))
            used = _put(used, rows, torch.ones_like(used[: h.shape[0]]))
        loss = None
        if labels is not None:
            if used.any():
                loss = F.cross_entropy(logits[used], labels.reshape(-1)[used])
            else:  # nobody in this batch has the active modality: a zero loss that touches no weight
                loss = logits.sum() * 0.0
        return BalancedModelOutput(loss=loss, logits=logits, fused=None)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint or a Hub upload holds: see [`~mllm_balance.modeling.trainable_state_dict`]."""
        return trainable_state_dict(self)

    def push_to_hub(self, repo_id: str, *, results=None, max_shard_size=None, **kwargs):
        """Push the trained weights, config, model card and contribution plot (never the backbone).

        See [`~mllm_balance.hub.push_adapters_to_hub`]; `results` is a results dict or a `results.json` path.
        """
        from .hub import push_adapters_to_hub

        return push_adapters_to_hub(self, repo_id, results=results, **kwargs)

    # ---------------------------------------------------------------- subsets
    @torch.no_grad()
    def subset_logits(
        self,
        features: Features,
        subsets: Iterable[Iterable[str]],
        modality_mask: Mask | None = None,
        order: Sequence[str] | None = None,
    ) -> dict[frozenset[str], torch.Tensor]:
        """Logits of the chain over `order` restricted to each subset of modalities, adapters run once.

        Rows with no modality of the subset present are NaN (the caller decides, e.g. the prior prediction).

        Returns:
            `dict[frozenset[str], torch.Tensor]`: `{subset: (B, num_labels)}`.
        """
        present, batch = self.check_inputs(features, modality_mask)
        order = self.config.check_order(order) if order is not None else self.train_order
        adapted = self.adapt(features, present)

        def score(rows: torch.Tensor, part: dict[str, torch.Tensor]) -> torch.Tensor:
            part_adapted = {m: adapted[m][rows] for m in part}
            return self.classifier(self.fuse(part_adapted, part, "order", [m for m in order if m in part]))

        return subset_scores(present, subsets, order, batch, self.config.num_labels, score)


def trainable_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that train plus the buffers (running statistics); frozen parameters are left out."""
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k not in frozen}


def subset_scores(
    present: Mask,
    subsets: Iterable[Iterable[str]],
    modalities: Sequence[str],
    batch: int,
    num_labels: int,
    score: Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor],
) -> dict[frozenset[str], torch.Tensor]:
    """`{subset: (B, num_labels)}` logits, `score(rows, presence restricted to the subset)` filling the rows that
    have a modality of the subset and NaN the others; shared by every model that Shapley scoring reads.

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


def _take(x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    return x if rows is None else x[rows]


def _put(dest: torch.Tensor, rows: torch.Tensor | None, src: torch.Tensor) -> torch.Tensor:
    """`dest` with `src` written into `rows` (out of place, so autograd follows); all rows when `rows` is None."""
    return src.to(dest.dtype) if rows is None else dest.index_copy(0, rows, src.to(dest.dtype))


__all__ = ["BalancedModel", "BalancedModelOutput", "entropy_weights", "subset_scores", "trainable_state_dict"]
