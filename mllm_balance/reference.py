"""The backbone reference of a [`BalancedModel`]: what identifies the frozen backbone its adapters are trained on.

A model holds only what trains; the backbone is referenced by the id, revision, identity and feature sizes recorded
in its config. This module records that reference, refuses adapters next to a backbone that does not match it,
loads the recorded backbone through the backbone registry and lists its Hub ids for a model card's `base_model`.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .backbones import load_backbone, registered_backbones
from .configuration import BalanceConfig

#: Identity fields whose difference only changes numerics slightly (warned about, never refused).
SOFT_IDENTITY_KEYS = ("dtype", "quantization")
#: Identity fields compared elsewhere or that may legitimately differ (a backbone may serve more modalities).
SKIPPED_IDENTITY_KEYS = ("id", "revision", "modalities")
INPUT_KINDS = ("text", "image", "audio", "video")

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+")


def backbone_reference(backbone: Any, modalities: Sequence[str] | None = None) -> dict[str, Any]:
    """What identifies a backbone's features: id, revision, feature sizes and the full identity.

    A composite backbone (one encoder per modality, identity `{"type": "composite", "encoders": {...}}`) has no
    single id: its id and revision join those of the encoders of `modalities` (`"text=<id>,image=<id>"`).

    Args:
        backbone: A [`~mllm_balance.backbones.Backbone`] (anything with `feature_sizes` and `identity()`).
        modalities (`Sequence[str]`, *optional*): the modalities that matter (a model's); defaults to all served.

    Returns:
        `dict` with `id` (`str | None`), `revision` (`str | None`), `feature_sizes` (`{modality: int}`) and
        `identity` (the JSON-normalised `identity()` dict, `{}` when the backbone has none).
    """
    identity = _json_normalise(backbone.identity()) if callable(getattr(backbone, "identity", None)) else {}
    if not isinstance(identity, dict):
        raise ValueError(f"{type(backbone).__name__}.identity() must return a dict, got {type(identity).__name__}")
    feature_sizes = getattr(backbone, "feature_sizes", None)
    if not isinstance(feature_sizes, Mapping):
        raise ValueError(f"{type(backbone).__name__} has no feature_sizes mapping {{modality: size}}")
    backbone_id, revision = _id_and_revision(identity, modalities)
    return {
        "id": backbone_id or getattr(backbone, "name_or_path", None),
        "revision": revision or getattr(backbone, "revision", None),
        "feature_sizes": {str(m): int(d) for m, d in feature_sizes.items()},
        "identity": identity,
    }


def _id_and_revision(identity: Mapping[str, Any], modalities: Sequence[str] | None) -> tuple[str | None, str | None]:
    if identity.get("id") is not None:
        return str(identity["id"]), None if identity.get("revision") is None else str(identity["revision"])
    if isinstance(identity.get("frames"), Mapping):  # a video encoder: its frame encoder
        return _id_and_revision(identity["frames"], None)
    encoders = identity.get("encoders")
    if isinstance(encoders, Mapping) and encoders:
        wanted = [m for m in (modalities or encoders) if m in encoders]
        parts = {
            m: _id_and_revision(encoders[m], None) if isinstance(encoders[m], Mapping) else (None, None) for m in wanted
        }
        ids = ",".join(f"{m}={i}" for m, (i, _) in parts.items())
        revisions = ",".join(f"{m}={r}" for m, (_, r) in parts.items())
        return ids or None, revisions if any(r is not None for _, r in parts.values()) else None
    return None, None


def record_backbone(config: BalanceConfig, backbone: Any, spec: str | Mapping[str, Any] | None = None) -> BalanceConfig:
    """Record in `config` the backbone whose features the adapters are trained on.

    Sets `backbone_id`, `backbone_revision`, `backbone_identity` (the backbone's full `identity()`: layer, pooling,
    preprocessing, dtype, quantization) and, when given, `backbone_spec` (how to load it again with
    `mllm_balance.backbones.load_backbone`), after checking that the backbone serves every modality of the config
    with the feature size in `config.modality_dims`.

    Args:
        config ([`BalanceConfig`]): the adapters' config, changed in place.
        backbone: the backbone (see [`backbone_reference`]).
        spec (`str` or `dict`, *optional*): the registry spec the backbone was loaded from, e.g.
            `"qwen2.5-omni:Qwen/Qwen2.5-Omni-7B"`; without it [`backbone_spec`] derives one from the identity.

    Raises:
        `ValueError`: the backbone does not serve a modality of the config, or gives another feature size.
    """
    ref = backbone_reference(backbone, config.modalities)
    problems = _feature_size_problems(config, ref["feature_sizes"])
    if problems:
        raise ValueError(
            f"cannot record backbone {ref['id']!r} for this model: " + "; ".join(problems) + ". Build the "
            "BalanceConfig with modality_dims=backbone.feature_sizes (restricted to the modalities you train on)."
        )
    config.backbone_id = ref["id"]
    config.backbone_revision = ref["revision"]
    config.backbone_identity = ref["identity"]
    if spec is not None:
        config.backbone_spec = _json_normalise(spec)
    return config


def check_backbone_compatibility(config: BalanceConfig, backbone: Any, allow_mismatch: bool = False) -> list[str]:
    """Check that `backbone` gives the features the adapters described by `config` were trained on.

    Compared: the backbone id and revision, the feature size of every modality of the config, and (when the config
    recorded one) the rest of the backbone identity (layer, pooling, preprocessing). A different dtype or
    quantization only warns: it changes the features slightly, by the user's choice.

    Args:
        config ([`BalanceConfig`]): the adapters' config, with `backbone_id` / `backbone_revision` recorded.
        backbone: the backbone to check (see [`backbone_reference`]).
        allow_mismatch (`bool`, *optional*, defaults to `False`): warn instead of raising.

    Returns:
        `list[str]`: the differences found (empty when the backbone matches).

    Raises:
        `ValueError`: naming both backbones and every difference, unless `allow_mismatch=True`.
    """
    ref = backbone_reference(backbone, config.modalities)
    problems: list[str] = []
    recorded_id, recorded_rev = config.backbone_id, config.backbone_revision
    if recorded_id is None:
        warnings.warn(
            "the adapters' config records no backbone_id: only the feature sizes can be checked", stacklevel=2
        )
    elif recorded_id != ref["id"]:
        problems.append(f"backbone id: adapters trained on {recorded_id!r}, this backbone is {ref['id']!r}")
    if recorded_id is not None and recorded_rev is not None and recorded_rev != ref["revision"]:
        got = "no revision" if ref["revision"] is None else repr(ref["revision"])
        problems.append(f"backbone revision: adapters trained on {recorded_rev!r}, this backbone reports {got}")
    problems.extend(_feature_size_problems(config, ref["feature_sizes"]))
    recorded_identity = getattr(config, "backbone_identity", None)
    soft: list[str] = []
    if isinstance(recorded_identity, Mapping) and ref["identity"]:
        hard, soft = _identity_differences(recorded_identity, ref["identity"], config.modalities)
        problems.extend(hard)
    if soft:
        warnings.warn("the backbone differs from the recorded one in " + "; ".join(soft), stacklevel=2)
    if problems:
        message = (
            f"backbone mismatch: the adapters were trained on {_describe_backbone(recorded_id, recorded_rev)}, "
            f"the backbone given is {_describe_backbone(ref['id'], ref['revision'])}:\n  - "
            + "\n  - ".join(problems)
            + "\nTheir features differ, so the predictions would be wrong. Load the recorded backbone, or pass "
            "allow_mismatch=True (pipeline: allow_backbone_mismatch=True) to use this one anyway."
        )
        if not allow_mismatch:
            raise ValueError(message)
        warnings.warn(message, stacklevel=2)
    return problems


def backbone_spec(config: BalanceConfig) -> str | dict[str, Any]:
    """How to load the recorded backbone with `mllm_balance.backbones.load_backbone`.

    The recorded `backbone_spec` when there is one; otherwise derived from the recorded identity: a registered
    backbone type and its id (`"qwen-omni:Qwen/Qwen2.5-Omni-7B"`, with the recorded `layer`), or a composite
    backbone of the recorded encoders of the model's modalities.

    Raises:
        `ValueError`: nothing recorded tells which backbone to load.
    """
    spec = getattr(config, "backbone_spec", None)
    if spec:
        return spec
    identity = getattr(config, "backbone_identity", None) or {}
    kind = identity.get("type")
    encoders = identity.get("encoders")
    if kind == "composite" and isinstance(encoders, Mapping):
        return {
            "type": "composite",
            "encoders": {m: _encoder_spec(encoders[m]) for m in config.modalities if m in encoders},
        }
    if kind in registered_backbones() and identity.get("id"):
        options = {"layer": identity["layer"]} if isinstance(identity.get("layer"), int) else {}
        return {"type": kind, "name_or_path": identity["id"], **options}
    if config.backbone_id and ":" in config.backbone_id.split("/")[0]:
        return config.backbone_id  # already a "<type>:<target>" spec
    raise ValueError(
        f"cannot tell how to load backbone {config.backbone_id!r}: the config records no backbone_spec and no "
        "identity of a registered backbone type. Pass backbone=<a Backbone object or a registry spec such as "
        "'qwen2.5-omni:Qwen/Qwen2.5-Omni-7B'>"
    )


def _encoder_spec(identity: Mapping[str, Any]) -> str | dict[str, Any]:
    if isinstance(identity.get("frames"), Mapping):
        frames = _encoder_spec(identity["frames"])
        max_frames = (identity.get("preprocessing") or {}).get("max_frames")
        name = frames if isinstance(frames, str) else frames.get("name_or_path")
        return {"name_or_path": name, **({"max_frames": max_frames} if max_frames else {})}
    options = {"pooling": identity["pooling"]} if identity.get("type", "").startswith("transformers-") else {}
    return {"name_or_path": identity.get("id"), **options} if options else identity.get("id")


def load_backbone_for(config: BalanceConfig, name_or_path: str | Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
    """Load the backbone recorded in `config` (or the one `name_or_path` names) through the backbone registry.

    Args:
        config ([`BalanceConfig`]): the adapters' config.
        name_or_path (`str` or `dict`, *optional*): a registry spec to load instead of the recorded backbone.
        kwargs: loading options for `mllm_balance.backbones.load_backbone` (`dtype`, `quantization`,
            `device_map`, ...). For a single-model backbone, `revision` defaults to the recorded one (a local
            folder's `local-...` hash is not a Hub revision: it is checked after loading instead).

    Raises:
        `ValueError`: nothing tells which backbone to load (see [`backbone_spec`]).
    """
    if name_or_path is not None:
        return load_backbone(name_or_path, **kwargs)
    if not config.backbone_id and not getattr(config, "backbone_spec", None):
        raise ValueError(
            "this model's config records no backbone, so it cannot be loaded automatically: pass backbone=<a "
            "Backbone object> (and record it with mllm_balance.reference.record_backbone before saving)"
        )
    spec = backbone_spec(config)
    revision = config.backbone_revision
    single = not (isinstance(spec, Mapping) and spec.get("type") == "composite") and "," not in str(revision)
    if single and revision is not None and not str(revision).startswith("local-"):
        kwargs.setdefault("revision", revision)
    return load_backbone(spec, **kwargs)


def _feature_size_problems(config: BalanceConfig, feature_sizes: Mapping[str, int]) -> list[str]:
    problems = []
    for m, dim in config.modality_dims.items():
        if m not in feature_sizes:
            problems.append(f"modality {m!r} is not served by this backbone (it serves {sorted(feature_sizes)})")
        elif int(feature_sizes[m]) != int(dim):
            problems.append(f"feature size of {m!r}: adapters expect {dim}, this backbone gives {feature_sizes[m]}")
    return problems


def _identity_differences(
    recorded: Mapping[str, Any], current: Mapping[str, Any], modalities: Sequence[str] | None, prefix: str = ""
) -> tuple[list[str], list[str]]:
    """Differences between two identities: `(hard, soft)`, soft ones being dtype and quantization only."""
    hard: list[str] = []
    soft: list[str] = []
    for key in sorted(set(recorded) | set(current)):
        if key in SKIPPED_IDENTITY_KEYS:
            continue
        old, new = recorded.get(key), current.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping) and key in ("encoders", "frames"):
            if key == "frames":  # a video encoder's frame encoder
                pairs = [(f"{prefix}frames.", old, new)]
            else:  # a composite backbone: the encoders of the model's modalities
                names = [m for m in (modalities or sorted(set(old) | set(new))) if m in old and m in new]
                pairs = [(f"{prefix}encoders.{m}.", old[m], new[m]) for m in names]
            for sub_prefix, sub_old, sub_new in pairs:
                if isinstance(sub_old, Mapping) and isinstance(sub_new, Mapping):
                    sub_hard, sub_soft = _identity_differences(sub_old, sub_new, None, sub_prefix)
                    hard += sub_hard
                    soft += sub_soft
            continue
        if key == "preprocessing" and isinstance(old, Mapping) and isinstance(new, Mapping) and modalities:
            kinds = set(INPUT_KINDS) | set(modalities)
            if set(old) <= kinds and set(new) <= kinds:  # keyed by modality: compare the model's modalities only
                old = {m: old.get(m) for m in modalities if m in old}
                new = {m: new.get(m) for m in modalities if m in new}
        if old != new:
            text = f"{prefix}{key}: recorded {_short(old)}, this backbone has {_short(new)}"
            (soft if key in SOFT_IDENTITY_KEYS else hard).append(text)
    return hard, soft


def _describe_backbone(backbone_id: str | None, revision: str | None) -> str:
    name = repr(backbone_id) if backbone_id is not None else "an unrecorded backbone"
    return f"{name} (revision {revision!r})" if revision is not None else name


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _json_normalise(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def base_models(config: BalanceConfig) -> list[str]:
    """The Hub ids of the recorded backbone (one per encoder of a composite backbone), for the card's `base_model`."""
    identity = getattr(config, "backbone_identity", None)
    ids: list[str] = []
    if isinstance(identity, Mapping) and identity:
        _collect_ids(identity, config.modalities, ids)
    elif config.backbone_id:
        ids.append(config.backbone_id)
    return [i for i in dict.fromkeys(ids) if _is_hub_id(i)]


def _collect_ids(identity: Mapping[str, Any], modalities: Sequence[str] | None, out: list[str]) -> None:
    if identity.get("id") is not None:
        out.append(str(identity["id"]))
    if isinstance(identity.get("frames"), Mapping):
        _collect_ids(identity["frames"], None, out)
    encoders = identity.get("encoders")
    if isinstance(encoders, Mapping):
        for m in modalities or encoders:
            if isinstance(encoders.get(m), Mapping):
                _collect_ids(encoders[m], None, out)


def _is_hub_id(name: str | None) -> bool:
    return bool(name) and bool(_HUB_ID.fullmatch(name)) and not Path(name).expanduser().exists()


__all__ = [
    "SOFT_IDENTITY_KEYS",
    "SKIPPED_IDENTITY_KEYS",
    "backbone_reference",
    "record_backbone",
    "check_backbone_compatibility",
    "backbone_spec",
    "load_backbone_for",
    "base_models",
]
