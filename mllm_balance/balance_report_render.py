"""The files of a balance report: `balance_report.md`, `balance_report.json` (the figures), `contributions.csv` (one
row per sample) and the plots `contributions.png` and `dataset.png`."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .balance_analysis import BalanceReport
from .plots import matplotlib_figure, plot_dataset_balance, plot_sample_contributions
from .runs import format_value, markdown_table
from .shapley import normalised_contributions

REPORT_NAME = "balance_report.md"
FIGURES_NAME = "balance_report.json"
SAMPLES_NAME = "contributions.csv"
CONTRIBUTIONS_PLOT = "contributions.png"
DATASET_PLOT = "dataset.png"


def write_balance_report(report: BalanceReport, output_dir: str, title: str = "") -> dict[str, str]:
    """Write the Markdown report, the JSON figures, the per-sample CSV and the plots into `output_dir`.

    Returns:
        `dict[str, str]`: `{kind: path}` of the files written (no plots without matplotlib, with a warning).
    """
    os.makedirs(output_dir, exist_ok=True)
    figures, modalities = report.figures, report.figures["modalities"]
    paths = {"figures": os.path.join(output_dir, FIGURES_NAME), "samples": os.path.join(output_dir, SAMPLES_NAME)}
    with open(paths["figures"], "w") as f:
        json.dump(figures, f, indent=2)
    _write_samples_csv(report.samples, modalities, paths["samples"])
    plots = plot_report(report, output_dir)
    paths.update(plots)
    paths["report"] = os.path.join(output_dir, REPORT_NAME)
    with open(paths["report"], "w") as f:
        f.write(render_markdown(figures, plots={k: os.path.basename(v) for k, v in plots.items()}, title=title))
    return paths


def _write_samples_csv(samples: Mapping[str, np.ndarray], modalities: Sequence[str], path: str) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "label", "prediction", "prediction_without_weak", "base", "full", *modalities])
        for i in range(samples["labels"].shape[0]):
            values = ["" if math.isnan(v) else f"{v:.6g}" for v in samples["contributions"][i]]
            writer.writerow(
                [
                    i,
                    int(samples["labels"][i]),
                    int(samples["prediction"][i]),
                    int(samples["prediction_without_weak"][i]),
                ]
                + [f"{samples['base'][i]:.6g}", f"{samples['full'][i]:.6g}", *values]
            )


def render_markdown(figures: Mapping[str, Any], plots: Mapping[str, str] | None = None, title: str = "") -> str:
    """The Markdown report of [`balance_report`]'s figures (`plots`: `{kind: file name}` of the PNGs)."""
    plots = plots or {}
    mods = figures["modalities"]
    acc = figures["accuracy"]
    lines = [f"# Balance report{': ' + title if title else ''}", ""]
    recorded = figures.get("label_prior") is not None
    empty = "predicts the majority training label" if recorded else "scores 0 (the model records no label prior)"
    if figures.get("empty_value") == "zero":
        empty = "scores 0 (empty_value='zero')"
    lines += [
        f"Method `{figures['method']}` on `{figures['dataset']}`: {figures['num_samples']} samples, modalities "
        f"{', '.join(mods)} (training order {' > '.join(figures['order_history'][-1])}).",
        "",
        "## Accuracy (%)",
        "",
        markdown_table(
            ["modalities", "accuracy"],
            [["fusion", format_value(acc["fusion"])]] + [[m, format_value(acc["per_modality"][m])] for m in mods],
        ),
        "",
        "## Dataset Shapley values and EDM",
        "",
        f"`P(S)` is the accuracy (%) with the modalities in `S` only; the empty coalition {empty}. "
        "`phi~ = 100 n phi / sum phi` (100 for every modality of a balanced model).",
        "",
    ]
    phi = figures["shapley"]
    normalised = normalised_contributions(phi)  # NaN where EDM is undefined
    rows = [
        [m, format_value(acc["per_modality"][m]), format_value(phi[m]), format_value(normalised[m]),
         format_value(figures["edm_terms"][m])]
        for m in mods
    ]  # fmt: skip
    lines += [markdown_table(["modality", "accuracy alone", "Shapley", "phi~", "deviation from 100"], rows), ""]
    lines += [f"**EDM: {format_value(figures['edm'])} %** (lower is more balanced).", ""]
    if "dataset" in plots:
        lines += [f"![Shapley values and missing modalities]({plots['dataset']})", ""]
    missing = figures.get("missing_modality") or {}
    if missing:
        lines += ["## Missing modalities", "", "Accuracy (%) with a share of the test modalities dropped (each "
                  "sample keeps one).", ""]  # fmt: skip
        rows = [[f"{100 * float(r):.0f} %", format_value(a)] for r, a in missing.items()]
        lines += [markdown_table(["dropped", "accuracy"], rows), ""]
    lines += [
        "## Per-sample contributions",
        "",
        "Shapley value of each present modality to the probability of the predicted label (the empty coalition is "
        f"the {'training label prior' if recorded else 'uniform prior'}), over the samples that have the modality.",
        "",
    ]
    summary = figures["contributions"]
    rows = [
        [m, *(format_value(summary[m][k], 3) for k in ("mean", "median", "q25", "q75")),
         *(format_value(None if summary[m][k] is None else 100 * summary[m][k], 1) for k in ("negative", "largest"))]
        for m in mods
    ]  # fmt: skip
    lines += [markdown_table(["modality", "mean", "median", "q25", "q75", "% negative", "% largest"], rows), ""]
    if "contributions" in plots:
        lines += [f"![Per-sample contributions]({plots['contributions']})", ""]
    weak = figures.get("weak_modality")
    if weak:
        lines += [
            f"## Samples decided by the weak modality ({weak['modality']})",
            "",
            f"`{weak['modality']}` has the smallest Shapley value. Of the {weak['eligible']} samples with it and "
            f"another modality, {weak['decided']} change their predicted label without it: {weak['decided_correct']}"
            f" of these are right with it, {weak['correct_without']} would be right without it.",
            "",
        ]
        if weak["examples"]:
            rows = [
                [e["row"], e["label"], e["prediction"], e["prediction_without_weak"],
                 *(format_value(e["contributions"].get(m), 3) for m in mods)]
                for e in weak["examples"]
            ]  # fmt: skip
            header = ["row", "label", "prediction", f"without {weak['modality']}", *(f"phi {m}" for m in mods)]
            lines += [markdown_table(header, rows), ""]
    return "\n".join(lines)


def plot_report(report: BalanceReport, output_dir: str) -> dict[str, str]:
    """`contributions.png` (per-sample contributions per modality) and `dataset.png` (Shapley values, missing
    modalities); `{}` with a warning when matplotlib is not installed."""
    if matplotlib_figure("no plots") is None:
        return {}
    paths = {
        "contributions": os.path.join(output_dir, CONTRIBUTIONS_PLOT),
        "dataset": os.path.join(output_dir, DATASET_PLOT),
    }
    plot_sample_contributions(report.samples["contributions"], report.figures["modalities"], paths["contributions"])
    plot_dataset_balance(report.figures, paths["dataset"])
    return paths


__all__ = ["REPORT_NAME", "FIGURES_NAME", "SAMPLES_NAME", "write_balance_report", "render_markdown", "plot_report"]
