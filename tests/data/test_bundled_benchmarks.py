"""Bundled benchmarks: tiny builds are reproducible from a seed and land in the cache, not the repository."""

from __future__ import annotations

import gzip
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mllm_balance.data import BENCHMARKS, get_id2label, get_spec, list_benchmarks, load_benchmark
from mllm_balance.data.cache import MANIFEST, cache_root
from mllm_balance.data.fashion_speech import LABEL_NAMES as FASHION_LABELS
from mllm_balance.data.fashion_speech import read_idx

pytest.importorskip("kaomoji_dataset")
pytest.importorskip("espeakng_loader")
pytest.importorskip("noto_cjk_sans_jp_regular")


def manifest_bytes(dsd) -> bytes:
    folder = Path(dsd["train"][0]["image"]).parent.parent
    return (folder / MANIFEST).read_bytes()


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory):
    """A Fashion-MNIST look-alike: 3 training and 2 test images per class, in the four IDX files."""
    folder = tmp_path_factory.mktemp("fashion")
    rng = np.random.default_rng(0)
    for prefix, per_class in (("train", 3), ("t10k", 2)):
        labels = np.repeat(np.arange(10), per_class)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (labels.size, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def test_registry():
    assert list_benchmarks() == ["fashion-speech", "kaomoji-sentiment", "kaomoji-speech"]
    assert get_spec("kaomoji_speech").modalities == ("text", "image", "audio")
    assert all(spec.card is not None for spec in BENCHMARKS.values())
    with pytest.raises(ValueError, match="Unknown benchmark 'mnist'"):
        load_benchmark("mnist")


def test_cache_root_honours_the_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv("MLLM_BALANCE_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("MLLM_BALANCE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "mllm_balance"


def test_read_idx(fashion_dir):
    assert read_idx(fashion_dir / "train-images-idx3-ubyte.gz").shape == (30, 28, 28)
    assert read_idx(fashion_dir / "t10k-labels-idx1-ubyte.gz").tolist() == [c for c in range(10) for _ in range(2)]


def test_kaomoji_sentiment_is_reproducible(tmp_path, monkeypatch):
    monkeypatch.setenv("MLLM_BALANCE_CACHE", str(tmp_path / "env_cache"))
    a = load_benchmark("kaomoji-sentiment", seed=0, per_class=(3, 1, 1))
    b = load_benchmark("kaomoji-sentiment", seed=0, per_class=(3, 1, 1), cache_dir=tmp_path / "other")
    c = load_benchmark("kaomoji-sentiment", seed=1, per_class=(3, 1, 1), cache_dir=tmp_path / "other")
    assert a["train"][0]["image"].startswith(str(tmp_path / "env_cache" / "benchmarks" / "kaomoji-sentiment"))
    assert manifest_bytes(a) == manifest_bytes(b)
    assert manifest_bytes(a) != manifest_bytes(c) and a["train"]["id"] != c["train"]["id"]
    assert {k: len(v) for k, v in a.items()} == {"train": 9, "validation": 3, "test": 3}
    assert get_id2label(a) == {0: "negative", 1: "neutral", 2: "positive"}
    assert sorted(a["train"]["labels"]) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert a["train"].column_names == ["id", "text", "image", "labels"]
    row = a["train"][0]
    assert isinstance(row["text"], str) and row["text"]
    with Image.open(row["image"]) as img:
        assert img.size == (224, 224) and img.mode == "RGB"
        assert np.asarray(img).min() < 100  # something is drawn
    split_ids = [set(a[s]["id"]) for s in ("train", "validation", "test")]
    assert not (split_ids[0] & split_ids[1] or split_ids[0] & split_ids[2] or split_ids[1] & split_ids[2])
    # a second call reads the cache instead of building again
    stamp = Path(row["image"]).stat().st_mtime_ns
    again = load_benchmark("kaomoji-sentiment", seed=0, per_class=(3, 1, 1))
    assert Path(again["train"][0]["image"]).stat().st_mtime_ns == stamp


def test_kaomoji_captions_mix_languages_and_topics(tmp_path):
    dsd = load_benchmark("kaomoji-sentiment", seed=3, per_class=(40, 1, 1), topic_share=0.5, cache_dir=tmp_path)
    manifest = json.loads(manifest_bytes(dsd))
    rows = manifest["splits"]["train"]
    assert len({r["lang"] for r in rows}) == 6
    share = sum(r["topic_only"] for r in rows) / len(rows)
    assert 0.3 < share < 0.7
    topics = {"Waving", "Winkend", "Pointing", "Zeigend", "指さし", "Taking notes", "Sparkling", "Cute creature",
              "Saludando", "Acenando", "挨拶", "打招呼", "指着", "Señalando", "Apontando", "With a phone", "手机",
              "Mit Handy", "Con celular", "Com celular", "スマホ", "Schreibend", "Escribiendo", "Escrevendo", "メモ",
              "写字", "Funkelnd", "Brillante", "Brilhante", "キラキラ", "闪闪", "Tier, süß", "Criatura tierno",
              "Bichinho fofo", "かわいい動物", "可爱小动物"}  # fmt: skip
    assert all(r["text"] in topics for r in rows if r["topic_only"])


def test_fashion_speech_is_reproducible(tmp_path, fashion_dir):
    kwargs = {"per_class": (2, 1, 1), "source_dir": fashion_dir}
    a = load_benchmark("fashion-speech", seed=0, cache_dir=tmp_path / "a", **kwargs)
    b = load_benchmark("fashion-speech", seed=0, cache_dir=tmp_path / "b", **kwargs)
    c = load_benchmark("fashion-speech", seed=5, cache_dir=tmp_path / "b", **kwargs)
    assert manifest_bytes(a) == manifest_bytes(b) and manifest_bytes(a) != manifest_bytes(c)
    assert {k: len(v) for k, v in a.items()} == {"train": 20, "validation": 10, "test": 10}
    assert list(get_id2label(a).values()) == list(FASHION_LABELS)
    assert a["train"].column_names == ["id", "audio", "image", "labels"]
    assert all(i.startswith("t10k-") for i in a["test"]["id"])
    with wave.open(a["test"][0]["audio"], "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (16000, 1, 2, 48000)
    with Image.open(a["test"][0]["image"]) as img:
        pixels = np.asarray(img.convert("L"), dtype=float)
    assert img.size == (112, 112) and np.abs(np.diff(pixels, axis=1)).max() < 60  # smooth: 5 x 5 upsampled


def test_fashion_speech_missing_source_names_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        load_benchmark("fashion-speech", source_dir=tmp_path)


def test_kaomoji_speech_has_three_modalities(tmp_path):
    a = load_benchmark("kaomoji-speech", seed=0, per_class=(2, 1, 1), cache_dir=tmp_path / "a")
    b = load_benchmark("kaomoji-speech", seed=0, per_class=(2, 1, 1), cache_dir=tmp_path / "b")
    assert manifest_bytes(a) == manifest_bytes(b)
    assert a["train"].column_names == ["id", "text", "image", "audio", "labels"]
    manifest = json.loads(manifest_bytes(a))
    row = manifest["splits"]["train"][0]
    assert row["spoken"] and row["voice"].split("+")[0].startswith("en")
    assert Path(a["train"][0]["audio"]).stat().st_size == 44 + 2 * 48000
