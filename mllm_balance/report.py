"""The report of a comparison in one folder: `tables.md` (the paper's tables), `results.csv` and the figures."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .plots import plot_feature_distributions, plot_method_contributions, plot_order_upper_bound
from .tables import (
    ablation_table,
    comparison_table,
    headline_table,
    order_table,
    robustness_table,
    summary_table,
    sweep_table,
    write_csv,
)


def write_report(
    results: Sequence[Mapping[str, Any]],
    output_dir: str,
    snapshots: Mapping[int, Mapping[str, Any]] | None = None,
    methods: Sequence[str] | None = None,
    protocol: str | None = None,
    sweep: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, str]:
    """Write `tables.md`, `results.csv` and the PNG figures that the results allow into `output_dir`.

    `protocol` (a paragraph) opens `tables.md`; `sweep` (`{"method", "learning_rate", "validation_accuracy"}` rows,
    each with the `"seeds"` its accuracy is the mean over, the first seed alone when absent) adds the learning-rate
    sweep table.

    Returns:
        `dict[str, str]`: `{artifact: path}` of what was written.
    """
    os.makedirs(output_dir, exist_ok=True)
    written = {"csv": write_csv(results, os.path.join(output_dir, "results.csv"))}
    dataset = next((r.get("dataset") for r in results if r.get("dataset")), "")
    sections = [f"# Comparison on {dataset}\n" if dataset else "# Comparison\n"]
    if protocol:
        sections.append(protocol)
    sections += ["## Summary: every method against the best baseline\n", headline_table(results, methods)]
    sections += ["\n## Table 1: unimodal and fusion accuracy, EDM\n", comparison_table(results, methods)]
    sections += ["\n## Per method\n", summary_table(results, methods)]
    sweep_seeds = next((r["seeds"] for r in sweep or [] if r.get("seeds")), [])
    swept_on = f"mean over seeds {', '.join(map(str, sweep_seeds))}" if len(sweep_seeds) > 1 else "first seed"
    for heading, table in (
        ("Table 2: ablations", ablation_table(results)),
        ("Table 4: missing-modality robustness (fusion accuracy)", robustness_table(results, methods)),
        ("Figure 5: inference order", order_table(results)),
        (f"Learning-rate sweep (validation fusion accuracy, {swept_on})", sweep_table(sweep or [])),
    ):
        if table:
            sections += [f"\n## {heading}\n", table]
    path = os.path.join(output_dir, "tables.md")
    with open(path, "w") as f:
        f.write("\n".join(sections))
    written["tables"] = path
    if any(r.get("shapley_history") for r in results):
        written["fig3"] = plot_method_contributions(
            results, os.path.join(output_dir, "fig3_contributions.png"), methods
        )
    if snapshots:
        written["fig4"] = plot_feature_distributions(snapshots, os.path.join(output_dir, "fig4_features.png"))
    if any(r.get("order_analysis") for r in results):
        written["fig5"] = plot_order_upper_bound(results, os.path.join(output_dir, "fig5_orders.png"))
    return written


__all__ = ["write_report"]
