"""The console of the main job (`make demo`): no library warnings, one progress bar, one summary line per epoch; and
bitsandbytes left unloaded until quantisation uses it."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from mllm_balance._deferred_imports import DeferredImportFinder
from mllm_balance.callbacks import format_epoch_line

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 3
EPOCH_LINE = re.compile(
    r"epoch (\d+)/(\d+)  order (\S+)  loss \d+\.\d{4}  fusion \d+\.\d\d  acc text \d+\.\d\d image \d+\.\d\d  EDM (\S+)"
)


def demo_command() -> list[str]:
    """The command `make demo` runs (the Makefile's LAUNCH line and recipe), with this interpreter's venv."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    launch = re.search(r"^LAUNCH := (.+)$", text, re.M).group(1)
    recipe = re.search(r"^demo:.*\n\t\$\(LAUNCH\) (\S+)", text, re.M).group(1)
    return shlex.split(launch.replace("$(BIN)", str(Path(sys.executable).parent))) + [str(ROOT / recipe)]


def console_segments(console: str) -> list[str]:
    """What a terminal would show line by line: tqdm redraws a bar in place with carriage returns."""
    return [s.strip() for s in re.split(r"[\r\n]", console) if s.strip()]


def test_main_job_console_is_one_bar_and_one_line_per_epoch(tmp_path, features_dir):
    out = tmp_path / "out"
    flags = ["--features_dir", str(features_dir), "--output_dir", str(out), "--num_train_epochs", str(EPOCHS),
             "--hidden_size", "8", "--learning_rate", "0.03"]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONUNBUFFERED", None)  # a piped stdout is block-buffered, as on a fresh machine
    proc = subprocess.run(
        demo_command() + flags, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
        timeout=300,
    )  # fmt: skip
    console = proc.stdout
    assert proc.returncode == 0, console[-3000:]
    assert not re.search(r"Warning\b|warnings\.warn", console), console  # no Python warning of any category
    for noise in ("[transformers]", "bitsandbytes", "kernels-community", "were not passed to `accelerate launch`",
                  "Writing model shards", "{'"):  # fmt: skip
        assert noise not in console, noise
    # one progress bar: every tqdm frame counts the training steps (no evaluation or saving bars)
    totals = {int(t) for t in re.findall(r"\d+/(\d+) \[", console)}
    assert len(totals) == 1 and totals.pop() % EPOCHS == 0, console
    results = json.loads((out / "results.json").read_text())
    lines = [m for s in console_segments(console) if (m := EPOCH_LINE.fullmatch(s))]
    assert [int(m.group(1)) for m in lines] == list(range(1, EPOCHS + 1)), console
    assert {int(m.group(2)) for m in lines} == {EPOCHS}
    # each line shows the order that epoch trained with and the EDM scored after it
    assert [m.group(3) for m in lines] == [">".join(o) for o in results["order_history"]]
    assert [m.group(4) for m in lines] == [f"{edm:.2f}" for edm in results["edm_history"]]
    assert console.count("accuracy fusion") == 1  # the closing summary table


def test_epoch_line_leaves_out_what_was_not_logged():
    values = {"loss": 0.91234, "eval_accuracy": 79.25, "accuracy/text": 77.0, "accuracy/image": 52.125, "edm": 23.4}
    line = format_epoch_line(3, 40, values, order=["image", "text"])
    assert line == "epoch 3/40  order image>text  loss 0.9123  fusion 79.25  acc text 77.00 image 52.12  EDM 23.40"
    assert format_epoch_line(2, None, {"order": "a>b", "loss": 1.5}) == "epoch 2  loss 1.5000"


def test_bitsandbytes_is_imported_only_when_used():
    code = (
        "import sys\n"
        "from mllm_balance import BalanceTrainer\n"
        "from mllm_balance.recipe import run_recipe\n"
        "module = sys.modules.get('bitsandbytes')\n"
        "print('deferred', module is None or type(module).__name__ == '_LazyModule', flush=True)\n"
        "import bitsandbytes\n"
        "print('usable', hasattr(bitsandbytes.nn, 'Linear8bitLt'), flush=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    before, marker, after = proc.stdout.partition("deferred True\n")
    assert marker, proc.stdout  # importing the library (Trainer, peft included) ran none of bitsandbytes
    assert "bitsandbytes" not in before and "kernels" not in before, before
    assert "usable True" in after  # and quantisation still finds it whole


def test_deferred_module_runs_on_first_attribute_access(tmp_path, monkeypatch):
    package = tmp_path / "deferred_probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("import builtins\nbuiltins._deferred_probe_runs += 1\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("builtins._deferred_probe_runs", 0, raising=False)
    monkeypatch.setattr(sys, "meta_path", [DeferredImportFinder(["deferred_probe_pkg"]), *sys.meta_path])
    monkeypatch.delitem(sys.modules, "deferred_probe_pkg", raising=False)
    import builtins

    import deferred_probe_pkg

    assert builtins._deferred_probe_runs == 0  # imported, not run
    assert deferred_probe_pkg.VALUE == 42
    assert builtins._deferred_probe_runs == 1
    monkeypatch.delitem(sys.modules, "deferred_probe_pkg")
