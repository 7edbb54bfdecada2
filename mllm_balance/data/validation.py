"""Checking a dataset folder before loading it: what is missing, what cannot be read, and what to do about it.

Every loader in :mod:`mllm_balance.data` describes its samples as plain dicts, names the fields that point at
media files, and hands them to :func:`validate_samples`. The result is a :class:`ValidationReport` (a count and
the first few paths of every missing or unreadable file) and the samples that passed. With ``on_error="raise"``
a folder with any problem stops with a :class:`DatasetValidationError`; with ``on_error="skip"`` the broken
samples are dropped and the report is logged.
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
ON_ERROR_CHOICES: tuple[str, ...] = ("raise", "skip")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# A checker takes the raw value of a field (usually a path) and returns the resolved value stored in the
# dataset (a path string, a list of frame paths, the text of a file, ...). It raises FileNotFoundError for a
# missing file and any other exception for an unreadable one.
Checker = Callable[[Any], Any]


class DatasetValidationError(ValueError):
    """Raised when a dataset folder has missing or unreadable files and ``on_error="raise"``."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(report.summary() + "\nPass on_error='skip' to drop these samples and go on.")


@dataclass(frozen=True)
class Problem:
    """One missing or unreadable file.

    Args:
        sample_id: Id of the sample that needs the file.
        path: The file (or folder) at fault.
        reason: Why it is unusable.
    """

    sample_id: str
    path: str
    reason: str


@dataclass
class ValidationReport:
    """What :func:`validate_samples` found.

    Args:
        dataset: Name of the dataset, used in messages.
        num_checked: Number of samples checked.
        missing: Files that do not exist.
        unreadable: Files that exist but cannot be read or decoded.
    """

    dataset: str
    num_checked: int = 0
    missing: list[Problem] = field(default_factory=list)
    unreadable: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unreadable

    @property
    def bad_sample_ids(self) -> set[str]:
        return {p.sample_id for p in (*self.missing, *self.unreadable)}

    def summary(self, max_paths: int = 5) -> str:
        """A readable account: counts, then the first ``max_paths`` paths of each kind."""
        if self.ok:
            return f"{self.dataset}: all {self.num_checked} samples are complete and readable."
        lines = [
            f"{self.dataset}: {len(self.bad_sample_ids)} of {self.num_checked} samples are unusable "
            f"({len(self.missing)} missing files, {len(self.unreadable)} unreadable files)."
        ]
        for title, problems in (("missing", self.missing), ("unreadable", self.unreadable)):
            if not problems:
                continue
            lines.append(f"  first {min(max_paths, len(problems))} {title}:")
            lines.extend(f"    {p.path} ({p.reason})" for p in problems[:max_paths])
        return "\n".join(lines)


def check_on_error(on_error: str) -> None:
    """Refuse an unknown ``on_error`` value."""
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}.")


def require_dir(path: str | Path, what: str) -> Path:
    """Return ``path`` as a :class:`Path` if it is a folder, else raise a FileNotFoundError naming it."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{what} folder not found: {path}")
    return path


def require_file(path: str | Path, what: str) -> Path:
    """Return ``path`` as a :class:`Path` if it is a file, else raise a FileNotFoundError naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def check_image(path: str | Path) -> str:
    """Check that an image file exists and its header and data decode; return the path as a string."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(str(path))
    with Image.open(path) as img:
        img.verify()
    return str(path)


def check_audio(path: str | Path) -> str:
    """Check that an audio file exists, decodes and is not empty; return the path as a string.

    Uses ``soundfile`` when it is installed (WAV, FLAC, OGG, ...), else the standard library's ``wave``
    module (PCM WAV only).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(str(path))
    try:
        import soundfile
    except ImportError:  # pragma: no cover - soundfile is usually present
        with wave.open(str(path), "rb") as w:
            frames = w.getnframes()
    else:
        frames = soundfile.info(str(path)).frames
    if frames <= 0:
        raise ValueError("no audio samples")
    return str(path)


def check_text_file(path: str | Path, encodings: Sequence[str] = ("utf-8", "latin-1")) -> str:
    """Read a text file, trying ``encodings`` in order; return its stripped content."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(str(path))
    data = path.read_bytes()
    for encoding in encodings:
        try:
            return data.decode(encoding).strip()
        except UnicodeDecodeError:
            continue
    raise ValueError(f"not decodable as any of {tuple(encodings)}")


def check_frames(folder: str | Path, min_frames: int = 1) -> list[str]:
    """Check a folder of video frames; return the sorted frame paths.

    Every image in the folder is verified; an unreadable frame makes the whole clip unreadable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(str(folder))
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(frames) < min_frames:
        raise ValueError(f"{len(frames)} frames, need at least {min_frames}")
    for frame in frames:
        try:
            check_image(frame)
        except Exception as err:
            raise ValueError(f"frame {frame.name} unreadable: {err}") from err
    return [str(p) for p in frames]


def validate_samples(
    dataset: str,
    samples: Iterable[dict[str, Any]],
    checkers: Mapping[str, Checker],
    on_error: OnError = "raise",
    id_key: str = "id",
) -> tuple[list[dict[str, Any]], ValidationReport]:
    """Check the media fields of every sample, then stop or skip as ``on_error`` says.

    Args:
        dataset: Name of the dataset, used in messages.
        samples: Sample dicts; each has ``id_key`` and the fields named in ``checkers``.
        checkers: Field name -> checker. The checker's return value replaces the field's value.
        on_error: ``"raise"`` to stop at any problem, ``"skip"`` to drop broken samples (with a warning).
        id_key: Field holding the sample id.

    Returns:
        The usable samples (with resolved fields) and the :class:`ValidationReport`.

    Raises:
        DatasetValidationError: If anything is missing or unreadable and ``on_error="raise"``.
    """
    check_on_error(on_error)
    report = ValidationReport(dataset)
    kept: list[dict[str, Any]] = []
    for sample in samples:
        report.num_checked += 1
        resolved = dict(sample)
        good = True
        for key, checker in checkers.items():
            value = sample[key]
            try:
                resolved[key] = checker(value)
            except FileNotFoundError:
                report.missing.append(Problem(str(sample[id_key]), str(value), "missing"))
                good = False
            except Exception as err:  # any decoding failure makes the file unreadable
                reason = f"{type(err).__name__}: {err}".strip()
                report.unreadable.append(Problem(str(sample[id_key]), str(value), reason))
                good = False
        if good:
            kept.append(resolved)
    if not report.ok:
        if on_error == "raise":
            raise DatasetValidationError(report)
        logger.warning("%s\nSkipping these samples (on_error='skip').", report.summary())
    return kept, report
