"""`BalanceTrainer`: a `transformers.Trainer` for Shapley-ordered alternating training on cached features."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import EvalPrediction

from .atomic import staged_folder
from .callbacks import ShapleyOrderCallback
from .checkpoints import check_checkpoint, last_checkpoint, resolve_checkpoint
from .classifier import FeatureClassifier
from .collator import LABEL_COLUMN, BalanceDataCollator, feature_view, validate_feature_dataset
from .hub import create_trainer_model_card
from .order_state import OrderState
from .shapley import coalitions_needed, equilibrium_deviation, shapley_values
from .training_args import BalanceTrainingArguments


def accuracy_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
    """Fusion accuracy in percent, as the paper's tables report it."""
    logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
    return {"accuracy": float((np.asarray(logits).argmax(-1) == np.asarray(eval_pred.label_ids)).mean() * 100)}


class NonFiniteTrainingError(FloatingPointError):
    """The training loss, or the weights about to be saved, turned NaN or infinite: the run stops there, and the
    checkpoints saved before it are kept as they are."""


class BalanceTrainer(Trainer):
    """Trainer for [`BalancedModel`] (and models with the same inputs) on feature datasets.

    On top of [`~transformers.Trainer`] it
    - validates the feature datasets against the model before training (clear `ValueError`s),
    - runs alternating steps (see [`BalanceTrainingArguments.alternation`]) in the current modality order,
    - keeps the order state ([`OrderState`]), updated every epoch by [`ShapleyOrderCallback`] (added
      automatically), saved beside every checkpoint and restored on resume (`train(resume_from_checkpoint="last")`),
    - stops with [`NonFiniteTrainingError`] as soon as the training loss turns NaN or infinite,
    - saves only the trainable weights of the model, written aside first so that a killed save leaves no half model.

    Args:
        model ([`BalancedModel`]): the model to train; its `config.modality_dims` names the feature columns.
        args ([`BalanceTrainingArguments`]): training arguments.
        train_dataset / eval_dataset (`datasets.Dataset`): feature datasets (one float column per modality,
            optional `<modality>_present` columns, `labels`). The eval set is scored for the Shapley order.
        check_values (`bool`, *optional*, defaults to `True`): scan the datasets for NaN/inf and bad labels.
        Other arguments are passed to [`~transformers.Trainer`].
    """

    def __init__(
        self,
        model=None,
        args: BalanceTrainingArguments | None = None,
        train_dataset=None,
        eval_dataset=None,
        data_collator=None,
        compute_metrics=None,
        callbacks: list[TrainerCallback] | None = None,
        check_values: bool = True,
        **kwargs,
    ):
        if model is None:
            raise ValueError("BalanceTrainer needs a model")
        if args is None:
            args = BalanceTrainingArguments(output_dir="outputs")
        if not isinstance(args, BalanceTrainingArguments):
            raise ValueError("BalanceTrainer needs BalanceTrainingArguments")
        config = model.config
        for name, dataset in (("train dataset", train_dataset), ("eval dataset", eval_dataset)):
            if dataset is not None:
                validate_feature_dataset(
                    dataset, config.modality_dims, config.num_labels, name=name, check_values=check_values
                )
        if eval_dataset is None and args.order_schedule == "shapley" and train_dataset is not None:
            raise ValueError("the Shapley order schedule scores modalities on an eval dataset: pass eval_dataset")
        callbacks = list(callbacks or [])
        self.shapley_callback = next((c for c in callbacks if isinstance(c, ShapleyOrderCallback)), None)
        if self.shapley_callback is None:
            self.shapley_callback = ShapleyOrderCallback()
            callbacks.append(self.shapley_callback)
        super().__init__(
            model=model,
            args=args,
            train_dataset=_numpy_view(train_dataset, config),
            eval_dataset=_numpy_view(eval_dataset, config),
            data_collator=data_collator or BalanceDataCollator(config.modality_dims),
            compute_metrics=compute_metrics or accuracy_metrics,
            callbacks=callbacks,
            **kwargs,
        )
        # Validated datasets need no per-batch NaN scan (the model still checks shapes and modalities); every
        # `FeatureClassifier` takes `check_values`.
        unwrapped = self.accelerator.unwrap_model(self.model)
        self._skip_value_checks = check_values and isinstance(unwrapped, FeatureClassifier)
        # Alternating-step options reach the models that name them in `step_options`; a model without a chain of
        # orders (e.g. MLA) has no `step_orders` to honour, but a loss term it cannot add is an error, not a silent
        # no-op. The hybrid term joins only the last step of a batch (`_last_step_options`).
        supported = getattr(unwrapped, "step_options", ())
        for name in ("unimodal_loss_weight", "hybrid_loss_weight"):
            if getattr(args, name) and name not in supported and args.alternation != "joint":
                raise ValueError(f"{type(unwrapped).__name__} does not support {name}: leave it at 0 for this model")
        self._step_options = {}
        if "step_orders" in supported:
            self._step_options["step_orders"] = args.step_orders
        if args.unimodal_loss_weight:
            self._step_options["unimodal_loss_weight"] = args.unimodal_loss_weight
        self._last_step_options = {}
        if args.hybrid_loss_weight and args.alternation != "joint":
            self._last_step_options["hybrid_loss_weight"] = args.hybrid_loss_weight
        self.majority_label = None
        if train_dataset is not None:
            labels = np.asarray(train_dataset.with_format("numpy")[LABEL_COLUMN])
            counts = np.bincount(labels, minlength=config.num_labels)
            self.majority_label = int(counts.argmax())
            config.label_prior = (counts / counts.sum()).tolist() if counts.sum() else None  # saved with the model
        self.order_state = OrderState(order=self._initial_order())
        self.set_order(self.order_state.order)
        self.shapley_callback.bind(self)

    def _checked(self, dataset, name: str):
        """Validate a dataset passed after construction, and serve it as numpy arrays."""
        if dataset is None or not hasattr(dataset, "with_format"):
            return dataset
        config = self.model.config
        validate_feature_dataset(dataset, config.modality_dims, config.num_labels, name=name)
        return _numpy_view(dataset, config)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        return super().evaluate(self._checked(eval_dataset, "eval dataset"), ignore_keys, metric_key_prefix)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test"):
        return super().predict(self._checked(test_dataset, "test dataset"), ignore_keys, metric_key_prefix)

    # ------------------------------------------------------------------ order
    @property
    def modalities(self) -> list[str]:
        return list(self.model.config.modalities)

    def _initial_order(self) -> list[str]:
        initial = self.args.initial_order
        if initial in (None, "", "declared", "shapley"):
            return self.modalities
        order = self.model.config.check_order([m.strip() for m in initial.split(",") if m.strip()])
        if sorted(order) != sorted(self.modalities):
            raise ValueError(f"initial_order {order} must name every modality {self.modalities} once")
        return order

    def set_order(self, order: Sequence[str]) -> None:
        """Make `order` the current training order (and the model's recorded last training order)."""
        order = self.model.config.check_order(order)
        self.order_state.order = order
        self.model.config.train_order = list(order)

    # ---------------------------------------------------------------- scoring
    @torch.no_grad()
    def coalition_accuracy(
        self, coalitions: Sequence[frozenset[str]], eval_dataset=None, order: Sequence[str] | None = None
    ) -> dict[frozenset[str], float]:
        """Accuracy (percent) on the eval features of the chain over `order` restricted to each coalition.

        One pass over the cached features; the backbone is never called. Under DDP, predictions are gathered from
        every rank, so every rank gets the same numbers. Samples with no modality of a coalition get the majority
        training label (`empty_value="prior"`) or count as wrong (`"zero"`).
        """
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("coalition accuracy needs an eval dataset")
        dataset = self._checked(dataset, "eval dataset") if eval_dataset is not None else dataset
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        order = list(order or self.order_state.order)
        coalitions = [frozenset(c) for c in coalitions]
        fallback = self.majority_label if self.args.empty_value == "prior" and self.majority_label is not None else -1
        correct = torch.zeros(len(coalitions), dtype=torch.float64)
        total = 0
        for batch in self.get_eval_dataloader(dataset):
            batch = self._prepare_inputs(batch)
            logits = model.subset_logits(
                batch["features"], coalitions, batch.get("modality_mask"), order
            )  # {S: (b, C)}
            preds = torch.stack(
                [torch.where(lg.isnan().any(-1), fallback, lg.argmax(-1)) for lg in logits.values()], dim=1
            )  # (b, num_coalitions)
            preds, labels = self.accelerator.gather_for_metrics((preds, batch[LABEL_COLUMN]))
            correct += (preds == labels.unsqueeze(1)).sum(0).double().cpu()
            total += labels.shape[0]
        model.train(was_training)
        if total == 0:
            raise ValueError("the eval dataset is empty")
        return {c: float(100 * correct[i] / total) for i, c in enumerate(coalitions)}

    def empty_coalition_value(self, eval_dataset=None) -> float:
        """`v(empty)`: accuracy (percent) of always predicting the majority training label, or 0."""
        if self.args.empty_value == "zero" or self.majority_label is None:
            return 0.0
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        labels = np.asarray(dataset.with_format("numpy")[LABEL_COLUMN])
        return float((labels == self.majority_label).mean() * 100)

    def score_modalities(self, eval_dataset=None, order: Sequence[str] | None = None) -> dict:
        """Shapley value of every modality (Eq. 7, `P(S)` = accuracy with the modalities in S), EDM and the
        accuracy of every coalition scored.

        Returns:
            `dict` with `shapley` ([`ShapleyValues`]), `edm` (`float`) and `accuracy` (`{coalition: percent}`).
        """
        mods = self.modalities
        method = self.args.shapley_method
        if method == "auto":
            method = "exact" if len(mods) <= 8 else "permutation"
        kwargs = {"num_permutations": self.args.shapley_permutations, "seed": self.args.seed}
        coalitions = coalitions_needed(mods, method=method, **kwargs)
        accuracy = self.coalition_accuracy([c for c in coalitions if c], eval_dataset, order)
        accuracy[frozenset()] = self.empty_coalition_value(eval_dataset)
        phi = shapley_values(accuracy.__getitem__, mods, method=method, **kwargs)
        return {"shapley": phi, "edm": equilibrium_deviation(phi), "accuracy": accuracy}

    # --------------------------------------------------------------- training
    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, ignore_keys_for_eval=None):
        """[`~transformers.Trainer.train`], resumed from a checkpoint when one is named.

        Args:
            resume_from_checkpoint (`str` or `bool`, *optional*): a checkpoint folder; `True`, `"last"` or `"true"`
                for the newest complete checkpoint of `args.output_dir` (one that a killed run left half written is
                skipped with a warning); `None`, `False`, `""`, `"false"` or `"none"` for a fresh run. Weights,
                optimizer, scheduler, RNG and order state are restored, so the run ends as the uninterrupted one.
            trial, ignore_keys_for_eval: as in [`~transformers.Trainer.train`].

        Raises:
            `ValueError`: the folder is not a checkpoint of this trainer for this model (the message names the path
                and what is missing or different), or `"last"` finds none.
            [`NonFiniteTrainingError`]: the training loss turned NaN or infinite.
        """
        model = self.accelerator.unwrap_model(self.model)
        checkpoint = resolve_checkpoint(resume_from_checkpoint, self.args.output_dir, model)
        return super().train(resume_from_checkpoint=checkpoint, trial=trial, ignore_keys_for_eval=ignore_keys_for_eval)

    def _prepare_inputs(self, inputs):
        inputs = super()._prepare_inputs(inputs)
        if self._skip_value_checks and isinstance(inputs, dict) and "features" in inputs:
            inputs = {**inputs, "check_values": False}
        return inputs

    def training_step(self, model, inputs, num_items_in_batch=None):
        """One batch: a joint step, or the alternating steps of every modality in the current order with an
        optimizer step between them ([`mllm_balance.alternating`] describes the step)."""
        alternation = self.args.alternation
        if alternation == "joint":
            return self._checked_loss(super().training_step(model, inputs, num_items_in_batch))
        order = list(self.order_state.order)
        if alternation == "epoch":
            epoch = len(self.order_state.order_history) - 1
            active = order[max(epoch, 0) % len(order)]
            step_inputs = {**inputs, "active_modality": active, "order": order, **self._step_options}
            loss = super().training_step(model, {**step_inputs, **self._last_step_options}, num_items_in_batch)
            return self._checked_loss(loss, active)
        losses = []
        masks = inputs.get("modality_mask") or {}
        steps = [m for m in order if m not in masks or bool(masks[m].any())]  # nobody has `m`: no step for it
        for i, m in enumerate(steps):
            if i:
                self._optimizer_substep(model)
            step_inputs = {**inputs, "active_modality": m, "order": order, **self._step_options}
            if i == len(steps) - 1:
                step_inputs.update(self._last_step_options)
            losses.append(self._checked_loss(super().training_step(model, step_inputs, num_items_in_batch), m))
        # The outer loop clips, steps the optimizer and the scheduler after the last modality's step.
        return torch.stack(losses).mean()

    def floating_point_ops(self, inputs) -> int:
        """Forward + backward estimate: `6 * batch * parameters` (the inputs are a dict of modalities)."""
        batch = next(iter(inputs["features"].values())).shape[0]
        return 6 * batch * sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def _optimizer_substep(self, model) -> None:
        if self.args.max_grad_norm is not None and self.args.max_grad_norm > 0:
            self._clip_grad_norm(model)
        self.optimizer.step()
        model.zero_grad(set_to_none=True)

    def _checked_loss(self, loss: torch.Tensor, modality: str | None = None) -> torch.Tensor:
        """`loss` once it is known to be finite on every process, before the optimizer applies its gradients.

        Raises:
            [`NonFiniteTrainingError`]: naming the epoch and step (on every process at once under DDP).
        """
        finite = torch.isfinite(loss.detach()).all().to(torch.float32).reshape(1)  # (1,)
        if self.args.world_size > 1:
            finite = self.accelerator.gather(finite)  # (world_size,)
        if bool(finite.min() > 0):
            return loss
        step = f" (the {modality!r} step)" if modality is not None else ""
        last = last_checkpoint(self.args.output_dir) if os.path.isdir(self.args.output_dir) else None
        kept = f"the last checkpoint, {last}, is kept" if last else "no checkpoint had been saved"
        raise NonFiniteTrainingError(
            f"the training loss is not finite ({float(loss.detach().float().mean())}) at epoch "
            f"{self._current_epoch()}, step {self.state.global_step + 1}{step}: training stopped before applying "
            f"it; {kept}. Resume with resume_from_checkpoint='last', e.g. with a lower learning rate"
        )

    def _current_epoch(self) -> int:
        """The epoch in progress, counted from 1."""
        return len(self.order_state.order_history) or int(self.state.epoch or 0) + 1

    # -------------------------------------------------------- checkpointing
    def create_model_card(self, **kwargs):
        """The model card of [`~mllm_balance.model_card`] (results.json, Shapley values, EDM, contribution plot)."""
        create_trainer_model_card(self, **kwargs)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        model = self.accelerator.unwrap_model(self.model)
        model.config.train_order = list(self.order_state.order)
        model.config.shapley_history = [dict(p) for p in self.order_state.shapley_history]
        if state_dict is None:
            state_dict = model.trainable_state_dict()
        if not self.args.should_save:
            super()._save(output_dir, state_dict=state_dict)  # a non-writing process joins any collective only
            return
        bad = [k for k, v in state_dict.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            raise NonFiniteTrainingError(
                f"the weights {bad[:4]} are NaN or infinite at epoch {self._current_epoch()}, step "
                f"{self.state.global_step}: not saving them to {output_dir}"
            )
        # Written aside, then moved in with config.json last: a killed save never leaves a loadable half model.
        with staged_folder(output_dir) as staging:
            super()._save(staging, state_dict=state_dict)
            self.order_state.save(staging)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        check_checkpoint(resume_from_checkpoint, self.accelerator.unwrap_model(model or self.model))
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        state = OrderState.load(resume_from_checkpoint)
        self.order_state = state
        self.set_order(state.order)


def _numpy_view(dataset, config):
    """Serve the feature columns as numpy arrays (fast batching); other columns are left out."""
    if dataset is None:
        return None
    wanted = [c for m in config.modalities for c in (m, f"{m}_present")] + [LABEL_COLUMN]
    return feature_view(dataset, [c for c in wanted if c in dataset.column_names])


__all__ = ["BalanceTrainer", "NonFiniteTrainingError", "accuracy_metrics"]
