"""Run results of a comparison grouped and aggregated over seeds, and how their figures are written: display names,
`mean ± std`, EDM terms, numbers and Markdown tables.

A run is a dict in the `results.json` format (one per method and seed, with the optional fields `seed`, `ablation`,
`shapley_history`, `order_analysis`, `missing_modality`). The tables and figures of a comparison share these helpers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .shapley import edm_defined, normalised_contributions

DISPLAY_NAMES = {
    "ours": "Ours",
    "paper": "Ours (paper preset)",
    "sum": "Sum",
    "concat": "Concat",
    "late_fusion": "Late Fusion",
    "ogm": "OGM",
    "ogm_ge": "OGM-GE",
    "mla": "MLA",
    "lfm": "LFM",
    "crmt": "CRMT",
    "joint": "Joint",
}
#: The inference orders compared in Figure 5: `(order_analysis key, label)`.
ORDER_ROWS = (
    ("fixed", "Fixed order (last training order)"),
    ("hybrid", "Hybrid-order fusion"),
    ("best_order", "Best single order"),
    ("oracle", "Upper bound (best order per sample)"),
)


def display_name(method: str) -> str:
    """The name of `method` in tables and figures (`"ogm_ge"` -> `"OGM-GE"`)."""
    return DISPLAY_NAMES.get(method, method)


def mean_std(values: Iterable[float | None]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of the finite values."""
    vals = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if vals.size == 0:
        return float("nan"), float("nan"), 0
    return float(vals.mean()), float(vals.std(ddof=1)) if vals.size > 1 else 0.0, int(vals.size)


def format_cell(values: Iterable[float | None], digits: int = 2) -> str:
    """`"mean ± std"` over seeds (`"mean"` for one seed, `"n/a"` when nothing is finite)."""
    mean, std, count = mean_std(values)
    if count == 0:
        return "n/a"
    return f"{mean:.{digits}f}" if count == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_value(value: Any, digits: int = 2) -> str:
    """One number with `digits` decimals; `"n/a"` for `None` and NaN."""
    if value is None:
        return "n/a"
    value = float(value)
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (no trailing newline); cells are written with `str`."""
    lines = ["| " + " | ".join(str(c) for c in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def group_runs(results: Iterable[Mapping[str, Any]], key: str = "method") -> dict[str, list[Mapping[str, Any]]]:
    """Runs grouped by `key` (keeping first-seen order)."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in results:
        groups[r[key]].append(r)
    return dict(groups)


def main_runs(results: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The runs of the full methods (no ablation)."""
    return [r for r in results if r.get("ablation") in (None, "full")]


def run_modalities(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """The modalities of `results`, in first-seen order."""
    mods: list[str] = []
    for r in results:
        mods += [m for m in r["modalities"] if m not in mods]
    return mods


def edm_terms(result: Mapping[str, Any]) -> dict[str, float]:
    """Per-modality EDM terms `|100 - phi~_m|` of a run (NaN where EDM is undefined, [`edm_defined`])."""
    return {m: abs(100.0 - v) for m, v in normalised_contributions(result["shapley"]).items()}


def run_edm(result: Mapping[str, Any]) -> float:
    """The EDM of a run; NaN when it recorded none or EDM is undefined for its Shapley values."""
    if result.get("edm") is None or not edm_defined(result["shapley"]):
        return float("nan")
    return float(result["edm"])


def best_rate(tried: Mapping[float, float]) -> float:
    """The learning rate of the best validation accuracy among `tried` (`{rate: accuracy}`); ties: the smaller
    rate (the sweep's rule, the same for every method)."""
    return max(tried, key=lambda lr: (tried[lr], -lr))


__all__ = [
    "DISPLAY_NAMES",
    "best_rate",
    "ORDER_ROWS",
    "display_name",
    "mean_std",
    "format_cell",
    "format_value",
    "markdown_table",
    "group_runs",
    "main_runs",
    "run_modalities",
    "edm_terms",
    "run_edm",
]
