"""MVSA-Single loader on a tiny folder in the released layout."""

from __future__ import annotations

import pytest

from mllm_balance.data import get_id2label, load_dataset_from_dir
from mllm_balance.data.mvsa_single import combine_labels, load_mvsa_single
from mllm_balance.data.validation import DatasetValidationError

# (text label, image label) -> 30 tweets, 10 per resulting class, plus 2 conflicting ones
PAIRS = [("positive", "neutral"), ("neutral", "negative"), ("neutral", "neutral")] * 10 + [("positive", "negative")] * 2


@pytest.fixture
def mvsa_dir(tmp_path, media):
    root = tmp_path / "MVSA_Single"
    lines = ["ID\ttext,image"]
    for i, (t, v) in enumerate(PAIRS, start=1):
        lines.append(f"{i}\t{t},{v}")
        media.image(root / "data" / f"{i}.jpg", value=i, suffix_format="JPEG")
        (root / "data" / f"{i}.txt").write_text(f"tweet number {i} #mood", encoding="utf-8")
    (root / "labelResultAll.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_combine_labels_rule():
    assert combine_labels("positive", "neutral") == "positive"
    assert combine_labels("neutral", "negative") == "negative"
    assert combine_labels("neutral", "neutral") == "neutral"
    assert combine_labels("positive", "negative") is None


def test_derived_split_sizes_and_label_map(mvsa_dir):
    dsd = load_mvsa_single(mvsa_dir, validation_size=0.2)
    assert get_id2label(dsd) == {0: "negative", 1: "neutral", 2: "positive"}
    sizes = {k: len(v) for k, v in dsd.items()}
    assert sizes == {"train": 21, "validation": 6, "test": 3}  # 30 usable; 10 % test, then 2 of 9 per class
    assert sorted(dsd["test"]["labels"]) == [0, 1, 2]
    row = dsd["train"][0]
    assert row["text"].startswith("tweet number") and row["image"].endswith(".jpg")
    labels = dict(zip(dsd["train"]["id"], dsd["train"]["labels"]))
    assert all(labels[i] == {1: 2, 2: 0, 0: 1}[int(i) % 3] for i in labels)  # positive / negative / neutral
    assert "31" not in labels and "32" not in labels  # conflicting tweets dropped
    assert load_mvsa_single(mvsa_dir, validation_size=0.2)["test"]["id"] == dsd["test"]["id"]


def test_mla_lists_are_used(mvsa_dir):
    (mvsa_dir / "my_train_mvsa.txt").write_text("1.jpg positive\n2.jpg negative\n3.jpg neutral\n4.jpg positive\n")
    (mvsa_dir / "my_dev_mvsa.txt").write_text("5.jpg negative\n")
    (mvsa_dir / "my_test_mvsa.txt").write_text("6.jpg neutral\n7.jpg positive\n")
    dsd = load_dataset_from_dir("mvsa_single", mvsa_dir)
    assert {k: len(v) for k, v in dsd.items()} == {"train": 4, "validation": 1, "test": 2}
    assert dsd["test"]["id"] == ["6", "7"] and dsd["test"]["labels"] == [1, 2]


def test_corrupt_image_raises_or_is_skipped(mvsa_dir, media):
    media.corrupt(mvsa_dir / "data" / "4.jpg")
    (mvsa_dir / "data" / "7.txt").unlink()
    with pytest.raises(DatasetValidationError) as info:
        load_mvsa_single(mvsa_dir)
    message = str(info.value)
    assert "4.jpg" in message or "7.txt" in message
    assert "on_error='skip'" in message
    dsd = load_mvsa_single(mvsa_dir, on_error="skip")
    ids = {i for split in dsd.values() for i in split["id"]}
    assert len(ids) == 28 and "4" not in ids and "7" not in ids


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="MVSA-Single folder not found: .*absent"):
        load_mvsa_single(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="data/"):
        load_mvsa_single(tmp_path / "empty")
