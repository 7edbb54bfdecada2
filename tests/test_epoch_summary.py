"""EpochSummaryCallback's progress bar: shown on the main process unless tqdm is off, resumed at the global step,
on stdout, advanced per step and closed at the end (the console test checks its output through a real launch)."""

from __future__ import annotations

import sys

from transformers import TrainerControl, TrainerState, TrainingArguments

from mllm_balance.callbacks import EpochSummaryCallback


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
