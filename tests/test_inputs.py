"""Bad input gets a ValueError that names the problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset, List, Value

from mllm_balance import (
    BalanceConfig,
    BalanceDataCollator,
    BalancedModel,
    BalanceTrainer,
    BalanceTrainingArguments,
    build_feature_dataset,
)
from mllm_balance.baselines import get_baseline
from mllm_balance.collator import validate_feature_dataset
from mllm_balance.robustness import drop_modalities


def args(tmp_path, **kw):
    return BalanceTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], **kw)


def trainer(tmp_path, config, train, val, **kw):
    return BalanceTrainer(model=BalancedModel(config), args=args(tmp_path, **kw), train_dataset=train, eval_dataset=val)


def test_missing_modality_column(tmp_path, tiny_config, tiny_datasets):
    train, val = tiny_datasets
    with pytest.raises(ValueError, match="modality column 'b' is missing from the train dataset"):
        trainer(tmp_path, tiny_config, train.remove_columns("b"), val)
    with pytest.raises(ValueError, match="modality column 'a' is missing"):
        BalanceDataCollator({"a": 6, "b": 5})([{"b": [0.0] * 5, "labels": 0}])


def test_wrong_feature_size(tmp_path, tiny_config, feature_maker):
    features, labels = feature_maker(20, dims=(("a", 7), ("b", 5)))
    with pytest.raises(ValueError, match="modality 'a' in the train dataset has feature size 7; the model expects 6"):
        trainer(tmp_path, tiny_config, build_feature_dataset(features, labels), None, order_schedule="fixed")
    model = BalancedModel(tiny_config)
    with pytest.raises(ValueError, match=r"feature 'a' has shape \(4, 7\); expected \(batch, 6\)"):
        model({"a": torch.zeros(4, 7), "b": torch.zeros(4, 5)})
    with pytest.raises(ValueError, match="has a 'b' feature of shape"):
        BalanceDataCollator({"a": 6, "b": 5})([{"a": [0.0] * 6, "b": [0.0] * 4, "labels": 0}])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_in_features(tmp_path, tiny_config, feature_maker, bad):
    features, labels = feature_maker(20)
    features["b"][7, 2] = bad
    with pytest.raises(ValueError, match=r"modality 'b' in the eval dataset holds NaN or inf in rows \[7\]"):
        good = build_feature_dataset(*feature_maker(20))
        trainer(tmp_path, tiny_config, good, build_feature_dataset(features, labels))
    model = BalancedModel(tiny_config)
    x = {"a": torch.zeros(3, 6), "b": torch.zeros(3, 5)}
    x["a"][1, 0] = bad
    with pytest.raises(ValueError, match=r"feature 'a' holds NaN or inf in present samples \[1\]"):
        model(x)
    # a NaN in a *missing* modality's slot is not an error: it is never read
    model.eval()(x, modality_mask={"a": torch.tensor([True, False, True])})


def test_label_outside_the_label_set(tmp_path, tiny_config, feature_maker):
    features, labels = feature_maker(20)
    labels[4] = 3
    with pytest.raises(ValueError, match=r"labels \[3\] outside the label set 0..2"):
        trainer(tmp_path, tiny_config, build_feature_dataset(features, labels), None, order_schedule="fixed")
    with pytest.raises(ValueError, match=r"labels \[-1\] are outside the label set 0..2"):
        BalancedModel(tiny_config)({"a": torch.zeros(2, 6)}, labels=torch.tensor([0, -1]))


def test_empty_eval_set(tmp_path, tiny_config, tiny_datasets):
    train, val = tiny_datasets
    with pytest.raises(ValueError, match="the eval dataset is empty"):
        trainer(tmp_path, tiny_config, train, val.select([]))


def test_order_naming_an_unknown_modality(tmp_path, tiny_config, tiny_datasets):
    model = BalancedModel(tiny_config)
    x = {"a": torch.zeros(2, 6), "b": torch.zeros(2, 5)}
    with pytest.raises(ValueError, match=r"order names unknown modalities \['video'\]"):
        model(x, order=["a", "video"])
    with pytest.raises(ValueError, match="unknown modalities"):
        trainer(tmp_path, tiny_config, *tiny_datasets, initial_order="a,video")
    with pytest.raises(ValueError, match="must name every modality"):
        trainer(tmp_path, tiny_config, *tiny_datasets, initial_order="a")
    with pytest.raises(ValueError, match="leaves out present modalities"):
        model(x, order=["a"])


def test_unknown_modality_in_features_and_samples_with_nothing_present(tiny_config):
    model = BalancedModel(tiny_config)
    with pytest.raises(ValueError, match=r"unknown modality \['video'\]"):
        model({"a": torch.zeros(2, 6), "video": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match=r"samples \[1\] have no modality present"):
        model({"a": torch.zeros(2, 6)}, modality_mask={"a": torch.tensor([True, False])})


@pytest.mark.parametrize("features", [{}, torch.zeros(2, 6), [torch.zeros(2, 6)]], ids=["empty", "tensor", "list"])
def test_features_that_are_not_a_non_empty_dict(tiny_config, features):
    model = BalancedModel(tiny_config)
    with pytest.raises(ValueError, match=r"^features must be a non-empty dict \{modality: Tensor\[B, D_m\]\}$"):
        model(features)
    with pytest.raises(ValueError, match="features must be a non-empty dict"):
        model.check_inputs(features)


def test_check_inputs_checks_values_unless_told_not_to(tiny_config):
    model = BalancedModel(tiny_config)
    bad = {"a": torch.full((2, 6), float("nan"))}
    with pytest.raises(ValueError, match="NaN or inf"):
        model.check_inputs(bad)  # the default checks the values
    present, batch = model.check_inputs(bad, check_values=False)
    assert batch == 2 and present["a"].tolist() == [True, True]


def test_batch_sizes_and_mask_lengths_are_named(tiny_config):
    model = BalancedModel(tiny_config)
    with pytest.raises(ValueError, match="feature 'b' has batch size 3, others have 2"):
        model({"a": torch.zeros(2, 6), "b": torch.zeros(3, 5)})
    with pytest.raises(ValueError, match=r"modality_mask\['b'\] has 3 entries for a batch of 2"):
        model({"a": torch.zeros(2, 6), "b": torch.zeros(2, 5)}, modality_mask={"b": torch.ones(3, dtype=torch.bool)})


def test_label_counts_and_many_bad_labels_are_named():
    model = BalancedModel(BalanceConfig(modality_dims={"a": 6}, num_labels=2, hidden_size=4))
    with pytest.raises(ValueError, match="labels have 3 entries for a batch of 2"):
        model({"a": torch.zeros(2, 6)}, labels=torch.tensor([0, 1, 1]))
    bad = torch.arange(2, 14)  # twelve labels outside 0..1: the first ten are named
    first_ten = r"labels \[2, 3, 4, 5, 6, 7, 8, 9, 10, 11\]"
    with pytest.raises(ValueError, match=first_ten + r" are outside the label set 0\.\.1$"):
        model({"a": torch.zeros(12, 6)}, labels=bad)


def test_the_adapters_take_the_configured_dropout():
    config = BalanceConfig(modality_dims={"a": 6, "b": 5}, num_labels=2, hidden_size=4, adapter_dropout=0.3)
    model = BalancedModel(config)
    assert [model.adapters[m].dropout.p for m in ("a", "b")] == [0.3, 0.3]


@pytest.mark.parametrize("dtype", [torch.int64, torch.float32, torch.uint8])
def test_a_mask_of_zeros_and_ones_of_any_dtype_is_read_as_bool(tiny_config, dtype):
    model = BalancedModel(tiny_config).eval()
    x = {"a": torch.randn(4, 6), "b": torch.randn(4, 5)}
    x["b"][1] = float("nan")  # a missing entry's values never matter
    bool_mask = {"b": torch.tensor([True, False, True, False])}
    expected = model(x, modality_mask=bool_mask).logits
    assert torch.isfinite(expected).all()
    torch.testing.assert_close(model(x, modality_mask={"b": bool_mask["b"].to(dtype)}).logits, expected)


def test_bad_rows_are_listed_up_to_ten(tiny_config):
    model = BalancedModel(tiny_config)
    x = {"a": torch.zeros(12, 6), "b": torch.zeros(12, 5)}
    x["a"][:, 0] = float("nan")
    with pytest.raises(ValueError, match=r"present samples \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\]$"):
        model(x)
    nobody = {m: torch.zeros(12, dtype=torch.bool) for m in ("a", "b")}
    with pytest.raises(ValueError, match=r"samples \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\] have no modality present"):
        model({"a": torch.zeros(12, 6), "b": torch.zeros(12, 5)}, modality_mask=nobody)


def test_shapley_schedule_needs_an_eval_set(tmp_path, tiny_config, tiny_datasets):
    with pytest.raises(ValueError, match="pass eval_dataset"):
        trainer(tmp_path, tiny_config, tiny_datasets[0], None)


def test_rows_of_different_sizes_in_an_untyped_column(tmp_path, tiny_config):
    rows = {"a": [np.zeros(6).tolist(), np.zeros(5).tolist()], "b": [np.zeros(5).tolist()] * 2, "labels": [0, 1]}
    with pytest.raises(ValueError, match="different feature sizes|feature size"):
        trainer(tmp_path, tiny_config, Dataset.from_dict(rows), None, order_schedule="fixed")


def test_bad_training_arguments(tmp_path):
    with pytest.raises(ValueError, match="alternation"):
        args(tmp_path, alternation="sometimes")
    with pytest.raises(ValueError, match="gradient_accumulation_steps=1"):
        args(tmp_path, gradient_accumulation_steps=2)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"mapping_level": "pixel"}, "mapping_level must be one of"),
        ({"modality_dims": {"a": 0}}, r"modality_dims\['a'\] must be positive"),
        ({"train_order": ["a", "zz"]}, r"unknown modalities \['zz'\]"),
        ({"inference_mode": "vote"}, "inference_mode must be one of"),
    ],
)
def test_bad_config_values(overrides, message):
    from mllm_balance import BalanceConfig

    with pytest.raises(ValueError, match=message):
        BalanceConfig(**{"modality_dims": {"a": 2}, **overrides})


def test_none_rows_train_exactly_as_absent_entries(tmp_path, tiny_config, feature_maker):
    """A row holding `None` for a modality passes validation and trains as that entry marked absent."""
    features, labels = feature_maker(32)
    absent = np.arange(32) % 3 == 0  # (32,) every third row has no `b`
    rows = {"a": features["a"].tolist(), "b": [None if gone else r for r, gone in zip(features["b"].tolist(), absent)]}
    with_none = Dataset.from_dict({**rows, "labels": labels.tolist()})
    marked = build_feature_dataset(features, labels, present={"b": ~absent})
    weights = []
    for train in (with_none, marked):
        torch.manual_seed(0)
        run = trainer(tmp_path, tiny_config, train, None, order_schedule="fixed", num_train_epochs=1, seed=0)
        run.train()
        weights.append(torch.cat([p.detach().flatten() for p in run.model.parameters()]))
    torch.testing.assert_close(weights[0], weights[1])
    kept = drop_modalities(with_none, ["a", "b"], 0.0)  # the missing-modality evaluation's copy of a split
    np.testing.assert_array_equal(np.asarray(kept["b_present"]), ~absent)
    np.testing.assert_array_equal(np.asarray(kept["b"])[absent], 0.0)
    all_absent = Dataset.from_dict({"a": [None, [0.0] * 6], "b": [None, [0.0] * 5], "labels": [0, 1]})
    with pytest.raises(ValueError, match=r"rows \[0\] of the train dataset have no modality present"):
        trainer(tmp_path, tiny_config, all_absent, None, order_schedule="fixed")


def test_validation_reads_presence_and_names_rows_across_chunks(tmp_path, tiny_config):
    """`validate_feature_dataset` in chunks of 4: a NaN in an absent entry is accepted, a NaN in a present one and
    rows with nothing present are named by their index in the dataset (at most ten), and a missing `labels`
    column and a scalar modality column get their own messages."""
    n = 16
    a, b = np.ones((n, 6), np.float32), np.ones((n, 5), np.float32)
    a[6] = np.nan  # row 6: `a` marked absent, so its NaN is not read
    rows = {"a": a.tolist(), "b": b.tolist(), "a_present": [i != 6 for i in range(n)], "labels": [0] * n}
    validate_feature_dataset(Dataset.from_dict(rows), {"a": 6, "b": 5}, 3, batch_size=4)
    with pytest.raises(ValueError, match=r"^modality 'a' in the dataset holds NaN or inf in rows \[6\]$"):
        validate_feature_dataset(
            Dataset.from_dict({**rows, "a_present": [True] * n}), {"a": 6, "b": 5}, 3, batch_size=4
        )
    a[6] = 1.0
    late = {**rows, "a": a.tolist(), "a_present": [i < 8 for i in range(n)], "b_present": [i < 8 for i in range(n)]}
    with pytest.raises(ValueError, match=r"^rows \[8, 9, 10, 11\] of the dataset have no modality present$"):
        validate_feature_dataset(Dataset.from_dict(late), {"a": 6, "b": 5}, 3, batch_size=4)
    early = {**late, "a_present": [i < 2 for i in range(n)], "b_present": [i < 2 for i in range(n)]}
    with pytest.raises(ValueError, match=r"^rows \[2, 3, 4, 5, 6, 7, 8, 9, 10, 11\] of the dataset have no modality"):
        validate_feature_dataset(Dataset.from_dict(early), {"a": 6, "b": 5}, 3)
    no_labels = Dataset.from_dict({"a": a.tolist(), "b": b.tolist()})
    with pytest.raises(ValueError, match=r"^the dataset has no 'labels' column; its columns are \['a', 'b'\]$"):
        validate_feature_dataset(no_labels, {"a": 6, "b": 5})
    scalar = Dataset.from_dict({"a": [1.0] * n, "b": b.tolist(), "labels": [0] * n})
    with pytest.raises(ValueError, match=r"^modality 'a' in the dataset is not a column of vectors \(shape \(16,\)\)$"):
        validate_feature_dataset(scalar, {"a": 6, "b": 5})


def test_a_trainer_without_arguments_writes_to_outputs(tiny_config, tiny_datasets):
    """`args=None` gives `BalanceTrainingArguments(output_dir="outputs")`."""
    trainer = BalanceTrainer(
        model=BalancedModel(tiny_config), train_dataset=tiny_datasets[0], eval_dataset=tiny_datasets[1]
    )
    assert isinstance(trainer.args, BalanceTrainingArguments) and trainer.args.output_dir == "outputs"


def test_joint_training_ignores_step_terms_a_baseline_cannot_add(tmp_path, tiny_datasets):
    """Under `alternation="joint"` there are no alternating steps, so a model without step options accepts the
    unimodal and hybrid weights (ignored); with alternating steps it refuses them by name."""
    spec = get_baseline("concat")
    for weight in ("unimodal_loss_weight", "hybrid_loss_weight"):
        model = spec.build_model(spec.build_config({"a": 6, "b": 5}, num_labels=3, hidden_size=8))
        trainer = BalanceTrainer(
            model=model,
            args=args(tmp_path, alternation="joint", order_schedule="fixed", **{weight: 0.5}),
            train_dataset=tiny_datasets[0],
        )
        assert trainer._step_options.get("unimodal_loss_weight", 0) == (0.5 if weight == "unimodal_loss_weight" else 0)
        with pytest.raises(ValueError, match=f"^ConcatModel does not support {weight}: leave it at 0 for this model$"):
            BalanceTrainer(model=model, args=args(tmp_path, order_schedule="fixed", **{weight: 0.5}))


def test_drop_modalities_reads_none_rows_float_flags_and_names_bad_columns():
    """`drop_modalities` (the missing-modality evaluation's copy of a split): `None` rows become absent zero rows as
    wide as the others, presence flags stored as 0.0 / 1.0 are read as bools, and a modality that is ragged or
    `None` in every row is refused by name."""
    rows = {"a": [[1.0, 2.0], None, [3.0, 4.0]], "a_present": [1.0, 1.0, 0.0], "b": [[1.0]] * 3, "labels": [0, 1, 2]}
    kept = drop_modalities(Dataset.from_dict(rows), ["a", "b"], 0.0)
    np.testing.assert_array_equal(np.asarray(kept["a"]), [[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(np.asarray(kept["a_present"]), [True, False, False])
    ragged = Dataset.from_dict({"a": [[1.0, 2.0], [3.0]], "labels": [0, 1]})
    with pytest.raises(ValueError, match="^modality 'a' in the dataset has rows of different feature sizes$"):
        drop_modalities(ragged, ["a"], 0.5)
    empty = Dataset.from_dict({"a": [[1.0], [2.0]], "b": [None, None], "labels": [0, 1]})
    with pytest.raises(ValueError, match="^modality 'b' in the dataset holds None in every row$"):
        drop_modalities(empty.cast_column("b", List(Value("float32"))), ["a", "b"], 0.5)


def test_a_chunk_whose_rows_are_all_none_is_validated_at_the_model_size():
    """Validation in chunks of 2: a chunk where `b` is `None` in every row is filled at `b`'s size (5) and passes; a
    `None` row beside rows of another size is a size mismatch, named as such."""
    a, b = np.ones((4, 6)).tolist(), np.ones((4, 5)).tolist()
    rows = {"a": a, "b": [None, None, *b[2:]], "labels": [0, 1, 2, 0]}
    validate_feature_dataset(Dataset.from_dict(rows), {"a": 6, "b": 5}, 3, batch_size=2)
    narrow = {**rows, "b": [None, [1.0] * 4, *b[2:]]}
    with pytest.raises(ValueError, match="^modality 'b' in the dataset has rows of different feature sizes$"):
        validate_feature_dataset(Dataset.from_dict(narrow), {"a": 6, "b": 5}, 3, batch_size=2)


def test_a_declared_feature_size_is_checked_without_the_value_scan(feature_maker):
    """With `check_values=False` only the declared sizes are read, and a wrong one is still refused by name."""
    features, labels = feature_maker(8, dims=(("a", 7), ("b", 5)))
    with pytest.raises(ValueError, match="^modality 'a' in the train has feature size 7; the model expects 6$"):
        validate_feature_dataset(
            build_feature_dataset(features, labels), {"a": 6, "b": 5}, name="train", check_values=False
        )


def test_the_value_scan_names_sizes_and_lists_at_most_ten_rows_or_labels():
    """A column saved without a declared size is measured by the scan; NaN rows and bad labels are listed up to ten."""
    n = 12
    undeclared = Dataset.from_dict({"a": np.ones((n, 7)).tolist(), "labels": [0] * n})
    with pytest.raises(ValueError, match="^modality 'a' in the dataset has feature size 7; the model expects 6$"):
        validate_feature_dataset(undeclared, {"a": 6})
    nan_rows = Dataset.from_dict({"a": np.full((n, 6), np.nan).tolist(), "labels": [0] * n})
    with pytest.raises(ValueError, match=r"in rows \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\]$"):
        validate_feature_dataset(nan_rows, {"a": 6})
    bad_labels = Dataset.from_dict({"a": np.ones((n, 6)).tolist(), "labels": list(range(3, 3 + n))})
    with pytest.raises(ValueError, match=r"has labels \[3, 4, 5, 6, 7, 8, 9, 10, 11, 12\] outside the label set 0..2$"):
        validate_feature_dataset(bad_labels, {"a": 6}, 3)
