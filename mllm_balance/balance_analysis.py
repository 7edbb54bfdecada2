"""What the balance report measures on a feature dataset: the dataset figures of a training run (fusion and
per-modality accuracy, Shapley values, EDM, missing modalities) and the per-sample contributions, with the samples
where the weak modality decided the prediction."""

from __future__ import annotations

import math
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .collator import LABEL_COLUMN
from .contributions import contribution_matrix, modality_contributions
from .results import build_results
from .robustness import DEFAULT_DROP_RATES, missing_modality_accuracy
from .shapley import equilibrium_deviation, next_order
from .trainer import BalanceTrainer
from .training_args import BalanceTrainingArguments


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


def _trainer(model, dataset, workdir: str, **options: Any):
    """A [`BalanceTrainer`] that only evaluates, in the model's recorded training order and majority label."""
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


__all__ = ["BalanceReport", "balance_report", "contribution_summary", "weak_summary"]
