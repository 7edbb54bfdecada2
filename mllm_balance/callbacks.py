"""`ShapleyOrderCallback`: score every modality at epoch end and set the next training order (Eq. 8)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from transformers import TrainerCallback

from .shapley import next_order

if TYPE_CHECKING:
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
            self._score_and_reorder(epoch=epoch, state=state)

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


__all__ = ["ShapleyOrderCallback", "BestValidationCallback"]
