"""Every figure of the library, written as PNG files with matplotlib's object API (no display needed).

A model's contributions over training (the model card's plot), the comparison figures (the paper's Figures 3-5)
and the balance report's figures. matplotlib is an optional dependency (`pip install 'mllm-balance[plot]'`), so it
is imported by the functions that draw.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .configuration import BalanceConfig
from .runs import ORDER_ROWS, display_name, format_value, group_runs, main_runs, mean_std, run_modalities


def matplotlib_figure(missing: str):
    """matplotlib's `Figure` class; `None`, with a warning ending in `missing`, when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        warnings.warn(f"matplotlib is not installed (pip install 'mllm-balance[plot]'): {missing}", stacklevel=3)
        return None
    return Figure


# ------------------------------------------------------------------------------------------- one model
def plot_model_contributions(
    shapley_history: Sequence[Mapping[str, float]],
    path: str | os.PathLike,
    *,
    modalities: Sequence[str] | None = None,
    epochs: Sequence[int] | None = None,
    edm_history: Sequence[float | None] | None = None,
) -> str | None:
    """Draw the Shapley value of each modality after every scored epoch (and the EDM, when given) as a PNG.

    Args:
        shapley_history (`Sequence[Mapping[str, float]]`): Shapley values after each scored epoch.
        path (`str`): where to write the PNG.
        modalities (`Sequence[str]`, *optional*): line order; defaults to the keys of the first entry.
        epochs (`Sequence[int]`, *optional*): the 0-based epoch of each entry (-1 = before training); drawn 1-based.
        edm_history (`Sequence[float]`, *optional*): EDM after each scored epoch, drawn in a second panel.

    Returns:
        `str | None`: the path written, or `None` (with a warning) when the history is empty or matplotlib is not
        installed (`pip install mllm-balance[plot]`).
    """
    history = [dict(h) for h in shapley_history or []]
    if not history:
        return None
    Figure = matplotlib_figure("no contribution plot")
    if Figure is None:
        return None
    modalities = list(modalities or history[0])
    x = [int(e) + 1 for e in epochs] if epochs is not None and len(epochs) == len(history) else None
    x = x or list(range(1, len(history) + 1))
    edm = [math.nan if v is None else float(v) for v in (edm_history or [])]
    panels = 2 if len(edm) == len(history) else 1
    fig = Figure(figsize=(6.4, 3.4 * panels), dpi=100, layout="constrained")
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    for m in modalities:
        axes[0].plot(x, [float(h.get(m, math.nan)) for h in history], marker="o", label=m)
    axes[0].axhline(0.0, color="0.6", linewidth=0.8)
    axes[0].set_ylabel("Shapley value (accuracy points)")
    axes[0].set_title("Modality contributions over training")
    axes[0].legend(loc="best")
    if panels == 2:
        axes[1].plot(x, edm, marker="s", color="black")
        axes[1].set_ylabel("EDM (%)")
    axes[-1].set_xlabel("epoch (0 = before training)" if min(x) == 0 else "epoch")
    axes[-1].set_xticks(x)
    fig.savefig(path, format="png", metadata={"Software": None})
    return str(path)


def plot_model_contributions_from_results(
    config: BalanceConfig, results: Mapping[str, Any] | None, path: str | os.PathLike
) -> str | None:
    """[`plot_model_contributions`] with the history of `results` (`shapley_history`, `edm_history`, `scored_epochs`),
    else the Shapley history recorded in `config`."""
    results = results or {}
    history = results.get("shapley_history") or config.shapley_history or []
    edm = results.get("edm_history") if results.get("shapley_history") else None
    epochs = results.get("scored_epochs") if results.get("shapley_history") else None
    return plot_model_contributions(history, path, modalities=config.modalities, epochs=epochs, edm_history=edm)


# ------------------------------------------------------------------------------------------- comparison
def _figure(n_panels: int, ncols: int = 4, size: tuple[float, float] = (4.0, 3.2)):
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def plot_method_contributions(
    results: Sequence[Mapping[str, Any]], path: str, methods: Sequence[str] | None = None
) -> str:
    """Figure 3: Shapley value of every modality after each epoch (mean ± std over seeds), one panel per method."""
    groups = group_runs([r for r in main_runs(results) if r.get("shapley_history")])
    methods = [m for m in (methods or list(groups)) if m in groups]
    if not methods:
        raise ValueError("no run has a shapley_history to plot")
    fig, axes = _figure(len(methods))
    for ax, method in zip(axes, methods):
        runs = groups[method]
        length = min(len(r["shapley_history"]) for r in runs)
        epochs = np.arange(1, length + 1)
        for mod in run_modalities(runs):
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
    runs = [r for r in main_runs(results) if r["method"] == method and r.get("order_analysis")]
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


# ------------------------------------------------------------------------------------------- balance report
def plot_sample_contributions(values: np.ndarray, modalities: Sequence[str], path: str) -> str:
    """Box plot of the per-sample contributions `(N, n)` of every modality (NaN where a modality is absent)."""
    from matplotlib.figure import Figure

    mods = list(modalities)
    fig = Figure(figsize=(1.6 + 1.4 * len(mods), 3.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    columns = [values[~np.isnan(values[:, j]), j] for j in range(len(mods))]
    ax.boxplot([c if c.size else [np.nan] for c in columns], showmeans=True)
    ax.set_xticks(range(1, len(mods) + 1), mods)
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_ylabel("contribution to p(predicted label)")
    ax.set_title("Per-sample modality contributions")
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


def plot_dataset_balance(figures: Mapping[str, Any], path: str) -> str:
    """Bars of the dataset Shapley values (EDM in the title) and, when measured, accuracy per missing-modality
    rate, from a balance report's `figures`."""
    from matplotlib.figure import Figure

    mods = figures["modalities"]
    missing = figures.get("missing_modality") or {}
    fig = Figure(figsize=(9.0 if missing else 4.5, 3.4), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2 if missing else 1, squeeze=False)[0]
    axes[0].bar(mods, [figures["shapley"][m] for m in mods], color="tab:blue")
    axes[0].axhline(0.0, color="0.6", linewidth=0.8)
    axes[0].set_ylabel("Shapley value (accuracy points)")
    axes[0].set_title(f"Dataset Shapley values (EDM {format_value(figures['edm'])} %)")
    if missing:
        axes[1].plot([100 * float(r) for r in missing], list(missing.values()), marker="o", color="black")
        axes[1].set_xlabel("modalities dropped (%)")
        axes[1].set_ylabel("accuracy (%)")
        axes[1].set_title("Missing modalities")
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


__all__ = [
    "plot_model_contributions",
    "plot_model_contributions_from_results",
    "plot_method_contributions",
    "plot_feature_distributions",
    "plot_order_upper_bound",
    "pca_2d",
    "plot_sample_contributions",
    "plot_dataset_balance",
]
