"""EpochSummaryCallback in process: its progress bar (shown on the main process unless tqdm is off, resumed at the
global step, on stdout, advanced per step and closed at the end), its epoch lines (exact text, order, epoch number,
stream, flushing) and `format_epoch_line`. The console test checks the output of a real launch."""

from __future__ import annotations

import re
import sys

from transformers import TrainerControl, TrainerState, TrainingArguments

from mllm_balance.callbacks import EpochSummaryCallback, format_epoch_line


def begin(tmp_path, disable_tqdm=False, main=True, max_steps=40, global_step=0):
    args = TrainingArguments(str(tmp_path), disable_tqdm=disable_tqdm)
    state = TrainerState(max_steps=max_steps, global_step=global_step, is_world_process_zero=main)
    callback = EpochSummaryCallback()
    callback.on_train_begin(args, state, TrainerControl())
    return callback, args, state


def test_the_bar_counts_the_run_s_steps_on_stdout_from_the_resumed_step(tmp_path):
    callback, args, state = begin(tmp_path, max_steps=40, global_step=12)
    bar = callback.training_bar
    assert (bar.total, bar.n, bar.fp) == (40, 12, sys.stdout)
    assert bar.dynamic_ncols
    state.global_step = 15
    callback.on_step_end(args, state, TrainerControl())
    assert bar.n == 15
    callback.on_train_end(args, state, TrainerControl())
    assert callback.training_bar is None


def test_no_bar_with_tqdm_off_or_on_another_process(tmp_path):
    for kwargs in ({"disable_tqdm": True}, {"main": False}):
        callback, args, state = begin(tmp_path, **kwargs)
        assert callback.training_bar is None
        callback.on_train_end(args, state, TrainerControl())


# --- the epoch lines -------------------------------------------------------------------------------------------------

LINE_1 = "epoch 1/2  order image>text  loss 0.9123  fusion 79.25  acc text 77.00 image 52.12  EDM 23.40"
LINE_2 = "epoch 2/2  order text>image  loss 0.5000"


def balanced_model(order):
    from mllm_balance import BalanceConfig, BalancedModel

    config = BalanceConfig(modality_dims={"text": 4, "image": 3}, num_labels=2, hidden_size=5)
    config.train_order = list(order)
    return BalancedModel(config)


def run_two_epochs(callback, args, state, model, second_epoch_start=1.0):
    """What the Trainer calls in a two-epoch run: the first epoch logs its loss, the eval metrics and the scores
    (with the order for the next epoch, which the scoring also writes into the model's config), the second its loss."""
    control = TrainerControl()
    state.num_train_epochs = 2
    state.epoch = 0.0
    callback.on_epoch_begin(args, state, control, model=model)
    callback.on_log(args, state, control, logs={"loss": 0.91234, "grad_norm": 1.0, "learning_rate": 0.05})
    callback.on_log(args, state, control, logs={"eval_accuracy": 79.25, "eval_loss": 0.7})
    scores = {"shapley/text": 0.3, "accuracy/text": 77.0, "accuracy/image": 52.125, "edm": 23.4, "order": "text>image"}
    callback.on_log(args, state, control, logs=scores)
    model.config.train_order = ["text", "image"]
    state.epoch = second_epoch_start
    callback.on_epoch_begin(args, state, control, model=model)
    callback.on_log(args, state, control, logs={"loss": 0.5})
    state.epoch = 2.0
    callback.on_train_end(args, state, control, model=model)


def test_one_line_per_epoch_with_the_order_it_trained_with_and_its_logged_values(tmp_path, capsys):
    callback, args, state = begin(tmp_path, disable_tqdm=True, max_steps=4)
    run_two_epochs(callback, args, state, balanced_model(["image", "text"]))
    assert capsys.readouterr().out == f"{LINE_1}\n{LINE_2}\n"


def test_an_epoch_start_a_hair_below_the_whole_epoch_counts_as_that_epoch(tmp_path, capsys):
    callback, args, state = begin(tmp_path, disable_tqdm=True, max_steps=4)
    run_two_epochs(callback, args, state, balanced_model(["image", "text"]), second_epoch_start=1.0 - 1e-12)
    assert capsys.readouterr().out == f"{LINE_1}\n{LINE_2}\n"


def test_a_second_run_with_the_same_callback_prints_only_its_own_epochs(tmp_path, capsys):
    callback, args, state = begin(tmp_path, disable_tqdm=True, max_steps=4)
    model = balanced_model(["image", "text"])
    run_two_epochs(callback, args, state, model)
    model.config.train_order = ["image", "text"]
    state.global_step = 0
    callback.on_train_begin(args, state, TrainerControl())  # e.g. trainer.train() called again
    callback.on_log(args, state, TrainerControl(), logs={"loss": 9.0})  # before the first epoch: not an epoch's value
    run_two_epochs(callback, args, state, model)
    assert capsys.readouterr().out == f"{LINE_1}\n{LINE_2}\n" * 2


