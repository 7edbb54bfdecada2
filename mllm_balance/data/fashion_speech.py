"""``fashion-speech``: Fashion-MNIST images paired with their class name spoken in noise (audio + image).

Source: Fashion-MNIST (Zalando Research, MIT licence) as Debian's ``dataset-fashion-mnist`` package ships it
(gzipped IDX files in ``/usr/share/datasets/fashion-mnist``; ``apt-get install -y dataset-fashion-mnist``).
Another folder holding the same four files can be given with ``source_dir`` or ``$FASHION_MNIST_DIR``.

Per class, ``per_class = (train, validation, test)`` images are drawn (seeded) from the training set (train
and validation, disjoint) and from t10k (test). Each image is box-downsampled to ``image_side`` x
``image_side`` pixels and bilinearly upsampled to ``image_size`` (a deliberately weak modality). Each sample's
audio is its class name spoken by eSpeak NG with a random English voice, pitch and speed, resampled to
16 kHz, silence-trimmed, placed at a random offset of a ``window_seconds`` window and mixed with white noise at
``snr_db`` measured on the speech. Every random choice is seeded from ``(seed, sample id)`` with
``zlib.crc32``, so a build is reproducible byte for byte.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from datasets import DatasetDict
from PIL import Image

from . import speech
from .benchmark import read_build, write_manifest
from .cache import benchmark_dir, build_once, file_sha256
from .records import stable_seed

NAME = "fashion-speech"
MODALITIES = ("audio", "image")
LABEL_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
SPOKEN_NAMES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
BUILD_VERSION = 1
DEFAULT_SOURCE_DIR = Path("/usr/share/datasets/fashion-mnist")
SOURCE_ENV = "FASHION_MNIST_DIR"
SOURCE_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
APT_HINT = "apt-get install -y dataset-fashion-mnist"


def resolve_source_dir(path: str | Path | None = None) -> Path:
    """The Fashion-MNIST folder: ``path``, else ``$FASHION_MNIST_DIR``, else Debian's location."""
    folder = Path(path or os.environ.get(SOURCE_ENV) or DEFAULT_SOURCE_DIR).expanduser()
    missing = [name for name in SOURCE_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files not found in {folder}: {missing}. Install Debian's package ({APT_HINT}) or "
            f"pass source_dir / set ${SOURCE_ENV} to a folder with the four gzipped IDX files."
        )
    return folder


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes into an array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes.")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape}, found {body.size} values.")
    return body.reshape(shape)


def degrade(image: np.ndarray, side: int, size: int) -> Image.Image:
    """Box-downsample a grey image to ``side`` x ``side``, upsample bilinearly to ``size``, as RGB."""
    small = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).resize((side, side), Image.Resampling.BOX)
    return small.resize((size, size), Image.Resampling.BILINEAR).convert("RGB")


def make_config(
    seed: int,
    per_class: Sequence[int],
    snr_db: float,
    image_side: int,
    image_size: int,
    window_seconds: float,
    folder: Path,
) -> dict[str, Any]:
    """Everything that determines the bytes of a build (its cache key)."""
    return {
        "name": NAME,
        "build_version": BUILD_VERSION,
        "seed": int(seed),
        "per_class": [int(n) for n in per_class],
        "snr_db": float(snr_db),
        "image_side": int(image_side),
        "image_size": int(image_size),
        "window_seconds": float(window_seconds),
        "sample_rate": speech.SAMPLE_RATE,
        "source_sha256": {k: file_sha256(folder / v)[:16] for k, v in sorted(SOURCE_FILES.items())},
        "versions": {"pillow": version("pillow"), **speech.engine_versions()},
    }


def select(labels_train: np.ndarray, labels_test: np.ndarray, per_class: Sequence[int], seed: int):
    """Seeded per-class draws: ``{split: [(source, index)]}``, each split in a seeded shuffled order."""
    n_train, n_val, n_test = per_class
    rng = np.random.default_rng(stable_seed(seed, NAME, "select"))
    picks: dict[str, list[tuple[str, int]]] = {"train": [], "validation": [], "test": []}
    for c in range(len(LABEL_NAMES)):
        pool = rng.permutation(np.flatnonzero(labels_train == c))
        test_pool = rng.permutation(np.flatnonzero(labels_test == c))
        if pool.size < n_train + n_val or test_pool.size < n_test:
            raise ValueError(f"{NAME}: class {LABEL_NAMES[c]!r} has too few images for per_class={tuple(per_class)}.")
        picks["train"] += [("train", int(i)) for i in pool[:n_train]]
        picks["validation"] += [("train", int(i)) for i in pool[n_train : n_train + n_val]]
        picks["test"] += [("t10k", int(i)) for i in test_pool[:n_test]]
    return {split: [rows[i] for i in rng.permutation(len(rows))] for split, rows in picks.items()}


