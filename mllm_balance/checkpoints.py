"""Checkpoints of [`BalanceTrainer`]: which one to resume from, and whether a folder really is one for this model.

A checkpoint folder `checkpoint-<step>` holds the trainable weights (`model.safetensors`), `config.json`, the order
state (`balance_state.json`), the optimizer, scheduler and RNG states, and `trainer_state.json`, which the Trainer
writes last: a folder without a readable `trainer_state.json` was cut short (the run was killed while writing it).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .order_state import ORDER_STATE_NAME

logger = logging.getLogger(__name__)

TRAINER_STATE_NAME = "trainer_state.json"
#: `resume_from_checkpoint` values that pick the newest complete checkpoint of the output folder.
RESUME_LAST = ("last", "true")
#: `resume_from_checkpoint` values that mean a fresh run (a command line cannot pass `None`).
RESUME_NONE = ("", "false", "none")
_CHECKPOINT_RE = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def incomplete_reason(path: str | os.PathLike) -> str | None:
    """Why the checkpoint folder `path` was cut short while being written (`None` if `trainer_state.json`, written
    last, is there and readable)."""
    state = Path(path) / TRAINER_STATE_NAME
    if not state.is_file():
        return f"{TRAINER_STATE_NAME} is missing"
    try:
        json.loads(state.read_text())
    except (OSError, ValueError) as error:
        return f"{TRAINER_STATE_NAME} is unreadable ({type(error).__name__}: {error})"
    return None


def checkpoint_problems(path: str | os.PathLike, model: torch.nn.Module) -> list[str]:
    """What keeps `path` from being a checkpoint of [`BalanceTrainer`] for `model` (empty: it is one).

    Checks that the folder exists, that `trainer_state.json` and `balance_state.json` are there and readable, that
    the order state names the model's modalities, and that the saved weights are the model's trainable weights
    (same names, same shapes): a checkpoint of another model config is refused rather than half loaded.
    """
    path = Path(path)
    if not path.is_dir():
        return ["the folder does not exist" if not path.exists() else "it is not a folder"]
    problems = [reason for reason in (incomplete_reason(path),) if reason]
    problems += _order_state_problems(path, list(model.config.modalities))
    problems += _weight_problems(path, {k: tuple(v.shape) for k, v in model.trainable_state_dict().items()})
    return problems


def check_checkpoint(path: str | os.PathLike, model: torch.nn.Module) -> None:
    """Raise a `ValueError` naming `path` and what is wrong unless it is a checkpoint of this trainer for `model`."""
    problems = checkpoint_problems(path, model)
    if problems:
        raise ValueError(
            f"{path} is not a BalanceTrainer checkpoint of this model: " + "; ".join(problems) + ". Pass a "
            f"{PREFIX_CHECKPOINT_DIR}-<step> folder written by a run with the same model settings, or "
            f"resume_from_checkpoint='last'"
        )


def checkpoint_folders(output_dir: str | os.PathLike) -> list[Path]:
    """The `checkpoint-<step>` folders of `output_dir`, newest (highest step) first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if (m := _CHECKPOINT_RE.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found, key=lambda item: item[0], reverse=True)]


def last_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest complete checkpoint of `output_dir` (`None` if there is none); newer ones that a killed run left
    incomplete are skipped with a warning."""
    for folder in checkpoint_folders(output_dir):
        reason = incomplete_reason(folder)
        if reason is None:
            return str(folder)
        logger.warning("skipping checkpoint %s, which was cut short while being written (%s)", folder, reason)
    return None


def resolve_checkpoint(value: str | bool | None, output_dir: str | os.PathLike, model: torch.nn.Module) -> str | None:
    """The checkpoint folder `resume_from_checkpoint=value` means, checked against `model`.

    Args:
        value (`str`, `bool` or `None`): `None`, `False`, `""`, `"false"` or `"none"`: no resume. `True`, `"last"`
            or `"true"`: the newest complete checkpoint in `output_dir`. Anything else: a checkpoint folder.
        output_dir (`str`): the run's output folder.
        model (`torch.nn.Module`): the model the checkpoint must fit.

    Raises:
        `ValueError`: no checkpoint to resume in `output_dir`, or the folder is not a checkpoint of this model.
    """
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in RESUME_NONE):
        return None
    if value is True or (isinstance(value, str) and value.strip().lower() in RESUME_LAST):
        path = last_checkpoint(output_dir)
        if path is None:
            raise ValueError(
                f"resume_from_checkpoint={value!r}: {output_dir} holds no complete {PREFIX_CHECKPOINT_DIR}-<step> "
                "folder to resume from (save some with save_strategy='epoch' or 'steps')"
            )
    else:
        path = str(value)
    check_checkpoint(path, model)
    return path


def _order_state_problems(path: Path, modalities: list[str]) -> list[str]:
    file = path / ORDER_STATE_NAME
    if not file.is_file():
        return [f"{ORDER_STATE_NAME} (the modality order state) is missing"]
    try:
        order = json.loads(file.read_text())["order"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return [f"{ORDER_STATE_NAME} is unreadable ({type(error).__name__}: {error})"]
    if not isinstance(order, list) or sorted(order) != sorted(modalities):
        return [f"{ORDER_STATE_NAME} orders the modalities {order}, the model has {modalities}"]
    return []


def _weight_problems(path: Path, expected: dict[str, tuple[int, ...]]) -> list[str]:
    files = sorted(path.glob("*.safetensors"))
    if not files:
        return ["model.safetensors (the weights) is missing"]
    saved: dict[str, tuple[int, ...]] = {}
    try:
        for file in files:
            with safe_open(str(file), "pt") as f:
                saved.update({key: tuple(f.get_slice(key).get_shape()) for key in f.keys()})
    except (OSError, SafetensorError) as error:
        return [f"{file.name} is unreadable ({type(error).__name__}: {error})"]
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    shapes = {k: (saved[k], expected[k]) for k in sorted(set(saved) & set(expected)) if saved[k] != expected[k]}
    problems = []
    if missing:
        problems.append(f"the weights lack {len(missing)} of the model's tensors ({_few(missing)})")
    if unexpected:
        problems.append(f"the weights hold {len(unexpected)} tensors this model does not have ({_few(unexpected)})")
    if shapes:
        described = ", ".join(f"{k}: saved {list(s)}, model {list(m)}" for k, (s, m) in list(shapes.items())[:3])
        problems.append(f"{len(shapes)} tensors have other shapes (weights of another model config: {described})")
    return problems


def _few(names: list[str], limit: int = 4) -> str:
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


__all__ = [
    "check_checkpoint",
    "checkpoint_folders",
    "checkpoint_problems",
    "incomplete_reason",
    "last_checkpoint",
    "resolve_checkpoint",
    "RESUME_LAST",
    "RESUME_NONE",
]
