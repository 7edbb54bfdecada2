"""The Qwen2.5-Omni / Qwen3-Omni thinker as a backbone (Ola: `mllm_balance.backbones.ola`).

Each modality runs through the model on its own (Ola-style per-modality features): a sample's text, image,
audio or video becomes its own token sequence, the language model runs over it, and the chosen hidden layer is
mean-pooled over that modality's token positions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import AutoConfig
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

from .base import Backbone
from .inputs import load_audio, load_image, load_text, load_video
from .loading import dtype_name, hub_revision, load_frozen, quantization_identity
from .omni_processors import (
    FEATURE_EXTRACTOR_KEYS,
    IMAGE_PROCESSOR_KEYS,
    load_processors,
    processor_settings,
    thinker_class,
)


class QwenOmniBackbone(Backbone):
    """Per-modality features from a Qwen2.5-Omni (or Qwen3-Omni) thinker.

    For each sample and modality the language model sees one sequence:

    - text: the text's tokens (no chat template), pooled over all of them;
    - image: `<|vision_start|> <|IMAGE|> x N <|vision_end|>`, pooled over the N image tokens;
    - audio: `<|audio_start|> <|AUDIO|> x N <|audio_end|>`, pooled over the N audio tokens (audio longer than the
      feature extractor's window, 30 s for the released checkpoints, is cut to that window);
    - video: `<|vision_start|> <|VIDEO|> x N <|vision_end|>` built from frames sampled at `video_fps`, pooled
      over the N video tokens.

    The chosen hidden layer indexes `hidden_states` as transformers returns it: 0 is the input embeddings (for a
    media modality that is the tower's output, placed in the sequence), `num_hidden_layers` or `-1` the final
    (normalised) output. Sequences of a batch are right-padded, so a sample's features do not depend on the
    other samples of its batch (the decoder is causal).

    Args:
        model: A `Qwen2_5OmniThinkerForConditionalGeneration` / `Qwen3OmniMoeThinkerForConditionalGeneration`,
            or its inner `...ThinkerModel`; only the inner model (towers + language model) is kept.
        tokenizer (*optional*): Tokenizer for text; without it the backbone does not serve text.
        image_processor (*optional*): A Qwen2-VL image processor (patches + `image_grid_thw`); without it the
            backbone serves neither image nor video. Video frames are resized, normalised and patchified here
            with the image processor's settings (no torchvision needed).
        feature_extractor (*optional*): A `WhisperFeatureExtractor`; without it the backbone does not serve audio.
        name_or_path (`str`, *optional*): Hub id or folder, recorded in the identity.
        revision (`str`, *optional*): Weights revision, recorded in the identity.
        layer (`int`, *optional*, defaults to -1): Hidden layer to pool (see above).
        modalities (`tuple[str, ...]`, *optional*): Restrict the served modalities.
        quantization (`str`, *optional*): How the weights were loaded (`None`, `"8bit"`, `"4bit"`), for the identity.
        video_fps (`float`, *optional*, defaults to 2.0): Frame rate of the frames given for a video.
        max_frames (`int`, *optional*, defaults to 32): At most this many frames per video (evenly spread).
        max_text_tokens (`int`, *optional*, defaults to 512): Longer texts are truncated.
        resample_audio (`bool`, *optional*, defaults to `True`): Resample audio at another rate (else refuse it).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        tokenizer: Any = None,
        image_processor: Any = None,
        feature_extractor: Any = None,
        name_or_path: str | None = None,
        revision: str | None = None,
        layer: int = -1,
        modalities: tuple[str, ...] | None = None,
        quantization: str | None = None,
        video_fps: float = 2.0,
        max_frames: int = 32,
        max_text_tokens: int = 512,
        resample_audio: bool = True,
    ):
        super().__init__()
        thinker = model.model if hasattr(model, "model") and hasattr(model.model, "audio_tower") else model
        if not (hasattr(thinker, "audio_tower") and hasattr(thinker, "visual") and hasattr(thinker, "language_model")):
            raise ValueError(
                f"{type(model).__name__} is not a Qwen-Omni thinker (no audio_tower/visual/language_model)"
            )
        self.thinker = thinker
        self.config = thinker.config
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.feature_extractor = feature_extractor
        self.name_or_path = name_or_path or getattr(self.config, "_name_or_path", None) or type(model).__name__
        self.revision = revision
        num_layers = self.config.get_text_config().num_hidden_layers
        if not -(num_layers + 1) <= layer <= num_layers:
            raise ValueError(f"layer must be in [-{num_layers + 1}, {num_layers}], got {layer}")
        self.layer = layer if layer >= 0 else num_layers + 1 + layer
        self.quantization = quantization
        self.video_fps = float(video_fps)
        self.max_frames = int(max_frames)
        self.max_text_tokens = int(max_text_tokens)
        self.resample_audio = bool(resample_audio)
        available = {
            "text": tokenizer is not None,
            "image": image_processor is not None,
            "audio": feature_extractor is not None,
            "video": image_processor is not None,
        }
        wanted = tuple(modalities) if modalities is not None else tuple(m for m, ok in available.items() if ok)
        for modality in wanted:
            if modality not in available:
                raise ValueError(f"unknown modality {modality!r}; a Qwen-Omni thinker serves {list(available)}")
            if not available[modality]:
                raise ValueError(f"modality {modality!r} needs its processor, which was not given")
        self.modalities = wanted
        hidden = self.config.get_text_config().hidden_size
        self.feature_sizes = {m: hidden for m in wanted}
        self.freeze()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        revision: str | None = None,
        dtype: str | torch.dtype | None = None,
        quantization: str | None = None,
        device_map: Any = "per_process",
        trust_remote_code: bool = False,
        **kwargs: Any,
    ) -> QwenOmniBackbone:
        """Loads the thinker (from a thinker or a full Omni checkpoint) and its processors.

        Args:
            name_or_path (`str`): Hub id (e.g. `"Qwen/Qwen2.5-Omni-7B"`) or local folder.
            revision, dtype, quantization, device_map, trust_remote_code: See `load_frozen`.
            kwargs: Passed to the constructor (`layer`, `modalities`, `video_fps`, ...).
        """
        config = AutoConfig.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
        model_class = thinker_class(config.model_type)
        model = load_frozen(
            model_class,
            name_or_path,
            revision=revision,
            dtype=dtype,
            quantization=quantization,
            device_map=device_map,
            trust_remote_code=trust_remote_code,
        )
        processors = load_processors(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
        return cls(
            model,
            **processors,
            name_or_path=name_or_path,
            revision=hub_revision(model, name_or_path, revision),
            quantization=quantization,
            **kwargs,
        )

    def identity(self) -> dict[str, Any]:
        preprocessing: dict[str, Any] = {"text": {"template": "raw", "max_tokens": self.max_text_tokens}}
        if self.image_processor is not None:
            preprocessing["image"] = processor_settings(self.image_processor, IMAGE_PROCESSOR_KEYS)
            preprocessing["video"] = {"fps": self.video_fps, "max_frames": self.max_frames, "frames": "image"}
        if self.feature_extractor is not None:
            preprocessing["audio"] = {
                **processor_settings(self.feature_extractor, FEATURE_EXTRACTOR_KEYS),
                "resample": "resample_poly" if self.resample_audio else "refuse",
            }
        return {
            "type": "qwen-omni",
            "model_type": self.config.model_type,
            "id": str(self.name_or_path),
            "revision": self.revision,
            "layer": self.layer,
            "pooling": "mean over the modality's token positions",
            "preprocessing": {m: preprocessing[m] for m in self.modalities},
            "quantization": quantization_identity(self.quantization),
            "dtype": dtype_name(self.thinker.language_model.embed_tokens.weight.dtype),
            "modalities": list(self.modalities),
        }

    # ----------------------------------------------------------------------------------------- preprocessing
    def preprocess_one(self, modality: str, value: Any) -> Any:
        self.check_modality(modality)
        if modality == "text":
            return load_text(value)
        if modality == "image":
            return load_image(value)
        if modality == "audio":
            return load_audio(value, self.feature_extractor.sampling_rate, resample=self.resample_audio)
        return load_video(value, max_frames=self.max_frames)

    # ---------------------------------------------------------------------------------------------- encoding
    def encode_modality(self, modality: str, items: list[Any]) -> torch.Tensor:
        if modality == "text":
            ids = [self._tokenize(text) for text in items]
            sequences = [(row, [True] * len(row)) for row in ids]
            return self._run(sequences, {})
        if modality == "image":
            processed = self.image_processor(images=items, return_tensors="pt")
            counts = (processed["image_grid_thw"].prod(-1) // self._merge_size**2).tolist()
            token = self._token_id("image_token_id")
            inputs = {"pixel_values": processed["pixel_values"], "image_grid_thw": processed["image_grid_thw"]}
            return self._run([self._wrap("vision", token, n) for n in counts], inputs)
        if modality == "audio":
            extracted = self.feature_extractor(
                items,
                sampling_rate=self.feature_extractor.sampling_rate,
                return_attention_mask=True,
                padding="max_length",
                return_tensors="pt",
            )
            mask = extracted["attention_mask"]  # (B, frames)
            counts = self._audio_token_counts(mask.sum(-1)).tolist()
            token = self._token_id("audio_token_id")
            inputs = {"input_features": extracted["input_features"], "feature_attention_mask": mask}
            return self._run([self._wrap("audio", token, n) for n in counts], inputs)
        pixel_values, grid_thw = self._video_patches(items)
        counts = (grid_thw.prod(-1) // self._merge_size**2).tolist()
        seconds = torch.full((len(items),), self._temporal_patch_size / self.video_fps)
        token = self._token_id("video_token_id")
        inputs = {"pixel_values_videos": pixel_values, "video_grid_thw": grid_thw, "video_second_per_grid": seconds}
        return self._run([self._wrap("vision", token, n) for n in counts], inputs)

    def _run(self, sequences: list[tuple[list[int], list[bool]]], inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Right-pads the sequences, runs the thinker and mean-pools the chosen layer over the pooled positions."""
        device = self.device
        length = max(len(ids) for ids, _ in sequences)
        input_ids = torch.zeros(len(sequences), length, dtype=torch.long)
        attention_mask = torch.zeros(len(sequences), length, dtype=torch.long)
        pool_mask = torch.zeros(len(sequences), length, dtype=torch.bool)
        for row, (ids, pooled) in enumerate(sequences):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
            pool_mask[row, : len(ids)] = torch.tensor(pooled)
        tower_dtypes = {
            "input_features": self.thinker.audio_tower.dtype,
            "pixel_values": self.thinker.visual.dtype,
            "pixel_values_videos": self.thinker.visual.dtype,
        }
        model_inputs = {key: value.to(device, tower_dtypes.get(key)) for key, value in inputs.items()}
        last = self.layer == self.config.get_text_config().num_hidden_layers
        self.thinker.rope_deltas = None
        outputs = self.thinker(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            use_cache=False,
            output_hidden_states=not last,
            **model_inputs,
        )
        hidden = outputs.last_hidden_state if last else outputs.hidden_states[self.layer]  # (B, L, D)
        weights = pool_mask.to(hidden.device, torch.float32).unsqueeze(-1)  # (B, L, 1)
        return (hidden.float() * weights).sum(1) / weights.sum(1)  # (B, D)

    def _tokenize(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False, truncation=True, max_length=self.max_text_tokens)[
            "input_ids"
        ]
        if not ids:
            raise ValueError(f"the tokenizer produced no tokens for text {text[:40]!r}")
        return list(ids)

    def _wrap(self, kind: str, token: int, count: int) -> tuple[list[int], list[bool]]:
        start, end = self._token_id(f"{kind}_start_token_id"), self._token_id(f"{kind}_end_token_id")
        return [start] + [token] * count + [end], [False] + [True] * count + [False]

    def _token_id(self, name: str) -> int:
        value = getattr(self.config, name, None)
        if value is None and self.tokenizer is not None:
            token_name = {
                "vision_end_token_id": "vision_eos_token",
                "audio_end_token_id": "audio_eos_token",
                "vision_start_token_id": "vision_bos_token",
                "audio_start_token_id": "audio_bos_token",
            }.get(name)
            token = getattr(self.tokenizer, token_name, None) if token_name else None
            value = self.tokenizer.convert_tokens_to_ids(token) if token else None
        if value is None:
            raise ValueError(f"the thinker config has no {name} and the tokenizer does not name that token")
        return int(value)

    @property
    def _merge_size(self) -> int:
        return int(self.config.vision_config.spatial_merge_size)

    @property
    def _temporal_patch_size(self) -> int:
        return int(self.config.vision_config.temporal_patch_size)

    def _audio_token_counts(self, feature_lengths: torch.Tensor) -> torch.Tensor:
        tower = self.thinker.audio_tower
        if hasattr(tower, "_get_feat_extract_output_lengths"):
            lengths = tower._get_feat_extract_output_lengths(feature_lengths)
            return lengths[1] if isinstance(lengths, tuple) else lengths
        from transformers.models.qwen3_omni_moe import modeling_qwen3_omni_moe

        return modeling_qwen3_omni_moe._get_feat_extract_output_lengths(
            feature_lengths, self.config.audio_config.n_window
        )

    def _video_patches(self, videos: list[list[Image.Image]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames -> flat patches `(sum_i T_i*H_i*W_i, C*t*p*p)` and `video_grid_thw` `(B, 3)`, laid out as the
        Qwen2-VL video processor lays them out (frames of a clip share one size; the last frame repeats to fill
        the last temporal patch)."""
        processor = self.image_processor
        patch, merge, temporal = int(processor.patch_size), self._merge_size, self._temporal_patch_size
        size = dict(processor.size)
        min_pixels, max_pixels = size["shortest_edge"], size["longest_edge"]
        mean = np.asarray(processor.image_mean, dtype=np.float32)[:, None, None]
        std = np.asarray(processor.image_std, dtype=np.float32)[:, None, None]
        resample = Image.Resampling(int(processor.resample))
        patches, grids = [], []
        for frames in videos:
            width, height = frames[0].size
            new_h, new_w = smart_resize(
                height, width, factor=patch * merge, min_pixels=min_pixels, max_pixels=max_pixels
            )
            clip = np.stack(
                [np.asarray(frame.resize((new_w, new_h), resample=resample), dtype=np.float32) for frame in frames]
            )  # (T, H, W, C)
            clip = (clip.transpose(0, 3, 1, 2) * float(processor.rescale_factor) - mean) / std  # (T, C, H, W)
            if pad := -len(clip) % temporal:
                clip = np.concatenate([clip, np.repeat(clip[-1:], pad, axis=0)])
            grid_t, grid_h, grid_w = len(clip) // temporal, new_h // patch, new_w // patch
            channels = clip.shape[1]
            blocks = clip.reshape(
                grid_t, temporal, channels, grid_h // merge, merge, patch, grid_w // merge, merge, patch
            ).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
            patches.append(blocks.reshape(grid_t * grid_h * grid_w, channels * temporal * patch * patch))
            grids.append([grid_t, grid_h, grid_w])
        return torch.from_numpy(np.concatenate(patches)), torch.tensor(grids, dtype=torch.long)


__all__ = ["QwenOmniBackbone"]
