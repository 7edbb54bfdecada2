"""Tables and plots of a comparison (the paper's Tables 1, 2, 4 and Figures 3-5), and the analyses they need.

Input: a list of run results in the `results.json` format (one dict per method and seed, with the optional fields
`seed`, `ablation`, `shapley_history`, `order_analysis`, `missing_modality`). Tables are Markdown strings with
`mean ± std` over seeds; plots are PNG files written with matplotlib's object API (no display needed).
"""

from __future__ import annotations

import csv
import itertools
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from .collator import LABEL_COLUMN, BalanceDataCollator
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
ORDER_ROWS = (
    ("fixed", "Fixed order (last training order)"),
    ("hybrid", "Hybrid-order fusion"),
    ("best_order", "Best single order"),
    ("oracle", "Upper bound (best order per sample)"),
)


def display_name(method: str) -> str:
    return DISPLAY_NAMES.get(method, method)


# --------------------------------------------------------------------------------------------- aggregation
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


def group_runs(results: Iterable[Mapping[str, Any]], key: str = "method") -> dict[str, list[Mapping[str, Any]]]:
    """Runs grouped by `key` (keeping first-seen order)."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in results:
        groups[r[key]].append(r)
    return dict(groups)


def edm_terms(result: Mapping[str, Any]) -> dict[str, float]:
    """Per-modality EDM terms `|100 - phi~_m|` of a run (NaN where EDM is undefined, [`edm_defined`])."""
    return {m: abs(100.0 - v) for m, v in normalised_contributions(result["shapley"]).items()}


def _edm(result: Mapping[str, Any]) -> float:
    if result.get("edm") is None or not edm_defined(result["shapley"]):
        return float("nan")
    return float(result["edm"])


def _modalities(results: Sequence[Mapping[str, Any]]) -> list[str]:
    mods: list[str] = []
    for r in results:
        mods += [m for m in r["modalities"] if m not in mods]
    return mods


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _main_runs(results: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in results if r.get("ablation") in (None, "full")]


# ------------------------------------------------------------------------------------------------- tables
def comparison_table(results: Sequence[Mapping[str, Any]], methods: Sequence[str] | None = None) -> str:
    """Table 1 of the paper: one row per modality (unimodal accuracy `P({m})` and its EDM term) and a **Multi** row
    (fusion accuracy and total EDM), two columns per method; `mean ± std` over seeds. The best mean fusion accuracy
    and the lowest mean EDM of the Multi row are in bold."""
    groups = group_runs(_main_runs(results))
    methods = [m for m in (methods or list(groups)) if m in groups]
    mods = _modalities([r for m in methods for r in groups[m]])
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
    edm_means = {m: mean_std(_edm(r) for r in groups[m])[0] for m in methods}
    best_acc = _best(fusion_means, max)
    best_edm = _best(edm_means, min)
    multi = ["**Multi**"]
    for m in methods:
        acc = format_cell(r["accuracy"]["fusion"] for r in groups[m])
        edm = format_cell(_edm(r) for r in groups[m])
        multi += [f"**{acc}**" if m == best_acc else acc, f"**{edm}**" if m == best_edm else edm]
    rows.append(multi)
    return _table(header, rows)


def _best(values: Mapping[str, float], pick) -> str | None:
    finite = {k: v for k, v in values.items() if math.isfinite(v)}
    return pick(finite, key=finite.__getitem__) if finite else None


def summary_table(results: Sequence[Mapping[str, Any]], methods: Sequence[str] | None = None) -> str:
    """The same numbers as [`comparison_table`], one row per method (easier to read with many methods)."""
    groups = group_runs(_main_runs(results))
    methods = [m for m in (methods or list(groups)) if m in groups]
    mods = _modalities([r for m in methods for r in groups[m]])
    header = ["Method"] + [f"{mod} acc" for mod in mods] + ["Multi acc", "EDM", "Seeds"]
    rows = []
    for m in methods:
        runs = groups[m]
        row = [display_name(m)]
        row += [format_cell(r["accuracy"]["per_modality"].get(mod) for r in runs) for mod in mods]
        row += [format_cell(r["accuracy"]["fusion"] for r in runs), format_cell(_edm(r) for r in runs), str(len(runs))]
        rows.append(row)
    return _table(header, rows)


def ablation_table(results: Sequence[Mapping[str, Any]], descriptions: Mapping[str, str] | None = None) -> str:
    """Table 2 (left) of the paper: per-modality and fusion accuracy of the full model and of each ablation, and the
    change of mean fusion accuracy against the full model (`Δ`)."""
    from .baselines.ablations import ABLATIONS

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
    mods = _modalities([r for runs in variants.values() for r in runs])
    full = mean_std(r["accuracy"]["fusion"] for r in variants.get("full", []))[0]
    header = ["Model variant"] + mods + ["Multi", "Δ"]
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
        best = max(values, key=lambda lr: (values[lr], -lr))
        cells = [f"**{lr:g}: {v:.2f}**" if lr == best else f"{lr:g}: {v:.2f}" for lr, v in sorted(values.items())]
        rows.append([display_name(method), *cells])
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    return _table(["Method"] + [f"rate {i + 1}" for i in range(width - 1)], rows)


def robustness_table(results: Sequence[Mapping[str, Any]], methods: Sequence[str] | None = None) -> str:
    """Table 4 of the paper: fusion accuracy per missing-modality rate, one row per method."""
    runs = [r for r in _main_runs(results) if r.get("missing_modality")]
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


def _missing(result: Mapping[str, Any], rate: float) -> float | None:
    for k, v in result["missing_modality"].items():
        if abs(float(k) - rate) < 1e-9:
            return v
    return None


def order_table(results: Sequence[Mapping[str, Any]], method: str = "ours") -> str:
    """Figure 5 as a table: accuracy of the last training order, of hybrid-order fusion, of the best single order
    and of the per-sample best order (the upper bound)."""
    runs = [r for r in _main_runs(results) if r["method"] == method and r.get("order_analysis")]
    if not runs:
        return ""
    rows = [[label, format_cell(r["order_analysis"][key] for r in runs)] for key, label in ORDER_ROWS]
    return _table(["Inference", f"{display_name(method)} accuracy"], rows)


# ----------------------------------------------------------------------------------------------- CSV rows
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
            "edm": _edm(r),
        }
        for m, v in r["accuracy"]["per_modality"].items():
            row[f"accuracy_{m}"] = v
        for m, v in r["shapley"].items():
            row[f"shapley_{m}"] = v
        for m, v in edm_terms(r).items():
            row[f"edm_{m}"] = v
        for k, v in (r.get("missing_modality") or {}).items():
            row[f"missing_{k}"] = v
        for k, v in (r.get("order_analysis") or {}).items():
            if not isinstance(v, dict):
                row[f"order_{k}"] = v
        if "train_seconds" in r:
            row["train_seconds"] = r["train_seconds"]
        rows.append(row)
    return rows


def write_csv(results: Iterable[Mapping[str, Any]], path: str) -> str:
    rows = flat_rows(results)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


# ---------------------------------------------------------------------------------------------- analyses
def _batches(dataset, modality_dims: Mapping[str, int], batch_size: int, device):
    collate = BalanceDataCollator(modality_dims)
    view = dataset.with_format("numpy")
    for start in range(0, len(dataset), batch_size):
        chunk = view[start : start + batch_size]
        rows = [{k: chunk[k][i] for k in chunk} for i in range(len(chunk[LABEL_COLUMN]))]
        batch = collate(rows)
        batch["features"] = {m: x.to(device) for m, x in batch["features"].items()}
        if "modality_mask" in batch:
            batch["modality_mask"] = {m: x.to(device) for m, x in batch["modality_mask"].items()}
        yield batch


@torch.no_grad()
def order_analysis(
    model,
    dataset,
    fixed_order: Sequence[str] | None = None,
    batch_size: int = 256,
    max_orders: int = 120,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy (percent) of a [`BalancedModel`] under the inference orders compared in the paper's Figure 5.

    Args:
        model ([`BalancedModel`]): the trained model.
        dataset (`datasets.Dataset`): test features.
        fixed_order (`Sequence[str]`, *optional*): the order of the "fixed" row; defaults to `model.train_order`
            (the order set after the last scoring; pass the order the last epoch trained with to compare with it).

    Returns:
        `dict` with `fixed` (chain over `fixed_order`), `hybrid` (hybrid-order fusion), `best_order` (the
        best single order on this dataset), `oracle` (a sample counts as correct if some order classifies it
        correctly: the upper bound) and `per_order` (`{"m1>m2>...": accuracy}`). At most `max_orders` orders
        (seeded sample, the training order always included) are evaluated.
    """
    was_training = model.training
    model.eval()
    mods = list(model.config.modalities)
    train = tuple(fixed_order or model.train_order)
    orders = list(itertools.permutations(mods))
    if len(orders) > max_orders:
        rng = np.random.default_rng(seed)
        picked = [orders[i] for i in rng.choice(len(orders), size=max_orders, replace=False)]
        orders = [train] + [o for o in picked if o != train][: max_orders - 1]
    correct = {o: [] for o in orders}
    hybrid = []
    for batch in _batches(dataset, model.config.modality_dims, batch_size, model.device):
        labels = batch[LABEL_COLUMN].to(model.device)
        mask = batch.get("modality_mask")
        for o in orders:
            logits = model(batch["features"], modality_mask=mask, order=list(o)).logits
            correct[o].append((logits.argmax(-1) == labels).cpu())
        logits = model(batch["features"], modality_mask=mask, inference_mode="hybrid").logits
        hybrid.append((logits.argmax(-1) == labels).cpu())
    model.train(was_training)
    hits = {o: torch.cat(v) for o, v in correct.items()}
    per_order = {">".join(o): float(h.float().mean() * 100) for o, h in hits.items()}
    return {
        "fixed": per_order[">".join(train)],
        "hybrid": float(torch.cat(hybrid).float().mean() * 100),
        "best_order": max(per_order.values()),
        "oracle": float(torch.stack(list(hits.values())).any(0).float().mean() * 100),
        "per_order": per_order,
    }


