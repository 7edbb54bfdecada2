"""Missing-modality robustness (the paper's Table 4): accuracy when a share of the test modalities is dropped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .collator import LABEL_COLUMN, build_feature_dataset, feature_view, modality_entries, presence_column

DEFAULT_DROP_RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def drop_masks(present: dict[str, np.ndarray], rate: float, seed: int | Sequence[int] = 0) -> dict[str, np.ndarray]:
    """Presence masks after dropping a share `rate` of all (sample, modality) entries, each sample keeping one.

    Every sample first keeps one of its present modalities, drawn at random; the droppable entries (its other present
    modalities) are put in one seeded random order and the first `round(rate * N * n)` of them are dropped. So the
    share of dropped entries is exactly `rate` (up to rounding), no sample loses every modality, and for a given seed
    the drops of a smaller rate are a subset of those of a larger one.

    Args:
        present (`dict[str, np.ndarray]`): `{m: (N,) bool}` presence before dropping (all True for a complete set).
        rate (`float`): share of the `N * n` entries to drop, in `[0, 1)`.
        seed (`int` or `Sequence[int]`, *optional*, defaults to 0): seed of the draw (`numpy.random.default_rng`).

    Returns:
        `dict[str, np.ndarray]`: `{m: (N,) bool}`, the new presence masks.

    Raises:
        `ValueError`: if `rate` is outside `[0, 1)`, or so large that some sample would lose every modality (with n
        complete modalities the largest feasible rate is `(n - 1) / n`).
    """
    if not 0 <= rate < 1:
        raise ValueError(f"drop rate must be in [0, 1), got {rate}")
    mods = list(present)
    if not mods:
        raise ValueError("present must name at least one modality")
    mask = np.stack([np.asarray(present[m], dtype=bool) for m in mods], axis=1)  # (N, n)
    n_samples, n_mods = mask.shape
    if not mask.any(1).all():
        raise ValueError(f"samples {np.flatnonzero(~mask.any(1))[:10].tolist()} have no modality present")
    rng = np.random.default_rng(seed)
    scores = rng.random(mask.shape)  # (N, n)
    keep = np.where(mask, scores, -1.0).argmax(1)  # one present modality kept per sample
    candidates = mask.copy()
    candidates[np.arange(n_samples), keep] = False
    rows, cols = np.nonzero(candidates)
    order = rng.permutation(rows.shape[0])
    n_drop = int(round(rate * n_samples * n_mods))
    if n_drop > rows.shape[0]:
        raise ValueError(
            f"cannot drop {rate:.0%} of the {n_samples * n_mods} entries while every sample keeps a modality: at most "
            f"{rows.shape[0]} entries ({rows.shape[0] / (n_samples * n_mods):.0%}) can go"
        )
    dropped = mask.copy()
    dropped[rows[order[:n_drop]], cols[order[:n_drop]]] = False
    return {m: dropped[:, i] for i, m in enumerate(mods)}


def drop_modalities(dataset, modalities: Sequence[str], rate: float, seed: int | Sequence[int] = 0):
    """A copy of a feature dataset with a share `rate` of its modality entries dropped ([`drop_masks`]).

    Dropped entries get `<m>_present = False` and a zero vector, following the feature-column convention.

    Args:
        dataset (`datasets.Dataset`): feature dataset (one column per modality, optional presence columns, labels).
        modalities (`Sequence[str]`): the modality columns.
        rate (`float`): share of entries to drop.
        seed (`int` or `Sequence[int]`, *optional*, defaults to 0): seed of the draw.
    """
    wanted = [*modalities, *map(presence_column, modalities), LABEL_COLUMN]
    chunk = feature_view(dataset, [c for c in wanted if c in dataset.column_names])[:]
    entries = {m: modality_entries(chunk, m, "dataset") for m in modalities}  # {m: ((n, D_m), present (n,))}
    masks = drop_masks({m: present for m, (_, present) in entries.items()}, rate, seed)
    features = {m: x for m, (x, _) in entries.items()}
    return build_feature_dataset(features, np.asarray(chunk[LABEL_COLUMN]), present=masks)


def draw_seed(seed: int, draw: int) -> int | list[int]:
    """The seed of draw `draw` of the drops: `seed` itself for the first draw, `[seed, draw]` for the others."""
    return seed if draw == 0 else [seed, draw]


def missing_modality_accuracy(
    trainer, dataset, rates: Iterable[float] = DEFAULT_DROP_RATES, seed: int = 0, draws: int = 1
) -> dict[float, float]:
    """Accuracy (percent) of a trained model when a share of the test modalities is missing, per drop rate.

    Which entries go is random, and on a test split of a few hundred samples one draw moves the accuracy by about a
    point; `draws > 1` averages the accuracy over that many draws ([`draw_seed`]), an estimate of its expectation
    over the drops with a smaller variance. The first draw is the single draw of `draws=1`.

    Args:
        trainer ([`BalanceTrainer`]): the trainer of the model (its prediction loop runs the evaluation).
        dataset (`datasets.Dataset`): the complete test features.
        rates (`Iterable[float]`, *optional*): drop rates, by default 0, 10, ..., 50 %.
        seed (`int`, *optional*, defaults to 0): seed of the drops (the same for every rate, so drops are nested).
        draws (`int`, *optional*, defaults to 1): number of draws averaged per rate.

    Returns:
        `dict[float, float]`: `{rate: accuracy}`, ready for the `missing_modality` field of `results.json`.
    """
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    modalities = list(trainer.model.config.modalities)
    out = {}
    for rate in rates:
        accuracies = []
        for draw in range(draws if rate > 0 else 1):  # nothing is drawn at rate 0
            dropped = drop_modalities(dataset, modalities, float(rate), draw_seed(seed, draw))
            prediction = trainer.predict(dropped, metric_key_prefix="missing")
            accuracies.append(float(prediction.metrics["missing_accuracy"]))
        out[float(rate)] = float(np.mean(accuracies))
    return out


__all__ = ["DEFAULT_DROP_RATES", "draw_seed", "drop_masks", "drop_modalities", "missing_modality_accuracy"]
