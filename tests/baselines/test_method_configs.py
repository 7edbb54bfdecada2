"""Each method's config accepts the ends of its documented ranges and refuses values past them, naming the field."""

from __future__ import annotations

import re

import pytest

from mllm_balance.baselines import CRMTConfig, JointConfig, LateFusionConfig, LFMConfig, MLAConfig, OGMConfig

BASE = {"modality_dims": {"a": 2, "b": 3}, "num_labels": 2}

ACCEPTED = [
    (OGMConfig, {"alpha": 0}),  # alpha >= 0
    (OGMConfig, {"end_fraction": 0}),  # end_fraction in [0, 1]
    (OGMConfig, {"end_fraction": 1}),
    (OGMConfig, {"noise_scale": 0}),  # noise_scale >= 0
    (OGMConfig, {"noise_scale": 0.5}),
    (MLAConfig, {"max_directions": 1}),  # max_directions >= 1
    (CRMTConfig, {"stage2_fraction": 0}),  # stage2_fraction in [0, 1)
    (LFMConfig, {"temperature": 1e-3}),  # temperature > 0
    (JointConfig, {"lora_r": 1}),  # lora_r >= 1
]

REFUSED = [
    (OGMConfig, {"alpha": -0.1}, "alpha"),
    (OGMConfig, {"end_fraction": 1.5}, "end_fraction"),
    (OGMConfig, {"noise_scale": -1}, "noise_scale"),
    (MLAConfig, {"max_directions": 0}, "max_directions"),
    (CRMTConfig, {"stage2_fraction": 1}, "stage2_fraction"),
    (CRMTConfig, {"stage2_fraction": 1.5}, "stage2_fraction"),
    (LFMConfig, {"temperature": 0}, "temperature"),
    (JointConfig, {"lora_r": 0}, "lora_r"),
]


@pytest.mark.parametrize(("config_class", "values"), ACCEPTED)
def test_range_ends_are_accepted(config_class, values: dict):
    """A value at the end of a field's range builds a config that keeps it."""
    config = config_class(**BASE, **values)
    assert all(getattr(config, k) == v for k, v in values.items())


@pytest.mark.parametrize(("config_class", "values", "field"), REFUSED)
def test_out_of_range_values_are_refused_by_name(config_class, values: dict, field: str):
    """A value outside a field's range is refused, and the error names the field and the value."""
    with pytest.raises(ValueError, match=rf"{field}.*{list(values.values())[0]}"):
        config_class(**BASE, **values)


CHOICES = [
    (OGMConfig, "fusion", "('concat', 'sum')"),
    (OGMConfig, "form", "('release', 'shifted', 'code', 'paper')"),
    (LFMConfig, "alignment", "('release', 'js', 'contrastive')"),
    (LFMConfig, "schedule", "('release', 'linear')"),
    (LateFusionConfig, "combine", "('prob', 'logprob')"),
]


@pytest.mark.parametrize(("config_class", "field", "allowed"), CHOICES)
def test_unknown_choices_are_refused_naming_the_field_and_the_choices(config_class, field: str, allowed: str):
    message = f"{field} must be one of {allowed}, got 'other'"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        config_class(**BASE, **{field: "other"})
