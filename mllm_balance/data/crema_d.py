"""CREMA-D (audio + video frames, 6 emotions) from its released folder plus extracted frames.

Layout read::

    <data_dir>/
        AudioWAV/<clip>.wav              as released, e.g. 1001_DFA_ANG_XX.wav
        Image-01-FPS/<clip>/<frame>.jpg  frames of VideoFlash/<clip>.flv at 1 fps (``frames_dir``), as
                                         OGM-GE's video pre-processing writes them; frames sort in time order

Labels follow OGM-GE's class order: NEU, HAP, SAD, FEA, DIS, ANG (the third field of the clip name).

Splits, in order of preference (looked up in ``split_dir``, default ``data_dir``):

1. OGM-GE's lists ``train.csv`` / ``test.csv`` (``<clip>,<LABEL>`` per line; 6,698 / 744 clips).
2. MLA's lists ``my_train_cre.txt`` / ``my_test_cre.txt`` (``<clip>.flv <Label>`` per line; same split).
3. Otherwise every clip in ``AudioWAV/``, with a seeded stratified test split of the same size ratio
   (744 / 7,442). This is *not* OGM-GE's split; pass the lists for comparable numbers.

Validation: ``validation_size`` of every class of train is held out (seeded); OGM-GE has no validation list.
"""

from __future__ import annotations

import csv
from pathlib import Path

from datasets import DatasetDict

from .records import stratified_holdout, to_dataset_dict
from .validation import OnError, check_audio, check_frames, check_on_error, require_dir, validate_samples

NAME = "crema-d"
MODALITIES = ("audio", "video")
CODES = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
LABEL_NAMES = ("neutral", "happy", "sad", "fear", "disgust", "anger")
CODE_TO_LABEL = dict(zip(CODES, LABEL_NAMES))
# MLA writes full words; "Anger" and "Fear" as in its stat_cre.txt.
WORD_TO_LABEL = {
    "neutral": "neutral",
    "happy": "happy",
    "sad": "sad",
    "fear": "fear",
    "disgust": "disgust",
    "anger": "anger",
    "angry": "anger",
}
TEST_FRACTION = 744 / 7442


def label_from_clip(clip: str) -> str:
    """The emotion of a clip from its name, e.g. ``1001_DFA_ANG_XX`` -> ``anger``."""
    parts = clip.split("_")
    if len(parts) < 3 or parts[2] not in CODE_TO_LABEL:
        raise ValueError(f"not a CREMA-D clip name: {clip!r}")
    return CODE_TO_LABEL[parts[2]]


def read_ogm_list(path: Path) -> list[tuple[str, str]]:
    """Parse an OGM-GE list (``<clip>,<CODE>``) into ``[(clip, label)]``."""
    rows = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            if len(row) != 2 or row[1].strip() not in CODE_TO_LABEL:
                raise ValueError(f"{path}:{lineno}: expected '<clip>,<{'|'.join(CODES)}>', got {row!r}")
            rows.append((row[0].strip(), CODE_TO_LABEL[row[1].strip()]))
    return rows


def read_mla_list(path: Path) -> list[tuple[str, str]]:
    """Parse an MLA list (``<clip>.flv <Label>``) into ``[(clip, label)]``."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1].lower() not in WORD_TO_LABEL:
            raise ValueError(f"{path}:{lineno}: expected '<clip>.flv <Label>', got {line!r}")
        rows.append((Path(parts[0]).stem, WORD_TO_LABEL[parts[1].lower()]))
    return rows


def find_splits(split_root: Path, audio_dir: Path, seed: int) -> dict[str, list[tuple[str, str]]]:
    """The train / test lists: OGM-GE's, else MLA's, else a seeded split of every clip."""
    for train_name, test_name, reader in (
        ("train.csv", "test.csv", read_ogm_list),
        ("my_train_cre.txt", "my_test_cre.txt", read_mla_list),
    ):
        if (split_root / train_name).is_file():
            if not (split_root / test_name).is_file():
                raise FileNotFoundError(f"CREMA-D test list not found: {split_root / test_name}")
            return {"train": reader(split_root / train_name), "test": reader(split_root / test_name)}
    rows = [{"id": p.stem, "labels": label_from_clip(p.stem)} for p in sorted(audio_dir.glob("*.wav"))]
    if not rows:
        raise FileNotFoundError(f"No .wav clips in {audio_dir} and no split lists in {split_root}.")
    train, test = stratified_holdout(rows, TEST_FRACTION, seed)
    return {"train": [(r["id"], r["labels"]) for r in train], "test": [(r["id"], r["labels"]) for r in test]}


def load_crema_d(
    data_dir: str | Path,
    split_dir: str | Path | None = None,
    *,
    frames_dir: str | Path | None = None,
    on_error: OnError = "raise",
    validation_size: float = 0.1,
    seed: int = 0,
) -> DatasetDict:
    """Load CREMA-D as raw samples (``audio`` path, ``video`` frame paths, ``labels``).

    Args:
        data_dir: The CREMA-D folder (see the module docstring).
        split_dir: Folder with OGM-GE's or MLA's lists; defaults to ``data_dir``.
        frames_dir: Folder of per-clip frame folders; defaults to ``<data_dir>/Image-01-FPS``.
        on_error: ``"raise"`` to stop on any missing or unreadable file, ``"skip"`` to drop those samples.
        validation_size: Share of every class of train held out as validation.
        seed: Seed of the derived splits.

    Returns:
        A ``DatasetDict`` with ``train``, ``validation`` and ``test``.
    """
    check_on_error(on_error)
    root = require_dir(data_dir, "CREMA-D")
    audio_dir = require_dir(root / "AudioWAV", "CREMA-D audio ('AudioWAV/')")
    frames_root = Path(frames_dir) if frames_dir is not None else root / "Image-01-FPS"
    if not frames_root.is_dir():
        raise FileNotFoundError(
            f"CREMA-D frames folder not found: {frames_root} (extract frames of VideoFlash/<clip>.flv into "
            "<frames_dir>/<clip>/, e.g. 1 frame per second as OGM-GE does, or pass frames_dir)"
        )
    split_root = require_dir(split_dir, "CREMA-D split list") if split_dir is not None else root
    splits = find_splits(split_root, audio_dir, seed)

    checked = {}
    for split, rows in splits.items():
        samples = [
            {"id": clip, "audio": audio_dir / f"{clip}.wav", "video": frames_root / clip, "labels": label}
            for clip, label in rows
        ]
        checked[split], _ = validate_samples(
            f"{NAME} ({split})", samples, {"audio": check_audio, "video": check_frames}, on_error
        )
    train, validation = stratified_holdout(checked["train"], validation_size, seed)
    return to_dataset_dict(
        {"train": train, "validation": validation, "test": checked["test"]},
        MODALITIES,
        LABEL_NAMES,
        NAME,
        description="CREMA-D, raw audio and video frames.",
    )
