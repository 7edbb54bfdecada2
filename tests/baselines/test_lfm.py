"""LFM: the released schedule of the supervised weight (hand-computed from the polynomial of `Crema_epoch.py` in
njustkmg/NeurIPS24-LFM), the linear option, the release's alignment term, the loss mix and the registry's SGD
optimiser."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from baseline_helpers import training_args
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import TrainerControl, TrainerState

from mllm_balance import BalanceTrainer
from mllm_balance.baselines import TrainingProgressCallback, get_baseline
from mllm_balance.baselines.lfm import js_divergence, lfm_release_weight, release_alignment

# w(e) = 0.204623704 + 3.35472727e-3 e + 1.22989557e-4 e^2 - 2.92947416e-6 e^3 + 2.23835486e-8 e^4
#        - 5.39717505e-11 e^5, at the release's epoch e = 199 * progress (exact rational arithmetic)
HAND = {
    0.0: 0.204623704,  # e = 0
    0.25: 0.4358807387548395,  # e = 49.75
    0.5: 0.5378586115377625,  # e = 99.5
    1.0: 0.9159887524162499,  # e = 199, the release's last epoch
}


def batch(seed=0, n=8):
    g = torch.Generator().manual_seed(seed)
    return {"a": torch.randn(n, 6, generator=g), "b": torch.randn(n, 5, generator=g)}, torch.randint(
        0, 3, (n,), generator=g
    )


def build(**overrides):
    spec = get_baseline("lfm")
    torch.manual_seed(0)
    return spec.build_model(spec.build_config({"a": 6, "b": 5}, 3, hidden_size=8, **overrides))


@pytest.mark.parametrize("progress", sorted(HAND))
def test_release_weight_is_the_polynomial_at_the_mapped_epoch(progress):
    assert lfm_release_weight(progress) == pytest.approx(HAND[progress], rel=1e-12)
    model = build()  # the default schedule
    assert model.config.schedule == "release"
    model.train_progress = progress
    assert model.cls_weight() == pytest.approx(HAND[progress], rel=1e-12)


def test_release_weight_peaks_above_one_late_in_training_as_released():
    # the polynomial's maximum over the release's epochs is at e = 183: 1.0105403899450998
    assert lfm_release_weight(183 / 199) == pytest.approx(1.0105403899450998, rel=1e-12)
    weights = [lfm_release_weight(e / 199) for e in range(200)]
    assert max(weights) == pytest.approx(1.0105403899450998, rel=1e-12)
    assert weights.index(max(weights)) == 183
    assert lfm_release_weight(-0.5) == HAND[0.0] and lfm_release_weight(2.0) == pytest.approx(HAND[1.0])


def test_a_short_run_traverses_the_whole_schedule():
    model = build()
    args = type("Args", (), {})()
    for step, max_steps in [(0, 400), (200, 400), (400, 400)]:
        TrainingProgressCallback().on_step_begin(
            args, TrainerState(global_step=step, max_steps=max_steps), TrainerControl(), model=model
        )
        assert model.cls_weight() == pytest.approx(HAND[step / max_steps], rel=1e-12)


@pytest.mark.parametrize("progress", [0.0, 0.5, 1.0])
def test_linear_schedule_goes_from_start_to_end(progress):
    model = build(schedule="linear", cls_weight_start=0.2, cls_weight_end=0.6)
    model.train_progress = progress
    assert model.cls_weight() == pytest.approx({0.0: 0.2, 0.5: 0.4, 1.0: 0.6}[progress], rel=1e-12)


ALIGNMENTS = {"release": release_alignment, "js": js_divergence}


@pytest.mark.parametrize("alignment", ["release", "js"])
@pytest.mark.parametrize("schedule", ["release", "linear"])
@pytest.mark.parametrize("progress", [0.0, 0.5, 1.0])
def test_loss_is_twice_the_scheduled_mix_of_fusion_ce_and_alignment(alignment, schedule, progress):
    model = build(schedule=schedule, alignment=alignment).train()
    model.train_progress = progress
    x, y = batch()
    loss = model(x, labels=y).loss
    u = {m: model.heads[m](model.adapters[m](x[m])) for m in x}
    w = HAND[progress] if schedule == "release" else 0.2 + 0.3 * progress  # linear: defaults 0.2 -> 0.5
    align = ALIGNMENTS[alignment](u["a"], u["b"])
    expected = 2 * (w * F.cross_entropy((u["a"] + u["b"]) / 2, y) + (1 - w) * align)
    torch.testing.assert_close(loss, expected)


def test_default_alignment_is_the_release_term():
    assert build().config.alignment == "release"


def test_unknown_schedule_is_refused():
    with pytest.raises((ValueError, StrictDataclassClassValidationError), match="schedule"):
        build(schedule="cosine")


P, Q = torch.tensor([[0.7, 0.2, 0.1]]), torch.tensor([[0.1, 0.3, 0.6]])  # m = [0.4, 0.25, 0.35]


def test_js_divergence_by_hand():
    # 0.5 * (sum p log(p / m) + sum q log(q / m))
    torch.testing.assert_close(js_divergence(P.log(), Q.log()), torch.tensor(0.23064548790411332))


def test_release_alignment_by_hand():
    # 0.5 * (sum m log(m / p) + sum m log(m / q))
    torch.testing.assert_close(release_alignment(P.log(), Q.log()), torch.tensor(0.2953475958103946))
    torch.testing.assert_close(release_alignment(Q.log(), P.log()), torch.tensor(0.2953475958103946))
    # the release's formulation: F.kl_div(p.log(), m, reduction="batchmean") is KL(m || p)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 4, generator=g), torch.randn(7, 4, generator=g)
    p, q = a.softmax(-1), b.softmax(-1)
    m = 0.5 * p + 0.5 * q
    kl = 0.5 * (F.kl_div(p.log(), m, reduction="batchmean") + F.kl_div(q.log(), m, reduction="batchmean"))
    torch.testing.assert_close(release_alignment(a, b), kl)
    assert release_alignment(a, a).abs() < 1e-6


def test_registry_trains_lfm_with_the_released_sgd(tmp_path, datasets):
    spec = get_baseline("lfm")
    assert spec.learning_rate == 3e-2 and "learning_rate" not in spec.training
    model = build()
    args = training_args(tmp_path, **spec.training_arguments(num_train_epochs=1))
    trainer = BalanceTrainer(model=model, args=args, train_dataset=datasets[0], callbacks=spec.make_callbacks())
    optimizer = trainer.create_optimizer()
    assert type(optimizer) is torch.optim.SGD
    assert all(g["momentum"] == 0.9 and g["lr"] == 3e-2 for g in optimizer.param_groups)
    assert {g["weight_decay"] for g in optimizer.param_groups if g["params"]} == {1e-4, 0.0}


@pytest.mark.parametrize("divergence", [js_divergence, release_alignment])
def test_divergences_take_the_classes_on_the_last_axis_and_average_the_others(divergence):
    """Logits `(2, 4, C)` (e.g. per-token predictions) give the mean over the 8 rows of the `(8, C)` layout."""
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(2, 4, 5, generator=g), torch.randn(2, 4, 5, generator=g)
    rows = [float(divergence(a.reshape(8, 5)[i : i + 1], b.reshape(8, 5)[i : i + 1])) for i in range(8)]
    assert float(divergence(a, b)) == pytest.approx(sum(rows) / 8, rel=1e-5)
    torch.testing.assert_close(divergence(a, b), divergence(a.reshape(8, 5), b.reshape(8, 5)))


def test_a_schedule_changed_after_construction_is_refused_by_name():
    model = build()
    model.config.schedule = "cosine"
    with pytest.raises(ValueError, match=r"^schedule must be one of \('release', 'linear'\), got 'cosine'$"):
        model.cls_weight()
