"""Shapley values on games with known answers, the permutation estimator, the next-order rule and EDM."""

from __future__ import annotations

import itertools
import math
import warnings

import pytest

from mllm_balance import equilibrium_deviation, next_order, shapley_values
from mllm_balance.shapley import coalitions_needed, sample_permutations


def table_game(table):
    return lambda s: table[frozenset(s)]


def unanimity(players):
    t = frozenset(players)
    return lambda s: 1.0 if t <= s else 0.0


def test_two_player_game_by_hand():
    v = table_game({frozenset(): 0, frozenset("a"): 10, frozenset("b"): 20, frozenset("ab"): 50})
    phi = shapley_values(v, ["a", "b"])
    # phi_a = 1/2 (10 - 0) + 1/2 (50 - 20) = 20; phi_b = 1/2 (20 - 0) + 1/2 (50 - 10) = 30
    assert phi == pytest.approx({"a": 20.0, "b": 30.0})
    assert phi.stderr == {"a": 0.0, "b": 0.0}


def test_glove_game_three_players():
    # one right glove R, two left gloves: a pair is worth 1
    v = lambda s: 1.0 if "R" in s and ({"L1", "L2"} & s) else 0.0  # noqa: E731
    phi = shapley_values(v, ["L1", "L2", "R"])
    assert phi == pytest.approx({"L1": 1 / 6, "L2": 1 / 6, "R": 2 / 3})


@pytest.mark.parametrize("n", [2, 3, 4])
def test_efficiency_and_symmetry(n):
    players = [f"m{i}" for i in range(n)]
    weights = {p: float(i + 1) for i, p in enumerate(players)}
    weights["m1"] = weights["m0"]  # m0 and m1 are interchangeable

    def v(s):
        return sum(weights[p] for p in s) ** 2 + (3.0 if {"m0", "m1"} <= s else 0.0)

    phi = shapley_values(v, players)
    assert sum(phi.values()) == pytest.approx(v(frozenset(players)) - v(frozenset()))
    assert phi["m0"] == pytest.approx(phi["m1"])
    assert len({round(x, 9) for x in phi.values()}) == n - 1  # nobody else ties


@pytest.mark.parametrize("n", [2, 3, 4])
def test_null_player_gets_zero(n):
    players = [f"m{i}" for i in range(n)]
    null = players[-1]

    def v(s):
        return 7.0 + sum(i + 1.0 for i, p in enumerate(players) if p in s and p != null) ** 1.5

    phi = shapley_values(v, players)
    assert phi[null] == pytest.approx(0.0, abs=1e-12)
    assert all(phi[p] > 0 for p in players if p != null)
    assert sum(phi.values()) == pytest.approx(v(frozenset(players)) - v(frozenset()))


def test_additivity_on_unanimity_games_n4():
    players = ["a", "b", "c", "d"]
    u_ab, u_bcd = unanimity("ab"), unanimity("bcd")
    phi_sum = shapley_values(lambda s: u_ab(s) + 2 * u_bcd(s), players)
    phi_1, phi_2 = shapley_values(u_ab, players), shapley_values(u_bcd, players)
    for p in players:
        assert phi_sum[p] == pytest.approx(phi_1[p] + 2 * phi_2[p])
    # hand values: u_T gives 1/|T| to each member of T
    assert phi_sum == pytest.approx({"a": 0.5, "b": 0.5 + 2 / 3, "c": 2 / 3, "d": 2 / 3})


def test_each_coalition_evaluated_once():
    calls = []

    def v(s):
        calls.append(s)
        return len(s)

    shapley_values(v, ["a", "b", "c"])
    assert len(calls) == len(set(calls)) == 8


def test_permutation_estimate_matches_exact_within_reported_error_n6():
    players = [f"m{i}" for i in range(6)]
    w = {p: i + 1.0 for i, p in enumerate(players)}

    def v(s):  # superadditive, so marginal contributions vary with the coalition
        return sum(w[p] for p in s) ** 2 + (10.0 if {"m0", "m5"} <= s else 0.0)

    exact = shapley_values(v, players)
    approx = shapley_values(v, players, method="permutation", num_permutations=400, seed=3)
    assert sum(approx.values()) == pytest.approx(v(frozenset(players)) - v(frozenset()))
    for p in players:
        assert approx.stderr[p] > 0
        assert abs(approx[p] - exact[p]) <= 4 * approx.stderr[p]
    again = shapley_values(v, players, method="permutation", num_permutations=400, seed=3)
    assert dict(again) == dict(approx)


def test_permutation_standard_error_by_hand() -> None:
    """The permutation estimate's stderr is the sample std (ddof=1) of the marginals over sqrt(#orders)."""
    v = table_game({frozenset(): 0, frozenset("a"): 10, frozenset("b"): 20, frozenset("ab"): 50})
    # seed 2 draws a first twice and b first twice: a's marginals are 10, 10 (first) and 30, 30 (after b)
    assert sorted(sample_permutations(2, 4, seed=2)[:, 0].tolist()) == [0, 0, 1, 1]
    phi = shapley_values(v, ["a", "b"], method="permutation", num_permutations=4, seed=2)
    assert phi == pytest.approx({"a": 20.0, "b": 30.0})
    # std(ddof=1) of (10, 10, 30, 30) = sqrt(4 * 10^2 / 3); over sqrt(4): 10 / sqrt(3) (b: 20, 20, 40, 40, the same)
    assert phi.stderr == pytest.approx({"a": 10 / math.sqrt(3), "b": 10 / math.sqrt(3)})


