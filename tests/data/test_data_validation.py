"""The shared validation / record helpers of mllm_balance.data."""

from __future__ import annotations

import wave
import zlib

import pytest

from mllm_balance.data.records import get_id2label, get_modalities, stable_seed, stratified_holdout, to_dataset_dict
from mllm_balance.data.validation import (
    DatasetValidationError,
    check_audio,
    check_frames,
    check_image,
    check_text_file,
    require_dir,
    validate_samples,
)


def test_checkers_accept_good_and_reject_bad_files(tmp_path, media):
    good_img, good_wav = media.image(tmp_path / "a.png"), media.wav(tmp_path / "a.wav")
    assert check_image(good_img) == str(good_img)
    assert check_audio(good_wav) == str(good_wav)
    with pytest.raises(FileNotFoundError):
        check_image(tmp_path / "nope.png")
    with pytest.raises(OSError):  # PIL.UnidentifiedImageError
        check_image(media.corrupt(tmp_path / "bad.png"))
    with pytest.raises((RuntimeError, EOFError, wave.Error)):  # soundfile's error, or the wave module's
        check_audio(media.corrupt(tmp_path / "bad.wav"))
    (tmp_path / "t.txt").write_bytes("caf\xe9 ok".encode("latin-1"))
    assert check_text_file(tmp_path / "t.txt") == "café ok"
    frames = media.frames(tmp_path / "clip", count=3)
    assert [p.rsplit("/", 1)[1] for p in check_frames(frames)] == [
        "frame_00001.jpg",
        "frame_00002.jpg",
        "frame_00003.jpg",
    ]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="0 frames"):
        check_frames(tmp_path / "empty")


def test_validate_samples_reports_counts_and_first_paths(tmp_path, media):
    samples = []
    for i in range(8):
        path = media.image(tmp_path / f"{i}.png")
        if i in (1, 2, 3):
            media.corrupt(path)
        if i == 5:
            path.unlink()
        samples.append({"id": str(i), "image": path})
    with pytest.raises(DatasetValidationError) as info:
        validate_samples("toy", samples, {"image": check_image}, on_error="raise")
    report = info.value.report
    assert len(report.unreadable) == 3 and len(report.missing) == 1
    assert report.bad_sample_ids == {"1", "2", "3", "5"}
    text = report.summary(max_paths=2)
    assert "4 of 8 samples" in text and str(tmp_path / "1.png") in text and str(tmp_path / "3.png") not in text
    kept, report = validate_samples("toy", samples, {"image": check_image}, on_error="skip")
    assert [s["id"] for s in kept] == ["0", "4", "6", "7"]
    assert all(isinstance(s["image"], str) for s in kept)
    with pytest.raises(ValueError, match="on_error"):
        validate_samples("toy", samples, {"image": check_image}, on_error="ignore")


def test_require_dir_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="Widget folder not found: .*nowhere"):
        require_dir(tmp_path / "nowhere", "Widget")


def test_stable_seed_is_crc32():
    assert stable_seed(3, "x") == zlib.crc32(b"3\x1fx")


def test_stratified_holdout_is_seeded_and_per_class():
    rows = [{"id": i, "labels": "a" if i < 40 else "b"} for i in range(60)]
    kept, held = stratified_holdout(rows, 0.25, seed=1)
    assert sorted(r["labels"] for r in held).count("a") == 10 and len(held) == 15
    assert len(kept) + len(held) == 60 and not {r["id"] for r in kept} & {r["id"] for r in held}
    assert stratified_holdout(rows, 0.25, seed=1) == (kept, held)
    assert stratified_holdout(rows, 0.25, seed=2)[1] != held


def test_to_dataset_dict_columns_and_label_map():
    dsd = to_dataset_dict(
        {"train": [{"id": "x", "text": "hi", "video": ["a.jpg", "b.jpg"], "labels": "neg"}], "test": []},
        ("text", "video"),
        ("neg", "pos"),
        "toy",
    )
    assert dsd["train"].column_names == ["id", "text", "video", "labels"]
    assert get_id2label(dsd) == {0: "neg", 1: "pos"}
    assert get_modalities(dsd) == ["text", "video"]
    assert dsd["train"][0]["video"] == ["a.jpg", "b.jpg"] and dsd["train"][0]["labels"] == 0
    with pytest.raises(ValueError, match="label 'meh'"):
        to_dataset_dict(
            {"train": [{"id": "x", "text": "", "video": [], "labels": "meh"}]}, ("text", "video"), ("neg",), "t"
        )
