"""The model card of a shared [`BalancedModel`]: rendered from its config and `results.json` with the Jinja template
in `model_cards/`, written with the contribution plot beside it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelCard, ModelCardData

from .configuration import BalanceConfig, FeatureClassifierConfig
from .plots import plot_model_contributions_from_results
from .reference import base_models
from .runs import format_value
from .shapley import normalised_contributions

#: The `transformers` pipeline task of a balanced classifier (also a tag of its card).
PIPELINE_TASK = "multimodal-balanced-classification"
LIBRARY_NAME = "mllm-balance"
CARD_NAME = "README.md"
CARD_TEMPLATE_NAME = "balanced_model_card.md"
PLOT_NAME = "contributions.png"

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


def card_context(
    config: FeatureClassifierConfig,
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
        # a baseline has one inference rule: its fusion
        "inference_mode": config.inference_mode if isinstance(config, BalanceConfig) else f"{config.method} fusion",
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
        fusion_accuracy=format_value(accuracy.get("fusion")),
        per_modality=[
            {"modality": m, "accuracy": format_value(per_modality.get(m))} for m in modalities if m in per_modality
        ],
        shapley=[
            {
                "modality": m,
                "value": format_value(shapley[m]),
                "normalised": format_value(normalised[m]),
                "deviation": format_value(abs(100.0 - normalised[m])),
            }
            for m in modalities
            if m in shapley
        ],
        edm=format_value(results.get("edm")),
        missing_modality=[
            {"rate": rate, "accuracy": format_value(acc)}
            for rate, acc in sorted((results.get("missing_modality") or {}).items(), key=lambda kv: float(kv[0]))
        ],
    )
    return context


def render_model_card(
    config: FeatureClassifierConfig,
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
        config ([`FeatureClassifierConfig`]): backbone reference, modalities, labels, last order, Shapley history.
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
        card_kwargs.setdefault("num_parameters", sum(t.numel() for t in model.trainable_state_dict().values()))
    plot_path = Path(directory) / PLOT_NAME
    plot_file = PLOT_NAME if plot_model_contributions_from_results(config, results, plot_path) else None
    if plot_file is None and plot_path.exists():
        plot_path.unlink()  # a stale plot of an earlier run must not be uploaded with this card
    card = render_model_card(config, results, plot_file=plot_file, **card_kwargs)
    card.save(os.path.join(directory, CARD_NAME))
    return card


__all__ = [
    "PIPELINE_TASK",
    "LIBRARY_NAME",
    "CARD_NAME",
    "PLOT_NAME",
    "PAPER_CITATION",
    "card_template_path",
    "hub_pipeline_tag",
    "usage_snippet",
    "card_context",
    "render_model_card",
    "write_model_card",
]
