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

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from datasets import DatasetDict, LargeList, List, Value, load_from_disk
from transformers import AutoConfig, HfArgumentParser

from .balance_analysis import BalanceReport, balance_report
from .balance_report_render import REPORT_NAME, write_balance_report
from .baselines import BaselineConfig, get_baseline
from .collator import LABEL_COLUMN
from .configuration import BalanceConfig
from .features import extract_features
from .modeling import BalancedModel
from .recipe import argument_values, parse_floats
from .reference import check_backbone_compatibility, load_backbone_for
from .results import RESULTS_NAME

#: The arguments passed on to [`~mllm_balance.balance_analysis.balance_report`] as they are.
REPORT_OPTIONS = ("batch_size", "num_examples", "shapley_method", "shapley_permutations", "empty_value", "use_cpu")


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


def load_model(name_or_path: str, revision: str | None = None):
    """A saved model of the library, [`BalancedModel`] or a baseline (by its config's `method`), in eval mode.

    Raises:
        `ValueError`: the folder or Hub id holds another kind of model, or a Joint baseline (its frozen backbone is
            not saved with it).
    """
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
    config = model.config
    if not is_feature_dataset(dataset, config.modalities):
        backbone = load_backbone_for(config, name_or_path=args.backbone)
        check_backbone_compatibility(config, backbone, allow_mismatch=args.allow_backbone_mismatch)
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


def run(args: BalanceReportArguments) -> BalanceReport:
    """Load the model and the data, measure, and write the report files into `args.output_dir`."""
    rates = parse_floats(args.drop_rates)
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
        **argument_values(args, REPORT_OPTIONS),
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
    parser = HfArgumentParser(BalanceReportArguments)
    (args,) = parser.parse_args_into_dataclasses(args=list(sys.argv[1:] if argv is None else argv))
    report = run(args)
    print(f"balance report: {os.path.join(args.output_dir, REPORT_NAME)}")
    return report


__all__ = [
    "BalanceReportArguments",
    "load_model",
    "load_split",
    "is_feature_dataset",
    "features_for",
    "run",
    "recorded_seed",
    "main",
]


if __name__ == "__main__":
    main()