def test_models_without_a_training_order_get_lines_without_one(tmp_path, capsys):
    import torch

    from mllm_balance.baselines import ConcatConfig, ConcatModel

    baseline = ConcatModel(ConcatConfig(modality_dims={"text": 4, "image": 3}, num_labels=2, hidden_size=5))
    plain = torch.nn.Linear(2, 2)  # any model a Trainer takes: no config at all
    for model in (baseline, plain, None):
        callback, args, state = begin(tmp_path, disable_tqdm=True, max_steps=2)
        state.num_train_epochs = 1
        callback.on_epoch_begin(args, state, TrainerControl(), model=model)
        callback.on_log(args, state, TrainerControl(), logs={"loss": 1.25})
        state.epoch = 1.0
        callback.on_train_end(args, state, TrainerControl(), model=model)
    assert capsys.readouterr().out == "epoch 1/1  loss 1.2500\n" * 3


def test_a_log_call_without_logs_is_ignored(tmp_path, capsys):
    callback, args, state = begin(tmp_path, disable_tqdm=True, max_steps=2)
    state.num_train_epochs = 1
    callback.on_epoch_begin(args, state, TrainerControl(), model=None)
    callback.on_log(args, state, TrainerControl())
    callback.on_log(args, state, TrainerControl(), logs={"loss": 1.25})
    callback.on_log(args, state, TrainerControl(), logs=None)
    state.epoch = 1.0
    callback.on_train_end(args, state, TrainerControl())
    assert capsys.readouterr().out == "epoch 1/1  loss 1.2500\n"


def test_only_the_main_process_writes_lines(tmp_path, capsys):
    for disable_tqdm in (True, False):
        callback, args, state = begin(tmp_path, disable_tqdm=disable_tqdm, main=False, max_steps=4)
        run_two_epochs(callback, args, state, balanced_model(["image", "text"]))
    assert capsys.readouterr().out == ""


def test_each_line_reaches_a_block_buffered_stdout_when_written(tmp_path, monkeypatch):
    """A piped stdout (`accelerate launch`, a log file) is block-buffered: each line is flushed as it is written."""
    import io

    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8"))
    callback, args, state = begin(tmp_path, disable_tqdm=True, max_steps=4)
    model = balanced_model(["image", "text"])
    control = TrainerControl()
    state.num_train_epochs = 2
    callback.on_epoch_begin(args, state, control, model=model)
    callback.on_log(args, state, control, logs={"loss": 0.5})
    state.epoch = 1.0
    callback.on_epoch_begin(args, state, control, model=model)
    assert raw.getvalue().decode() == "epoch 1/2  order image>text  loss 0.5000\n"
    callback.on_log(args, state, control, logs={"loss": 0.25})
    state.epoch = 2.0
    callback.on_train_end(args, state, control, model=model)
    assert raw.getvalue().decode().endswith("\nepoch 2/2  order image>text  loss 0.2500\n")


def test_with_the_bar_each_line_is_written_on_a_line_of_its_own(tmp_path, capsys):
    """The bar is cleared before a line and redrawn after it, so no line is glued to the bar's last frame."""
    callback, args, state = begin(tmp_path, max_steps=4)
    model = balanced_model(["image", "text"])
    control = TrainerControl()
    state.num_train_epochs = 2
    for steps, loss, end in (((1, 2), 0.5, 1.0), ((3, 4), 0.25, 2.0)):
        callback.on_epoch_begin(args, state, control, model=model)
        for step in steps:
            state.global_step = step
            callback.on_step_end(args, state, control)
        callback.on_log(args, state, control, logs={"loss": loss})
        state.epoch = end
    callback.on_train_end(args, state, control, model=model)
    segments = [s.strip() for s in re.split(r"[\r\n]", capsys.readouterr().out) if s.strip()]
    assert [s for s in segments if "epoch" in s] == [
        "epoch 1/2  order image>text  loss 0.5000",
        "epoch 2/2  order image>text  loss 0.2500",
    ]
    assert segments[0].startswith("0%|") and "4/4" in segments[-1]


def test_training_quiets_library_notices_and_bars_and_restores_them_at_the_end(tmp_path):
    import logging

    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    notices = logging.getLogger("transformers.trainer_utils")
    filters = list(notices.filters)
    callback, args, state = begin(tmp_path, disable_tqdm=True)
    assert not hf_logging.is_progress_bar_enabled() and len(notices.filters) == len(filters) + 1
    callback.on_train_end(args, state, TrainerControl())
    assert hf_logging.is_progress_bar_enabled() and notices.filters == filters


# --- format_epoch_line -----------------------------------------------------------------------------------------------


def test_epoch_line_formats_every_logged_value():
    values = {"loss": 0.91234, "eval_accuracy": 79.25, "accuracy/text": 77.0, "accuracy/image": 52.125, "edm": 23.4}
    line = format_epoch_line(3, 40, values, order=["image", "text"])
    assert line == "epoch 3/40  order image>text  loss 0.9123  fusion 79.25  acc text 77.00 image 52.12  EDM 23.40"


def test_epoch_line_leaves_out_what_was_not_logged_or_not_known():
    assert format_epoch_line(2, None, {"order": "a>b", "loss": 1.5}) == "epoch 2  loss 1.5000"
    assert format_epoch_line(1, 3, {}, order=[]) == "epoch 1/3"
    assert format_epoch_line(1, 3, {"edm": 2.0, "eval_loss": 0.5}) == "epoch 1/3  EDM 2.00"


def test_epoch_line_keeps_a_modality_name_with_a_slash_whole():
    values = {"accuracy/audio/left": 61.5, "accuracy/audio/right": 40.0, "shapley/audio/left": 3.0}
    assert format_epoch_line(1, 2, values) == "epoch 1/2  acc audio/left 61.50 audio/right 40.00"
