"""IEMOCAP loader on a tiny folder in the released layout plus per-utterance frames."""

from __future__ import annotations

import pytest

from mllm_balance.data import get_id2label
from mllm_balance.data.iemocap import load_iemocap, parse_utterance
from mllm_balance.data.validation import DatasetValidationError

EMOTIONS = ["neu", "ang", "sad", "hap", "exc", "fru"]  # fru is not one of the four classes


def utterances(session: int) -> list[tuple[str, str, str]]:
    dialog = f"Ses0{session}F_impro01"
    return [(dialog, f"{dialog}_{'FM'[i % 2]}{i:03d}", emo) for i, emo in enumerate(EMOTIONS)]


@pytest.fixture
def iemocap_dir(tmp_path, media):
    root = tmp_path / "IEMOCAP_full_release"
    for session in range(1, 6):
        dialog_dir = root / f"Session{session}" / "dialog"
        emo, text = [], []
        for dialog, utt, code in utterances(session):
            media.wav(root / f"Session{session}" / "sentences" / "wav" / dialog / f"{utt}.wav")
            media.frames(root / "frames" / utt, count=2)
            emo.append(f"[1.0 - 2.0]\t{utt}\t{code}\t[2.5, 2.5, 2.5]")
            text.append(f"{utt} [001.0000-002.0000]: words of {utt}.")
        (dialog_dir / "EmoEvaluation").mkdir(parents=True)
        (dialog_dir / "transcriptions").mkdir(parents=True)
        header = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        (dialog_dir / "EmoEvaluation" / f"{dialog}.txt").write_text(header + "\n".join(emo) + "\n")
        (dialog_dir / "transcriptions" / f"{dialog}.txt").write_text("\n".join(text) + "\n")
    return root


def test_parse_utterance():
    assert parse_utterance("Ses03M_script02_1_M002") == (3, "Ses03M_script02_1")
    with pytest.raises(ValueError):
        parse_utterance("clip_001")


def test_release_annotations_leave_session_five_out(iemocap_dir):
    dsd = load_iemocap(iemocap_dir, validation_size=0.0)
    assert get_id2label(dsd) == {0: "angry", 1: "happy", 2: "neutral", 3: "sad"}
    # 5 usable utterances per session (fru dropped, exc merged into happy)
    assert {k: len(v) for k, v in dsd.items()} == {"train": 20, "validation": 0, "test": 5}
    assert all(i.startswith("Ses05") for i in dsd["test"]["id"])
    row = dsd["test"][0]
    assert (
        row["text"] == f"words of {row['id']}." and row["audio"].endswith(f"{row['id']}.wav") and len(row["video"]) == 2
    )
    assert sorted(dsd["test"]["labels"]) == [0, 1, 1, 2, 3]
    assert len(load_iemocap(iemocap_dir, merge_excited=False, validation_size=0.0)["test"]) == 4


def test_mla_lists_give_text_and_split(iemocap_dir):
    rows = [u for s in range(1, 6) for u in utterances(s) if u[2] in ("neu", "ang", "sad", "hap")]
    names = {"neu": "Neutral", "ang": "Angry", "sad": "Sad", "hap": "Happy"}
    line = "{}.mp4 [split|sign] list text {} [split|sign] {}\n"
    (iemocap_dir / "my_train_iemo.txt").write_text("".join(line.format(u, u, names[c]) for _, u, c in rows[:12]))
    (iemocap_dir / "my_test_iemo.txt").write_text("".join(line.format(u, u, names[c]) for _, u, c in rows[12:]))
    dsd = load_iemocap(iemocap_dir, validation_size=0.25)
    assert {k: len(v) for k, v in dsd.items()} == {"train": 8, "validation": 4, "test": 8}  # 1 of 3 per class held out
    assert dsd["test"][0]["text"] == f"list text {dsd['test'][0]['id']}"


def test_corrupt_wav_raises_or_is_skipped(iemocap_dir, media):
    _, utt, _ = utterances(2)[0]
    media.corrupt(iemocap_dir / "Session2" / "sentences" / "wav" / "Ses02F_impro01" / f"{utt}.wav")
    with pytest.raises(DatasetValidationError, match=utt):
        load_iemocap(iemocap_dir)
    dsd = load_iemocap(iemocap_dir, on_error="skip", validation_size=0.0)
    assert len(dsd["train"]) == 19 and utt not in dsd["train"]["id"]


def test_missing_folders_are_named(tmp_path, iemocap_dir):
    with pytest.raises(FileNotFoundError, match="IEMOCAP folder not found"):
        load_iemocap(tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="IEMOCAP frames folder not found"):
        load_iemocap(iemocap_dir, frames_dir=tmp_path / "no_frames")
