"""Writes that a crash (even SIGKILL) never leaves half done: a file or a set of files appears whole or not at all.

A file is written to a hidden temporary file beside it and renamed over it (`os.replace`, atomic on POSIX and
Windows); a set of files (a saved model) is written into a hidden staging folder inside the target folder and
then moved in one file at a time, its commit file (e.g. `config.json`) last, after the old commit file was
removed: a reader that finds the commit file also finds the complete files written with it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

STAGING_PREFIX = ".staging-"


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; on a clean exit it replaces `path` (synced to disk first).

    On an exception the temporary file is removed and `path` is left as it was. A process killed inside the block
    leaves `path` untouched too (and a hidden `.<name>.*.tmp` file beside it).

    Args:
        path (`str`): the file to write.
        mode (`str`, *optional*, defaults to `"w"`): `"w"` (text) or `"wb"` (binary).
        encoding (`str`, *optional*, defaults to `"utf-8"`): text encoding (ignored in binary mode).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        # "x": a new file, with the permissions the umask gives (mkstemp would make it private to the owner)
        with open(tmp, mode.replace("w", "x"), encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_folder(target: str | os.PathLike, commit_files: Sequence[str] = ("config.json",)) -> Iterator[str]:
    """Yield a hidden staging folder inside `target`; on a clean exit move everything written there into `target`.

    Each file lands with `os.replace`, so no reader ever sees half of one. The `commit_files` are removed from
    `target` first and moved in last: while the move runs, `target` has no commit file, so a loader that needs one
    (`from_pretrained` needs `config.json`) never pairs new weights with an old config or the reverse. Staging
    folders left by a killed process are removed on the next call.

    Args:
        target (`str`): the folder the files are for (created if missing).
        commit_files (`Sequence[str]`, *optional*, defaults to `("config.json",)`): names moved in last.
    """
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=target))
    try:
        yield str(staging)
        _move_in(staging, target, commit_files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_in(staging: Path, target: Path, commit_files: Sequence[str]) -> None:
    names = sorted(os.listdir(staging))
    last = [name for name in names if name in commit_files]
    for name in last:
        (target / name).unlink(missing_ok=True)
    for name in [n for n in names if n not in last] + last:
        destination = target / name
        if (staging / name).is_dir() and destination.is_dir():
            shutil.rmtree(destination)
        os.replace(staging / name, destination)


__all__ = ["atomic_open", "staged_folder", "STAGING_PREFIX"]
