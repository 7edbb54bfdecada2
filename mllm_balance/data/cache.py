"""Where generated benchmarks live, and how a build lands there once and atomically.

The cache root is ``$MLLM_BALANCE_CACHE`` if set, else ``$XDG_CACHE_HOME/mllm_balance``, else
``~/.cache/mllm_balance``. A benchmark built with a given configuration goes to
``<root>/benchmarks/<name>/<hash>``, where the hash covers everything that changes its bytes (builder version,
seed, sizes, options, source package versions). A build is written into a temporary sibling folder and
renamed into place when complete, so a crashed build never looks finished; a lock file (POSIX ``flock``) makes
a second process that asks for the same benchmark meanwhile (e.g. the other rank of ``accelerate launch``)
wait for the first build instead of repeating it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CACHE_ENV = "MLLM_BALANCE_CACHE"
MANIFEST = "manifest.json"


def cache_root() -> Path:
    """The package's cache folder (not created)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mllm_balance"


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, fixed separators, UTF-8, one trailing newline."""
    return (json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=1, separators=(",", ": ")) + "\n").encode()


def config_hash(config: dict[str, Any], length: int = 16) -> str:
    """Short SHA-256 of a configuration's canonical JSON."""
    return hashlib.sha256(canonical_json(config)).hexdigest()[:length]


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def benchmark_dir(name: str, config: dict[str, Any], cache_dir: str | Path | None = None) -> Path:
    """``<cache root>/benchmarks/<name>/<hash of config>``."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    return root / "benchmarks" / name / config_hash(config)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed); a no-op where ``fcntl`` is unavailable."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_once(target: Path, build: Callable[[Path], None], rebuild: bool = False) -> Path:
    """Run ``build(tmp_dir)`` unless ``target`` already holds a finished build, then move it into place.

    Args:
        target: Final folder; a build is finished when ``target/manifest.json`` exists.
        build: Writes every file, ``manifest.json`` last, into the folder it is given.
        rebuild: Delete a finished build and build again.

    Returns:
        ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / f".{target.name}.lock"):
        if rebuild and target.exists():
            shutil.rmtree(target)
        if (target / MANIFEST).is_file():
            return target
        tmp = target.parent / f".tmp-{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            build(tmp)
            if not (tmp / MANIFEST).is_file():
                raise RuntimeError(f"The build in {tmp} wrote no {MANIFEST}.")
            if target.exists():
                shutil.rmtree(target)  # leftover of an interrupted build (a finished one returned above)
            os.rename(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target
