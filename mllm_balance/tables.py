"""The Markdown tables of a comparison (the paper's Tables 1, 2 and 4, Figure 5 as a table) and its CSV rows.

Input: a list of run results in the `results.json` format (see [`~mllm_balance.runs`]). Tables are Markdown
strings with `mean ± std` over seeds.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .baselines.ablations import ABLATIONS
from .runs import (
    ORDER_ROWS,
    best_rate,
    display_name,
    edm_terms,
    format_cell,
    group_runs,
    main_runs,
    markdown_table,
    mean_std,
    run_edm,
    run_modalities,
)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return markdown_table(header, rows) + "\n"


def comparison_table(results: Sequence[Mapping[str, Any]], methods: Sequence[str] | None = None) -> str:
    """Table 1 of the paper: one row per modality (unimodal accuracy `P({m})` and its EDM term) and a **Multi** row
    (fusion accuracy and total EDM), two columns per method; `mean ± std` over seeds. The best mean fusion accuracy
    and the lowest mean EDM of the Multi row are in bold."""
    groups = group_runs(main_runs(results))
    methods = [m for m in (methods or list(groups)) if m in groups]
    mods = run_modalities([r for m in methods for r in groups[m]])
    header = ["Accuracy"] + [f"{display_name(m)} {col}" for m in methods for col in ("Acc", "EDM")]
    rows = []
    for mod in mods:
        row = [mod]
        for m in methods:
            runs = [r for r in groups[m] if mod in r["accuracy"]["per_modality"]]
            row.append(format_cell(r["accuracy"]["per_modality"][mod] for r in runs))
            row.append(format_cell(edm_terms(r).get(mod) for r in runs))
        rows.append(row)
    fusion_means = {m: mean_std(r["accuracy"]["fusion"] for r in groups[m])[0] for m in methods}
    edm_means = {m: mean_std(run_edm(r) for r in groups[m])[0] for m in methods}
    best_acc = _best(fusion_means, max)
    best_edm = _best(edm_means, min)
    multi = ["**Multi**"]
    for m in methods:
        acc = format_cell(r["accuracy"]["fusion"] for r in groups[m])
        edm = format_cell(run_edm(r) for r in groups[m])
        multi += [f"**{acc}**" if m == best_acc else acc, f"**{edm}**" if m == best_edm else edm]
    rows.append(multi)
    return _table(header, rows)


def _best(values: Mapping[str, float], pick) -> str | None:
    finite = {k: v for k, v in values.items() if math.isfinite(v)}
    return pick(finite, key=finite.__getitem__) if finite else None


def summary_table(results: Sequence[Mapping[str, Any]], methods: Sequence[str] | None = None) -> str:
    """The same numbers as [`comparison_table`], one row per method (easier to read with many methods)."""
    groups = group_runs(main_runs(results))
    methods = [m for m in (methods or list(groups)) if m in groups]
    mods = run_modalities([r for m in methods for r in groups[m]])
    header = ["Method"] + [f"{mod} acc" for mod in mods] + ["Multi acc", "EDM", "Seeds"]
    rows = []
    for m in methods:
        runs = groups[m]
        row = [display_name(m)]
        row += [format_cell(r["accuracy"]["per_modality"].get(mod) for r in runs) for mod in mods]
        row += [
            format_cell(r["accuracy"]["fusion"] for r in runs),
            format_cell(run_edm(r) for r in runs),
            str(len(runs)),
        ]
        rows.append(row)
    return _table(header, rows)


def ablation_table(results: Sequence[Mapping[str, Any]], descriptions: Mapping[str, str] | None = None) -> str:
    """Table 2 (left) of the paper: per-modality and fusion accuracy of the full model and of each ablation, and the
    change of mean fusion accuracy against the full model (`Δ`); where the runs hold it, the accuracy at the largest
    missing rate averaged over the drop draws (`missing_modality_mean`) and its change."""
    descriptions = descriptions or {
        **{name: a.description for name, a in ABLATIONS.items()},
        "paper": "The paper's method (`paper` preset)",
    }
    variants: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in results:
        if r["method"] == "ours" and r.get("ablation") in (None, "full"):
            variants["full"].append(r)
        elif r["method"] == "paper" and not r.get("ablation"):
            variants["paper"].append(r)
        elif r.get("ablation"):
            variants[r["ablation"]].append(r)
    if not variants:
        return ""
    mods = run_modalities([r for runs in variants.values() for r in runs])
    full = mean_std(r["accuracy"]["fusion"] for r in variants.get("full", []))[0]
    rates = [float(k) for runs in variants.values() for r in runs for k in r.get("missing_modality_mean") or {}]
    rate = max(rates) if rates else None
    header = ["Model variant"] + mods + ["Multi", "Δ"]
    if rate is not None:
        header += [f"{rate:.0%} missing", "Δ missing"]
        full_missing = mean_std(_missing(r, rate, "missing_modality_mean") for r in variants.get("full", []))[0]
    rows = []
    for name in ["full"] + [v for v in variants if v != "full"]:
        if name not in variants:
            continue
        runs = variants[name]
        row = [descriptions.get(name, name)]
        row += [format_cell(r["accuracy"]["per_modality"].get(mod) for r in runs) for mod in mods]
        row.append(format_cell(r["accuracy"]["fusion"] for r in runs))
        mean = mean_std(r["accuracy"]["fusion"] for r in runs)[0]
        row.append("-" if name == "full" or not math.isfinite(full) else f"{mean - full:+.2f}")
        if rate is not None:
            missing = [_missing(r, rate, "missing_modality_mean") for r in runs]
            row.append(format_cell(missing))
            value = mean_std(missing)[0]
            finite = math.isfinite(full_missing) and math.isfinite(value)
            row.append("-" if name == "full" or not finite else f"{value - full_missing:+.2f}")
        rows.append(row)
    return _table(header, rows)


def sweep_table(sweep: Sequence[Mapping[str, Any]]) -> str:
    """Validation accuracy of every method at every learning rate of the sweep; the chosen one in bold."""
    if not sweep:
        return ""
    by_method: dict[str, dict[float, float]] = defaultdict(dict)
    for row in sweep:
        by_method[row["method"]][float(row["learning_rate"])] = float(row["validation_accuracy"])
    rows = []
    for method, values in by_method.items():
        best = best_rate(values)
        cells = [f"**{lr:.3g}: {v:.2f}**" if lr == best else f"{lr:.3g}: {v:.2f}" for lr, v in sorted(values.items())]
        rows.append([display_name(method), *cells])
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    return _table(["Method"] + [f"rate {i + 1}" for i in range(width - 1)], rows)


def robustness_table(results: Sequence[Mapping[str, Any]], methods: Sequence[str] | None = None) -> str:
    """Table 4 of the paper: fusion accuracy per missing-modality rate, one row per method."""
    runs = [r for r in main_runs(results) if r.get("missing_modality")]
    groups = group_runs(runs)
    if not groups:
        return ""
    methods = [m for m in (methods or list(groups)) if m in groups]
    rates = sorted({float(k) for r in runs for k in r["missing_modality"]})
    header = ["Model"] + [f"{rate:.0%}" for rate in rates]
    rows = []
    for m in methods:
        row = [display_name(m)]
        for rate in rates:
            row.append(format_cell(_missing(r, rate) for r in groups[m]))
        rows.append(row)
    return _table(header, rows)


def _missing(result: Mapping[str, Any], rate: float, key: str = "missing_modality") -> float | None:
    for k, v in (result.get(key) or {}).items():
        if abs(float(k) - rate) < 1e-9:
            return v
    return None


OUR_METHODS = ("ours", "paper")


def difference_standard_error(a: tuple[float, float, int], b: tuple[float, float, int]) -> float | None:
    """Standard error of the difference of two means over independent runs, `sqrt(s_a^2 / n_a + s_b^2 / n_b)`, from
    [`~mllm_balance.runs.mean_std`]'s `(mean, sample std, count)` of each; `None` unless both have two runs or more.

    A difference well inside two standard errors is one the seeds cannot tell from zero."""
    (_, s_a, n_a), (_, s_b, n_b) = a, b
    if n_a < 2 or n_b < 2:
        return None
    return math.sqrt(s_a**2 / n_a + s_b**2 / n_b)


def headline_table(results: Sequence[Mapping[str, Any]], methods: Sequence[str] | None = None) -> str:
    """One row per method: learning rate, each modality alone, fusion, EDM and the accuracy at the largest missing
    rate, both the mean over the drop draws (`missing_modality_mean`) and the single first draw
    (`missing_modality`); then one line per column saying how far `ours` is from the best baseline (every method
    but `ours` and `paper`), with the standard error of that difference ([`difference_standard_error`]). Bold:
    `ours` and the best baseline of the fusion and missing columns."""
    groups = group_runs(main_runs(results))
    methods = [m for m in (methods or list(groups)) if m in groups]
    if not methods:
        return ""
    mods = run_modalities([r for m in methods for r in groups[m]])
    runs = [r for m in methods for r in groups[m]]
    rates = sorted({float(k) for r in runs for k in r.get("missing_modality") or {}})
    rate = rates[-1] if rates and rates[-1] > 0 else None
    draws = max((int(r.get("missing_draws") or 1) for r in runs), default=1)
    columns: dict[str, Any] = {"fusion": lambda r: r["accuracy"]["fusion"]}
    if rate is not None:
        if draws > 1:
            mean_key = "missing_modality_mean"
            columns[f"{rate:.0%} missing (mean of {draws} draws)"] = lambda r: _missing(r, rate, mean_key)
        columns[f"{rate:.0%} missing (one draw)"] = lambda r: _missing(r, rate)
    stats = {col: {m: mean_std(get(r) for r in groups[m]) for m in methods} for col, get in columns.items()}
    means = {col: {m: v[0] for m, v in stats[col].items()} for col in columns}
    best = {col: _best({m: v for m, v in means[col].items() if m not in OUR_METHODS}, max) for col in columns}
    header = ["Method", "lr", *(f"{mod} alone" for mod in mods), "fusion", "EDM", *list(columns)[1:]]
    rows = []
    for m in methods:
        lrs = sorted({float(r["learning_rate"]) for r in groups[m] if r.get("learning_rate") is not None})
        row = [display_name(m), "/".join(f"{lr:.3g}" for lr in lrs) or "-"]
        row += [format_cell((r["accuracy"]["per_modality"].get(mod) for r in groups[m]), 1) for mod in mods]
        for col, get in columns.items():
            cell = format_cell(get(r) for r in groups[m])
            row.append(f"**{cell}**" if m in ("ours", best[col]) and cell != "n/a" else cell)
            if col == "fusion":
                row.append(format_cell((run_edm(r) for r in groups[m]), 1))
        rows.append(row)
    lines = [_table(header, rows)]
    for col in columns if "ours" in groups else ():
        if best[col] is None:
            continue
        gap = means[col]["ours"] - means[col][best[col]]
        if math.isfinite(gap):
            line = f"{col}: {display_name('ours')} − best baseline ({display_name(best[col])}) = {gap:+.2f}"
            se = difference_standard_error(stats[col]["ours"], stats[col][best[col]])
            if se is not None:
                n_ours, n_best = stats[col]["ours"][2], stats[col][best[col]][2]
                line += f" (standard error {se:.2f}, over {n_ours} and {n_best} seeds)"
            lines.append(line + "\n")
    return "\n".join(lines)


def order_table(results: Sequence[Mapping[str, Any]], method: str = "ours") -> str:
    """Figure 5 as a table: accuracy of the last training order, of hybrid-order fusion, of the best single order
    and of the per-sample best order (the upper bound)."""
    runs = [r for r in main_runs(results) if r["method"] == method and r.get("order_analysis")]
    if not runs:
        return ""
    rows = [[label, format_cell(r["order_analysis"][key] for r in runs)] for key, label in ORDER_ROWS]
    return _table(["Inference", f"{display_name(method)} accuracy"], rows)


def flat_rows(results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One flat dict per run (for CSV): accuracies, Shapley values, EDM terms and missing-modality accuracies."""
    rows = []
    for r in results:
        row: dict[str, Any] = {
            "dataset": r.get("dataset"),
            "method": r["method"],
            "ablation": r.get("ablation", ""),
            "seed": r.get("seed"),
            "fusion_accuracy": r["accuracy"]["fusion"],
            "edm": run_edm(r),
        }
        for m, v in r["accuracy"]["per_modality"].items():
            row[f"accuracy_{m}"] = v
        for m, v in r["shapley"].items():
            row[f"shapley_{m}"] = v
        for m, v in edm_terms(r).items():
            row[f"edm_{m}"] = v
        for k, v in (r.get("missing_modality") or {}).items():
            row[f"missing_{k}"] = v
        for k, v in (r.get("missing_modality_mean") or {}).items():
            row[f"missing_mean_{k}"] = v
        for k, v in (r.get("order_analysis") or {}).items():
            if not isinstance(v, dict):
                row[f"order_{k}"] = v
        if "train_seconds" in r:
            row["train_seconds"] = r["train_seconds"]
        rows.append(row)
    return rows


def write_csv(results: Iterable[Mapping[str, Any]], path: str) -> str:
    """Write the [`flat_rows`] of `results` to the CSV file `path` (columns in first-seen order)."""
    rows = flat_rows(results)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


__all__ = [
    "comparison_table",
    "summary_table",
    "ablation_table",
    "robustness_table",
    "sweep_table",
    "order_table",
    "flat_rows",
    "headline_table",
    "difference_standard_error",
    "write_csv",
]
