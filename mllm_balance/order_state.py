"""The state of Shapley-ordered training: the current order and the per-epoch history, saved with checkpoints."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

ORDER_STATE_NAME = "balance_state.json"


@dataclass
class OrderState:
    """Current training order (weakest first) and what every scored epoch measured.

    Args:
        order (`list[str]`): order used by the coming (or current) epoch.
        order_history (`list[list[str]]`): the order used by each epoch, index = epoch.
        shapley_history (`list[dict[str, float]]`): Shapley values after each scored epoch (percent points).
        edm_history (`list[float]`): EDM after each scored epoch.
        accuracy_history (`list[dict[str, float]]`): accuracy (percent) of every scored coalition, keyed by the
            coalition's modalities joined with `"+"` (`""` is the empty coalition).
        scored_epochs (`list[int]`): the epoch each entry of the three histories above belongs to (-1 = before
            training).
    """

    order: list[str]
    order_history: list[list[str]] = field(default_factory=list)
    shapley_history: list[dict[str, float]] = field(default_factory=list)
    edm_history: list[float] = field(default_factory=list)
    accuracy_history: list[dict[str, float]] = field(default_factory=list)
    scored_epochs: list[int] = field(default_factory=list)

    def start_epoch(self, epoch: int) -> None:
        """Record that `epoch` trains with the current order (idempotent, so a resumed epoch is not doubled)."""
        del self.order_history[epoch:]
        self.order_history.append(list(self.order))

    def record_scores(self, epoch: int, phi: dict[str, float], edm: float, accuracy: dict[str, float]) -> None:
        """Store what scoring after `epoch` measured (replacing an earlier record of the same epoch)."""
        if epoch in self.scored_epochs:
            i = self.scored_epochs.index(epoch)
            for history in (self.scored_epochs, self.shapley_history, self.edm_history, self.accuracy_history):
                del history[i:]
        self.scored_epochs.append(epoch)
        self.shapley_history.append(dict(phi))
        self.edm_history.append(float(edm))
        self.accuracy_history.append(dict(accuracy))

    def save(self, directory: str) -> None:
        with open(os.path.join(directory, ORDER_STATE_NAME), "w") as f:
            json.dump(asdict(self), f, indent=2)

    @classmethod
    def load(cls, directory: str) -> OrderState | None:
        """The state saved in `directory`, or `None` if it holds none."""
        path = os.path.join(directory, ORDER_STATE_NAME)
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            return cls(**json.load(f))


__all__ = ["OrderState", "ORDER_STATE_NAME"]
