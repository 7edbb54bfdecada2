"""IEMOCAP (audio + text + video frames, 4 emotions) from its released folder plus extracted frames.

Layout read::

    <data_dir>/
        Session{1..5}/sentences/wav/<dialog>/<utt>.wav         as released, e.g. Ses01F_impro01/Ses01F_impro01_F000.wav
        Session{1..5}/dialog/EmoEvaluation/<dialog>.txt        as released (needed only without MLA's lists)
        Session{1..5}/dialog/transcriptions/<dialog>.txt       as released (needed only without MLA's lists)
        frames/<utt>/<frame>.jpg                               frames of the utterance's video segment
                                                               (``frames_dir``); they sort in time order

IEMOCAP ships one video per dialogue; per-utterance frames are cut with the times in EmoEvaluation (as MLA
does to make ``subvideo/<utt>.mp4``) and extracted into ``frames/<utt>/``.

Labels: angry, happy, neutral, sad (MLA's four classes, in MLA's sorted order).

Splits, in order of preference (looked up in ``split_dir``, default ``data_dir``):

1. MLA's lists ``my_train_iemo.txt``, ``my_test_iemo.txt`` and optionally ``my_dev_iemo.txt``; one
   ``<utt>.mp4 [split|sign] <transcript> [split|sign] <Label>`` per line. Text is the list's transcript.
2. Otherwise the release's own annotations: EmoEvaluation's categorical label (``neu``, ``ang``, ``sad``,
   ``hap``, and ``exc`` merged into happy when ``merge_excited``; other labels dropped), the transcript from
   ``transcriptions/``, Sessions 1-4 as train and Session 5 as test (leave-one-session-out).

Without a dev list, ``validation_size`` of every class of train is held out as validation (seeded).
"""

from __future__ import annotations

import re
from pathlib import Path

from datasets import DatasetDict

from .records import stratified_holdout, to_dataset_dict
from .validation import OnError, check_audio, check_frames, check_on_error, require_dir, require_file, validate_samples

NAME = "iemocap"
MODALITIES = ("audio", "text", "video")
LABEL_NAMES = ("angry", "happy", "neutral", "sad")
SPLIT_LISTS = {"train": "my_train_iemo.txt", "validation": "my_dev_iemo.txt", "test": "my_test_iemo.txt"}
SEPARATOR = " [split|sign] "
EMO_CODES = {"neu": "neutral", "ang": "angry", "sad": "sad", "hap": "happy"}
TEST_SESSION = 5

_UTT = re.compile(r"^(Ses0([1-5])[FM]_\S+)_([FM]\d+\w*)$")
_EMO_LINE = re.compile(r"^\[[^\]]+\]\t(\S+)\t(\w+)\t")
_TRANSCRIPT_LINE = re.compile(r"^(Ses\S+) \[[^\]]*\]:\s*(.*)$")


def parse_utterance(utt: str) -> tuple[int, str]:
    """``(session, dialog)`` of an utterance id, e.g. ``Ses01F_impro01_F000`` -> ``(1, "Ses01F_impro01")``."""
    match = _UTT.match(utt)
    if not match:
        raise ValueError(f"not an IEMOCAP utterance id: {utt!r}")
    return int(match.group(2)), match.group(1)


