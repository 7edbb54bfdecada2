"""Sharing trained adapters: the backbone reference in the config, backbone compatibility, model cards and Hub pushes.

A [`BalancedModel`] holds only what trains (adapters, mapping statistics, memory unit, classifier); the frozen
backbone is referenced by the id, revision, identity and feature sizes recorded in its config. This module records
that reference, refuses adapters next to a backbone that does not match it, renders the model card from
`results.json` (template in `model_cards/`) and pushes the adapters, config, card and contribution plot to the Hub.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import HfApi, ModelCard, ModelCardData

from .atomic import staged_folder
from .configuration import BalanceConfig
from .modeling import trainable_state_dict
from .results import RESULTS_NAME
from .shapley import normalised_contributions

PIPELINE_TASK = "multimodal-balanced-classification"
LIBRARY_NAME = "mllm-balance"
CARD_NAME = "README.md"
CARD_TEMPLATE_NAME = "balanced_model_card.md"
PLOT_NAME = "contributions.png"

#: Identity fields whose difference only changes numerics slightly (warned about, never refused).
SOFT_IDENTITY_KEYS = ("dtype", "quantization")
#: Identity fields compared elsewhere or that may legitimately differ (a backbone may serve more modalities).
SKIPPED_IDENTITY_KEYS = ("id", "revision", "modalities")
INPUT_KINDS = ("text", "image", "audio", "video")

#: Hub pipeline tags for single-modality models; multimodal classification has no Hub tag, so it is `"other"`.
HUB_PIPELINE_TAGS = {
    "text": "text-classification",
    "image": "image-classification",
    "audio": "audio-classification",
    "video": "video-classification",
}

PAPER_CITATION = """@misc{shi2025modality,
  title  = {Modality Equilibrium Matters: Minor-Modality-Aware Adaptive Alternating for Cross-Modal Memory Enhancement},
  author = {Shi, Xiang and Zhang, Rui and Liu, Jiawei and Liu, Yinpeng and Cheng, Qikai and Lu, Wei},
  year   = {2025},
  note   = {School of Information Management, Wuhan University}
}"""

_EXAMPLE_INPUTS = {"text": '"an example sentence"', "image": '"photo.jpg"', "audio": '"clip.wav"'}
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+")


# ---------------------------------------------------------------------------------------------- backbone reference
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
    from .backbones import registered_backbones

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
    from .backbones import load_backbone

    if name_or_path is not None:
        return load_backbone(name_or_path, **kwargs)
    if not config.backbone_id and not getattr(config, "backbone_spec", None):
        raise ValueError(
            "this model's config records no backbone, so it cannot be loaded automatically: pass backbone=<a "
            "Backbone object> (and record it with mllm_balance.hub.record_backbone before saving)"
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


# ---------------------------------------------------------------------------------------------------- results
def load_results(path: str | os.PathLike) -> dict[str, Any] | None:
    """Read `results.json` (a file, or a folder holding one); `None` when there is none."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_NAME
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    if not isinstance(results, dict):
        raise ValueError(f"{path} does not hold a results dict")
    return results


# ------------------------------------------------------------------------------------------------------ plot
def plot_contributions(
    shapley_history: Sequence[Mapping[str, float]],
    path: str | os.PathLike,
    *,
    modalities: Sequence[str] | None = None,
    epochs: Sequence[int] | None = None,
    edm_history: Sequence[float | None] | None = None,
) -> str | None:
    """Draw the Shapley value of each modality after every scored epoch (and the EDM, when given) as a PNG.

    Args:
        shapley_history (`Sequence[Mapping[str, float]]`): Shapley values after each scored epoch.
        path (`str`): where to write the PNG.
        modalities (`Sequence[str]`, *optional*): line order; defaults to the keys of the first entry.
        epochs (`Sequence[int]`, *optional*): the 0-based epoch of each entry (-1 = before training); drawn 1-based.
        edm_history (`Sequence[float]`, *optional*): EDM after each scored epoch, drawn in a second panel.

    Returns:
        `str | None`: the path written, or `None` (with a warning) when the history is empty or matplotlib is not
        installed (`pip install mllm-balance[plot]`).
    """
    history = [dict(h) for h in shapley_history or []]
    if not history:
        return None
    try:
        from matplotlib.figure import Figure
    except ImportError:
        warnings.warn(
            "matplotlib is not installed (pip install 'mllm-balance[plot]'): no contribution plot", stacklevel=2
        )
        return None
    modalities = list(modalities or history[0])
    x = [int(e) + 1 for e in epochs] if epochs is not None and len(epochs) == len(history) else None
    x = x or list(range(1, len(history) + 1))
    edm = [math.nan if v is None else float(v) for v in (edm_history or [])]
    panels = 2 if len(edm) == len(history) else 1
    fig = Figure(figsize=(6.4, 3.4 * panels), dpi=100, layout="constrained")
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    for m in modalities:
        axes[0].plot(x, [float(h.get(m, math.nan)) for h in history], marker="o", label=m)
    axes[0].axhline(0.0, color="0.6", linewidth=0.8)
    axes[0].set_ylabel("Shapley value (accuracy points)")
    axes[0].set_title("Modality contributions over training")
    axes[0].legend(loc="best")
    if panels == 2:
        axes[1].plot(x, edm, marker="s", color="black")
        axes[1].set_ylabel("EDM (%)")
    axes[-1].set_xlabel("epoch (0 = before training)" if min(x) == 0 else "epoch")
    axes[-1].set_xticks(x)
    fig.savefig(path, format="png", metadata={"Software": None})
    return str(path)


