"""The results format every recipe writes (`<output_dir>/results.json`)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

RESULTS_NAME = "results.json"


def build_results(
    *,
    dataset: str,
    method: str,
    modalities: Sequence[str],
    fusion_accuracy: float,
    per_modality: Mapping[str, float],
    shapley: Mapping[str, float],
    edm: float,
    order_history: Sequence[Sequence[str]],
    missing_modality: Mapping[float, float] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Assemble a results dict in the pinned format (accuracies in percent, as in the paper's tables).

    Args:
        dataset (`str`): dataset name, e.g. `"kaomoji-sentiment"`.
        method (`str`): `"ours"` or a baseline's name.
        modalities (`Sequence[str]`): modality names in the declared order.
        fusion_accuracy (`float`): accuracy with every modality (the method's own inference).
        per_modality (`Mapping[str, float]`): `P({m})`, the accuracy with modality m alone.
        shapley (`Mapping[str, float]`): final Shapley values.
        edm (`float`): final EDM (NaN is written as `null`).
        order_history (`Sequence[Sequence[str]]`): the order used by every epoch.
        missing_modality (`Mapping[float, float]`, *optional*): `{drop rate: accuracy}` of the robustness run.
        **extra: further fields (e.g. `shapley_history`, `edm_history`, `seed`).
    """
    results: dict[str, Any] = {
        "dataset": dataset,
        "method": method,
        "modalities": list(modalities),
        "accuracy": {
            "fusion": float(fusion_accuracy),
            "per_modality": {m: float(per_modality[m]) for m in modalities},
        },
        "shapley": {m: float(shapley[m]) for m in modalities},
        "edm": None if edm is None or math.isnan(edm) else float(edm),
        "order_history": [list(o) for o in order_history],
    }
    if missing_modality is not None:
        results["missing_modality"] = {f"{float(rate):.1f}": float(acc) for rate, acc in missing_modality.items()}
    results.update(extra)
    return results


def save_results(results: Mapping[str, Any], output_dir: str) -> str:
    """Write `results.json` into `output_dir` (atomically: a crash never leaves half a file) and return its path."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, RESULTS_NAME)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, path)
    return path


def trainer_results(trainer, *, dataset: str, method: str = "ours", eval_dataset=None, **extra: Any) -> dict[str, Any]:
    """Results of a finished [`BalanceTrainer`] run: fusion accuracy from `trainer.evaluate`, per-modality
    accuracy, Shapley values and EDM scored now on the eval features, and the order history."""
    metrics = trainer.evaluate(eval_dataset)
    scores = trainer.score_modalities(eval_dataset)
    modalities = trainer.modalities
    state = trainer.order_state
    return build_results(
        dataset=dataset,
        method=method,
        modalities=modalities,
        fusion_accuracy=metrics["eval_accuracy"],
        per_modality={m: scores["accuracy"][frozenset([m])] for m in modalities},
        shapley=scores["shapley"],
        edm=scores["edm"],
        order_history=state.order_history,
        shapley_history=state.shapley_history,
        edm_history=state.edm_history,
        **extra,
    )


__all__ = ["build_results", "save_results", "trainer_results", "RESULTS_NAME"]
