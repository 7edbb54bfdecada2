"""The results format every recipe writes and reads back (`<output_dir>/results.json`)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .atomic import atomic_open

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
    with atomic_open(path) as f:
        json.dump(results, f, indent=2)
    return path


def load_results(path: str | os.PathLike) -> dict[str, Any] | None:
    """Read `results.json` (a file, or a folder holding one); `None` when there is none."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_NAME
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    if not isinstance(results, dict):
        raise ValueError(f"{path} does not hold a results dict")
    return results


def trainer_results(trainer, *, dataset: str, method: str = "ours", eval_dataset=None, **extra: Any) -> dict[str, Any]:
    """Results of a finished [`BalanceTrainer`] run: fusion accuracy from `trainer.evaluate`, per-modality
    accuracy, Shapley values and EDM scored now on the eval features, and the order history."""
    metrics = trainer.evaluate(eval_dataset, metric_key_prefix="test")  # not "eval": the log keeps validation
    scores = trainer.score_modalities(eval_dataset)
    modalities = trainer.modalities
    state = trainer.order_state
    return build_results(
        dataset=dataset,
        method=method,
        modalities=modalities,
        fusion_accuracy=metrics["test_accuracy"],
        per_modality={m: scores["accuracy"][frozenset([m])] for m in modalities},
        shapley=scores["shapley"],
        edm=scores["edm"],
        order_history=state.order_history,
        shapley_history=state.shapley_history,
        edm_history=state.edm_history,
        **extra,
    )


__all__ = ["build_results", "save_results", "load_results", "trainer_results", "format_summary", "RESULTS_NAME"]


def format_summary(results: Mapping[str, Any], order_state=None, log_history: Sequence[Mapping] = ()) -> str:
    """A readable summary of a results dict; given the run's [`OrderState`] (and the Trainer's log history, for
    the fusion accuracy on the eval set), one row per scored epoch."""
    mods = results["modalities"]
    lines = [f"dataset: {results['dataset']}   method: {results['method']}", ""]
    if order_state is not None and order_state.shapley_history:
        fusion = {round(log["epoch"]) - 1: log["eval_accuracy"] for log in log_history if "eval_accuracy" in log}
        header = ["epoch", "order", "fusion", *(f"acc {m}" for m in mods), *(f"phi {m}" for m in mods), "EDM"]
        rows = []
        for epoch, phi, edm, acc in zip(
            order_state.scored_epochs,
            order_state.shapley_history,
            order_state.edm_history,
            order_state.accuracy_history,
        ):
            trained = order_state.order_history[epoch] if 0 <= epoch < len(order_state.order_history) else []
            rows.append(
                [str(epoch + 1) if epoch >= 0 else "init", ">".join(trained) or "-"]
                + [f"{fusion[epoch]:.2f}" if epoch in fusion else "-"]
                + [f"{acc[m]:.2f}" for m in mods]
                + [f"{phi[m]:.2f}" for m in mods]
                + [f"{edm:.2f}"]
            )
        lines += _table(header, rows) + [""]
    edm = results["edm"]
    rows = [[f"accuracy {m} only", f"{results['accuracy']['per_modality'][m]:.2f}"] for m in mods]
    rows += [["accuracy fusion", f"{results['accuracy']['fusion']:.2f}"]]
    rows += [[f"shapley {m}", f"{results['shapley'][m]:.2f}"] for m in mods]
    rows += [["EDM", "nan" if edm is None else f"{edm:.2f}"]]
    rows += [[f"missing {rate}", f"{acc:.2f}"] for rate, acc in results.get("missing_modality", {}).items()]
    return "\n".join(lines + _table(["metric", "value"], rows))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows]
