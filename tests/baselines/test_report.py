"""Tables, plots and the comparison recipe end to end on a tiny feature set."""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import numpy as np
import pytest
import torch
from baseline_helpers import features
from datasets import DatasetDict

from mllm_balance import build_feature_dataset
from mllm_balance.plots import pca_2d, plot_feature_distributions, plot_method_contributions, plot_order_upper_bound
from mllm_balance.report import write_report
from mllm_balance.runs import format_cell
from mllm_balance.tables import (
    ablation_table,
    comparison_table,
    difference_standard_error,
    headline_table,
    robustness_table,
    sweep_table,
)

PNG = b"\x89PNG"


def run(method, seed, fusion, text, image, shapley, ablation=None, **extra):
    r = {
        "dataset": "toy",
        "method": method,
        "modalities": ["text", "image"],
        "accuracy": {"fusion": fusion, "per_modality": {"text": text, "image": image}},
        "shapley": shapley,
        "edm": 100.0 * abs(shapley["text"] - shapley["image"]) / sum(shapley.values()) * 2 / 2,
        "order_history": [["image", "text"]],
        "seed": seed,
        "shapley_history": [shapley, shapley],
        **extra,
    }
    if ablation:
        r["ablation"] = ablation
    return r


RESULTS = [
    run("ours", 0, 80.0, 75.0, 50.0, {"text": 20.0, "image": 10.0}, missing_modality={"0.0": 80.0, "0.5": 60.0},
        order_analysis={"fixed": 70.0, "hybrid": 80.0, "best_order": 81.0, "oracle": 90.0}),
    run("ours", 1, 82.0, 77.0, 52.0, {"text": 20.0, "image": 20.0}, missing_modality={"0.0": 82.0, "0.5": 62.0},
        order_analysis={"fixed": 72.0, "hybrid": 82.0, "best_order": 83.0, "oracle": 92.0}),
    run("concat", 0, 84.0, 78.0, 40.0, {"text": 30.0, "image": 0.0}, missing_modality={"0.0": 84.0, "0.5": 50.0}),
    run("concat", 1, 84.0, 78.0, 40.0, {"text": 30.0, "image": 0.0}, missing_modality={"0.0": 84.0, "0.5": 52.0}),
    run("ours-no_memory", 0, 78.0, 70.0, 50.0, {"text": 20.0, "image": 10.0}, ablation="no_memory"),
]  # fmt: skip


def test_cells_are_mean_and_sample_std():
    assert format_cell([80.0, 82.0]) == f"81.00 ± {np.std([80, 82], ddof=1):.2f}"
    assert format_cell([80.0]) == "80.00"
    assert format_cell([None, float("nan")]) == "n/a"


def test_comparison_table_has_the_paper_shape_and_bolds_the_best():
    table = comparison_table(RESULTS)
    lines = table.strip().splitlines()
    assert lines[0] == "| Accuracy | Ours Acc | Ours EDM | Concat Acc | Concat EDM |"
    assert lines[2].startswith("| text | 76.00 ± 1.41 |")
    multi = lines[-1]
    assert multi.startswith("| **Multi** | 81.00 ± 1.41 |")
    assert "**84.00 ± 0.00**" in multi  # best fusion accuracy: Concat
    assert "ours-no_memory" not in table and "no_memory" not in table


def test_ablation_and_robustness_tables():
    ablation = ablation_table(RESULTS)
    assert "| Full model |" in ablation and "| w/o modality memory |" in ablation
    assert "-3.00" in ablation  # 78 - mean(80, 82)
    robust = robustness_table(RESULTS)
    assert robust.splitlines()[0] == "| Model | 0% | 50% |"
    assert "| Concat | 84.00 ± 0.00 | 51.00 ± 1.41 |" in robust


