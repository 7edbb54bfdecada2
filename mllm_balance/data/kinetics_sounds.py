"""Kinetics-Sounds (audio + video frames, 31 classes) from Kinetics clips after audio and frame extraction.

Kinetics is distributed as one video per clip, grouped by class. Read after extracting each clip's audio
track and frames (as OGM-GE / PMR pre-process it), keeping the split and class folders::

    <data_dir>/
        audio/<split>/<class name>/<clip>.wav
        visual/<split>/<class name>/<clip>/<frame>.jpg     frames sort in time order

``<split>`` is ``train`` and ``test`` (and optionally ``val``). The label map is the sorted class folder
names of ``audio/train``; by default there must be 31 of them (the Kinetics-Sounds subset used by OGM-GE and
MLA), and ``test`` / ``val`` may not hold classes that ``train`` lacks. A clip found in only one of
``audio/`` and ``visual/`` is reported as missing its other half. Sample ids are the clip names (a clip in
two classes of one split is refused).

Without a ``val`` folder, ``validation_size`` of every class of train is held out as validation (seeded).
"""

from __future__ import annotations

from pathlib import Path

from datasets import DatasetDict

from .records import stratified_holdout, to_dataset_dict
from .validation import OnError, check_audio, check_frames, check_on_error, require_dir, validate_samples

NAME = "kinetics-sounds"
MODALITIES = ("audio", "video")
NUM_CLASSES = 31
SPLIT_FOLDERS = {"train": "train", "validation": "val", "test": "test"}


def list_clips(audio_split: Path, visual_split: Path) -> list[tuple[str, str]]:
    """``[(class, clip)]`` of every clip with audio or frames in one split, sorted."""
    clips = set()
    for folder, is_audio in ((audio_split, True), (visual_split, False)):
        if not folder.is_dir():
            continue
        for class_dir in folder.iterdir():
            if not class_dir.is_dir():
                continue
            for item in class_dir.iterdir():
                if is_audio and item.suffix.lower() == ".wav":
                    clips.add((class_dir.name, item.stem))
                elif not is_audio and item.is_dir():
                    clips.add((class_dir.name, item.name))
    return sorted(clips)


def load_kinetics_sounds(
    data_dir: str | Path,
    *,
    on_error: OnError = "raise",
    num_classes: int | None = NUM_CLASSES,
    validation_size: float = 0.1,
    seed: int = 0,
) -> DatasetDict:
    """Load Kinetics-Sounds as raw samples (``audio`` path, ``video`` frame paths, ``labels``).

    Args:
        data_dir: The extracted Kinetics-Sounds folder (see the module docstring).
        on_error: ``"raise"`` to stop on any missing or unreadable file, ``"skip"`` to drop those samples.
        num_classes: Number of class folders expected in ``audio/train``; None accepts any number.
        validation_size: Share of every class of train held out as validation when there is no ``val``.
        seed: Seed of the derived validation split.

    Returns:
        A ``DatasetDict`` with ``train``, ``validation`` and ``test``.
    """
    check_on_error(on_error)
    root = require_dir(data_dir, "Kinetics-Sounds")
    audio_root = require_dir(root / "audio", "Kinetics-Sounds audio ('audio/')")
    visual_root = require_dir(root / "visual", "Kinetics-Sounds frames ('visual/')")
    for split in ("train", "test"):
        require_dir(audio_root / split, f"Kinetics-Sounds audio/{split}")
        require_dir(visual_root / split, f"Kinetics-Sounds visual/{split}")
    label_names = sorted(p.name for p in (audio_root / "train").iterdir() if p.is_dir())
    if num_classes is not None and len(label_names) != num_classes:
        raise ValueError(
            f"Kinetics-Sounds: {audio_root / 'train'} has {len(label_names)} class folders, expected {num_classes} "
            "(pass num_classes=None to accept another number)."
        )

    checked = {}
    for split, folder in SPLIT_FOLDERS.items():
        if split == "validation" and not (audio_root / folder).is_dir():
            continue
        samples, seen = [], {}
        for label, clip in list_clips(audio_root / folder, visual_root / folder):
            if label not in label_names:
                raise ValueError(f"Kinetics-Sounds: class {label!r} in {folder} is not a class of train.")
            if clip in seen:
                raise ValueError(
                    f"Kinetics-Sounds: clip {clip!r} is in two classes of {folder}: {seen[clip]!r}, {label!r}."
                )
            seen[clip] = label
            samples.append(
                {
                    "id": clip,
                    "audio": audio_root / folder / label / f"{clip}.wav",
                    "video": visual_root / folder / label / clip,
                    "labels": label,
                }
            )
        checked[split], _ = validate_samples(
            f"{NAME} ({split})", samples, {"audio": check_audio, "video": check_frames}, on_error
        )
    if "validation" not in checked:
        checked["train"], checked["validation"] = stratified_holdout(checked["train"], validation_size, seed)
    ordered = {s: checked[s] for s in ("train", "validation", "test")}
    return to_dataset_dict(ordered, MODALITIES, label_names, NAME, description="Kinetics-Sounds, raw audio and frames.")
