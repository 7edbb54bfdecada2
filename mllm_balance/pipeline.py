"""`BalancedClassificationPipeline`: raw multimodal samples -> frozen backbone -> balanced adapters -> label scores.

Registered as the `transformers` pipeline task `"multimodal-balanced-classification"` when this module is imported
(importing `mllm_balance` does it), so that

    pipeline("multimodal-balanced-classification", model=<folder or Hub id>)

loads the adapters with `AutoModel` and the backbone recorded in their config.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from transformers import AutoModel, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration import INFERENCE_MODES
from .contributions import modality_contributions
from .model_card import PIPELINE_TASK
from .pipeline_inputs import Sample, parse_sample, type_name
from .reference import check_backbone_compatibility, load_backbone_for

TASK = PIPELINE_TASK


class BalancedClassificationPipeline(Pipeline):
    """Classify raw multimodal samples with a [`BalancedModel`] on top of its frozen backbone.

    Call it with one sample (a dict with any non-empty subset of the trained modalities: text as `str`; image as a
    local path, PIL image or array; audio as a local path or `(waveform, sampling_rate)`) or a list of samples.

    Args:
        model ([`BalancedModel`]): the adapters (loaded by `pipeline(...)` from a folder or Hub id).
        backbone (`Backbone`, `str` or `dict`, *optional*): the frozen backbone, or a spec for the backbone registry
            (e.g. `"qwen2.5-omni:Qwen/Qwen2.5-Omni-7B"`). Defaults to the backbone recorded in `model.config`
            (see `mllm_balance.reference.backbone_spec`).
        backbone_kwargs (`dict`, *optional*): loading options for the registry (`dtype`, `quantization`, ...).
        allow_backbone_mismatch (`bool`, *optional*, defaults to `False`): use a backbone whose id, revision or
            feature sizes differ from the recorded ones (with a warning) instead of refusing it.
        top_k (`int`, *optional*): number of labels returned per sample (all by default), best first.
        return_modality_scores (`bool`, *optional*, defaults to `False`): also return the scores of each present
            modality alone (the chain over that modality only); the result of a sample is then
            `{"scores": [...], "modality_scores": {modality: [...]}}`.
        return_contributions (`bool`, *optional*, defaults to `False`): also return the Shapley value of every
            present modality to the predicted label's score (`"contributions": {modality: phi}`) and the value of
            the empty coalition (`"base_score"`: the training label prior of that label recorded in the config, or
            `1 / num_labels`), so that `base_score + sum(contributions.values())` is the predicted label's score. A
            coalition's value is the predicted label's score from the prediction on its modalities alone (the same
            inference mode); the backbone runs once, only the classifier runs per coalition. Exact up to
            `mllm_balance.contributions.EXACT_MAX_MODALITIES` present modalities, estimated from seeded orders
            beyond.
        inference_mode (`str`, *optional*): `"hybrid"` (average over every order of the present modalities;
            `config.inference_mode`, hybrid unless saved otherwise, is the default), `"train_order"` or `"entropy"`.
        batch_size (`int`, *optional*, defaults to 1): samples encoded and classified together; results do not
            depend on it.

    Returns:
        For one sample, a list of `{"label": str, "score": float}` sorted by score; for a list, one such result per
        sample. With `return_modality_scores` or `return_contributions`, a sample's result is a dict with `"scores"`
        (that list) and the requested extras.

    Example:

    ```python
    >>> classify = pipeline("multimodal-balanced-classification", model="user/adapters")
    >>> out = classify({"text": "what a day", "image": "photo.jpg"}, return_contributions=True)
    >>> out["scores"][0]["score"] == out["base_score"] + sum(out["contributions"].values())  # up to rounding
    ```
    """

    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_processor = False

    def __init__(
        self,
        model,
        *args,
        backbone: Any = None,
        backbone_kwargs: Mapping[str, Any] | None = None,
        allow_backbone_mismatch: bool = False,
        **kwargs,
    ):
        super().__init__(model, *args, **kwargs)
        self.model.eval()
        config = self.model.config
        if backbone is None or isinstance(backbone, (str, os.PathLike, Mapping)):
            spec = os.fspath(backbone) if isinstance(backbone, os.PathLike) else backbone
            backbone = load_backbone_for(config, name_or_path=spec, **dict(backbone_kwargs or {}))
        if not callable(getattr(backbone, "encode", None)):
            raise ValueError(f"backbone must have an encode(batch) method, got {type_name(backbone)}")
        check_backbone_compatibility(config, backbone, allow_mismatch=allow_backbone_mismatch)
        self.backbone = backbone
        self.labels = [str(label) for label in config.label_names]

    # ---------------------------------------------------------------------------------------------- parameters
    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        return_modality_scores: bool | None = None,
        inference_mode: str | None = None,
        return_contributions: bool | None = None,
        **unknown: Any,
    ):
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)}; this pipeline takes top_k, return_modality_scores, "
                "return_contributions, inference_mode and batch_size"
            )
        forward_params: dict[str, Any] = {}
        postprocess_params: dict[str, Any] = {}
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
                raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
            postprocess_params["top_k"] = int(top_k)
        if return_modality_scores is not None:
            if not isinstance(return_modality_scores, bool):
                raise ValueError(f"return_modality_scores must be a bool, got {return_modality_scores!r}")
            forward_params["return_modality_scores"] = return_modality_scores
            postprocess_params["return_modality_scores"] = return_modality_scores
        if return_contributions is not None:
            if not isinstance(return_contributions, bool):
                raise ValueError(f"return_contributions must be a bool, got {return_contributions!r}")
            forward_params["return_contributions"] = return_contributions
            postprocess_params["return_contributions"] = return_contributions
        if inference_mode is not None:
            if inference_mode not in INFERENCE_MODES:
                raise ValueError(f"inference_mode must be one of {INFERENCE_MODES}, got {inference_mode!r}")
            forward_params["inference_mode"] = inference_mode
        return {}, forward_params, postprocess_params

    # ----------------------------------------------------------------------------------------------- calling
    def __call__(self, inputs: Any, **kwargs: Any):
        """Classify one sample (a dict) or several: a list of dicts (a list of results comes back), or a generator or
        dataset of dicts (results are streamed)."""
        batch_size = kwargs.get("batch_size")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(inputs, Mapping):
            return super().__call__(Sample(None, inputs), **kwargs)
        if isinstance(inputs, (list, tuple)):
            if not inputs:
                self._sanitize_parameters(**{k: v for k, v in kwargs.items() if k not in ("batch_size", "num_workers")})
                return []
            return super().__call__([Sample(i, x) for i, x in enumerate(inputs)], **kwargs)
        unordered_or_atomic = (str, bytes, bytearray, set, frozenset, np.ndarray, torch.Tensor)
        if isinstance(inputs, Iterable) and not isinstance(inputs, unordered_or_atomic):
            # a generator or a dataset of samples: results are streamed
            return super().__call__((Sample(i, x) for i, x in enumerate(inputs)), **kwargs)
        raise ValueError(
            f"expected one sample as a dict {{modality: input}} or a list of such dicts, got {type_name(inputs)}"
        )

    def run_single(self, inputs, preprocess_params, forward_params, postprocess_params):
        return next(self._iterate([inputs], 1, preprocess_params, forward_params, postprocess_params))

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        # Samples are dicts of raw media, batched here (the base class batches only with a tokenizer or feature
        # extractor); preprocessing runs in this process.
        return self._iterate(inputs, batch_size, preprocess_params, forward_params, postprocess_params)

    def _iterate(
        self, inputs: Iterable[Any], batch_size: int, preprocess_params, forward_params, postprocess_params
    ) -> Iterator[Any]:
        chunk: list[dict[str, Any]] = []
        for position, item in enumerate(inputs):
            if not isinstance(item, Sample):
                item = Sample(position, item)
            chunk.append(self.preprocess(item, **preprocess_params))
            if len(chunk) == batch_size:
                yield from self._run_chunk(chunk, forward_params, postprocess_params)
                chunk = []
        if chunk:
            yield from self._run_chunk(chunk, forward_params, postprocess_params)

    def _run_chunk(self, chunk: list[dict[str, Any]], forward_params, postprocess_params) -> Iterator[Any]:
        outputs = self.forward(chunk, **forward_params)
        for row in range(len(chunk)):
            one = {
                "probs": outputs["probs"][row],
                "modality_probs": {
                    m: probs[row] for m, probs in outputs["modality_probs"].items() if m in outputs["present"][row]
                },
            }
            if outputs["contributions"] is not None:
                one["contributions"] = dict(outputs["contributions"].values[row])
                one["base_score"] = float(outputs["contributions"].base[row])
            yield self.postprocess(one, **postprocess_params)

    # ------------------------------------------------------------------------------------------------- steps
    def preprocess(self, item: Any, **params: Any) -> dict[str, Any]:
        sample = item if isinstance(item, Sample) else Sample(None, item)
        preprocess = getattr(self.backbone, "preprocess_one", None)
        inputs = parse_sample(sample.value, self.model.config.modalities, preprocess, sample.index)
        return {"index": sample.index, "inputs": inputs}

    def _forward(
        self,
        model_inputs: list[dict[str, Any]],
        inference_mode: str | None = None,
        return_modality_scores: bool = False,
        return_contributions: bool = False,
    ) -> dict[str, Any]:
        samples = [s["inputs"] for s in model_inputs]
        indices = [s["index"] for s in model_inputs]
        batch = len(samples)
        config = self.model.config
        modalities = [m for m in config.modalities if any(m in s for s in samples)]
        try:
            encoded = self.backbone.encode({m: [s[m] for s in samples if m in s] for m in modalities})
        except ValueError as error:
            raise ValueError(f"samples {indices}: {error}") from error
        features: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor] = {}
        for m in modalities:
            rows = torch.tensor([i for i, s in enumerate(samples) if m in s], device=self.device)
            x = encoded[m].to(device=self.device, dtype=self.model.dtype)  # (b_m, D_m)
            features[m] = x.new_zeros(batch, x.shape[-1]).index_copy(0, rows, x)  # (B, D_m)
            masks[m] = torch.zeros(batch, dtype=torch.bool, device=self.device).index_fill(0, rows, True)  # (B,)
        try:
            logits = self.model(features=features, modality_mask=masks, inference_mode=inference_mode).logits
            probs = logits.float().softmax(-1)  # (B, C)
            contributions = None
            if return_contributions:
                contributions = modality_contributions(
                    self.model, features, masks, inference_mode=inference_mode, probs=probs
                )
            modality_probs = {}
            if return_modality_scores:
                single = self.model.subset_logits(features, [[m] for m in modalities], masks)
                modality_probs = {m: single[frozenset([m])].float().softmax(-1) for m in modalities}  # (B, C) each
        except ValueError as error:
            raise ValueError(f"samples {indices}: {error}") from error
        return {
            "probs": probs,  # (B, C)
            "modality_probs": modality_probs,
            "contributions": contributions,
            "present": [list(s) for s in samples],
        }

    def postprocess(
        self,
        model_outputs: dict[str, Any],
        top_k: int | None = None,
        return_modality_scores: bool = False,
        return_contributions: bool = False,
    ):
        scores = self._ranked(model_outputs["probs"], top_k)
        if not (return_modality_scores or return_contributions):
            return scores
        result: dict[str, Any] = {"scores": scores}
        if return_modality_scores:
            result["modality_scores"] = {m: self._ranked(p, top_k) for m, p in model_outputs["modality_probs"].items()}
        if return_contributions:
            result["contributions"] = model_outputs["contributions"]
            result["base_score"] = model_outputs["base_score"]
        return result

    def _ranked(self, probs: torch.Tensor, top_k: int | None) -> list[dict[str, Any]]:
        values = probs.tolist()
        order = sorted(range(len(values)), key=lambda i: -values[i])
        if top_k is not None:
            order = order[:top_k]
        return [{"label": self.labels[i], "score": values[i]} for i in order]


def register_pipeline() -> None:
    """Register `BalancedClassificationPipeline` as the task `"multimodal-balanced-classification"` (idempotent)."""
    current = PIPELINE_REGISTRY.supported_tasks.get(TASK)
    if current is not None and current.get("impl") is BalancedClassificationPipeline:
        return
    PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=BalancedClassificationPipeline, pt_model=AutoModel, type="multimodal"
    )


register_pipeline()

__all__ = ["BalancedClassificationPipeline", "register_pipeline", "TASK"]
