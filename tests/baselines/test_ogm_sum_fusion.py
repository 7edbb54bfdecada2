"""OGM with the sum fusion, the sum head's unimodal decomposition, the GE noise switch and the callback's epochs."""

from __future__ import annotations

import torch
from transformers import TrainerControl, TrainerState

from mllm_balance.baselines import OGMCallback, get_baseline

X = {"a": torch.randn(5, 6, generator=torch.Generator().manual_seed(0)),
     "b": torch.randn(5, 5, generator=torch.Generator().manual_seed(1))}  # fmt: skip


def build(name: str = "ogm", **overrides):
    spec = get_baseline(name)
    torch.manual_seed(0)
    return spec.build_model(spec.build_config({"a": 6, "b": 5}, 3, hidden_size=8, **overrides))


def test_sum_fusion_is_the_sum_model():
    """`fusion="sum"`: the same weights give the Sum baseline's logits, `W (h_a + h_b) + b`."""
    ogm, plain = build(fusion="sum").eval(), build("sum").eval()
    plain.load_state_dict(ogm.state_dict())
    with torch.no_grad():
        out = ogm(X)
        h = {m: ogm.adapters[m](X[m]) for m in X}
        hand = (h["a"] + h["b"]) @ ogm.head.classifier.weight.T + ogm.head.classifier.bias
    torch.testing.assert_close(out.logits, plain(X).logits)
    torch.testing.assert_close(out.logits, hand)
    assert ogm.ogm_state == {}  # nothing to modulate before a training step


def test_sum_head_unimodal_terms_add_up_to_the_fused_logits():
    """`W h_m + b / n`: with every modality present the terms sum to the fused logits."""
    for model in (build("sum"), build(fusion="sum")):
        with torch.no_grad():
            h = {m: model.adapters[m](X[m]) for m in X}
            terms = model.head.unimodal(h)
            logits, _ = model.head(h, {m: torch.ones(5, dtype=torch.bool) for m in X})
        torch.testing.assert_close(terms["a"] + terms["b"], logits)
        torch.testing.assert_close(terms["a"], h["a"] @ model.head.classifier.weight.T + model.head.classifier.bias / 2)


def grads_after_modulate(**overrides) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, float]]:
    """The adapters' weight gradients of one training step before and after `modulate()`."""
    model = build(**overrides).train()
    model(X, labels=torch.tensor([0, 1, 2, 0, 1])).loss.backward()
    before = {m: model.adapters[m].proj.weight.grad.clone() for m in X}
    torch.manual_seed(1)
    model.modulate()
    after = {m: model.adapters[m].proj.weight.grad for m in X}
    return before, after, model.ogm_state["coefficients"]


def test_gradient_enhancement_adds_noise_of_the_configured_scale():
    """GE on with `noise_scale=0` is the plain scaling `k_m g`; GE on with the default scale adds noise."""
    before, after, k = grads_after_modulate(gradient_enhancement=True, noise_scale=0.0)
    for m in X:
        torch.testing.assert_close(after[m], k[m] * before[m])
    before, after, k = grads_after_modulate(gradient_enhancement=True)
    for m in X:
        assert not torch.allclose(after[m], k[m] * before[m])
    before, after, k = grads_after_modulate()
    for m in X:
        torch.testing.assert_close(after[m], k[m] * before[m])


def callback_modulates(model, epoch: float | None, state_epochs: float, args_epochs: float) -> bool:
    """Whether the callback scales the gradients of a step at `epoch` (coefficients 0.5 and 1)."""
    model.ogm_state = {"coefficients": {"a": 0.5, "b": 1.0}}
    weight = model.adapters["a"].proj.weight
    weight.grad = torch.ones_like(weight)
    args = type("Args", (), {"num_train_epochs": args_epochs})()
    state = TrainerState(epoch=epoch, num_train_epochs=state_epochs)
    OGMCallback().on_pre_optimizer_step(args, state, TrainerControl(), model=model)
    return bool((weight.grad == 0.5).all())


def test_callback_counts_epochs_from_zero_and_falls_back_to_the_arguments():
    """No epoch yet is epoch 0; without `state.num_train_epochs` the run's length is `args.num_train_epochs`."""
    late = build(start_epoch=1, end_fraction=None)
    assert not callback_modulates(late, None, 4, 4)  # epoch 0 < start_epoch 1
    assert not callback_modulates(late, 0.0, 4, 4)
    assert callback_modulates(late, 1.0, 4, 4)
    half = build(end_fraction=0.5)  # epochs 0..2 of 4 (e <= 0.5 * 4)
    assert callback_modulates(half, 2.0, 0, 4)
    assert not callback_modulates(half, 3.0, 0, 4)
