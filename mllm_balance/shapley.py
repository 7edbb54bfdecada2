"""Modality contributions: Shapley values (Eq. 7), the next-order rule (Eq. 8) and the EDM metric."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

ValueFn = Callable[[frozenset[str]], float]
ZERO_TOLERANCE = 1e-9


class ShapleyValues(dict):
    """`{modality: phi}`; `stderr` holds the standard error of each estimate (zeros for exact values)."""

    def __init__(self, values: Mapping[str, float], stderr: Mapping[str, float] | None = None):
        super().__init__(values)
        self.stderr = dict(stderr) if stderr is not None else dict.fromkeys(values, 0.0)


def _memoized(value_fn: ValueFn) -> ValueFn:
    cache: dict[frozenset[str], float] = {}

    def value(subset: frozenset[str]) -> float:
        if subset not in cache:
            cache[subset] = float(value_fn(subset))
        return cache[subset]

    return value


def sample_permutations(n: int, num_permutations: int, seed: int) -> np.ndarray:
    """The `(num_permutations, n)` orders (indices) drawn by the permutation estimator for `seed`."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n) for _ in range(num_permutations)])


def coalitions_needed(
    modalities: Sequence[str], *, method: str = "exact", num_permutations: int = 200, seed: int = 0
) -> list[frozenset[str]]:
    """Every coalition that [`shapley_values`] will ask `value_fn` for, so they can be scored in one pass."""
    players = list(modalities)
    if method == "exact":
        subsets = itertools.chain.from_iterable(itertools.combinations(players, k) for k in range(len(players) + 1))
        return [frozenset(s) for s in subsets]
    needed = {frozenset()}
    for perm in sample_permutations(len(players), num_permutations, seed):
        needed.update(frozenset(players[i] for i in perm[:k]) for k in range(1, len(players) + 1))
    return sorted(needed, key=lambda s: (len(s), sorted(s)))


def shapley_values(
    value_fn: ValueFn,
    modalities: Sequence[str],
    *,
    method: str = "exact",
    num_permutations: int = 200,
    seed: int = 0,
) -> ShapleyValues:
    r"""Shapley value of every modality for the game `value_fn` (Eq. 7).

    `phi_i = sum_{S subset N \ {i}} |S|! (n - |S| - 1)! / n! * (v(S u {i}) - v(S))`.

    Args:
        value_fn (`Callable[[frozenset[str]], float]`): the value `v(S)` of a coalition, e.g. the validation
            accuracy with the modalities in `S` only; `v(frozenset())` is the value of the empty coalition.
            Each coalition is evaluated once.
        modalities (`Sequence[str]`): the players.
        method (`str`, *optional*, defaults to `"exact"`): `"exact"` enumerates all `2^n` coalitions;
            `"permutation"` averages marginal contributions over `num_permutations` seeded random orders and
            reports their standard error.
        num_permutations (`int`, *optional*, defaults to 200): orders sampled by `"permutation"`.
        seed (`int`, *optional*, defaults to 0): seed of `"permutation"`.

    Returns:
        [`ShapleyValues`]: a dict `{modality: phi}` with a `stderr` attribute. Efficiency holds for `"exact"`
        (and for every sampled order, hence for the estimate): `sum(phi) == v(N) - v(empty)`.
    """
    players = list(modalities)
    if len(set(players)) != len(players):
        raise ValueError(f"modalities must be distinct, got {players}")
    if not players:
        raise ValueError("at least one modality is needed")
    value = _memoized(value_fn)
    n = len(players)
    if method == "exact":
        phi = dict.fromkeys(players, 0.0)
        for i in players:
            others = [p for p in players if p != i]
            for size in range(n):
                weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                for subset in itertools.combinations(others, size):
                    s = frozenset(subset)
                    phi[i] += weight * (value(s | {i}) - value(s))
        return ShapleyValues(phi)
    if method == "permutation":
        if num_permutations < 2:
            raise ValueError("num_permutations must be >= 2 to report a standard error")
        marginals = {p: np.empty(num_permutations) for p in players}
        for k, perm in enumerate(sample_permutations(n, num_permutations, seed)):
            coalition: frozenset[str] = frozenset()
            previous = value(coalition)
            for idx in perm:
                coalition = coalition | {players[idx]}
                current = value(coalition)
                marginals[players[idx]][k] = current - previous
                previous = current
        return ShapleyValues(
            {p: float(v.mean()) for p, v in marginals.items()},
            {p: float(v.std(ddof=1) / math.sqrt(num_permutations)) for p, v in marginals.items()},
        )
    raise ValueError(f"method must be 'exact' or 'permutation', got {method!r}")


def next_order(phi: Mapping[str, float], previous_order: Iterable[str]) -> list[str]:
    """Eq. 8: modalities sorted by ascending Shapley value (weakest first), ties kept in the previous order."""
    previous = list(previous_order)
    missing = [m for m in previous if m not in phi]
    if missing:
        raise ValueError(f"no Shapley value for modalities {missing}")
    return sorted(previous, key=lambda m: phi[m])  # sorted() is stable: ties keep `previous`'s order


def edm_defined(phi: Mapping[str, float]) -> bool:
    """Whether EDM is defined for `phi`: the Shapley values sum to more than `ZERO_TOLERANCE`.

    Shapley values are accuracy differences in percent points: a sum within rounding of 0 (e.g. a model that
    always predicts one class) is 0, not a tiny positive total that would blow the normalised contributions up.
    Every table, card and report asks this one function.
    """
    return float(sum(phi.values())) > ZERO_TOLERANCE


def normalised_contributions(phi: Mapping[str, float]) -> dict[str, float]:
    """`phi~_m = 100 * n * phi_m / sum_j phi_j` (100 for every modality of a balanced model); NaN where EDM is
    undefined ([`edm_defined`])."""
    if not edm_defined(phi):
        return dict.fromkeys(phi, float("nan"))
    total = float(sum(phi.values()))
    return {m: 100.0 * len(phi) * float(v) / total for m, v in phi.items()}


def equilibrium_deviation(phi: Mapping[str, float], *, return_terms: bool = False):
    r"""Equilibrium deviation metric (EDM), in percent; lower is more balanced.

    `phi~_m = 100 * n * phi_m / sum_j phi_j` (a perfectly balanced model scores 100 for every modality) and
    `EDM = sum_m |100 - phi~_m|`. The paper's printed tables cannot be rebuilt from its text, so this follows
    the normalisation above (pinned in the design notes) rather than those numbers.

    Args:
        phi (`Mapping[str, float]`): Shapley value of every modality.
        return_terms (`bool`, *optional*): also return `{m: |100 - phi~_m|}`.

    Returns:
        `float` (or `(float, dict)`): EDM; NaN, with a warning, when `sum_j phi_j <= 0` (within `1e-9`).
    """
    if not phi:
        raise ValueError("equilibrium_deviation needs at least one modality")
    if not edm_defined(phi):
        total = float(sum(phi.values()))
        warnings.warn(f"EDM is undefined when the Shapley values sum to {total:.4g} <= 0; returning NaN", stacklevel=2)
    terms = {m: abs(100.0 - v) for m, v in normalised_contributions(phi).items()}
    edm = float(sum(terms.values()))
    return (edm, terms) if return_terms else edm


__all__ = [
    "ShapleyValues",
    "shapley_values",
    "coalitions_needed",
    "sample_permutations",
    "next_order",
    "equilibrium_deviation",
    "edm_defined",
    "normalised_contributions",
]
