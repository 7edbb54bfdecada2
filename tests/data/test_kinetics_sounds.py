"""Kinetics-Sounds loader on a tiny folder of extracted audio and frames, grouped by split and class."""

from __future__ import annotations

import pytest

from mllm_balance.data import get_id2label
from mllm_balance.data.kinetics_sounds import load_kinetics_sounds
from mllm_balance.data.validation import DatasetValidationError

CLASSES = ["playing bagpipes", "playing drums", "singing"]


@pytest.fixture
def ks_dir(tmp_path, media):
    root = tmp_path / "kinetics_sounds"
    for split, per_class in (("train", 4), ("test", 1)):
        for c in CLASSES:
            for k in range(per_class):
                clip = f"{c.replace(' ', '')[:8]}{k}_000010_000020"
                media.wav(root / "audio" / split / c / f"{clip}.wav")
                media.frames(root / "visual" / split / c / clip, count=3)
    return root


def test_sizes_and_label_map(ks_dir):
    dsd = load_kinetics_sounds(ks_dir, num_classes=3, validation_size=0.25)
    assert get_id2label(dsd) == dict(enumerate(CLASSES))
    assert {k: len(v) for k, v in dsd.items()} == {"train": 9, "validation": 3, "test": 3}
    row = dsd["test"][0]
    assert row["id"] == "playingb0_000010_000020" and row["labels"] == 0 and len(row["video"]) == 3


def test_expects_31_classes_by_default(ks_dir):
    with pytest.raises(ValueError, match="3 class folders, expected 31"):
        load_kinetics_sounds(ks_dir)


def test_clip_without_frames_or_with_corrupt_audio(ks_dir, media):
    media.corrupt(ks_dir / "audio" / "train" / "singing" / "singing1_000010_000020.wav")
    media.wav(ks_dir / "audio" / "train" / "singing" / "orphan.wav")  # no frames
    with pytest.raises(DatasetValidationError) as info:
        load_kinetics_sounds(ks_dir, num_classes=3)
    report = info.value.report
    assert len(report.missing) == 1 and len(report.unreadable) == 1 and "orphan" in report.missing[0].path
    dsd = load_kinetics_sounds(ks_dir, num_classes=3, on_error="skip", validation_size=0.0)
    assert len(dsd["train"]) == 11 and "orphan" not in dsd["train"]["id"]


def test_missing_folders_are_named(tmp_path, ks_dir):
    with pytest.raises(FileNotFoundError, match="Kinetics-Sounds folder not found"):
        load_kinetics_sounds(tmp_path / "none")
    (ks_dir / "visual" / "test").rename(ks_dir / "visual" / "t")
    with pytest.raises(FileNotFoundError, match="visual/test"):
        load_kinetics_sounds(ks_dir, num_classes=3)


def test_a_clip_in_two_classes_is_refused(ks_dir, media):
    media.wav(ks_dir / "audio" / "test" / "singing" / "play0_000010_000020.wav")
    media.frames(ks_dir / "visual" / "test" / "singing" / "playingb0_000010_000020")
    with pytest.raises(ValueError, match="in two classes"):
        load_kinetics_sounds(ks_dir, num_classes=3)
