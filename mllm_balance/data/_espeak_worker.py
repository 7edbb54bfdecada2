"""Speech synthesis worker: eSpeak NG (from the ``espeakng-loader`` wheel) driven through ctypes.

Run as a separate process by :mod:`mllm_balance.data.speech` (``python _espeak_worker.py`` with a JSON job on
stdin). eSpeak NG keeps internal state between utterances, so its output depends on everything it has spoken
before in the same process; a fresh process that speaks a fixed list in a fixed order gives the same samples
every time (both of its random generators are also reseeded before each utterance). Keeping it out of the
caller's process also keeps the GPL library out of it.

This file imports nothing from the package, so the worker starts without loading torch or datasets.

Job: ``{"items": [{"text", "voice", "rate", "pitch", "path", "offset", "noise_seed", "snr_db"}],
"sample_rate": 16000, "window": 48000}``. For each item the worker synthesises ``text`` (22,050 Hz),
resamples it to ``sample_rate``, trims leading and trailing silence, places it at ``offset`` (a share of the
free room) inside a ``window``-sample buffer, adds white Gaussian noise at ``snr_db`` measured on the speech
(none if null), scales the peak to 0.9 and writes 16-bit mono WAV to ``path``. It prints one JSON line per
item: ``{"path", "speech_samples", "start"}``.
"""

from __future__ import annotations

import ctypes
import json
import sys
import wave
from fractions import Fraction

import numpy as np

ESPEAK_RATE = 22050
AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
CHARS_UTF8 = 1
PARAM_RATE = 1
PARAM_PITCH = 3
TRIM_THRESHOLD = 0.02

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class Espeak:
    """Minimal ctypes binding: initialise once, then :meth:`speak` returns int16 samples at 22,050 Hz."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)
        rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"eSpeak NG initialisation failed or changed its sample rate (returned {rate}).")
        self.lib.espeak_SetSynthCallback(self._callback)
        self.libc = ctypes.CDLL(None)  # the process's C library, whose rand() eSpeak NG also uses

    def seed(self, seed: int) -> None:
        """Reset both random generators eSpeak NG draws from (its own and the C library's)."""
        self.lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
        self.libc.srand(ctypes.c_uint(seed))

    def _collect(self, samples, count, events) -> int:  # noqa: ARG002 - ctypes callback signature
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    def speak(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice!r}.")
        self.lib.espeak_SetParameter(PARAM_RATE, int(rate), 0)
        self.lib.espeak_SetParameter(PARAM_PITCH, int(pitch), 0)
        data = text.encode("utf-8")
        self._chunks = []
        status = self.lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if status != 0:
            raise RuntimeError(f"eSpeak NG failed on {text!r} (status {status}).")
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Polyphase resampling ``src`` -> ``dst`` Hz (scipy)."""
    from scipy.signal import resample_poly

    ratio = Fraction(dst, src)
    return resample_poly(x, ratio.numerator, ratio.denominator)


def trim(x: np.ndarray, threshold: float = TRIM_THRESHOLD) -> np.ndarray:
    """Drop leading and trailing samples below ``threshold`` of the peak."""
    peak = np.max(np.abs(x)) if x.size else 0.0
    if peak <= 0:
        return x[:0]
    loud = np.flatnonzero(np.abs(x) >= threshold * peak)
    return x[loud[0] : loud[-1] + 1]


def place(
    speech: np.ndarray, window: int, offset: float, snr_db: float | None, noise_seed: int
) -> tuple[np.ndarray, int]:
    """Put ``speech`` into a ``window``-sample buffer at ``offset`` of the free room and add noise."""
    speech = speech[:window]
    start = int(np.floor(offset * (window - speech.size)))
    out = np.zeros(window, np.float64)
    out[start : start + speech.size] = speech
    if snr_db is not None and speech.size:
        power = float(np.mean(speech**2))
        noise = np.random.default_rng(noise_seed).standard_normal(window)
        out += noise * np.sqrt(power / 10.0 ** (snr_db / 10.0))
    peak = np.max(np.abs(out))
    if peak > 0:
        out *= 0.9 / peak
    return out, start


def write_wav(path: str, x: np.ndarray, sample_rate: int) -> None:
    """16-bit mono PCM WAV."""
    pcm = np.round(np.clip(x, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())


def run(job: dict) -> None:
    engine = Espeak()
    sample_rate, window = int(job["sample_rate"]), int(job["window"])
    for item in job["items"]:
        engine.seed(int(item["noise_seed"]))
        raw = engine.speak(item["text"], item["voice"], item["rate"], item["pitch"]).astype(np.float64) / 32768.0
        speech = trim(resample(raw, ESPEAK_RATE, sample_rate))
        audio, start = place(speech, window, float(item["offset"]), item.get("snr_db"), int(item["noise_seed"]))
        write_wav(item["path"], audio, sample_rate)
        print(json.dumps({"path": item["path"], "speech_samples": int(min(speech.size, window)), "start": start}))
    sys.stdout.flush()


if __name__ == "__main__":
    run(json.load(sys.stdin))
