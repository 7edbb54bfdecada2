"""Linear probes on frozen features: how strong is each modality alone, and their concatenation.

Used to fill the accuracy tables of the data cards, so that the imbalance of a benchmark is measured, not
assumed. Input is a feature ``DatasetDict`` in the project's feature-column convention (one float-list column
per modality, ``labels``) with ``train``, ``validation`` and ``test`` splits. Each probe is a multinomial
logistic regression on standardised features (scikit-learn), with ``C`` chosen on validation accuracy and
the probe refitted on train only; accuracy is reported on test, in percent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from datasets import DatasetDict

from .records import MODALITY_FEATURES

DEFAULT_CS = (0.001, 0.01, 0.1, 1.0, 10.0)


def _matrix(dataset, modalities: Sequence[str]) -> np.ndarray:
    return np.concatenate([np.asarray(dataset[m], dtype=np.float32) for m in modalities], axis=1)


def probe_accuracy(
    features: DatasetDict, modalities: Sequence[str], cs: Sequence[float] = DEFAULT_CS, seed: int = 0
) -> dict[str, float]:
    """Test accuracy (percent) of a logistic-regression probe on the given modalities (concatenated).

    Args:
        features: Feature ``DatasetDict`` with ``train``, ``validation`` and ``test``.
        modalities: Feature columns to concatenate.
        cs: Inverse regularisation strengths to try.
        seed: Seed of the solver.

    Returns:
        ``{"test": ..., "validation": ..., "C": ...}``.
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
    except ImportError as err:
        raise ImportError("Linear probes need scikit-learn: pip install scikit-learn") from err
    x = {s: _matrix(features[s], modalities) for s in ("train", "validation", "test")}
    y = {s: np.asarray(features[s]["labels"]) for s in ("train", "validation", "test")}
    scaler = StandardScaler().fit(x["train"])
    x = {s: scaler.transform(v) for s, v in x.items()}
    best = None
    for c in cs:
        model = LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(x["train"], y["train"])
        val = float((model.predict(x["validation"]) == y["validation"]).mean())
        if best is None or val > best[0]:
            best = (val, c, model)
    val, c, model = best
    test = float((model.predict(x["test"]) == y["test"]).mean())
    return {"test": 100.0 * test, "validation": 100.0 * val, "C": c}


def probe_table(features: DatasetDict, modalities: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Probe every modality alone and all of them concatenated.

    Args:
        features: Feature ``DatasetDict`` (see :func:`probe_accuracy`).
        modalities: Feature columns; default: every modality column present.

    Returns:
        ``{modality or "concat": {"test", "validation", "C"}}``.
    """
    if modalities is None:
        modalities = [c for c in features["train"].column_names if c in MODALITY_FEATURES]
    out = {m: probe_accuracy(features, [m]) for m in modalities}
    if len(modalities) > 1:
        out["concat"] = probe_accuracy(features, modalities)
    return out


def markdown_table(results: dict[str, dict[str, float]]) -> str:
    """The probe results as a Markdown table."""
    lines = ["| probe | test accuracy (%) | validation accuracy (%) | C |", "| --- | --- | --- | --- |"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['test']:.1f} | {r['validation']:.1f} | {r['C']:g} |")
    return "\n".join(lines)