def test_ablation_table_reports_the_missing_accuracy_and_its_change():
    phi = {"text": 30.0, "image": 10.0}
    results = [
        run("ours", 0, 84.0, 70.0, 50.0, phi, missing_modality_mean={"0.5": 68.0}),
        run("ours", 1, 86.0, 70.0, 50.0, phi, missing_modality_mean={"0.5": 70.0}),
        run("ours", 0, 83.0, 70.0, 50.0, phi, ablation="no_residual", missing_modality_mean={"0.5": 66.0}),
        run("ours", 1, 84.0, 70.0, 50.0, phi, ablation="no_residual", missing_modality_mean={"0.5": 67.0}),
    ]
    header, _, full, no_residual = ablation_table(results).splitlines()[:4]
    assert header == "| Model variant | text | image | Multi | Δ | 50% missing | Δ missing |"
    assert full.endswith("| 85.00 ± 1.41 | - | 69.00 ± 1.41 | - |")
    assert no_residual.endswith("| 83.50 ± 0.71 | -1.50 | 66.50 ± 0.71 | -2.50 |")
    assert "missing" not in ablation_table(RESULTS).splitlines()[0]  # runs without the mean: no such columns


def test_headline_table_against_the_best_baseline():
    """Hand-computed means: the best baseline is picked per column among baselines only (never `paper`), the mean
    over draws and the single draw are separate columns, and the closing lines give ours minus that baseline."""
    phi = {"text": 30.0, "image": 10.0}

    def r(method, seed, fusion, mean, one, lr):
        return run(method, seed, fusion, 70.0 + seed, 50.0, phi, learning_rate=lr, missing_draws=10,
                   missing_modality={"0.0": fusion, "0.5": one}, missing_modality_mean={"0.5": mean})  # fmt: skip

    results = [
        r("ours", 0, 84.0, 68.0, 66.0, 0.003), r("ours", 1, 85.0, 69.0, 67.0, 0.003),
        r("paper", 0, 90.0, 90.0, 90.0, 0.01), r("paper", 1, 90.0, 90.0, 90.0, 0.01),
        r("mla", 0, 84.0, 67.0, 69.0, 0.01), r("mla", 1, 84.0, 68.0, 68.0, 0.01),
        r("late_fusion", 0, 83.0, 68.5, 70.0, 0.001), r("late_fusion", 1, 83.0, 68.5, 69.0, 0.001),
    ]  # fmt: skip
    table = headline_table(results)
    header, _, ours, paper, mla, late = table.splitlines()[:6]
    assert header == (
        "| Method | lr | text alone | image alone | fusion | EDM | 50% missing (mean of 10 draws) | "
        "50% missing (one draw) |"
    )
    assert ours.startswith("| Ours | 0.003 | 70.5 ± 0.7 | 50.0 ± 0.0 | **84.50 ± 0.71** |")
    assert ours.endswith("| **68.50 ± 0.71** | **66.50 ± 0.71** |")
    assert "**" not in paper  # the paper's method is not a baseline, however good
    assert mla.startswith("| MLA | 0.01 |") and "| **84.00 ± 0.00** |" in mla and "68.50 ± 0.71 |" in mla
    assert late.endswith("| **68.50 ± 0.00** | **69.50 ± 0.71** |")
    assert "fusion: Ours − best baseline (MLA) = +0.50" in table
    assert "50% missing (mean of 10 draws): Ours − best baseline (Late Fusion) = +0.00" in table
    assert "50% missing (one draw): Ours − best baseline (Late Fusion) = -3.00" in table