def read_mla_list(path: Path) -> list[tuple[str, str, str]]:
    """Parse an MLA IEMOCAP list into ``[(utt, transcript, label)]``."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(SEPARATOR.strip())
        if len(parts) != 3 or parts[2].strip().lower() not in LABEL_NAMES:
            raise ValueError(f"{path}:{lineno}: expected '<utt>.mp4{SEPARATOR}<text>{SEPARATOR}<Label>', got {line!r}")
        utt = Path(parts[0].strip()).stem
        parse_utterance(utt)
        rows.append((utt, parts[1].strip(), parts[2].strip().lower()))
    return rows


def read_release(root: Path, merge_excited: bool) -> dict[str, list[tuple[str, str, str]]]:
    """Labels and transcripts from the release's EmoEvaluation and transcriptions, split by session."""
    codes = dict(EMO_CODES, **({"exc": "happy"} if merge_excited else {}))
    splits: dict[str, list[tuple[str, str, str]]] = {"train": [], "test": []}
    for session in range(1, 6):
        dialog_dir = require_dir(root / f"Session{session}" / "dialog", f"IEMOCAP Session{session} dialog")
        emo_dir = require_dir(dialog_dir / "EmoEvaluation", f"IEMOCAP Session{session} EmoEvaluation")
        text_dir = require_dir(dialog_dir / "transcriptions", f"IEMOCAP Session{session} transcriptions")
        for emo_file in sorted(emo_dir.glob("*.txt")):
            transcripts = {}
            text_file = require_file(text_dir / emo_file.name, "IEMOCAP transcription")
            for line in text_file.read_text(encoding="utf-8", errors="replace").splitlines():
                match = _TRANSCRIPT_LINE.match(line.strip())
                if match:
                    transcripts[match.group(1)] = match.group(2).strip()
            for line in emo_file.read_text(encoding="utf-8", errors="replace").splitlines():
                match = _EMO_LINE.match(line)
                if not match or match.group(2) not in codes:
                    continue
                utt = match.group(1)
                split = "test" if session == TEST_SESSION else "train"
                splits[split].append((utt, transcripts.get(utt, ""), codes[match.group(2)]))
    return splits


def load_iemocap(
    data_dir: str | Path,
    split_dir: str | Path | None = None,
    *,
    frames_dir: str | Path | None = None,
    on_error: OnError = "raise",
    validation_size: float = 0.1,
    merge_excited: bool = True,
    seed: int = 0,
) -> DatasetDict:
    """Load IEMOCAP as raw samples (``audio`` path, ``text`` str, ``video`` frame paths, ``labels``).

    Args:
        data_dir: The IEMOCAP release folder (see the module docstring).
        split_dir: Folder with MLA's lists; defaults to ``data_dir``.
        frames_dir: Folder of per-utterance frame folders; defaults to ``<data_dir>/frames``.
        on_error: ``"raise"`` to stop on any missing or unreadable file, ``"skip"`` to drop those samples.
        validation_size: Share of every class of train held out as validation when no dev list exists.
        merge_excited: Without MLA's lists, count ``exc`` as happy.
        seed: Seed of the derived validation split.

    Returns:
        A ``DatasetDict`` with ``train``, ``validation`` and ``test``.
    """
    check_on_error(on_error)
    root = require_dir(data_dir, "IEMOCAP")
    frames_root = require_dir(frames_dir if frames_dir is not None else root / "frames", "IEMOCAP frames")
    split_root = require_dir(split_dir, "IEMOCAP split list") if split_dir is not None else root
    if (split_root / SPLIT_LISTS["train"]).is_file():
        require_file(split_root / SPLIT_LISTS["test"], "IEMOCAP test list")
        splits = {s: read_mla_list(split_root / n) for s, n in SPLIT_LISTS.items() if (split_root / n).is_file()}
    else:
        splits = read_release(root, merge_excited)

    checked = {}
    for split, rows in splits.items():
        samples = []
        for utt, text, label in rows:
            session, dialog = parse_utterance(utt)
            wav = root / f"Session{session}" / "sentences" / "wav" / dialog / f"{utt}.wav"
            samples.append({"id": utt, "audio": wav, "text": text, "video": frames_root / utt, "labels": label})
        checked[split], _ = validate_samples(
            f"{NAME} ({split})", samples, {"audio": check_audio, "video": check_frames}, on_error
        )
    if "validation" not in checked:
        checked["train"], checked["validation"] = stratified_holdout(checked["train"], validation_size, seed)
    ordered = {s: checked[s] for s in ("train", "validation", "test")}
    return to_dataset_dict(ordered, MODALITIES, LABEL_NAMES, NAME, description="IEMOCAP, raw audio, text, frames.")
