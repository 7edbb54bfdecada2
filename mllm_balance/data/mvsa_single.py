"""MVSA-Single (text + image, 3 sentiment classes) from its released folder.

Layout read (the MVSA-Single release)::

    <data_dir>/
        labelResultAll.txt      header line, then "<id>\\t<text label>,<image label>" per tweet
        data/<id>.txt           the tweet text (UTF-8 or Latin-1)
        data/<id>.jpg           the tweet image

Labels: one annotator labels text and image separately (positive / neutral / negative). As is standard
for MVSA-Single, a tweet whose two labels are positive and negative is dropped; otherwise the label is the
non-neutral one of the two (neutral if both are neutral).

Splits, in order of preference:

1. MLA's lists, if found in ``split_dir`` (default: ``data_dir``): ``my_train_mvsa.txt``,
   ``my_test_mvsa.txt`` and optionally ``my_dev_mvsa.txt``, one ``"<id>.jpg <label>"`` per line. The
   list's label is used.
2. Otherwise 10 % of every class of the labelled tweets is the test set (seeded), the rest is train.

Without a dev list, ``validation_size`` of every class of train is held out as validation (seeded).
"""

from __future__ import annotations

from pathlib import Path

from datasets import DatasetDict

from .records import stratified_holdout, to_dataset_dict
from .validation import (
    OnError,
    check_image,
    check_on_error,
    check_text_file,
    require_dir,
    require_file,
    validate_samples,
)

NAME = "mvsa-single"
MODALITIES = ("text", "image")
LABEL_NAMES = ("negative", "neutral", "positive")
SPLIT_LISTS = {"train": "my_train_mvsa.txt", "validation": "my_dev_mvsa.txt", "test": "my_test_mvsa.txt"}


def combine_labels(text_label: str, image_label: str) -> str | None:
    """The tweet label from its text and image labels; None for a positive / negative conflict."""
    labels = {text_label.strip().lower(), image_label.strip().lower()}
    if not labels <= set(LABEL_NAMES):
        raise ValueError(f"unknown labels {sorted(labels)}")
    if labels == {"positive", "negative"}:
        return None
    non_neutral = labels - {"neutral"}
    return non_neutral.pop() if non_neutral else "neutral"


def read_label_file(path: Path) -> dict[str, str]:
    """Parse ``labelResultAll.txt`` into ``{id: label}``; conflicting tweets are left out."""
    labels: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.strip()
        if not line or lineno == 1 and not line.split()[0].isdigit():
            continue  # header "ID text,image"
        try:
            sample_id, pair = line.split(None, 1)
            text_label, image_label = pair.split(",")
            label = combine_labels(text_label, image_label)
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: cannot parse {line!r} ({err})") from err
        if label is not None:
            labels[sample_id] = label
    return labels


def read_split_list(path: Path) -> list[tuple[str, str]]:
    """Parse one of MLA's MVSA lists into ``[(id, label)]``."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1].lower() not in LABEL_NAMES:
            raise ValueError(f"{path}:{lineno}: expected '<id>.jpg <label>', got {line!r}")
        rows.append((Path(parts[0]).stem, parts[1].lower()))
    return rows


def load_mvsa_single(
    data_dir: str | Path,
    split_dir: str | Path | None = None,
    *,
    on_error: OnError = "raise",
    validation_size: float = 0.1,
    seed: int = 0,
) -> DatasetDict:
    """Load MVSA-Single as raw samples (``text`` str, ``image`` path, ``labels``).

    Args:
        data_dir: The released MVSA-Single folder (see the module docstring).
        split_dir: Folder with MLA's split lists; defaults to ``data_dir``. Without lists, 10 % of every class
            is held out as test (seeded).
        on_error: ``"raise"`` to stop on any missing or unreadable file, ``"skip"`` to drop those samples.
        validation_size: Share of train held out as validation when no dev list exists.
        seed: Seed of the derived splits.

    Returns:
        A ``DatasetDict`` with ``train``, ``validation`` and ``test``.
    """
    check_on_error(on_error)
    root = require_dir(data_dir, "MVSA-Single")
    media = require_dir(root / "data", "MVSA-Single media ('data/')")
    split_root = Path(split_dir) if split_dir is not None else root
    if split_dir is not None:
        require_dir(split_root, "MVSA-Single split list")

    if (split_root / SPLIT_LISTS["train"]).is_file():
        require_file(split_root / SPLIT_LISTS["test"], "MVSA-Single test list")
        splits = {
            split: read_split_list(split_root / name)
            for split, name in SPLIT_LISTS.items()
            if (split_root / name).is_file()
        }
    else:
        labels = read_label_file(require_file(root / "labelResultAll.txt", "MVSA-Single label file"))
        rows = [{"id": i, "labels": lab} for i, lab in sorted(labels.items(), key=lambda kv: int(kv[0]))]
        rest, test = stratified_holdout(rows, 0.1, seed)
        splits = {"train": [(r["id"], r["labels"]) for r in rest], "test": [(r["id"], r["labels"]) for r in test]}

    samples = {
        split: [{"id": i, "text": media / f"{i}.txt", "image": media / f"{i}.jpg", "labels": lab} for i, lab in rows]
        for split, rows in splits.items()
    }
    checked = {}
    for split, rows in samples.items():
        checked[split], _ = validate_samples(
            f"{NAME} ({split})", rows, {"text": check_text_file, "image": check_image}, on_error
        )
    if "validation" not in checked:
        checked["train"], checked["validation"] = stratified_holdout(checked["train"], validation_size, seed)
    ordered = {s: checked[s] for s in ("train", "validation", "test")}
    return to_dataset_dict(ordered, MODALITIES, LABEL_NAMES, NAME, description="MVSA-Single, raw text and images.")
