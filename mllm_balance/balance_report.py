"""Balance report of a saved model of the library on a dataset, in one command.

    python -m mllm_balance.balance_report --model DIR_OR_HUB_ID --data DIR --split test --output_dir report

`--model` is a folder or Hub id holding a [`BalancedModel`] or a baseline (`BaselineConfig`); `--data` a
`datasets` `save_to_disk` folder (a `DatasetDict`, of which `--split` is read, or a `Dataset`) holding either feature
columns (one float-vector column per modality, optional `<m>_present` columns, `labels`) or raw samples (text,
images, audio, ...), which the backbone recorded in the model's config encodes first.

The report holds the fusion accuracy and the accuracy of every modality alone, the dataset Shapley values and EDM,
the accuracy with 0-50 % of the modalities missing, the distribution of per-sample contributions
([`mllm_balance.contributions`]) and the samples where the weak modality (the smallest Shapley value) decided the
prediction: removing it changes the predicted label. The dataset figures come from the analyses of a training run
(`BalanceTrainer.evaluate` / `score_modalities`, `robustness.missing_modality_accuracy`), so on the same split, with
the run's `--seed`, they equal its `results.json`. The model's recorded `label_prior` gives the majority label of
the empty coalition (a model saved without one scores it 0, as `empty_value="zero"` does).

Writes `balance_report.md`, `balance_report.json` (the figures, in the `results.json` format plus the per-sample
summary), `contributions.csv` (one row per sample), `contributions.png` and `dataset.png` into `--output_dir`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .collator import LABEL_COLUMN
from .configuration import BalanceConfig
from .contributions import contribution_matrix, modality_contributions
from .modeling import BalancedModel
from .results import RESULTS_NAME, build_results
from .robustness import DEFAULT_DROP_RATES, missing_modality_accuracy
from .shapley import equilibrium_deviation, next_order

REPORT_NAME = "balance_report.md"
FIGURES_NAME = "balance_report.json"
SAMPLES_NAME = "contributions.csv"
CONTRIBUTIONS_PLOT = "contributions.png"
DATASET_PLOT = "dataset.png"


@dataclass
class BalanceReportArguments:
    """Arguments of `python -m mllm_balance.balance_report`."""

    model: str = field(metadata={"help": "Folder or Hub id of a saved BalancedModel or baseline of mllm-balance."})
    data: str = field(
        metadata={"help": "A datasets save_to_disk folder: feature columns, or raw samples for the recorded backbone."}
    )
    split: str = field(default="test", metadata={"help": "Split of a DatasetDict folder to report on."})
    output_dir: str = field(default="balance_report", metadata={"help": "Where the Markdown, JSON and PNGs go."})
    revision: str | None = field(default=None, metadata={"help": "Revision of a Hub model."})
    backbone: str | None = field(
        default=None, metadata={"help": "Backbone spec for raw data instead of the recorded one."}
    )
    allow_backbone_mismatch: bool = field(
        default=False, metadata={"help": "Use a backbone that differs from the recorded one (with a warning)."}
    )
    feature_cache_dir: str | None = field(default=None, metadata={"help": "Where features of raw data are cached."})
    drop_rates: str = field(default="0,0.1,0.2,0.3,0.4,0.5", metadata={"help": "Shares of modalities dropped."})
    seed: int | None = field(
        default=None,
        metadata={
            "help": "Seed of the missing-modality drops (the training run's --seed reproduces its figures); default: "
            "the seed in the model folder's results.json, else 42."
        },
    )
    batch_size: int = field(default=256, metadata={"help": "Samples per evaluation batch."})
    num_examples: int = field(default=10, metadata={"help": "Samples listed where the weak modality decided."})
    shapley_method: str = field(default="auto", metadata={"help": "Dataset Shapley: auto, exact or permutation."})
    shapley_permutations: int = field(default=200, metadata={"help": "Orders sampled by the permutation estimator."})
    empty_value: str = field(default="prior", metadata={"help": "Value of the empty coalition: prior or zero."})
    use_cpu: bool = field(default=False, metadata={"help": "Run on the CPU even when an accelerator is available."})


@dataclass
class BalanceReport:
    """What [`balance_report`] measured.

    Args:
        figures (`dict`): JSON-ready figures: the `results.json` fields (`accuracy`, `shapley`, `edm`,
            `missing_modality`, ...) plus `edm_terms`, `coalition_accuracy`, `contributions` (per-modality summary of
            the per-sample values) and `weak_modality` (the samples it decided).
        samples (`dict[str, np.ndarray]`): per sample: `labels`, `prediction`, `prediction_without_weak` (-1 when the
            sample lacks the weak modality or any other one), `base`, `full` `(N,)` and `contributions` `(N, n)` (NaN
            where a modality is absent), columns in `figures["modalities"]` order.
    """

    figures: dict[str, Any]
    samples: dict[str, np.ndarray]


# ----------------------------------------------------------------------------------------------------- loading
def load_model(name_or_path: str, revision: str | None = None):
    """A saved model of the library, [`BalancedModel`] or a baseline (by its config's `method`), in eval mode.

    Raises:
        `ValueError`: the folder or Hub id holds another kind of model, or a Joint baseline (its frozen backbone is
            not saved with it).
    """
    from transformers import AutoConfig

    from .baselines import BaselineConfig, get_baseline

    config = AutoConfig.from_pretrained(name_or_path, revision=revision)
    if isinstance(config, BaselineConfig):
        if config.method == "joint":
            raise ValueError(
                f"{name_or_path} is a Joint baseline: its frozen backbone is not saved with it, so it cannot be "
                "reloaded for a report"
            )
        model_class = get_baseline(config.method).model_class
    elif isinstance(config, BalanceConfig):
        model_class = BalancedModel
    else:
        raise ValueError(
            f"{name_or_path} holds a {type(config).__name__} (model_type {config.model_type!r}); the balance report "
            "reads models of mllm-balance (BalanceConfig or BaselineConfig)"
        )
    return model_class.from_pretrained(name_or_path, revision=revision).eval()


def load_split(path: str, split: str):
    """The `split` of a `DatasetDict` saved at `path`, or the `Dataset` saved there."""
    from datasets import DatasetDict, load_from_disk

    if not os.path.isdir(path):
        raise ValueError(f"--data {path!r} is not a folder written by datasets' save_to_disk")
    loaded = load_from_disk(path)
    if isinstance(loaded, DatasetDict):
        if split not in loaded:
            raise ValueError(f"{path} has no split {split!r}; it has {list(loaded)}")
        return loaded[split]
    return loaded


def is_feature_dataset(dataset, modalities: Sequence[str]) -> bool:
    """Whether every modality column holds float vectors (features) rather than raw samples.

    Raises:
        `ValueError`: a modality has no column, or some modality columns are features and others raw.
    """
    from datasets import LargeList, List, Value

    missing = [m for m in modalities if m not in dataset.column_names]
    if missing:
        raise ValueError(f"the data has no column for modalities {missing}; its columns are {dataset.column_names}")

    def vector(feature) -> bool:
        inner = getattr(feature, "feature", None)
        return isinstance(feature, (List, LargeList)) and isinstance(inner, Value) and "float" in inner.dtype

    kinds = {m: vector(dataset.features[m]) for m in modalities}
    if len(set(kinds.values())) > 1:
        raise ValueError(
            f"modality columns {[m for m, v in kinds.items() if v]} are feature vectors but "
            f"{[m for m, v in kinds.items() if not v]} are not: pass features of every modality, or raw samples"
        )
    return all(kinds.values())


def features_for(model, dataset, args: BalanceReportArguments):
    """The dataset's features: as they are, or extracted by the recorded backbone (or `args.backbone`)."""
    from . import hub

    config = model.config
    if not is_feature_dataset(dataset, config.modalities):
        from .features import extract_features

        backbone = hub.load_backbone_for(config, name_or_path=args.backbone)
        hub.check_backbone_compatibility(config, backbone, allow_mismatch=args.allow_backbone_mismatch)
        dataset = extract_features(
            dataset,
            backbone,
            modalities=config.modalities,
            cache_dir=args.feature_cache_dir,
            batch_size=min(args.batch_size, 64),
            progress=False,
        )
    if LABEL_COLUMN not in dataset.column_names:
        raise ValueError(f"the data has no {LABEL_COLUMN!r} column: the report needs the true labels")
    return dataset


# ---------------------------------------------------------------------------------------------------- analyses
def _trainer(model, dataset, workdir: str, **options: Any):
    """A [`BalanceTrainer`] that only evaluates, in the model's recorded training order and majority label."""
    from .trainer import BalanceTrainer
    from .training_args import BalanceTrainingArguments

    order = list(model.config.train_order or model.config.modalities)
    args = BalanceTrainingArguments(
        output_dir=workdir, report_to=[], disable_tqdm=True, save_strategy="no", order_schedule="fixed", **options
    )
    trainer = BalanceTrainer(model=model, args=args, eval_dataset=dataset)
    trainer.set_order(order)
    prior = model.config.label_prior
    trainer.majority_label = int(np.argmax(prior)) if prior is not None else None
    return trainer


def balance_report(
    model,
    dataset,
    *,
    name: str = "dataset",
    drop_rates: Sequence[float] = DEFAULT_DROP_RATES,
    seed: int = 42,
    batch_size: int = 256,
    num_examples: int = 10,
    shapley_method: str = "auto",
    shapley_permutations: int = 200,
    empty_value: str = "prior",
    use_cpu: bool = False,
) -> BalanceReport:
    """Measure the balance of a trained model on a feature dataset.

    Args:
        model ([`BalancedModel`] or a baseline): the trained model.
        dataset (`datasets.Dataset`): feature dataset with labels.
        name (`str`, *optional*): the dataset's name in the figures.
        drop_rates (`Sequence[float]`, *optional*): shares of modality entries dropped, 0-50 % by default.
        seed (`int`, *optional*, defaults to 42): seed of the drops (the training run's seed gives its figures).
        batch_size (`int`, *optional*, defaults to 256): samples per evaluation batch.
        num_examples (`int`, *optional*, defaults to 10): samples listed where the weak modality decided.
        shapley_method / shapley_permutations / empty_value: as in [`BalanceTrainingArguments`].
        use_cpu (`bool`, *optional*): stay on the CPU.

    Returns:
        [`BalanceReport`]
    """
    modalities = list(model.config.modalities)
    options = dict(
        per_device_eval_batch_size=batch_size,
        seed=seed,
        shapley_method=shapley_method,
        shapley_permutations=shapley_permutations,
        empty_value=empty_value,
        use_cpu=use_cpu,
    )
    with tempfile.TemporaryDirectory() as workdir:
        trainer = _trainer(model, dataset, workdir, **options)
        order = list(trainer.order_state.order)
        fusion = trainer.evaluate(dataset)["eval_accuracy"]
        scores = trainer.score_modalities(dataset)
        missing = missing_modality_accuracy(trainer, dataset, [float(r) for r in drop_rates], seed=seed)
        phi = scores["shapley"]
        weak = next_order(phi, modalities)[0] if len(modalities) > 1 else None
        samples = _per_sample(trainer, weak)
    method = getattr(model.config, "method", None) or "ours"
    figures = build_results(
        dataset=name,
        method=method,
        modalities=modalities,
        fusion_accuracy=fusion,
        per_modality={m: scores["accuracy"][frozenset([m])] for m in modalities},
        shapley=phi,
        edm=scores["edm"],
        order_history=[order],
        missing_modality=missing,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the NaN case already warned in score_modalities
        figures["edm_terms"] = equilibrium_deviation(phi, return_terms=True)[1]
    figures["coalition_accuracy"] = {
        "+".join(m for m in modalities if m in s) or "(none)": float(v) for s, v in sorted(
            scores["accuracy"].items(), key=lambda item: (len(item[0]), [modalities.index(m) for m in item[0]])
        )
    }  # fmt: skip
    figures["num_samples"] = int(samples["labels"].shape[0])
    figures["label_prior"] = model.config.label_prior
    figures["empty_value"] = empty_value
    figures["contributions"] = contribution_summary(samples["contributions"], modalities)
    figures["weak_modality"] = weak_summary(samples, weak, modalities, num_examples, model.config.label_names)
    return BalanceReport(figures=figures, samples=samples)


@torch.no_grad()
def _per_sample(trainer, weak: str | None) -> dict[str, np.ndarray]:
    """Per-sample prediction, contributions and prediction without the weak modality, over the trainer's eval set."""
    model = trainer.accelerator.unwrap_model(trainer.model).eval()
    modalities = list(model.config.modalities)
    device = model.device
    out: dict[str, list] = {k: [] for k in ("labels", "prediction", "prediction_without_weak", "base", "full")}
    matrices = []
    for batch in trainer.get_eval_dataloader():
        features = {m: x.to(device) for m, x in batch["features"].items()}  # {m: (b, D_m)}
        mask = {m: x.to(device) for m, x in batch.get("modality_mask", {}).items()} or None
        present, size = model.check_inputs(features, mask)  # {m: (b,)}
        probs = model(features=features, modality_mask=mask).logits.float().softmax(-1)  # (b, C)
        found = modality_contributions(model, features, mask, probs=probs)
        without = torch.full((size,), -1, dtype=torch.long, device=device)  # (b,)
        if weak is not None:
            others = torch.stack([present[m] for m in modalities if m != weak]).any(0)  # (b,)
            rows = (present[weak] & others).nonzero().flatten()
            if rows.numel():
                sub = {m: x[rows] for m, x in features.items()}
                sub_mask = {m: present[m][rows] & (m != weak) for m in features}
                without[rows] = model(features=sub, modality_mask=sub_mask).logits.argmax(-1)
        out["labels"].append(batch[LABEL_COLUMN].cpu())
        out["prediction"].append(found.target.cpu())
        out["prediction_without_weak"].append(without.cpu())
        out["base"].append(found.base.cpu())
        out["full"].append(found.full.cpu())
        matrices.append(contribution_matrix(found.values, modalities))
    samples = {k: torch.cat(v).numpy() for k, v in out.items()}
    samples["contributions"] = torch.cat(matrices).numpy()  # (N, n)
    return samples


def contribution_summary(values: np.ndarray, modalities: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Per modality, over the samples that have it: mean, median and quartiles of its contribution, the share of
    samples where it is negative, and the share where it is the largest contribution of the sample."""
    present = ~np.isnan(values)  # (N, n)
    top = np.where(present, values, -np.inf).argmax(1)  # (N,)
    summary: dict[str, dict[str, float | None]] = {}
    for j, m in enumerate(modalities):
        column = values[present[:, j], j]
        if column.size == 0:
            summary[m] = dict.fromkeys(("mean", "median", "q25", "q75", "negative", "largest"), None)
            continue
        summary[m] = {
            "mean": float(column.mean()),
            "median": float(np.median(column)),
            "q25": float(np.quantile(column, 0.25)),
            "q75": float(np.quantile(column, 0.75)),
            "negative": float((column < 0).mean()),
            "largest": float((top[present[:, j]] == j).mean()),
        }
    return summary


def weak_summary(
    samples: Mapping[str, np.ndarray],
    weak: str | None,
    modalities: Sequence[str],
    num_examples: int,
    labels: Sequence[str],
) -> dict[str, Any] | None:
    """The samples where the weak modality decided the prediction (its removal changes the predicted label).

    Returns:
        `dict` with `modality`, `eligible` (samples with it and another modality), `decided`, `decided_correct` (of
        those, predicted right with it), `correct_without` (right without it), and `examples`: up to `num_examples`
        of them, largest weak contribution first. `None` for a single-modality model.
    """
    if weak is None:
        return None
    without = samples["prediction_without_weak"]
    prediction, truth = samples["prediction"], samples["labels"]
    eligible = without >= 0
    decided = eligible & (without != prediction)
    j = list(modalities).index(weak)
    weak_values = samples["contributions"][:, j]
    rows = np.flatnonzero(decided)
    rows = rows[np.argsort(-weak_values[rows], kind="stable")][:num_examples]
    return {
        "modality": weak,
        "eligible": int(eligible.sum()),
        "decided": int(decided.sum()),
        "decided_correct": int((decided & (prediction == truth)).sum()),
        "correct_without": int((decided & (without == truth)).sum()),
        "examples": [
            {
                "row": int(i),
                "label": labels[int(truth[i])],
                "prediction": labels[int(prediction[i])],
                "prediction_without_weak": labels[int(without[i])],
                "contributions": {
                    m: float(samples["contributions"][i, k])
                    for k, m in enumerate(modalities)
                    if not math.isnan(samples["contributions"][i, k])
                },
            }
            for i in rows
        ],
    }


# ------------------------------------------------------------------------------------------------------ output
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


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _f(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


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
        _md_table(
            ["modalities", "accuracy"],
            [["fusion", _f(acc["fusion"])]] + [[m, _f(acc["per_modality"][m])] for m in mods],
        ),
        "",
        "## Dataset Shapley values and EDM",
        "",
        f"`P(S)` is the accuracy (%) with the modalities in `S` only; the empty coalition {empty}. "
        "`phi~ = 100 n phi / sum phi` (100 for every modality of a balanced model).",
        "",
    ]
    phi = figures["shapley"]
    total = sum(phi.values())
    rows = [
        [m, _f(acc["per_modality"][m]), _f(phi[m]), _f(100 * len(mods) * phi[m] / total if total > 0 else None),
         _f(figures["edm_terms"][m])]
        for m in mods
    ]  # fmt: skip
    lines += [_md_table(["modality", "accuracy alone", "Shapley", "phi~", "deviation from 100"], rows), ""]
    lines += [f"**EDM: {_f(figures['edm'])} %** (lower is more balanced).", ""]
    if "dataset" in plots:
        lines += [f"![Shapley values and missing modalities]({plots['dataset']})", ""]
    missing = figures.get("missing_modality") or {}
    if missing:
        lines += ["## Missing modalities", "", "Accuracy (%) with a share of the test modalities dropped (each "
                  "sample keeps one).", ""]  # fmt: skip
        lines += [_md_table(["dropped", "accuracy"], [[f"{100 * float(r):.0f} %", _f(a)] for r, a in missing.items()])]
        lines += [""]
    lines += [
        "## Per-sample contributions",
        "",
        "Shapley value of each present modality to the probability of the predicted label (the empty coalition is "
        f"the {'training label prior' if recorded else 'uniform prior'}), over the samples that have the modality.",
        "",
    ]
    summary = figures["contributions"]
    rows = [
        [m, *(_f(summary[m][k], 3) for k in ("mean", "median", "q25", "q75")),
         *(_f(None if summary[m][k] is None else 100 * summary[m][k], 1) for k in ("negative", "largest"))]
        for m in mods
    ]  # fmt: skip
    lines += [_md_table(["modality", "mean", "median", "q25", "q75", "% negative", "% largest"], rows), ""]
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
                 *(_f(e["contributions"].get(m), 3) for m in mods)]
                for e in weak["examples"]
            ]  # fmt: skip
            header = ["row", "label", "prediction", f"without {weak['modality']}", *(f"phi {m}" for m in mods)]
            lines += [_md_table(header, rows), ""]
    return "\n".join(lines)


def plot_report(report: BalanceReport, output_dir: str) -> dict[str, str]:
    """`contributions.png` (per-sample contributions per modality) and `dataset.png` (Shapley values, missing
    modalities); `{}` with a warning when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        warnings.warn("matplotlib is not installed (pip install 'mllm-balance[plot]'): no plots", stacklevel=2)
        return {}
    figures, mods = report.figures, report.figures["modalities"]
    values = report.samples["contributions"]
    fig = Figure(figsize=(1.6 + 1.4 * len(mods), 3.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    columns = [values[~np.isnan(values[:, j]), j] for j in range(len(mods))]
    ax.boxplot([c if c.size else [np.nan] for c in columns], showmeans=True)
    ax.set_xticks(range(1, len(mods) + 1), mods)
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_ylabel("contribution to p(predicted label)")
    ax.set_title("Per-sample modality contributions")
    paths = {"contributions": os.path.join(output_dir, CONTRIBUTIONS_PLOT)}
    fig.savefig(paths["contributions"], format="png", metadata={"Software": None})

    missing = figures.get("missing_modality") or {}
    fig = Figure(figsize=(9.0 if missing else 4.5, 3.4), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2 if missing else 1, squeeze=False)[0]
    axes[0].bar(mods, [figures["shapley"][m] for m in mods], color="tab:blue")
    axes[0].axhline(0.0, color="0.6", linewidth=0.8)
    axes[0].set_ylabel("Shapley value (accuracy points)")
    axes[0].set_title(f"Dataset Shapley values (EDM {_f(figures['edm'])} %)")
    if missing:
        axes[1].plot([100 * float(r) for r in missing], list(missing.values()), marker="o", color="black")
        axes[1].set_xlabel("modalities dropped (%)")
        axes[1].set_ylabel("accuracy (%)")
        axes[1].set_title("Missing modalities")
    paths["dataset"] = os.path.join(output_dir, DATASET_PLOT)
    fig.savefig(paths["dataset"], format="png", metadata={"Software": None})
    return paths


# --------------------------------------------------------------------------------------------------------- CLI
def run(args: BalanceReportArguments) -> BalanceReport:
    """Load the model and the data, measure, and write the report files into `args.output_dir`."""
    rates = [float(r) for r in args.drop_rates.split(",") if r.strip()]
    split = load_split(args.data, args.split)
    model = load_model(args.model, args.revision)
    dataset = features_for(model, split, args)
    name = f"{os.path.basename(os.path.normpath(args.data))}/{args.split}"
    report = balance_report(
        model,
        dataset,
        name=name,
        drop_rates=rates,
        seed=recorded_seed(args.model) if args.seed is None else args.seed,
        batch_size=args.batch_size,
        num_examples=args.num_examples,
        shapley_method=args.shapley_method,
        shapley_permutations=args.shapley_permutations,
        empty_value=args.empty_value,
        use_cpu=args.use_cpu,
    )
    write_balance_report(report, args.output_dir, title=f"{args.model} on {name}")
    return report


def recorded_seed(model: str, default: int = 42) -> int:
    """The training seed that `results.json` in the local model folder `model` records, else `default`."""
    path = os.path.join(model, RESULTS_NAME)
    if os.path.isfile(path):
        with open(path) as f:
            seed = json.load(f).get("seed")
        if isinstance(seed, int):
            return seed
    return default


def main(argv: Sequence[str] | None = None) -> BalanceReport:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(BalanceReportArguments)
    (args,) = parser.parse_args_into_dataclasses(args=list(sys.argv[1:] if argv is None else argv))
    report = run(args)
    print(f"balance report: {os.path.join(args.output_dir, REPORT_NAME)}")
    return report


__all__ = [
    "BalanceReport",
    "BalanceReportArguments",
    "balance_report",
    "load_model",
    "load_split",
    "is_feature_dataset",
    "features_for",
    "contribution_summary",
    "weak_summary",
    "render_markdown",
    "write_balance_report",
    "plot_report",
    "run",
    "main",
]


if __name__ == "__main__":
    main()