@torch.no_grad()
def feature_snapshot(model, dataset, max_samples: int = 300, batch_size: int = 256) -> dict[str, Any]:
    """Adapted per-modality features and the fused feature of the first `max_samples` rows (eval mode).

    Returns:
        `dict` with `modalities` (`{m: (N, d)}` adapter outputs, present rows only per modality), `fused`
        (`(N, F)` or `None` when the model has no fused representation) and `labels` (`(N,)`).
    """
    was_training = model.training
    model.eval()
    subset = dataset.select(range(min(max_samples, len(dataset))))
    per_mod: dict[str, list[np.ndarray]] = defaultdict(list)
    fused, labels = [], []
    for batch in _batches(subset, model.config.modality_dims, batch_size, model.device):
        mask = batch.get("modality_mask") or {}
        if hasattr(model, "adapters"):
            for m, x in batch["features"].items():
                keep = mask[m] if m in mask else torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
                per_mod[m].append(model.adapters[m](x[keep]).float().cpu().numpy())
        out = model(batch["features"], modality_mask=batch.get("modality_mask"))
        if getattr(out, "fused", None) is not None:
            fused.append(out.fused.float().cpu().numpy())
        labels.append(batch[LABEL_COLUMN].numpy())
    model.train(was_training)
    return {
        "modalities": {m: np.concatenate(v) for m, v in per_mod.items()},
        "fused": np.concatenate(fused) if fused else None,
        "labels": np.concatenate(labels),
    }


