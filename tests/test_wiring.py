"""Wiring of the model's training path against hand computations: the mapping's threshold on negative correlations,
the paper's alternating step (which state goes where, which samples count, which prefix is detached) and the
prefix of the all-orders step.

Each test names the one-line mutant of the package it is meant to catch (issue 13)."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

from mllm_balance import BalanceConfig, BalancedModel
from mllm_balance.modules import CrossModalMapping
from mllm_balance.modules.mapping import thresholded_correlation

R = 1 / math.sqrt(2)


def model_on(dims: dict[str, int], **overrides) -> BalancedModel:
    torch.manual_seed(0)
    return BalancedModel(BalanceConfig(modality_dims=dims, num_labels=3, hidden_size=5, **overrides)).train()


def inputs(dims: dict[str, int], n: int, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    x = {m: torch.randn(n, d, generator=g) for m, d in dims.items()}
    return x, torch.randint(0, 3, (n,), generator=g)


def hand_map(weak: torch.Tensor, strong: torch.Tensor, tau: float, normalize: bool) -> torch.Tensor:
    """Eq. 9-11 written out sample by sample: `x_hat_q = sum_r C_rq strong_r`, `C_rq = cos(weak_r, strong_q)` kept
    only when it is above `tau` (a negative cosine is below any positive `tau`), `C_qq = 1`."""
    b = weak.shape[0]
    rows = []
    for q in range(b):
        weights = []  # column q of C, kept differentiable (the loss reaches the strong side through C too)
        for r in range(b):
            if r == q:
                weights.append(torch.ones(()))
                continue
            norms = weak[r].norm().clamp_min(1e-12) * strong[q].norm().clamp_min(1e-12)  # F.normalize's eps
            cos = weak[r] @ strong[q] / norms
            weights.append(cos if cos.item() > tau else torch.zeros(()))
        if normalize:
            total = sum(weights)
            weights = [w / total for w in weights]
        rows.append(sum(w * strong[r] for r, w in enumerate(weights)))
    return torch.stack(rows)


def hand_step(model: BalancedModel, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`Memory(h, Map(h, x))` with the mapping written out by hand (training mode, sample level)."""
    cfg = model.config
    return model.memory(h, hand_map(h, x, cfg.mapping_threshold, cfg.mapping_normalize))


def grads(model: BalancedModel, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same_grads(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    for n in want:
        torch.testing.assert_close(got[n], want[n], msg=n)


# ---------------------------------------------------------------- mapping (mutant 1)
WEAK = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
ANTI = torch.tensor([[-1.0, 0.0], [0.0, -1.0], [1.0, 0.0]])


def test_negative_correlations_are_below_the_threshold():
    """Mutant 1 (`|c| > tau`): the anti-correlated pairs (cosine -1 and -R) would be kept."""
    c = thresholded_correlation(WEAK, ANTI, threshold=0.2)
    # cosines: [[-1, 0, 1], [0, -1, 0], [-R, -R, R]]; only 1 > 0.2 survives off the diagonal, diagonal forced to 1
    torch.testing.assert_close(c, torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    # a negative threshold keeps the negative cosines above it, and only those
    c = thresholded_correlation(WEAK, ANTI, threshold=-0.8)
    torch.testing.assert_close(c, torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-R, -R, 1.0]]))


def test_mapping_of_anti_correlated_samples_by_hand():
    mapping = CrossModalMapping(2, threshold=0.2, level="sample").train()
    # sample q receives sum_r C_rq strong_r: C = [[1, 0, 1], [0, 1, 0], [0, 0, 1]]
    expected = torch.tensor([[-1.0, 0.0], [0.0, -1.0], [0.0, 0.0]])  # q = 2: strong_0 + strong_2
    torch.testing.assert_close(mapping(WEAK, ANTI), expected)
    torch.testing.assert_close(mapping(WEAK, ANTI), hand_map(WEAK, ANTI, 0.2, normalize=False))
    g = torch.Generator().manual_seed(0)
    weak, strong = torch.randn(7, 4, generator=g), torch.randn(7, 4, generator=g)  # signed: many negative cosines
    for normalize in (False, True):
        mapping = CrossModalMapping(4, threshold=0.1, level="sample", normalize=normalize).train()
        torch.testing.assert_close(mapping(weak, strong), hand_map(weak, strong, 0.1, normalize))


# ------------------------------------------------------ the paper's step (mutants 2, 3)
DIMS2 = {"text": 4, "image": 3}


