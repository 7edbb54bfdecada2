"""CREMA-D loader on a tiny folder: AudioWAV/ as released plus OGM-GE-style frame folders."""

from __future__ import annotations

import pytest

from mllm_balance.data import get_id2label
from mllm_balance.data.crema_d import CODES, label_from_clip, load_crema_d
from mllm_balance.data.validation import DatasetValidationError

CLIPS = [f"10{a:02d}_{s}_{c}_XX" for a in range(1, 6) for s in ("DFA", "IEO") for c in CODES]  # 60 clips, 10 per class


@pytest.fixture
def crema_dir(tmp_path, media):
    root = tmp_path / "CREMA-D"
    for clip in CLIPS:
        media.wav(root / "AudioWAV" / f"{clip}.wav")
        media.frames(root / "Image-01-FPS" / clip, count=2)
    return root


def test_label_map_follows_ogm_ge_order(crema_dir):
    dsd = load_crema_d(crema_dir)
    assert get_id2label(dsd) == {0: "neutral", 1: "happy", 2: "sad", 3: "fear", 4: "disgust", 5: "anger"}
    assert label_from_clip("1001_DFA_ANG_XX") == "anger"


def test_ogm_ge_lists_give_the_split(crema_dir):
    train, test = CLIPS[:48], CLIPS[48:]
    (crema_dir / "train.csv").write_text("\ufeff" + "".join(f"{c},{c.split('_')[2]}\r\n" for c in train), "utf-8")
    (crema_dir / "test.csv").write_text("".join(f"{c},{c.split('_')[2]}\n" for c in test), "utf-8")
    dsd = load_crema_d(crema_dir, validation_size=1 / 8)
    assert len(dsd["test"]) == 12 and set(dsd["test"]["id"]) == set(test)
    assert len(dsd["train"]) + len(dsd["validation"]) == 48 and len(dsd["validation"]) == 6
    row = dsd["test"][0]
    assert row["audio"].endswith(f"AudioWAV/{row['id']}.wav")
    assert [p.rsplit("/", 2)[1:] for p in row["video"]] == [
        [row["id"], "frame_00001.jpg"],
        [row["id"], "frame_00002.jpg"],
    ]
    assert dsd["test"].features["labels"].int2str(row["labels"]) == label_from_clip(row["id"])


def test_mla_lists_give_the_split(crema_dir, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    words = {"NEU": "Neutral", "HAP": "Happy", "SAD": "Sad", "FEA": "Fear", "DIS": "Disgust", "ANG": "Anger"}
    (lists / "my_train_cre.txt").write_text("".join(f"{c}.flv {words[c.split('_')[2]]}\n" for c in CLIPS[6:]))
    (lists / "my_test_cre.txt").write_text("".join(f"{c}.flv {words[c.split('_')[2]]}\n" for c in CLIPS[:6]))
    dsd = load_crema_d(crema_dir, split_dir=lists)
    assert dsd["test"]["id"] == CLIPS[:6] and dsd["test"]["labels"] == [0, 1, 2, 3, 4, 5]


def test_derived_split_keeps_the_standard_ratio(crema_dir):
    dsd = load_crema_d(crema_dir, validation_size=0.0)
    assert len(dsd["test"]) == 6 and sorted(dsd["test"]["labels"]) == [0, 1, 2, 3, 4, 5]  # 744 / 7442 of 10 per class
    assert len(dsd["train"]) == 54 and len(dsd["validation"]) == 0


def test_corrupt_audio_and_missing_frames(crema_dir, media):
    media.corrupt(crema_dir / "AudioWAV" / f"{CLIPS[3]}.wav")
    for frame in (crema_dir / "Image-01-FPS" / CLIPS[7]).iterdir():
        frame.unlink()
    (crema_dir / "Image-01-FPS" / CLIPS[7]).rmdir()
    with pytest.raises(DatasetValidationError, match="unusable"):
        load_crema_d(crema_dir)
    dsd = load_crema_d(crema_dir, on_error="skip")
    ids = {i for split in dsd.values() for i in split["id"]}
    assert len(ids) == 58 and CLIPS[3] not in ids and CLIPS[7] not in ids


def test_missing_folders_are_named(tmp_path, crema_dir):
    with pytest.raises(FileNotFoundError, match="CREMA-D folder not found"):
        load_crema_d(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="frames folder not found: .*elsewhere"):
        load_crema_d(crema_dir, frames_dir=tmp_path / "elsewhere")
