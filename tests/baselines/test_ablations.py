"""Ablation switches really remove their component: memory / mapping bypassed, order random or fixed."""

from __future__ import annotations

import pytest
import torch
from baseline_helpers import features, training_args

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer, build_feature_dataset
from mllm_balance.baselines import ABLATIONS, ablation_args, ablation_config, build_ablation

FULL = BalanceConfig(modality_dims={"a": 6, "b": 5}, num_labels=3, hidden_size=8)


def count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def exercise(model: BalancedModel) -> None:
    """Training steps of both modalities, joint training, eval (every inference mode) and subset scoring."""
    g = torch.Generator().manual_seed(0)
    x = {"a": torch.randn(8, 6, generator=g), "b": torch.randn(8, 5, generator=g)}
    y = torch.randint(0, 3, (8,), generator=g)
    model.train()
    for m in ("a", "b"):
        model(x, labels=y, active_modality=m, order=["a", "b"]).loss.backward()
    model(x, labels=y).loss.backward()
    model.eval()
    for mode in ("hybrid", "train_order"):
        model(x, inference_mode=mode)
    model.subset_logits(x, [{"a"}, {"b"}, {"a", "b"}])


@pytest.mark.parametrize(("ablation", "module"), [("no_memory", "memory"), ("no_mapping", "mapping")])
def test_switch_bypasses_the_module(ablation, module):
    torch.manual_seed(0)
    full = BalancedModel(FULL)
    full_calls = count_calls(getattr(full, module))
    exercise(full)
    assert full_calls[0] > 0  # the full model does use it

    config = ablation_config(ablation, FULL)
    assert getattr(config, "use_" + module) is False
    torch.manual_seed(0)
    ablated = BalancedModel(config)
    calls = count_calls(getattr(ablated, module))
    exercise(ablated)
    assert calls[0] == 0
    assert all(p.grad is None for p in getattr(ablated, module).parameters())


def test_ablation_config_leaves_the_original_untouched():
    ablation_config("no_memory", FULL)
    assert FULL.use_memory is True and FULL.use_mapping is True


def test_unknown_ablation_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown ablation"):
        ablation_config("no_such_thing", FULL)


def three_modality_data():
    dims = (("a", 4), ("b", 3), ("c", 5))
    strength = (3.0, 1.0, 0.3)
    train = build_feature_dataset(*features(64, seed=1, dims=dims, strength=strength))
    val = build_feature_dataset(*features(32, seed=2, dims=dims, strength=strength))
    return dict(dims), train, val


def order_history(tmp_path, name: str, seed: int, epochs: int = 6) -> list[list[str]]:
    dims, train, val = three_modality_data()
    config, args = build_ablation(
        name,
        BalanceConfig(modality_dims=dims, num_labels=3, hidden_size=8),
        training_args(tmp_path, num_train_epochs=epochs, seed=seed, initial_order="a,b,c"),
    )
    torch.manual_seed(seed)
    trainer = BalanceTrainer(model=BalancedModel(config), args=args, train_dataset=train, eval_dataset=val)
    trainer.train()
    return trainer.order_state.order_history


def test_fixed_order_keeps_the_initial_order_where_shapley_reorders(tmp_path):
    # "a" is the strongest modality: the Shapley schedule moves it last, the fixed one keeps it first
    assert order_history(tmp_path, "full", seed=0, epochs=2)[1] != ["a", "b", "c"]
    assert order_history(tmp_path, "fixed_order", seed=0) == [["a", "b", "c"]] * 6


def test_random_order_changes_between_epochs_and_is_seeded(tmp_path):
    history = order_history(tmp_path, "random_order", seed=0)
    assert len({tuple(o) for o in history[1:]}) > 1
    assert all(sorted(o) == ["a", "b", "c"] for o in history)
    assert order_history(tmp_path, "random_order", seed=0) == history
    assert order_history(tmp_path, "random_order", seed=1) != history


def test_every_ablation_changes_exactly_one_thing(tmp_path):
    args = training_args(tmp_path)
    for name in ABLATIONS:
        config = ablation_config(name, FULL)
        switches = ("use_mapping", "use_memory", "hybrid_states", "memory_residual")
        changed = {k for k in switches if getattr(config, k) != getattr(FULL, k)}
        new_args = ablation_args(name, args)
        changed |= {k for k in ("order_schedule", "step_orders") if getattr(new_args, k) != getattr(args, k)}
        assert len(changed) == (0 if name == "full" else 1), name