class FeatureSnapshotCallback(TrainerCallback):
    """Takes a [`feature_snapshot`] before training (epoch 0) and after each chosen epoch, for Figure 4.

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


# ------------------------------------------------------------------------------------------------- plots
def _figure(n_panels: int, ncols: int = 4, size: tuple[float, float] = (4.0, 3.2)):
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def plot_contributions(results: Sequence[Mapping[str, Any]], path: str, methods: Sequence[str] | None = None) -> str:
    """Figure 3: Shapley value of every modality after each epoch (mean ± std over seeds), one panel per method."""
    groups = group_runs([r for r in _main_runs(results) if r.get("shapley_history")])
    methods = [m for m in (methods or list(groups)) if m in groups]
    if not methods:
        raise ValueError("no run has a shapley_history to plot")
    fig, axes = _figure(len(methods))
    for ax, method in zip(axes, methods):
        runs = groups[method]
        length = min(len(r["shapley_history"]) for r in runs)
        epochs = np.arange(1, length + 1)
        for mod in _modalities(runs):
            values = np.array([[h[mod] for h in r["shapley_history"][:length]] for r in runs])  # (seeds, epochs)
            mean = values.mean(0)
            ax.plot(epochs, mean, marker="o", markersize=3, label=mod)
            if len(runs) > 1:
                std = values.std(0, ddof=1)
                ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
        ax.set_title(display_name(method))
        ax.set_xlabel("epoch")
        ax.set_ylabel("Shapley value (accuracy points)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    return path


def pca_2d(x: np.ndarray) -> np.ndarray:
    """Rows of `x` `(N, F)` projected on their first two principal components `(N, 2)`."""
    centered = x - x.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    comps = vt[:2]
    if comps.shape[0] < 2:
        comps = np.vstack([comps, np.zeros((2 - comps.shape[0], x.shape[1]))])
    return centered @ comps.T


def plot_feature_distributions(snapshots: Mapping[int, Mapping[str, Any]], path: str, title: str = "") -> str:
    """Figure 4: 2-D PCA of the adapted modality features and the fused feature, one panel per epoch (each panel
    fits its own projection on all its points). The fused feature is drawn when it has the modalities' size."""
    epochs = sorted(snapshots)
    if not epochs:
        raise ValueError("no snapshot to plot")
    fig, axes = _figure(len(epochs), ncols=len(epochs), size=(3.6, 3.4))
    for ax, epoch in zip(axes, epochs):
        snap = snapshots[epoch]
        parts = dict(snap["modalities"])
        dims = {v.shape[1] for v in parts.values()}
        if snap.get("fused") is not None and (not dims or snap["fused"].shape[1] in dims):
            parts["fused"] = snap["fused"]
        names = list(parts)
        projected = pca_2d(np.concatenate([parts[n] for n in names]))
        start = 0
        for name in names:
            count = parts[name].shape[0]
            xy = projected[start : start + count]
            start += count
            style = {"c": "black", "marker": "x"} if name == "fused" else {"marker": "o"}
            ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.5, label=name, **style)
        ax.set_title("before training" if epoch == 0 else f"epoch {epoch}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, markerscale=2)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=120)
    return path


def plot_order_upper_bound(results: Sequence[Mapping[str, Any]], path: str, method: str = "ours") -> str:
    """Figure 5: fixed order vs hybrid-order fusion vs best single order vs per-sample upper bound (mean ± std)."""
    runs = [r for r in _main_runs(results) if r["method"] == method and r.get("order_analysis")]
    if not runs:
        raise ValueError(f"no {method!r} run has an order_analysis to plot")
    fig, (ax,) = _figure(1, size=(6.0, 3.6))
    labels, means, stds = [], [], []
    for key, label in ORDER_ROWS:
        mean, std, _ = mean_std(r["order_analysis"][key] for r in runs)
        labels.append(label.replace(" (", "\n("))
        means.append(mean)
        stds.append(std)
    ax.bar(range(len(labels)), means, yerr=stds, capsize=4, color=["#999999", "#1f77b4", "#2ca02c", "#d62728"])
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("accuracy (%)")
    low = min(means) - max(stds + [0]) - 5
    ax.set_ylim(max(0, low), min(100, max(means) + max(stds + [0]) + 3))
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{display_name(method)}: inference order")
    fig.savefig(path, dpi=120)
    return path


def write_report(
    results: Sequence[Mapping[str, Any]],
    output_dir: str,
    snapshots: Mapping[int, Mapping[str, Any]] | None = None,
    methods: Sequence[str] | None = None,
    protocol: str | None = None,
    sweep: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, str]:
    """Write `tables.md`, `results.csv` and the PNG figures that the results allow into `output_dir`.

    `protocol` (a paragraph) opens `tables.md`; `sweep` (`{"method", "learning_rate", "validation_accuracy"}` rows)
    adds the learning-rate sweep table.

    Returns:
        `dict[str, str]`: `{artifact: path}` of what was written.
    """
    os.makedirs(output_dir, exist_ok=True)
    written = {"csv": write_csv(results, os.path.join(output_dir, "results.csv"))}
    dataset = next((r.get("dataset") for r in results if r.get("dataset")), "")
    sections = [f"# Comparison on {dataset}\n" if dataset else "# Comparison\n"]
    if protocol:
        sections.append(protocol)
    sections += ["## Table 1: unimodal and fusion accuracy, EDM\n", comparison_table(results, methods)]
    sections += ["\n## Per method\n", summary_table(results, methods)]
    for heading, table in (
        ("Table 2: ablations", ablation_table(results)),
        ("Table 4: missing-modality robustness (fusion accuracy)", robustness_table(results, methods)),
        ("Figure 5: inference order", order_table(results)),
        ("Learning-rate sweep (validation fusion accuracy, first seed)", sweep_table(sweep or [])),
    ):
        if table:
            sections += [f"\n## {heading}\n", table]
    path = os.path.join(output_dir, "tables.md")
    with open(path, "w") as f:
        f.write("\n".join(sections))
    written["tables"] = path
    if any(r.get("shapley_history") for r in results):
        written["fig3"] = plot_contributions(results, os.path.join(output_dir, "fig3_contributions.png"), methods)
    if snapshots:
        written["fig4"] = plot_feature_distributions(snapshots, os.path.join(output_dir, "fig4_features.png"))
    if any(r.get("order_analysis") for r in results):
        written["fig5"] = plot_order_upper_bound(results, os.path.join(output_dir, "fig5_orders.png"))
    return written


__all__ = [
    "comparison_table",
    "summary_table",
    "ablation_table",
    "robustness_table",
    "sweep_table",
    "order_table",
    "flat_rows",
    "write_csv",
    "order_analysis",
    "feature_snapshot",
    "FeatureSnapshotCallback",
    "plot_contributions",
    "plot_feature_distributions",
    "plot_order_upper_bound",
    "pca_2d",
    "write_report",
    "format_cell",
    "mean_std",
]