def test_headline_gap_lines_give_the_standard_error_of_the_difference():
    """`sqrt(s_ours^2 / n + s_best^2 / n)` by hand: ours 84 / 85 / 86 (s = 1), MLA 83 / 83 / 86 (s = sqrt(3))."""
    phi = {"text": 30.0, "image": 10.0}
    results = [run("ours", k, f, 70.0, 50.0, phi) for k, f in enumerate((84.0, 85.0, 86.0))]
    results += [run("mla", k, f, 70.0, 50.0, phi) for k, f in enumerate((83.0, 83.0, 86.0))]
    table = headline_table(results)
    assert "fusion: Ours − best baseline (MLA) = +1.00 (standard error 1.15, over 3 and 3 seeds)" in table
    assert difference_standard_error((85.0, 1.0, 3), (84.0, 3**0.5, 3)) == pytest.approx((1 / 3 + 1) ** 0.5)
    assert difference_standard_error((85.0, 1.0, 4), (84.0, 2.0, 2)) == pytest.approx((1 / 4 + 4 / 2) ** 0.5)
    # one run on either side has no spread to measure: the line gives the difference alone
    single = headline_table(results[:1] + results[3:])
    assert "fusion: Ours − best baseline (MLA) = +0.00\n" in single  # 84 against mean(83, 83, 86)
    assert "standard error" not in single
    assert difference_standard_error((85.0, 0.0, 1), (84.0, 1.0, 3)) is None


def test_plots_are_written(tmp_path):
    fig3 = plot_method_contributions(RESULTS, str(tmp_path / "fig3.png"))
    fig5 = plot_order_upper_bound(RESULTS, str(tmp_path / "fig5.png"))
    rng = np.random.default_rng(0)
    snaps = {
        e: {"modalities": {"text": rng.normal(size=(20, 4)), "image": rng.normal(size=(15, 4))},
            "fused": rng.normal(size=(20, 4)), "labels": np.zeros(20)}
        for e in (0, 2)
    }  # fmt: skip
    fig4 = plot_feature_distributions(snaps, str(tmp_path / "fig4.png"))
    for path in (fig3, fig4, fig5):
        with open(path, "rb") as f:
            assert f.read(4) == PNG


def test_pca_recovers_the_main_axis():
    rng = np.random.default_rng(0)
    x = np.outer(rng.normal(size=200), [3.0, 4.0, 0.0]) + 0.01 * rng.normal(size=(200, 3))
    projected = pca_2d(x)
    assert projected.shape == (200, 2)
    assert projected[:, 0].var() > 100 * projected[:, 1].var()


