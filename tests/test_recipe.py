"""Recipes on precomputed features: one process in-process, and two CPU processes (DDP over gloo) launched by
`accelerate launch`, which must agree on the order and write one results.json."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from mllm_balance.recipe import parse_recipe_args, run_recipe

ROOT = Path(__file__).resolve().parents[1]


def recipe_args(features_dir, out):
    return ["--features_dir", str(features_dir), "--output_dir", str(out), "--num_train_epochs", "2",
            "--use_cpu", "true", "--save_strategy", "no", "--learning_rate", "0.01", "--hidden_size", "8",
            "--disable_tqdm", "true"]  # fmt: skip


def test_recipe_writes_results_in_the_pinned_format(tmp_path, features_dir, capsys):
    config = ROOT / "recipes" / "configs" / "mvsa.yaml"
    args = parse_recipe_args(
        str(config), recipe_args(features_dir, tmp_path / "out") + ["--missing_modality_eval", "true"]
    )
    assert args[2].learning_rate == 0.01 and args[2].weight_decay == 0.01  # flag overrides YAML; YAML fills the rest
    results = run_recipe(*args)
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert saved["dataset"] == "mvsa-single" and saved["method"] == "ours"
    assert saved["modalities"] == ["text", "image"]
    assert set(saved["accuracy"]["per_modality"]) == {"text", "image"}
    assert 0 <= saved["accuracy"]["fusion"] <= 100
    assert len(saved["order_history"]) == 2
    assert list(saved["missing_modality"]) == ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5"]
    printed = capsys.readouterr().out
    assert "accuracy fusion" in printed and "EDM" in printed and "order" in printed


def test_two_process_ddp_recipe_agrees_on_the_order(tmp_path, features_dir):
    from accelerate.test_utils import get_torch_dist_unique_port

    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(get_torch_dist_unique_port()),
        str(ROOT / "recipes" / "train_mvsa.py"), *recipe_args(features_dir, out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the ranks' lines may interleave: match each JSON list of orders exactly
    histories = dict(re.findall(r"\[rank (\d)\] order_history=(\[(?:\[[^\]]*\](?:, )?)*\])", proc.stdout))
    assert set(histories) == {"0", "1"}, proc.stdout[-2000:]
    assert json.loads(histories["0"]) == json.loads(histories["1"])
    assert [p.name for p in out.rglob("results.json")] == ["results.json"]
    assert proc.stdout.count("accuracy fusion") == 1  # the summary is printed once
    results = json.loads((out / "results.json").read_text())
    assert results["order_history"] == json.loads(histories["0"])


def test_recipe_is_reproducible_whatever_ran_before(tmp_path, features_dir):
    import torch

    runs = []
    for k, noise in enumerate((1, 2)):
        torch.manual_seed(noise)  # e.g. a first run's extraction consumes random numbers, a second run's does not
        torch.randn(noise * 10)
        args = parse_recipe_args(None, recipe_args(features_dir, tmp_path / f"run{k}"))
        runs.append(run_recipe(*args))
    assert runs[0]["accuracy"] == runs[1]["accuracy"]
    assert runs[0]["shapley"] == runs[1]["shapley"]
