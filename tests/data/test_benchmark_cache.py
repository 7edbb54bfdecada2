"""Benchmark cache: deterministic manifests, atomic builds, one build per configuration."""

from __future__ import annotations

import threading

import pytest

from mllm_balance.data.cache import MANIFEST, benchmark_dir, build_once, canonical_json, config_hash


def test_canonical_json_and_hash_ignore_key_order():
    a, b = {"b": 1, "a": [1, "é"]}, {"a": [1, "é"], "b": 1}
    assert canonical_json(a) == canonical_json(b) and canonical_json(a).endswith(b"\n")
    assert "é" in canonical_json(a).decode("utf-8")
    assert config_hash(a) == config_hash(b) != config_hash({"a": [1, "e"], "b": 1})


def test_benchmark_dir_layout(tmp_path):
    path = benchmark_dir("toy", {"seed": 0}, tmp_path)
    assert path.parent == tmp_path / "benchmarks" / "toy" and len(path.name) == 16


def test_failed_build_leaves_nothing_and_a_finished_build_is_reused(tmp_path):
    target = tmp_path / "benchmarks" / "toy" / "abc"
    calls = []

    def broken(folder):
        folder.mkdir(parents=True)
        (folder / "half.txt").write_text("x")
        raise RuntimeError("boom")

    def good(folder):
        calls.append(folder)
        folder.mkdir(parents=True)
        (folder / MANIFEST).write_text("{}\n")

    with pytest.raises(RuntimeError, match="boom"):
        build_once(target, broken)
    assert not target.exists() and not [p for p in target.parent.iterdir() if p.name.startswith(".tmp")]
    assert build_once(target, good) == target and (target / MANIFEST).is_file()
    build_once(target, good)
    assert len(calls) == 1
    build_once(target, good, rebuild=True)
    assert len(calls) == 2


def test_concurrent_callers_build_once(tmp_path):
    target = tmp_path / "t"
    started, release, calls = threading.Event(), threading.Event(), []

    def slow(folder):
        calls.append(folder)
        started.set()
        release.wait(timeout=30)
        folder.mkdir(parents=True)
        (folder / MANIFEST).write_text("{}\n")

    first = threading.Thread(target=build_once, args=(target, slow))
    first.start()
    assert started.wait(timeout=30)
    second = threading.Thread(target=build_once, args=(target, slow))
    second.start()  # blocks on the lock while the first build runs
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert len(calls) == 1 and (target / MANIFEST).is_file()
