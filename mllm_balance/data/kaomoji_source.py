"""Kaomoji from the ``kaomoji-dataset`` package, grouped into three sentiments, and their captions.

Source: ``kaomoji-dataset`` (PyPI, CC-BY-4.0, https://fontvibe.ai/tools/kaomoji): 82,109 kaomoji with a
category and names / keywords in six languages (de, en, es, ja, pt, zh).

Sentiment map (other categories are dropped)::

    negative: sad, angry, scared, hurt, dissatisfied, sorry
    neutral:  sleepy, doubt, confused, surprised, shy
    positive: happy, love, excited, cool, dance

Candidates are the kaomoji of these categories that have a name in all six languages and whose every
character some font of the :class:`~mllm_balance.data.fonts.FontChain` covers, one per distinct kaomoji
string (the lowest id), in id order.

Captions: a name is a fixed function of the category (about 45 distinct English names), so a plain name is
nearly perfectly predictive. A caption is therefore the sample's name in a random language, except that with
probability ``topic_share`` it is replaced by a *topic-only* name in the same language: the name of one of
the label-free topics Waving, Pointing, Taking notes, With a phone, Sparkling, Cute creature, drawn
independently of the label. This keeps text the strong modality without saturating it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from .fonts import FontChain
from .records import stable_seed

LABEL_NAMES = ("negative", "neutral", "positive")
CATEGORIES = {
    "negative": ("sad", "angry", "scared", "hurt", "dissatisfied", "sorry"),
    "neutral": ("sleepy", "doubt", "confused", "surprised", "shy"),
    "positive": ("happy", "love", "excited", "cool", "dance"),
}
CATEGORY_TO_LABEL = {c: label for label, cats in CATEGORIES.items() for c in cats}
LANGS = ("de", "en", "es", "ja", "pt", "zh")
TOPIC_NAMES_EN = ("Waving", "Pointing", "Taking notes", "With a phone", "Sparkling", "Cute creature")
PACKAGE = "kaomoji-dataset"
INSTALL_HINT = "pip install 'mllm-balance[benchmarks]'  (or: pip install kaomoji-dataset)"

Row = dict[str, Any]


def package_version() -> str:
    """Installed version of ``kaomoji-dataset`` (part of a benchmark's cache key)."""
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "missing"


def load_rows() -> list[Row]:
    """Every entry of ``kaomoji-dataset``."""
    try:
        import kaomoji_dataset
    except ImportError as err:
        raise ImportError(f"The kaomoji benchmarks need the '{PACKAGE}' package: {INSTALL_HINT}") from err
    return kaomoji_dataset.all()


def topic_names(rows: Sequence[Row]) -> dict[str, list[str]]:
    """Per language, the topic-only names (the most common translation of each English topic name)."""
    counts: dict[tuple[str, str], Counter] = {}
    for row in rows:
        names = row.get("names") or {}
        if names.get("en") in TOPIC_NAMES_EN and all(names.get(lang) for lang in LANGS):
            for lang in LANGS:
                counts.setdefault((names["en"], lang), Counter())[names[lang]] += 1
    out: dict[str, list[str]] = {lang: [] for lang in LANGS}
    for topic in TOPIC_NAMES_EN:
        for lang in LANGS:
            if (topic, lang) not in counts:
                raise ValueError(f"{PACKAGE}: no '{lang}' name for the topic {topic!r}.")
            # most common, ties broken alphabetically
            out[lang].append(min(counts[(topic, lang)].items(), key=lambda kv: (-kv[1], kv[0]))[0])
    return out


def candidates(rows: Sequence[Row], chain: FontChain) -> tuple[dict[str, list[Row]], dict[str, int]]:
    """Usable kaomoji per label, in id order, and counts of what was dropped and why."""
    by_label: dict[str, list[Row]] = {label: [] for label in LABEL_NAMES}
    dropped = Counter()
    seen: set[str] = set()
    for row in sorted(rows, key=lambda r: r["id"]):
        label = CATEGORY_TO_LABEL.get(row.get("category", ""))
        if label is None:
            continue
        names = row.get("names") or {}
        if not all(names.get(lang) for lang in LANGS):
            dropped["missing_names"] += 1
        elif row["text"] in seen:
            dropped["duplicate_text"] += 1
        elif chain.uncovered(row["text"]):
            dropped["glyph_not_covered"] += 1
        else:
            seen.add(row["text"])
            by_label[label].append(row)
    return by_label, dict(sorted(dropped.items()))


def select(by_label: dict[str, list[Row]], per_class: Sequence[int], seed: int, name: str) -> dict[str, list[Row]]:
    """Seeded per-class draws without replacement into train / validation / test, each in shuffled order."""
    n_train, n_val, n_test = per_class
    rng = np.random.default_rng(stable_seed(seed, name, "select"))
    splits: dict[str, list[Row]] = {"train": [], "validation": [], "test": []}
    for label in LABEL_NAMES:
        pool = by_label[label]
        if len(pool) < n_train + n_val + n_test:
            raise ValueError(f"{name}: only {len(pool)} usable kaomoji for {label!r}, per_class={tuple(per_class)}.")
        order = rng.permutation(len(pool))
        picked = [pool[i] for i in order[: n_train + n_val + n_test]]
        splits["train"] += picked[:n_train]
        splits["validation"] += picked[n_train : n_train + n_val]
        splits["test"] += picked[n_train + n_val :]
    return {split: [rows[i] for i in rng.permutation(len(rows))] for split, rows in splits.items()}


def caption(row: Row, topics: dict[str, list[str]], topic_share: float, seed: int, name: str) -> dict[str, Any]:
    """The caption of one sample: ``{"text", "lang", "topic_only"}``, seeded by ``(seed, name, id)``."""
    rng = np.random.default_rng(stable_seed(seed, name, "caption", row["id"]))
    lang = LANGS[int(rng.integers(len(LANGS)))]
    topic_only = bool(rng.random() < topic_share)
    topic = topics[lang][int(rng.integers(len(topics[lang])))]
    return {"text": topic if topic_only else row["names"][lang], "lang": lang, "topic_only": topic_only}