def test_coalitions_needed_cover_what_the_estimators_ask():
    asked = set()

    def v(s):
        asked.add(s)
        return len(s) ** 1.5

    players = ["a", "b", "c", "d"]
    shapley_values(v, players, method="permutation", num_permutations=5, seed=1)
    assert asked <= set(coalitions_needed(players, method="permutation", num_permutations=5, seed=1))
    assert len(coalitions_needed(players)) == 16


def test_bad_arguments():
    with pytest.raises(ValueError, match="distinct"):
        shapley_values(len, ["a", "a"])
    with pytest.raises(ValueError, match="^at least one modality is needed$"):
        shapley_values(len, [])
    with pytest.raises(ValueError, match="method"):
        shapley_values(len, ["a"], method="banzhaf")


def test_edm_of_no_modality_is_refused_by_name():
    with pytest.raises(ValueError, match="^equilibrium_deviation needs at least one modality$"):
        equilibrium_deviation({})


def test_next_order_weakest_first_ties_keep_previous_order():
    assert next_order({"text": 30.0, "image": 10.0, "audio": 20.0}, ["text", "image", "audio"]) == [
        "image",
        "audio",
        "text",
    ]
    assert next_order({"a": 1.0, "b": 1.0, "c": 0.0}, ["b", "a", "c"]) == ["c", "b", "a"]
    with pytest.raises(ValueError, match="no Shapley value"):
        next_order({"a": 1.0}, ["a", "b"])


def test_edm_zero_when_balanced_and_hand_value_when_not():
    assert equilibrium_deviation({"a": 12.5, "b": 12.5, "c": 12.5}) == 0.0
    # phi~ = 100 * 2 * (30, 10) / 40 = (150, 50) -> |100-150| + |100-50| = 100
    edm, terms = equilibrium_deviation({"text": 30.0, "image": 10.0}, return_terms=True)
    assert edm == pytest.approx(100.0)
    assert terms == pytest.approx({"text": 50.0, "image": 50.0})
    # three modalities: phi~ = 300 * (5, 3, 2) / 10 = (150, 90, 60) -> 50 + 10 + 40
    assert equilibrium_deviation({"a": 5.0, "b": 3.0, "c": 2.0}) == pytest.approx(100.0)


@pytest.mark.parametrize("phi", [{"a": 5.0, "b": -5.0}, {"a": -1.0, "b": -2.0}, {"a": 0.0, "b": 0.0}])
def test_edm_nan_with_warning_when_contributions_do_not_sum_positive(phi):
    with pytest.warns(UserWarning, match="undefined"):
        assert math.isnan(equilibrium_deviation(phi))


def test_edm_metric_module_loads_offline_by_path():
    import evaluate

    from mllm_balance.metrics import EDM_METRIC_PATH

    metric = evaluate.load(EDM_METRIC_PATH)
    out = metric.compute(contributions=[30.0, 10.0], modalities=["text", "image"])
    assert out["edm"] == pytest.approx(100.0)
    assert out["terms"] == pytest.approx({"text": 50.0, "image": 50.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(metric.compute(contributions=[1.0, -2.0], modalities=["a", "b"])["edm"])


def test_exact_matches_brute_force_over_all_orders():
    players = ["a", "b", "c", "d"]
    v = lambda s: len(s) ** 2 + (5.0 if "a" in s and "c" not in s else 0.0)  # noqa: E731
    brute = dict.fromkeys(players, 0.0)
    perms = list(itertools.permutations(players))
    for perm in perms:
        seen = frozenset()
        for p in perm:
            brute[p] += (v(seen | {p}) - v(seen)) / len(perms)
            seen = seen | {p}
    assert shapley_values(v, players) == pytest.approx(brute)


def test_edm_treats_rounding_noise_as_zero():
    with pytest.warns(UserWarning, match="undefined"):
        assert math.isnan(equilibrium_deviation({"a": 4e-16, "b": 0.0}))


def test_coalitions_needed_defaults_are_the_estimators_defaults():
    # the trainer scores coalitions_needed(...) in one pass, then the estimator asks for its own: with the
    # defaults of both, they must be the same coalitions (12 players: the prefixes depend on seed and count)
    asked = set()

    def v(s):
        asked.add(s)
        return float(len(s))

    players = [f"m{i}" for i in range(12)]
    shapley_values(v, players, method="permutation")
    assert asked == set(coalitions_needed(players, method="permutation"))
    assert asked != set(coalitions_needed(players, method="permutation", seed=1))
    assert asked != set(coalitions_needed(players, method="permutation", num_permutations=201))
