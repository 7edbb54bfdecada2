"""`ShapleyOrderCallback`: score every modality at epoch end and set the next training order (Eq. 8); model selection
on the validation split; the console of a training run; feature snapshots for Figure 4."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from .analyses import feature_snapshot
from .console import quiet_console
from .shapley import next_order

if TYPE_CHECKING:
    from transformers import Trainer

    from .trainer import BalanceTrainer


class ShapleyOrderCallback(TrainerCallback):
    """Scores the modalities on the eval features after every epoch and reorders them, weakest first.

    At the end of each scored epoch it computes `P(S)` for every coalition S of modalities (one pass over the
    cached eval features, no backbone call), the Shapley values, EDM and the next order (Eq. 8; or the fixed /
    random ablation schedules), and logs `shapley/<modality>`, `accuracy/<modality>`, `edm`, `order/<modality>`
    (the position) and `order` (the modalities joined with `>`) into the Trainer's log history, so TensorBoard or
    W&B show them. [`BalanceTrainer`] adds one automatically; pass your own to score another eval set.

    Args:
        eval_dataset (`datasets.Dataset`, *optional*): features to score on; defaults to the trainer's eval set.
    """

    def __init__(self, eval_dataset=None):
        self.eval_dataset = eval_dataset
        self.trainer: BalanceTrainer | None = None

    def bind(self, trainer: BalanceTrainer) -> None:
        """Attach the trainer whose order this callback drives (callbacks get no trainer reference otherwise)."""
        self.trainer = trainer

    @staticmethod
    def _epoch(state) -> int:
        return int(math.floor((state.epoch or 0.0) + 1e-6))

    def _scores_epoch(self, epoch: int) -> bool:
        args = self.trainer.args
        if args.alternation == "epoch":
            n = len(self.trainer.modalities)
            return (epoch + 1) % n == 0 and ((epoch + 1) // n) % args.shapley_every == 0
        return (epoch + 1) % args.shapley_every == 0

    def on_train_begin(self, args, state, control, **kwargs):
        trainer = self.trainer
        if trainer is None or trainer.order_state.order_history:
            return  # resumed: the restored state already holds the initial order
        if args.initial_order == "shapley" and self._can_score():
            self._score_and_reorder(epoch=-1, state=state)

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.trainer is not None:
            self.trainer.order_state.start_epoch(self._epoch(state))

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.trainer is None:
            return
        epoch = self._epoch(state) - 1  # state.epoch already counts the finished epoch
        if self._scores_epoch(epoch):
            should_log = control.should_log
            self._score_and_reorder(epoch=epoch, state=state)
            control.should_log = should_log  # logging the scores must not cancel the epoch's training-loss log

    def _can_score(self) -> bool:
        return self.eval_dataset is not None or self.trainer.eval_dataset is not None

    def _score_and_reorder(self, epoch: int, state) -> None:
        trainer = self.trainer
        order_state = trainer.order_state
        args = trainer.args
        logs: dict[str, float | str] = {}
        if self._can_score():
            scores = trainer.score_modalities(self.eval_dataset)
            phi, edm = scores["shapley"], scores["edm"]
            accuracy = {"+".join(m for m in trainer.modalities if m in c): v for c, v in scores["accuracy"].items()}
            order_state.record_scores(epoch, phi, edm, accuracy)
            logs.update({f"shapley/{m}": float(v) for m, v in phi.items()})
            logs.update({f"accuracy/{m}": accuracy[m] for m in trainer.modalities})
            logs["edm"] = edm
        else:
            phi = None
        if args.order_schedule == "shapley" and phi is not None:
            order = next_order(phi, order_state.order)
        elif args.order_schedule == "random":
            rng = np.random.default_rng([args.seed, epoch + 1])
            order = [trainer.modalities[i] for i in rng.permutation(len(trainer.modalities))]
        else:
            order = list(order_state.order)
        trainer.set_order(order)
        logs.update({f"order/{m}": float(i) for i, m in enumerate(order)})
        logs["order"] = ">".join(order)
        trainer.log(logs)


class BestValidationCallback(TrainerCallback):
    """Model selection on the validation split: keeps the weights of the epoch with the best validation metric and
    restores them when training ends (in memory, no checkpoint written).

    The same rule serves every model of the library, so a comparison selects every method alike. Needs
    `eval_strategy="epoch"` (the Trainer then evaluates on its eval set after every epoch). Ties keep the earlier
    epoch. The restored model also gets back the training order it was evaluated with.

    Args:
        metric (`str`, *optional*, defaults to `"eval_accuracy"`): the metric to maximise, as the Trainer logs it.

    Attributes:
        best_metric (`float` or `None`), best_epoch (`int` or `None`, 1-based): what was selected.
    """

    def __init__(self, metric: str = "eval_accuracy"):
        self.metric = metric
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self._best_state: dict | None = None
        self._best_order: list[str] | None = None

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        if model is None or not metrics or self.metric not in metrics:
            return
        value = float(metrics[self.metric])
        if self.best_metric is None or value > self.best_metric:
            self.best_metric = value
            self.best_epoch = int(round(state.epoch or 0))
            self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            order = getattr(model.config, "train_order", None)
            self._best_order = list(order) if order is not None else None

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if model is None or self._best_state is None:
            return
        model.load_state_dict(self._best_state)
        if self._best_order is not None:
            model.config.train_order = list(self._best_order)


class EpochSummaryCallback(TrainerCallback):
    """The console of a training run: one progress bar over the training steps and one line per epoch.

    Takes the place of transformers' `ProgressCallback` / `PrinterCallback`, which print every log dict and draw a bar
    per evaluation. After each epoch it writes the order trained with, the training loss, the fusion accuracy on the
    eval set, the accuracy of each modality alone and EDM (the values [`ShapleyOrderCallback`] and the Trainer logged
    in that epoch; one not logged is left out), e.g.

        epoch 3/40  order image>text  loss 0.9120  fusion 79.25  acc text 77.00 image 52.13  EDM 23.40

    While training it also hides transformers' own progress bars and its notices about library internals (see
    `mllm_balance.console`). Only the main process writes; with `disable_tqdm=True` the lines come without the bar.
    [`EpochSummaryCallback.install`] swaps it in on a trainer.
    """

    def __init__(self):
        self.training_bar = None
        self._quiet: ExitStack | None = None
        self._epoch: int | None = None
        self._order: list[str] | None = None
        self._values: dict[str, Any] = {}

    @classmethod
    def install(cls, trainer: Trainer) -> EpochSummaryCallback:
        """Replace the trainer's `ProgressCallback` / `PrinterCallback` with a new `EpochSummaryCallback` and return
        it."""
        for callback in (ProgressCallback, PrinterCallback, cls):
            trainer.remove_callback(callback)
        callback = cls()
        trainer.add_callback(callback)
        return callback

    def on_train_begin(self, args, state, control, **kwargs):
        self._quiet = ExitStack()
        self._quiet.enter_context(quiet_console())
        if state.is_world_process_zero and not args.disable_tqdm:
            # on stdout with the epoch lines: one stream keeps them in order (`accelerate launch` relays a child's
            # stderr through a thread of its own, so a bar on stderr and lines on stdout can arrive swapped)
            self.training_bar = tqdm(
                total=state.max_steps, initial=state.global_step, dynamic_ncols=True, file=sys.stdout
            )

    def on_step_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            self.training_bar.update(state.global_step - self.training_bar.n)

    def on_epoch_begin(self, args, state, control, model=None, **kwargs):
        self._write_epoch_line(state)
        order = getattr(getattr(model, "config", None), "train_order", None)
        self._epoch = int(math.floor((state.epoch or 0.0) + 1e-6)) + 1
        self._order = list(order) if order else None  # the logged "order" is the next epoch's
        self._values = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._epoch is not None and logs:
            self._values.update(logs)

    def on_train_end(self, args, state, control, **kwargs):
        self._write_epoch_line(state)
        self._epoch = None
        if self.training_bar is not None:
            self.training_bar.close()
            self.training_bar = None
        if self._quiet is not None:
            self._quiet.close()
            self._quiet = None

    def _write_epoch_line(self, state) -> None:
        if self._epoch is None or not state.is_world_process_zero:
            return
        line = format_epoch_line(self._epoch, state.num_train_epochs, self._values, order=self._order)
        if self.training_bar is None:
            print(line, flush=True)
            return
        # the bar is cleared, the line printed and flushed, then the bar redrawn, all on stdout
        with tqdm.external_write_mode(file=sys.stdout):
            print(line, flush=True)


def format_epoch_line(
    epoch: int, num_epochs: int | None, values: dict[str, Any], order: Sequence[str] | None = None
) -> str:
    """One epoch's console line: the order trained with and the values logged in the epoch (`loss`,
    `eval_accuracy`, `accuracy/<modality>`, `edm`); the missing ones are left out.

    Example: `format_epoch_line(3, 40, {"eval_accuracy": 79.25, "edm": 23.4}, order=["image", "text"])` ->
    `"epoch 3/40  order image>text  fusion 79.25  EDM 23.40"`.
    """
    parts = [f"epoch {epoch}/{num_epochs}" if num_epochs else f"epoch {epoch}"]
    if order:
        parts.append("order " + ">".join(order))
    if isinstance(values.get("loss"), (int, float)):
        parts.append(f"loss {values['loss']:.4f}")
    if isinstance(values.get("eval_accuracy"), (int, float)):
        parts.append(f"fusion {values['eval_accuracy']:.2f}")
    per_modality = [(k.split("/", 1)[1], v) for k, v in values.items() if k.startswith("accuracy/")]
    if per_modality:
        parts.append("acc " + " ".join(f"{m} {float(v):.2f}" for m, v in per_modality))
    if isinstance(values.get("edm"), (int, float)):
        parts.append(f"EDM {values['edm']:.2f}")
    return "  ".join(parts)


class FeatureSnapshotCallback(TrainerCallback):
    """Takes a [`~mllm_balance.analyses.feature_snapshot`] before training (epoch 0) and after each chosen epoch, for
    Figure 4.

    Args:
        dataset (`datasets.Dataset`): features to project (the first `max_samples` rows).
        epochs (`Iterable[int]`): epochs after which to take a snapshot (0 = before training, 1 = after the first).
        max_samples (`int`, *optional*, defaults to 300): rows per snapshot.

    The snapshots are in `self.snapshots` (`{epoch: snapshot}`).
    """

    def __init__(self, dataset, epochs: Iterable[int], max_samples: int = 300):
        self.dataset = dataset
        self.epochs = sorted({int(e) for e in epochs})
        self.max_samples = max_samples
        self.snapshots: dict[int, dict[str, Any]] = {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if 0 in self.epochs and model is not None:
            self.snapshots[0] = feature_snapshot(model, self.dataset, self.max_samples)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        epoch = int(round(state.epoch or 0))
        if epoch in self.epochs and model is not None:
            self.snapshots[epoch] = feature_snapshot(model, self.dataset, self.max_samples)


__all__ = [
    "ShapleyOrderCallback",
    "BestValidationCallback",
    "EpochSummaryCallback",
    "FeatureSnapshotCallback",
    "format_epoch_line",
]