def build(folder: Path, config: dict[str, Any], src: Path, num_workers: int | None = None) -> None:
    """Write images, audio and the manifest of one build into ``folder``."""
    seed = config["seed"]
    arrays = {k: read_idx(src / v) for k, v in SOURCE_FILES.items()}
    images = {"train": arrays["train_images"], "t10k": arrays["test_images"]}
    labels = {"train": arrays["train_labels"], "t10k": arrays["test_labels"]}
    picks = select(labels["train"], labels["t10k"], config["per_class"], seed)
    (folder / "image").mkdir(parents=True)
    (folder / "audio").mkdir()
    splits: dict[str, list[dict[str, Any]]] = {}
    items: list[speech.SpeechItem] = []
    for split, rows in picks.items():
        out = []
        for source, index in rows:
            sample_id = f"{source}-{index:05d}"
            label = int(labels[source][index])
            degrade(images[source][index], config["image_side"], config["image_size"]).save(
                folder / "image" / f"{sample_id}.png"
            )
            rng = np.random.default_rng(stable_seed(seed, NAME, "voice", sample_id))
            voice = speech.random_voice(rng)
            items.append(
                speech.SpeechItem(
                    text=SPOKEN_NAMES[label],
                    path=str(folder / "audio" / f"{sample_id}.wav"),
                    offset=float(rng.random()),
                    noise_seed=stable_seed(seed, NAME, "noise", sample_id),
                    snr_db=config["snr_db"],
                    **voice,
                )
            )
            out.append(
                {
                    "id": sample_id,
                    "labels": label,
                    "image": f"image/{sample_id}.png",
                    "audio": f"audio/{sample_id}.wav",
                    "spoken": SPOKEN_NAMES[label],
                    **voice,
                }
            )
        splits[split] = out
    placed = speech.synthesize(items, config["window_seconds"], num_workers=num_workers)
    flat = [row for split in ("train", "validation", "test") for row in splits[split]]
    for row, info in zip(flat, placed):
        row.update(info)
    write_manifest(folder, NAME, config, MODALITIES, LABEL_NAMES, splits)


def load_fashion_speech(
    seed: int = 0,
    *,
    per_class: Sequence[int] = (200, 50, 50),
    snr_db: float = -9.5,
    image_side: int = 5,
    image_size: int = 112,
    window_seconds: float = 3.0,
    source_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    rebuild: bool = False,
    num_workers: int | None = None,
) -> DatasetDict:
    """Build (once, cached) and load ``fashion-speech``.

    Args:
        seed: Seed of every random choice.
        per_class: Train, validation and test samples per class.
        snr_db: Signal-to-noise ratio of the speech in dB (the default makes audio strong but not saturated).
        image_side: Side of the box-downsampled image.
        image_size: Side of the stored (upsampled) image.
        window_seconds: Length of every audio file.
        source_dir: Folder with Fashion-MNIST's four gzipped IDX files (default: Debian's location).
        cache_dir: Cache root (default: ``$MLLM_BALANCE_CACHE`` or ``~/.cache/mllm_balance``).
        rebuild: Build again even if a finished build exists.
        num_workers: Speech synthesis processes.

    Returns:
        A ``DatasetDict`` (train / validation / test) with ``audio`` (16 kHz WAV path), ``image`` (PNG path) and
        ``labels``.
    """
    if len(per_class) != 3 or min(per_class) < 1:
        raise ValueError(f"per_class must be three positive counts (train, validation, test), got {per_class}.")
    speech.check_available()
    src = resolve_source_dir(source_dir)
    config = make_config(seed, per_class, snr_db, image_side, image_size, window_seconds, src)
    target = benchmark_dir(NAME, config, cache_dir)
    build_once(target, lambda tmp: build(tmp, config, src, num_workers), rebuild=rebuild)
    return read_build(target, description=__doc__.split("\n\n")[0])