def load_compare():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "recipes", "compare.py")
    spec = importlib.util.spec_from_file_location("compare_recipe", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def save_feature_splits(path, sizes=(96, 40, 40)) -> str:
    """A two-modality feature `DatasetDict` (train / validation / test) saved to `path`."""
    dims = (("text", 6), ("image", 5))
    splits = zip(("train", "validation", "test"), sizes)
    data = DatasetDict(
        {split: build_feature_dataset(*features(n, seed=i, dims=dims)) for i, (split, n) in enumerate(splits)}
    )
    data.save_to_disk(str(path))
    return str(path)


def test_compare_recipe_end_to_end(tmp_path, capsys):
    save_feature_splits(tmp_path / "features")
    out = tmp_path / "out"
    argv = ["--dataset", str(tmp_path / "features"), "--output_dir", str(out), "--methods", "ours", "concat",
            "--ablations", "fixed_order", "--seeds", "0", "--num_train_epochs", "2", "--hidden_size", "8",
            "--learning_rate", "0.05", "--lr_grid", "0.5", "1", "--lr_grid_extensions", "0",
            "--missing_rates", "0", "0.5", "--batch_size", "16"]  # fmt: skip
    threads = torch.get_num_threads()
    try:
        result = load_compare().main(argv)
    finally:
        torch.set_num_threads(threads)  # the recipe sets the process's thread count
    printed = capsys.readouterr().out
    assert "[1/~5 ours lr0.025 seed 0] epoch 1/2" in printed  # progress while it runs
    saved = json.loads((out / "results.json").read_text())
    runs = saved["runs"]
    assert [r["method"] for r in runs] == ["ours", "concat", "ours-fixed_order"]
    # the sweep tried both rates per method, picked on validation; the ablation trains at ours' rate
    assert sorted((s["method"], s["learning_rate"]) for s in saved["sweep"]) == [
        ("concat", 0.025), ("concat", 0.05), ("ours", 0.025), ("ours", 0.05)
    ]  # fmt: skip
    for method in ("ours", "concat"):
        tried = {s["learning_rate"]: s["validation_accuracy"] for s in saved["sweep"] if s["method"] == method}
        assert saved["chosen_learning_rate"][method] == max(tried, key=lambda lr: (tried[lr], -lr))
    assert runs[2]["learning_rate"] == saved["chosen_learning_rate"]["ours"]
    assert all(1 <= r["selected_epoch"] <= 2 and r["selection"] == "best_val" for r in runs)
    assert set(runs[0]["missing_modality"]) == {"0.0", "0.5"} and "order_analysis" in runs[0]
    # the largest rate is also averaged over 10 draws (the default), for ablations too (only that rate)
    assert set(runs[0]["missing_modality_mean"]) == {"0.5"} and runs[0]["missing_draws"] == 10
    assert set(runs[2]["missing_modality_mean"]) == {"0.5"} and "missing_modality" not in runs[2]
    # every run (ablations too) records its validation accuracy with half the modality entries dropped
    assert all(set(r["validation_missing_modality"]) == {"0.5"} for r in runs)
    assert all(0 <= r["validation_missing_modality"]["0.5"] <= 100 for r in runs)
    tables = (out / "tables.md").read_text()
    assert "Table 1" in tables and "Table 2" in tables and "Table 4" in tables and "Figure 5" in tables
    assert "Protocol (the same for every method)" in tables and "Learning-rate sweep" in tables
    assert "averaged over 10 draws of the drops" in tables and "| 50% missing (mean of 10 draws) |" in tables
    for name in ("fig3_contributions.png", "fig4_features.png", "fig5_orders.png", "results.csv"):
        assert (out / name).stat().st_size > 0
    assert set(result["written"]) >= {"fig3", "fig4", "fig5", "tables", "csv"}
    # a second call reuses the finished runs
    try:
        load_compare().main(argv)
    finally:
        torch.set_num_threads(threads)
    assert "reused" in capsys.readouterr().out


def test_compare_refuses_unknown_methods(tmp_path):
    with pytest.raises(ValueError, match="unknown methods"):
        load_compare().main(["--dataset", "synthetic", "--methods", "nope", "--output_dir", str(tmp_path)])


def test_compare_workers_give_the_serial_results(tmp_path, capsys):
    save_feature_splits(tmp_path / "features", sizes=(64, 32, 32))
    common = ["--dataset", str(tmp_path / "features"), "--methods", "ours", "late_fusion", "--ablations", "none",
              "--seeds", "0", "1", "--num_train_epochs", "2", "--hidden_size", "8", "--learning_rate", "0.05",
              "--lr_grid", "0.5", "1", "--lr_grid_extensions", "0", "--missing_rates", "0.5",
              "--batch_size", "16"]  # fmt: skip
    threads = torch.get_num_threads()
    try:
        serial = load_compare().main([*common, "--output_dir", str(tmp_path / "serial")])
        parallel = load_compare().main([*common, "--output_dir", str(tmp_path / "parallel"), "--num_workers", "2"])
    finally:
        torch.set_num_threads(threads)
    assert parallel["chosen"] == serial["chosen"]
    for a, b in zip(serial["results"], parallel["results"]):
        assert (a["method"], a["seed"], a["learning_rate"]) == (b["method"], b["seed"], b["learning_rate"])
        assert a["accuracy"] == b["accuracy"] and a["missing_modality"] == b["missing_modality"]


@pytest.mark.parametrize(
    ("tried", "expected"),
    [
        ({0.001: 80.0, 0.003: 82.0, 0.01: 81.0}, None),  # best inside the grid
        ({0.001: 80.0, 0.003: 82.0, 0.01: 83.0}, 0.01 * 0.01 / 0.003),  # best at the top: 0.0333
        ({0.001: 84.0, 0.003: 82.0, 0.01: 81.0}, 0.001 * 0.001 / 0.003),  # best at the bottom: 0.000333
        ({0.001: 82.0, 0.003: 82.0, 0.01: 81.0}, 0.001 / 3),  # a tie picks the smaller rate, here the bottom edge
        ({0.001: 80.0, 0.003: 83.0, 0.01: 83.0}, None),  # a tie at the top picks 0.003, inside
        ({0.01: 90.0}, None),  # one rate has no neighbour to step by
    ],
)
def test_rate_beyond_edge_by_hand(tried, expected):
    beyond = load_compare().rate_beyond_edge(tried)
    if expected is None:
        assert beyond is None
    else:
        assert beyond == pytest.approx(expected, rel=1e-12)


def fake_compare(monkeypatch, tmp_path, accuracy):
    """compare.py with its runs faked: every run returns `accuracy(method, seed, rate)` as its validation accuracy
    and is logged as `(method, ablation, seed, rate)` in the returned list; nothing is read or written."""
    compare = load_compare()
    calls = []

    def fake_execute(task):
        method, ablation, seed, lr, tag = task
        calls.append((method, ablation, seed, round(lr, 10)))
        return {"method": method, "ablation": ablation, "seed": seed, "learning_rate": lr,
                "validation_accuracy": accuracy(method, seed, round(lr, 10))}  # fmt: skip

    monkeypatch.setattr(compare, "_execute", fake_execute)
    monkeypatch.setattr(compare, "load_features", lambda name: ({}, "fake"))
    monkeypatch.setattr(compare, "feature_schema", lambda data: {"text": 2, "image": 2})
    monkeypatch.setattr(compare, "feature_id2label", lambda data: {0: "a", 1: "b"})
    monkeypatch.setattr(compare, "save_results", lambda *a, **k: None)
    monkeypatch.setattr(compare, "write_report", lambda *a, **k: {"tables": str(tmp_path / "tables.md")})
    (tmp_path / "tables.md").write_text("")
    return compare, calls


def run_compare(compare, argv):
    """`compare.main(argv)`, restoring torch's thread count, which main sets."""
    threads = torch.get_num_threads()
    try:
        return compare.main(argv)
    finally:
        torch.set_num_threads(threads)


def test_compare_extends_the_sweep_past_an_edge(tmp_path, monkeypatch):
    """A method whose best rate is the largest tried gets the next rate beyond it (and again while it stays best);
    one whose best rate is inside gets none; the chosen rate is picked among all rates tried."""
    val = {"ours": {0.01: 80.0, 0.02: 82.0, 0.04: 85.0, 0.08: 86.0, 0.16: 99.0}, "concat": {0.01: 80.0, 0.02: 82.0}}
    val["concat"][0.04] = 81.0  # concat: best 0.02, inside once 0.04 is tried
    compare, calls = fake_compare(monkeypatch, tmp_path, lambda method, seed, lr: val[method][lr])
    out = run_compare(compare, ["--dataset", "fake", "--output_dir", str(tmp_path), "--methods", "ours", "concat",
                                "--ablations", "none", "--seeds", "0", "--learning_rate", "0.01", "--lr_grid", "1",
                                "2", "--lr_grid_extensions", "2"])  # fmt: skip
    sweep = {(s["method"], round(s["learning_rate"], 10)) for s in out["sweep"]}
    # ours: 0.01, 0.02 -> 0.04 (0.02 * 2) -> 0.08, and no third extension (at most 2); concat: 0.04, then inside
    assert sweep == {("ours", 0.01), ("ours", 0.02), ("ours", 0.04), ("ours", 0.08),
                     ("concat", 0.01), ("concat", 0.02), ("concat", 0.04)}  # fmt: skip
    assert out["chosen"] == pytest.approx({"ours": 0.08, "concat": 0.02})
    assert [c for c in calls if c[0] == "concat"] == [("concat", None, 0, r) for r in (0.01, 0.02, 0.04)]
    with pytest.raises(ValueError, match="--lr_grid_extensions must be at least 0"):
        compare.main(["--dataset", "fake", "--output_dir", str(tmp_path), "--lr_grid_extensions", "-1"])


def test_compare_sweep_seeds_pick_on_the_mean_and_reuse_their_runs(tmp_path, monkeypatch):
    """With `--sweep_seeds 2` every rate runs on seeds 0 and 1, the rate is picked on their mean validation accuracy
    (seed 0 alone would pick the other one), and seeds 0 and 1 are reported from the sweep: only seed 2 trains
    again."""
    val = {(0.01, 0): 84.0, (0.01, 1): 80.0, (0.02, 0): 83.0, (0.02, 1): 83.0}  # means 82.0 and 83.0
    compare, calls = fake_compare(monkeypatch, tmp_path, lambda method, seed, lr: val.get((lr, seed), 50.0))
    flags = ["--dataset", "fake", "--output_dir", str(tmp_path), "--methods", "ours", "--ablations", "none",
             "--seeds", "0", "1", "2", "--learning_rate", "0.01", "--lr_grid", "1", "2",
             "--lr_grid_extensions", "0"]  # fmt: skip
    out = run_compare(compare, [*flags, "--sweep_seeds", "2"])
    assert out["chosen"] == pytest.approx({"ours": 0.02})
    assert {(s["learning_rate"], s["validation_accuracy"]) for s in out["sweep"]} == {(0.01, 82.0), (0.02, 83.0)}
    assert all(s["seeds"] == [0, 1] for s in out["sweep"])
    assert sorted(c[2:] for c in calls) == [(0, 0.01), (0, 0.02), (1, 0.01), (1, 0.02), (2, 0.02)]
    assert [(r["seed"], r["learning_rate"]) for r in out["results"]] == [(0, 0.02), (1, 0.02), (2, 0.02)]
    assert run_compare(compare, [*flags, "--sweep_seeds", "1"])["chosen"] == pytest.approx({"ours": 0.01})  # seed 0
    for bad in ("0", "4"):
        with pytest.raises(ValueError, match=f"--sweep_seeds must be between 1 and the 3 seeds, got {bad}"):
            compare.main([*flags, "--sweep_seeds", bad])


def test_report_names_the_seeds_the_sweep_averaged(tmp_path):
    rows = [{"method": m, "learning_rate": 0.01, "validation_accuracy": 80.0} for m in ("ours", "concat")]
    for seeds, heading in (([0, 1, 2], "mean over seeds 0, 1, 2"), ([0], "first seed"), (None, "first seed")):
        sweep = [{**r, "seeds": seeds} for r in rows] if seeds is not None else rows
        write_report(RESULTS[:4], str(tmp_path), sweep=sweep)
        text = (tmp_path / "tables.md").read_text()
        assert f"## Learning-rate sweep (validation fusion accuracy, {heading})" in text


def test_sweep_table_pads_methods_with_extended_sweeps_and_rounds_rates():
    """A method whose sweep was extended has more cells; rates show three significant digits; ties pick the smaller."""
    sweep = [{"method": "ours", "learning_rate": lr, "validation_accuracy": v}
             for lr, v in ((0.001, 90.0), (0.003, 93.0), (0.01, 93.5), (0.01 * 0.01 / 0.003, 94.0))]  # fmt: skip
    sweep += [{"method": "mla", "learning_rate": lr, "validation_accuracy": 92.0} for lr in (0.001, 0.003, 0.01)]
    lines = sweep_table(sweep).splitlines()
    assert lines[0] == "| Method | rate 1 | rate 2 | rate 3 | rate 4 |"
    assert lines[2] == "| Ours | 0.001: 90.00 | 0.003: 93.00 | 0.01: 93.50 | **0.0333: 94.00** |"
    assert lines[3] == "| MLA | **0.001: 92.00** | 0.003: 92.00 | 0.01: 92.00 |  |"