def plot_from_results(config: BalanceConfig, results: Mapping[str, Any] | None, path: str | os.PathLike) -> str | None:
    """[`plot_contributions`] with the history of `results` (`shapley_history`, `edm_history`, `scored_epochs`),
    else the Shapley history recorded in `config`."""
    results = results or {}
    history = results.get("shapley_history") or config.shapley_history or []
    edm = results.get("edm_history") if results.get("shapley_history") else None
    epochs = results.get("scored_epochs") if results.get("shapley_history") else None
    return plot_contributions(history, path, modalities=config.modalities, epochs=epochs, edm_history=edm)


# ------------------------------------------------------------------------------------------------------ card
def card_template_path() -> Path:
    """The Jinja model-card template: packaged beside the code, or `model_cards/` of a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "model_cards" / CARD_TEMPLATE_NAME, here.parent / "model_cards" / CARD_TEMPLATE_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"the model card template {CARD_TEMPLATE_NAME} is missing from this installation")


def hub_pipeline_tag(modalities: Sequence[str]) -> str:
    """The Hub's pipeline tag for a classifier over `modalities` (`"other"` for several: the Hub has no tag for
    multimodal classification; the task name is added as a tag instead)."""
    if len(modalities) == 1 and modalities[0] in HUB_PIPELINE_TAGS:
        return HUB_PIPELINE_TAGS[modalities[0]]
    return "other"


def usage_snippet(repo_id: str, modalities: Sequence[str]) -> str:
    """The three lines that run a pushed model."""
    sample = ", ".join(f'"{m}": {_EXAMPLE_INPUTS.get(m, "...")}' for m in modalities)
    return (
        f'import mllm_balance, transformers  # registers the "{PIPELINE_TASK}" task\n'
        f'classifier = transformers.pipeline("{PIPELINE_TASK}", model="{repo_id}")\n'
        f"classifier({{{sample}}}, top_k=3)"
    )


def _is_hub_id(name: str | None) -> bool:
    return bool(name) and bool(_HUB_ID.fullmatch(name)) and not Path(name).expanduser().exists()


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    value = float(value)
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def card_context(
    config: BalanceConfig,
    results: Mapping[str, Any] | None = None,
    *,
    repo_id: str | None = None,
    plot_file: str | None = None,
    num_parameters: int | None = None,
) -> dict[str, Any]:
    """The values the card template is filled with, numbers already formatted."""
    modalities = list(results.get("modalities") or config.modalities) if results else list(config.modalities)
    context: dict[str, Any] = {
        "model_name": repo_id.split("/")[-1] if repo_id else "Balanced multimodal classifier",
        "modalities": modalities,
        "backbone_id": config.backbone_id,
        "backbone_revision": config.backbone_revision,
        "feature_sizes": dict(config.modality_dims),
        "labels": config.label_names,
        "hidden_size": config.hidden_size,
        "train_order": list(config.train_order or config.modalities),
        "inference_mode": config.inference_mode,
        "num_parameters": f"{num_parameters:,}" if num_parameters is not None else None,
        "plot_file": plot_file,
        "usage": usage_snippet(repo_id or "path/to/this/model", config.modalities),
        "citation": PAPER_CITATION,
        "results": bool(results),
        "order_history": [],
        "missing_modality": [],
    }
    if not results:
        return context
    context["order_history"] = [
        {"epoch": i + 1, "order": list(o)} for i, o in enumerate(results.get("order_history") or [])
    ]
    accuracy = results.get("accuracy") or {}
    per_modality = accuracy.get("per_modality") or {}
    shapley = {m: float(v) for m, v in (results.get("shapley") or {}).items()}
    normalised = normalised_contributions(shapley)
    context.update(
        dataset=results.get("dataset", "unknown"),
        method=results.get("method", "ours"),
        fusion_accuracy=_fmt(accuracy.get("fusion")),
        per_modality=[{"modality": m, "accuracy": _fmt(per_modality.get(m))} for m in modalities if m in per_modality],
        shapley=[
            {
                "modality": m,
                "value": _fmt(shapley[m]),
                "normalised": _fmt(normalised[m]),
                "deviation": _fmt(abs(100.0 - normalised[m])),
            }
            for m in modalities
            if m in shapley
        ],
        edm=_fmt(results.get("edm")),
        missing_modality=[
            {"rate": rate, "accuracy": _fmt(acc)}
            for rate, acc in sorted((results.get("missing_modality") or {}).items(), key=lambda kv: float(kv[0]))
        ],
    )
    return context


def render_model_card(
    config: BalanceConfig,
    results: Mapping[str, Any] | None = None,
    *,
    repo_id: str | None = None,
    plot_file: str | None = None,
    num_parameters: int | None = None,
    license: str | None = None,
    language: str | list[str] | None = None,
    tags: Sequence[str] | None = None,
    datasets: str | list[str] | None = None,
    base_model: str | None = None,
    pipeline_tag: str | None = None,
    template_path: str | os.PathLike | None = None,
) -> ModelCard:
    """Render the model card of a balanced classifier from its config and `results.json`.

    Args:
        config ([`BalanceConfig`]): backbone reference, modalities, labels, last order, Shapley history.
        results (`Mapping`, *optional*): the `results.json` dict (fusion and per-modality accuracy, Shapley values,
            EDM, order history, and `missing_modality` when the robustness evaluation ran).
        repo_id (`str`, *optional*): the Hub repo, used in the title and the usage lines.
        plot_file (`str`, *optional*): file name of the contribution plot beside the card.
        num_parameters (`int`, *optional*): trained parameters, shown in the card.
        license, language, tags, datasets: card metadata (`datasets` defaults to the results' dataset).
        base_model (`str`, *optional*): defaults to `config.backbone_id` when that is a Hub id.
        pipeline_tag (`str`, *optional*): defaults to [`hub_pipeline_tag`].
        template_path (`str`, *optional*): another Jinja template.

    Returns:
        `huggingface_hub.ModelCard`
    """
    if base_model is None:
        found = base_models(config)
        base_model = (found[0] if len(found) == 1 else found) or None
    if datasets is None and results and results.get("dataset"):
        datasets = [str(results["dataset"])]
    card_tags = [LIBRARY_NAME, PIPELINE_TASK, "multimodal", "modality-balance", "shapley", *config.modalities]
    for tag in tags or []:
        if tag not in card_tags:
            card_tags.append(tag)
    extra = {"base_model_relation": "adapter"} if base_model else {}
    card_data = ModelCardData(
        base_model=base_model,
        datasets=datasets,
        metrics=["accuracy"],
        pipeline_tag=pipeline_tag or hub_pipeline_tag(config.modalities),
        library_name=LIBRARY_NAME,
        license=license,
        language=language,
        tags=card_tags,
        **extra,
    )
    context = card_context(config, results, repo_id=repo_id, plot_file=plot_file, num_parameters=num_parameters)
    return ModelCard.from_template(card_data, template_path=str(template_path or card_template_path()), **context)


def write_model_card(
    directory: str | os.PathLike,
    model: Any,
    results: Mapping[str, Any] | None = None,
    **card_kwargs: Any,
) -> ModelCard:
    """Write `README.md` (and `contributions.png` when there is a Shapley history) into `directory`.

    Args:
        directory (`str`): output folder.
        model ([`BalancedModel`] or [`BalanceConfig`]): the model (its trained-parameter count goes in the card) or
            its config.
        results (`Mapping`, *optional*): the `results.json` dict.
        card_kwargs: passed to [`render_model_card`].
    """
    os.makedirs(directory, exist_ok=True)
    config = model if isinstance(model, BalanceConfig) else model.config
    if isinstance(model, torch.nn.Module):
        card_kwargs.setdefault("num_parameters", sum(t.numel() for t in trainable_state_dict(model).values()))
    plot_path = Path(directory) / PLOT_NAME
    plot_file = PLOT_NAME if plot_from_results(config, results, plot_path) else None
    if plot_file is None and plot_path.exists():
        plot_path.unlink()  # a stale plot of an earlier run must not be uploaded with this card
    card = render_model_card(config, results, plot_file=plot_file, **card_kwargs)
    card.save(os.path.join(directory, CARD_NAME))
    return card


# --------------------------------------------------------------------------------------------- save and push
def save_adapters(
    model: torch.nn.Module,
    directory: str | os.PathLike,
    results: Mapping[str, Any] | None = None,
    **card_kwargs: Any,
) -> list[str]:
    """Write what a user needs next to the backbone: trained weights (safetensors), config, card and plot.

    Args:
        model ([`BalancedModel`]): the trained model (its config should record the backbone, see
            [`record_backbone`]).
        directory (`str`): output folder.
        results (`Mapping`, *optional*): the `results.json` dict for the card.
        card_kwargs: passed to [`render_model_card`] (`repo_id`, `license`, `tags`, ...).

    Returns:
        `list[str]`: the file names written.
    """
    if not model.config.backbone_id:
        warnings.warn(
            "config.backbone_id is not set: the saved adapters cannot be matched to their backbone. Call "
            "mllm_balance.hub.record_backbone(model.config, backbone) before saving",
            stacklevel=2,
        )
    os.makedirs(directory, exist_ok=True)
    state_dict = trainable_state_dict(model)
    expected = set(state_dict)
    with staged_folder(directory) as staging:  # weights and config land whole, config.json last
        model.save_pretrained(staging, state_dict=dict(state_dict))  # (save_pretrained empties the dict it is given)
    write_model_card(directory, model, results, **card_kwargs)
    saved = _safetensors_keys(directory)
    if saved != expected:
        raise RuntimeError(f"the saved weights differ from the trained ones in {sorted(saved ^ expected)[:10]}")
    return sorted(os.listdir(directory))


def push_adapters_to_hub(
    model: torch.nn.Module,
    repo_id: str,
    results: Mapping[str, Any] | str | os.PathLike | None = None,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    api: HfApi | None = None,
    **card_kwargs: Any,
):
    """Push the trained weights, config, model card and contribution plot (never the backbone) to the Hub.

    Args:
        model ([`BalancedModel`]): the trained model.
        repo_id (`str`): the Hub repo (created if missing).
        results (`Mapping` or `str`, *optional*): the `results.json` dict, or its path (or its folder).
        commit_message, commit_description, private, token, revision, create_pr: as in
            `huggingface_hub.HfApi.upload_folder` / `create_repo`.
        api (`HfApi`, *optional*): the client to use.
        card_kwargs: passed to [`render_model_card`] (`license`, `language`, `tags`, ...).

    Returns:
        The `CommitInfo` of the upload.
    """
    if isinstance(results, (str, os.PathLike)):
        path = results
        results = load_results(path)
        if results is None:
            raise ValueError(f"no results found at {path}")
    api = api or HfApi(token=token, library_name=LIBRARY_NAME)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model", token=token)
    repo_id = getattr(repo_url, "repo_id", None) or repo_id
    with tempfile.TemporaryDirectory() as folder:
        save_adapters(model, folder, results, repo_id=repo_id, **card_kwargs)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            repo_type="model",
            commit_message=commit_message or "Upload balanced multimodal adapters",
            commit_description=commit_description,
            revision=revision,
            create_pr=create_pr,
            token=token,
        )


def create_trainer_model_card(
    trainer: Any,
    *,
    language: str | None = None,
    license: str | None = None,
    tags: str | list[str] | None = None,
    model_name: str | None = None,
    finetuned_from: str | None = None,
    tasks: str | list[str] | None = None,
    dataset_tags: str | list[str] | None = None,
    dataset: str | list[str] | None = None,
    dataset_args: str | list[str] | None = None,
    results: Mapping[str, Any] | None = None,
) -> ModelCard | None:
    """Body of `BalanceTrainer.create_model_card`: the card of [`push_adapters_to_hub`], written into
    `trainer.args.output_dir` (with the contribution plot), filled from `<output_dir>/results.json` when present.

    `Trainer.push_to_hub` saves the model (its config then records the last order and the Shapley history), calls
    this, then uploads the output folder. `finetuned_from`, `tasks`, `dataset_tags` and `dataset_args` are accepted
    for compatibility and unused: the base model is the recorded backbone.
    """
    del finetuned_from, tasks, dataset_tags, dataset_args
    if not trainer.is_world_process_zero():
        return None
    model = trainer.accelerator.unwrap_model(trainer.model)
    output_dir = trainer.args.output_dir
    if results is None:
        results = load_results(output_dir)
    repo_id = getattr(trainer, "hub_model_id", None) or trainer.args.hub_model_id or model_name
    return write_model_card(
        output_dir,
        model,
        results,
        repo_id=repo_id,
        license=license,
        language=language,
        tags=[tags] if isinstance(tags, str) else tags,
        datasets=dataset,
    )


def _safetensors_keys(directory: str | os.PathLike) -> set[str]:
    from safetensors import safe_open

    keys: set[str] = set()
    for file in Path(directory).glob("*.safetensors"):
        with safe_open(str(file), "pt") as f:
            keys.update(f.keys())
    return keys


__all__ = [
    "PIPELINE_TASK",
    "backbone_reference",
    "record_backbone",
    "check_backbone_compatibility",
    "load_backbone_for",
    "load_results",
    "plot_contributions",
    "plot_from_results",
    "render_model_card",
    "write_model_card",
    "save_adapters",
    "push_adapters_to_hub",
    "create_trainer_model_card",
]
