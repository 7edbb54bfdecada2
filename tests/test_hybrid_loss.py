"""The hybrid term (`hybrid_loss_weight`): `CE(g(X*), y)` of the prediction inference makes, added to the last
alternating step of every batch with gradients into every adapter."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from feature_helpers import make_args
from test_step_orders import batch, grads, two_modality_model

from mllm_balance import BalancedModel, BalanceTrainer, BalanceTrainingArguments
from mllm_balance.alternating import hybrid_loss
from mllm_balance.baselines import get_baseline


def hand_hybrid_ce(model: BalancedModel, x, y, every_state: bool = True) -> torch.Tensor:
    """`CE(g(X*), y)` by hand: both chains of two modalities, nothing detached, their states averaged."""
    a = {m: model.adapters[m](x[m]) for m in ("text", "image")}  # (B, d) each
    fused_ti = model.memory(a["text"], model.mapping(a["text"], a["image"]))  # order text, image
    fused_it = model.memory(a["image"], model.mapping(a["image"], a["text"]))  # order image, text
    states = [a["text"], fused_ti, a["image"], fused_it] if every_state else [fused_ti, fused_it]
    return F.cross_entropy(model.classifier(torch.stack(states).mean(0)), y)


@pytest.mark.parametrize("states", ["all", "final"])
def test_hybrid_term_is_the_ce_of_the_fused_prediction_by_hand(states):
    model = two_modality_model(hybrid_states=states)
    x, y = batch()
    kwargs = {"labels": y, "order": ["image", "text"], "active_modality": "text", "step_orders": "all"}
    step = model(x, **kwargs).loss
    with_term = model(x, hybrid_loss_weight=0.5, **kwargs).loss
    hand = hand_hybrid_ce(model, x, y, every_state=states == "all")
    torch.testing.assert_close(with_term, step + 0.5 * hand)
    # the term's gradient is the hand one's: it reaches the weak adapter, which the step itself leaves alone
    got = grads(model, with_term)
    want = grads(model, model(x, **kwargs).loss + 0.5 * hand_hybrid_ce(model, x, y, every_state=states == "all"))
    alone = grads(model, step)
    assert set(got) == set(want)
    for n in want:
        torch.testing.assert_close(got[n], want[n])
    assert not any(n.startswith("adapters.image") for n in alone)
    assert got["adapters.image.proj.weight"].abs().sum() > 0


def test_hybrid_term_joins_the_paper_step_too_and_follows_the_samples_present_modalities():
    model = two_modality_model()
    x, y = batch()
    kwargs = {"labels": y, "order": ["image", "text"], "active_modality": "text"}
    torch.testing.assert_close(
        model(x, hybrid_loss_weight=2.0, **kwargs).loss, model(x, **kwargs).loss + 2.0 * hand_hybrid_ce(model, x, y)
    )
    # rows without image: X* is their text state alone; rows with both: the mean of both chains' states
    has_image = torch.tensor([True, False, True, False, True, True])
    got = hybrid_loss(model, x, {"text": torch.ones(6, dtype=torch.bool), "image": has_image}, y, ["image", "text"])
    logits = torch.empty(6, 3)
    logits[~has_image] = model.classifier(model.adapters["text"](x["text"][~has_image]))
    both = {m: v[has_image] for m, v in x.items()}
    a = {m: model.adapters[m](both[m]) for m in both}
    states = [
        a["text"],
        model.memory(a["text"], model.mapping(a["text"], a["image"])),
        a["image"],
        model.memory(a["image"], model.mapping(a["image"], a["text"])),
    ]
    logits[has_image] = model.classifier(torch.stack(states).mean(0))
    torch.testing.assert_close(got, F.cross_entropy(logits, y))
    # the batch's mask reaches the term through the model
    masked = {**kwargs, "modality_mask": {"image": has_image}}
    term = model(x, hybrid_loss_weight=1.0, **masked).loss - model(x, **masked).loss
    torch.testing.assert_close(term, got)
    assert model(x, **kwargs, hybrid_loss_weight=0.5).logits.shape == (6, 3)  # the step's logits, unchanged


def test_without_labels_there_is_no_loss_and_no_term():
    model = two_modality_model()
    x, _ = batch()
    out = model(x, order=["image", "text"], active_modality="text", hybrid_loss_weight=0.5)
    assert out.loss is None


def test_trainer_adds_the_term_to_the_last_step_of_every_batch_only(tmp_path, tiny_config, tiny_datasets):
    seen = []
    torch.manual_seed(0)
    model = BalancedModel(tiny_config)
    original = model.alternating_step

    def spy(features, present, labels, order, active, step_orders="shapley", unimodal_loss_weight=0.0,
            hybrid_loss_weight=0.0):  # fmt: skip
        seen.append((active, list(order), hybrid_loss_weight))
        return original(features, present, labels, order, active, step_orders, unimodal_loss_weight,
                        hybrid_loss_weight)  # fmt: skip

    model.alternating_step = spy
    args = make_args(tmp_path, num_train_epochs=2, hybrid_loss_weight=0.25)
    trainer = BalanceTrainer(model=model, args=args, train_dataset=tiny_datasets[0], eval_dataset=tiny_datasets[1])
    trainer.train()
    assert seen and len(seen) % 2 == 0
    for first, last in zip(seen[::2], seen[1::2]):
        assert first[1] == last[1] and [first[0], last[0]] == first[1]  # the batch walks its order
        assert (first[2], last[2]) == (0.0, 0.25)
    # a batch in which nobody has the order's last modality: its step is skipped and the term moves to the one before
    seen.clear()
    order = list(trainer.order_state.order)
    inputs = trainer.data_collator([tiny_datasets[0][i] for i in range(8)])
    inputs["modality_mask"] = {order[-1]: torch.zeros(8, dtype=torch.bool)}
    model.train()
    trainer.training_step(model, inputs)
    assert seen == [(order[0], order, 0.25)]


def test_hybrid_loss_weight_is_validated_and_refused_by_models_without_it(tmp_path, tiny_config, tiny_datasets):
    with pytest.raises(ValueError, match="hybrid_loss_weight must be >= 0, got -0.1"):
        BalanceTrainingArguments(output_dir=str(tmp_path), use_cpu=True, hybrid_loss_weight=-0.1)
    spec = get_baseline("mla")
    mla = spec.build_model(spec.build_config(dict(tiny_config.modality_dims), 3, hidden_size=8))
    args = make_args(tmp_path, num_train_epochs=1, hybrid_loss_weight=0.5)
    with pytest.raises(ValueError, match="MLAModel does not support hybrid_loss_weight: leave it at 0"):
        BalanceTrainer(model=mla, args=args, train_dataset=tiny_datasets[0], eval_dataset=tiny_datasets[1])
    # joint training already trains the fused prediction: the weight has nothing to add there
    joint = make_args(tmp_path, num_train_epochs=1, hybrid_loss_weight=0.5, alternation="joint")
    trainer = BalanceTrainer(
        model=BalancedModel(tiny_config), args=joint, train_dataset=tiny_datasets[0], eval_dataset=tiny_datasets[1]
    )
    assert trainer._last_step_options == {}