def test_paper_step_logits_and_loss_by_hand_with_missing_modalities():
    """`logits = g(Memory(h1, Map(h1, a_text(x))))`, `h1 = a_image(x)` detached, over the rows that have text; rows
    with text only start the chain (`g(a_text(x))`); rows without text are left out of the loss (zero logits)."""
    model = model_on(DIMS2)
    x, y = inputs(DIMS2, 9)
    text = torch.tensor([1, 1, 0, 1, 1, 0, 1, 1, 1], dtype=torch.bool)
    image = torch.tensor([1, 1, 1, 0, 1, 1, 0, 1, 1], dtype=torch.bool)
    out = model(
        x, labels=y, modality_mask={"text": text, "image": image}, order=["image", "text"], active_modality="text",
        step_orders="shapley",
    )  # fmt: skip
    both, text_only = (text & image).nonzero().flatten(), (text & ~image).nonzero().flatten()
    h1 = model.adapters["image"](x["image"][both]).detach()
    chained = model.classifier(hand_step(model, h1, model.adapters["text"](x["text"][both])))
    alone = model.classifier(model.adapters["text"](x["text"][text_only]))
    expected = torch.zeros(9, 3)
    expected[both], expected[text_only] = chained.detach(), alone.detach()
    torch.testing.assert_close(out.logits, expected)
    rows = torch.cat([both, text_only])
    loss = F.cross_entropy(torch.cat([chained, alone]), y[rows])  # the mean over the rows that have text
    torch.testing.assert_close(out.loss, loss)
    got = grads(model, out.loss)
    assert not any(n.startswith("adapters.image") for n in got)
    assert_same_grads(got, grads(model, loss))


def test_paper_step_feeds_the_state_first_and_the_incoming_modality_second():
    """Mutant 2 (`step(incoming, state)`): the memory and mapping are not symmetric in their two inputs."""
    model = model_on(DIMS2)
    x, y = inputs(DIMS2, 6)
    out = model(x, labels=y, order=["image", "text"], active_modality="text", step_orders="shapley")
    h1 = model.adapters["image"](x["image"]).detach()
    a_text = model.adapters["text"](x["text"])
    torch.testing.assert_close(out.logits, model.classifier(model.memory(h1, model.mapping(h1, a_text))))
    swapped = model.classifier(model.memory(a_text, model.mapping(a_text, h1)))
    assert not torch.allclose(out.logits, swapped, atol=1e-4)


DIMS3 = {"a": 3, "b": 2, "c": 4}


def test_paper_step_prefix_gets_no_gradient_through_the_memory():
    """Mutant 3 (prefix outside `no_grad`): with two modalities before the active one, the prefix state `h_2` runs
    through the memory, which would then get the prefix's gradient too."""
    model = model_on(DIMS3)
    x, y = inputs(DIMS3, 6)
    out = model(x, labels=y, order=["a", "b", "c"], active_modality="c", step_orders="shapley")
    ad = {m: model.adapters[m](x[m]) for m in x}
    with torch.no_grad():
        h2 = hand_step(model, ad["a"], ad["b"])  # h_2 = Memory(h_1, Map(h_1, a_b)), detached
    logits = model.classifier(hand_step(model, h2, ad["c"]))
    torch.testing.assert_close(out.logits, logits)
    loss = F.cross_entropy(logits, y)
    torch.testing.assert_close(out.loss, loss)
    got = grads(model, out.loss)
    assert {n.split(".")[0] for n in got} == {"adapters", "memory", "classifier"}
    assert not any(n.startswith(("adapters.a", "adapters.b")) for n in got)
    assert_same_grads(got, grads(model, loss))


def test_all_orders_step_prefixes_get_no_gradient_through_the_memory():
    """Mutant 3 in `alternating_step`: the mean over the six orders of CE(g(h_t)), every prefix detached."""
    model = model_on(DIMS3)
    x, y = inputs(DIMS3, 6)
    out = model(x, labels=y, order=["a", "b", "c"], active_modality="c", step_orders="all")
    ad = {m: model.adapters[m](x[m]) for m in x}
    losses, logits = [], []
    for order in itertools.permutations(DIMS3):
        prefix = order[: order.index("c")]
        if prefix:
            with torch.no_grad():
                h = ad[prefix[0]].detach()
                for m in prefix[1:]:
                    h = hand_step(model, h, ad[m])
            step = model.classifier(hand_step(model, h, ad["c"]))
        else:
            step = model.classifier(ad["c"])
        logits.append(step)
        losses.append(F.cross_entropy(step, y))
    torch.testing.assert_close(out.logits, torch.stack(logits).mean(0))
    loss = torch.stack(losses).mean()
    torch.testing.assert_close(out.loss, loss)
    assert_same_grads(grads(model, out.loss), grads(model, loss))


def test_paper_order_with_a_unimodal_term_takes_the_general_path_with_the_same_wiring():
    """`step_orders="shapley"` with a unimodal weight runs `alternating_step` (not `_paper_step`): the same chain,
    state first, prefix detached, plus `lambda * CE(g(a_c(x)), y)`."""
    model = model_on(DIMS3)
    x, y = inputs(DIMS3, 6)
    out = model(
        x, labels=y, order=["b", "a", "c"], active_modality="c", step_orders="shapley", unimodal_loss_weight=0.5
    )
    ad = {m: model.adapters[m](x[m]) for m in x}
    with torch.no_grad():
        h2 = hand_step(model, ad["b"], ad["a"])
    chain = F.cross_entropy(model.classifier(hand_step(model, h2, ad["c"])), y)
    loss = chain + 0.5 * F.cross_entropy(model.classifier(ad["c"]), y)
    torch.testing.assert_close(out.loss, loss)
    assert_same_grads(grads(model, out.loss), grads(model, loss))
