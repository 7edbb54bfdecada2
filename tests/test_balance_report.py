"""The balance report of a saved model: its dataset figures equal the training run's results.json."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from contribution_helpers import NumberBackbone
from datasets import Dataset, DatasetDict
from feature_helpers import make_args

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer, build_feature_dataset
from mllm_balance.balance_analysis import balance_report
from mllm_balance.balance_report import load_model, main
from mllm_balance.balance_report_render import FIGURES_NAME, REPORT_NAME, render_markdown
from mllm_balance.baselines import LateFusionModel, get_baseline
from mllm_balance.hub import save_adapters
from mllm_balance.recipe import parse_recipe_args, run_recipe
from mllm_balance.reference import record_backbone
from mllm_balance.results import save_results, trainer_results
from mllm_balance.robustness import missing_modality_accuracy

DIMS = (("text", 6), ("image", 5))
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def features_dir(tmp_path_factory):
    from feature_helpers import make_features

    splits = DatasetDict(
        {
            split: build_feature_dataset(*make_features(n, seed=seed, dims=DIMS, strength=(1.2, 0.8)))
            for split, n, seed in (("train", 64, 1), ("validation", 32, 2), ("test", 40, 3))
        }
    )
    path = tmp_path_factory.mktemp("features") / "feats"
    splits.save_to_disk(str(path))
    return path


def same_figures(report: dict, results: dict) -> None:
    assert report["modalities"] == results["modalities"]
    assert report["accuracy"]["fusion"] == pytest.approx(results["accuracy"]["fusion"], abs=1e-9)
    assert report["accuracy"]["per_modality"] == pytest.approx(results["accuracy"]["per_modality"], abs=1e-9)
    assert report["shapley"] == pytest.approx(results["shapley"], abs=1e-9)
    assert report["edm"] == pytest.approx(results["edm"], abs=1e-9)
    assert report["missing_modality"] == pytest.approx(results["missing_modality"], abs=1e-9)
    assert list(report["missing_modality"]) == ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5"]


def read_samples(folder) -> list[dict[str, str]]:
    with open(folder / "contributions.csv") as f:
        return list(csv.DictReader(f))


def check_outputs(folder, figures: dict, dataset, model) -> None:
    """Files written; per-sample rows satisfy efficiency; the weak-modality count matches direct model calls."""
    markdown = (folder / REPORT_NAME).read_text()
    for section in ("## Accuracy", "## Dataset Shapley values and EDM", "## Missing modalities",
                    "## Per-sample contributions", "## Samples decided by the weak modality"):  # fmt: skip
        assert section in markdown
    assert "![Per-sample contributions](contributions.png)" in markdown
    for plot in ("contributions.png", "dataset.png"):
        assert (folder / plot).read_bytes()[:8] == PNG
    rows = read_samples(folder)
    mods = figures["modalities"]
    assert len(rows) == len(dataset) == figures["num_samples"]
    for row in rows:
        total = sum(float(row[m]) for m in mods if row[m])
        assert total == pytest.approx(float(row["full"]) - float(row["base"]), abs=1e-5)
    view = dataset.with_format("numpy")
    features = {m: torch.from_numpy(np.asarray(view[m], dtype=np.float32)) for m in mods}
    weak = figures["weak_modality"]["modality"]
    assert weak == min(mods, key=lambda m: figures["shapley"][m])
    with torch.no_grad():
        full = model(features).logits.argmax(-1)
        without = model({m: x for m, x in features.items() if m != weak}).logits.argmax(-1)
    assert [int(r["prediction"]) for r in rows] == full.tolist()
    decided = (full != without).nonzero().flatten().tolist()
    assert figures["weak_modality"]["decided"] == len(decided) and figures["weak_modality"]["eligible"] == len(rows)
    examples = {e["row"] for e in figures["weak_modality"]["examples"]}
    assert decided and examples <= set(decided) and len(examples) == min(10, len(decided))
    labels = torch.from_numpy(np.asarray(view["labels"]))
    assert figures["weak_modality"]["decided_correct"] == int((full == labels)[decided].sum())


def test_report_of_a_recipe_run_equals_its_results_json(tmp_path, features_dir):
    run_dir = tmp_path / "run"
    args = parse_recipe_args(
        None,
        ["--features_dir", str(features_dir), "--output_dir", str(run_dir), "--num_train_epochs", "2",
         "--use_cpu", "true", "--save_strategy", "no", "--learning_rate", "0.02", "--hidden_size", "8",
         "--disable_tqdm", "true", "--missing_modality_eval", "true", "--seed", "1"],
    )  # fmt: skip
    run_recipe(*args)
    results = json.loads((run_dir / "results.json").read_text())
    out = tmp_path / "report"
    # no --seed: the report reads the run's seed (1) from results.json, so the missing-modality drops are the run's
    report = main(["--model", str(run_dir), "--data", str(features_dir), "--split", "test", "--output_dir", str(out),
                   "--use_cpu", "true", "--batch_size", "16"])  # fmt: skip
    figures = json.loads((out / FIGURES_NAME).read_text())
    assert figures == json.loads(json.dumps(report.figures))
    same_figures(figures, results)
    assert figures["method"] == "ours" and figures["order_history"][-1] == results["order_history"][-1]
    assert figures["label_prior"] == pytest.approx(
        (np.bincount(DatasetDict.load_from_disk(str(features_dir))["train"]["labels"], minlength=3) / 64).tolist()
    )
    test = DatasetDict.load_from_disk(str(features_dir))["test"]
    check_outputs(out, figures, test, load_model(str(run_dir)))


def test_report_of_a_baseline_equals_its_results(tmp_path, features_dir):
    splits = DatasetDict.load_from_disk(str(features_dir))
    spec = get_baseline("late_fusion")
    torch.manual_seed(0)
    model = spec.build_model(spec.build_config(dict(DIMS), 3, hidden_size=8))
    trainer = BalanceTrainer(
        model=model,
        args=make_args(tmp_path / "run", **spec.training_arguments(learning_rate=0.02), logging_strategy="no"),
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        callbacks=spec.make_callbacks(),
    )
    trainer.train()
    missing = missing_modality_accuracy(trainer, splits["test"], seed=0)
    results = trainer_results(trainer, dataset="feats", method="late_fusion", eval_dataset=splits["test"])
    results["missing_modality"] = {f"{rate:.1f}": acc for rate, acc in missing.items()}
    save_results(results, str(tmp_path / "run"))
    trainer.save_model(str(tmp_path / "run"))
    assert isinstance(load_model(str(tmp_path / "run")), LateFusionModel)
    out = tmp_path / "report"
    main(["--model", str(tmp_path / "run"), "--data", str(features_dir), "--output_dir", str(out), "--seed", "0",
          "--use_cpu", "true"])  # fmt: skip
    figures = json.loads((out / FIGURES_NAME).read_text())
    same_figures(figures, results)
    assert figures["method"] == "late_fusion"
    check_outputs(out, figures, splits["test"], load_model(str(tmp_path / "run")))


def test_raw_data_goes_through_the_recorded_backbone(tmp_path):
    backbone = NumberBackbone({"a": 3, "b": 3})
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 30)
    vectors = {m: rng.normal(size=(30, 3)) + 2.0 * np.eye(3)[labels] * s for m, s in (("a", 1.0), ("b", 0.3))}
    torch.manual_seed(1)
    config = BalanceConfig(
        modality_dims={"a": 3, "b": 3}, num_labels=3, hidden_size=6, train_order=["b", "a"], label_prior=[0.2, 0.3, 0.5]
    )
    record_backbone(config, backbone)
    save_adapters(BalancedModel(config), tmp_path / "model")
    raw = Dataset.from_dict(
        {**{m: [" ".join(f"{v:.5f}" for v in row) for row in x] for m, x in vectors.items()}, "labels": labels}
    )
    DatasetDict({"test": raw}).save_to_disk(str(tmp_path / "raw"))
    parsed = {m: np.array([[float(v) for v in s.split()] for s in raw[m]], dtype=np.float32) for m in vectors}
    DatasetDict({"test": build_feature_dataset(parsed, labels)}).save_to_disk(str(tmp_path / "feats"))
    common = ["--model", str(tmp_path / "model"), "--use_cpu", "true", "--drop_rates", "0,0.25"]
    main([*common, "--data", str(tmp_path / "raw"), "--output_dir", str(tmp_path / "r1"),
          "--feature_cache_dir", str(tmp_path / "cache")])  # fmt: skip
    main([*common, "--data", str(tmp_path / "feats"), "--output_dir", str(tmp_path / "r2")])
    from_raw, from_features = (json.loads((tmp_path / r / FIGURES_NAME).read_text()) for r in ("r1", "r2"))
    assert from_raw.pop("dataset") == "raw/test" and from_features.pop("dataset") == "feats/test"
    assert from_raw == from_features
    assert read_samples(tmp_path / "r1") == read_samples(tmp_path / "r2")
    assert from_raw["label_prior"] == [0.2, 0.3, 0.5] and from_raw["order_history"] == [["b", "a"]]
    empty_value = 100 * float(np.mean(labels == 2))  # majority label of the recorded prior
    assert from_raw["coalition_accuracy"]["(none)"] == pytest.approx(empty_value)

    unrecorded = load_model(str(tmp_path / "model"))
    unrecorded.config.label_prior = None
    report = balance_report(unrecorded, build_feature_dataset(parsed, labels), drop_rates=(0.0,), use_cpu=True)
    assert report.figures["coalition_accuracy"]["(none)"] == 0.0  # no majority label to predict
    assert np.allclose(report.samples["base"], 1 / 3)  # per-sample contributions start from the uniform prior
    assert "scores 0 (the model records no label prior)" in render_markdown(report.figures)


def test_bad_arguments_name_the_problem(tmp_path, features_dir):
    from transformers import BertConfig

    with pytest.raises(ValueError, match=r"has no split 'dev'; it has \['train', 'validation', 'test'\]"):
        main(["--model", "unused", "--data", str(features_dir), "--split", "dev"])
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8).save_pretrained(
        tmp_path / "bert"
    )
    with pytest.raises(ValueError, match="reads models of mllm-balance"):
        load_model(str(tmp_path / "bert"))
    config = BalanceConfig(modality_dims={"text": 6, "audio": 5}, num_labels=3, hidden_size=4)
    BalancedModel(config).save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match=r"no column for modalities \['audio'\]"):
        main(["--model", str(tmp_path / "other"), "--data", str(features_dir), "--output_dir", str(tmp_path / "x")])
    with pytest.raises(ValueError, match="not a folder written by datasets' save_to_disk"):
        main(["--model", str(tmp_path / "other"), "--data", str(tmp_path / "nowhere")])
