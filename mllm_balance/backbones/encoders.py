"""One frozen encoder per modality, each with a documented pooling, for `CompositeBackbone`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoTokenizer

from .base import module_weights_hash
from .encoder_base import ModalityEncoder, hf_identity, jsonable, load_hf_encoder, masked_mean
from .inputs import load_audio, load_image, load_text, load_video
from .loading import dtype_name

# Vision models trained so that their pooled output is the image embedding.
_POOLER_VISION_TYPES = ("clip", "clip_vision_model", "siglip", "siglip_vision_model", "siglip2", "siglip2_vision_model")


class TextEncoder(ModalityEncoder):
    """A transformers text encoder (BERT, MiniLM, ...) with a pooled last hidden layer.

    Args:
        model: A transformers model returning `last_hidden_state` (e.g. from `AutoModel`).
        tokenizer: Its tokenizer.
        pooling (`str`, *optional*, defaults to `"mean"`): `"mean"` over non-padding tokens (attention mask;
            sentence-transformers' mean pooling), `"cls"` (first token), `"last"` (last non-padding token, for
            decoder-only models) or `"pooler"` (the model's `pooler_output`).
        max_length (`int`, *optional*, defaults to 256): Longer texts are truncated.
        name_or_path, revision, quantization: Recorded in the identity.
    """

    kind = "text"
    POOLINGS = ("mean", "cls", "last", "pooler")

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        pooling: str = "mean",
        max_length: int = 256,
        name_or_path: str | None = None,
        revision: str | None = None,
        quantization: str | None = None,
    ):
        super().__init__()
        if pooling not in self.POOLINGS:
            raise ValueError(f"text pooling must be one of {self.POOLINGS}, got {pooling!r}")
        self.model, self.tokenizer = model, tokenizer
        self.pooling, self.max_length = pooling, int(max_length)
        self.name_or_path = name_or_path or model.config._name_or_path
        self.revision, self.quantization = revision, quantization
        self.feature_size = int(model.config.hidden_size)

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, revision: str | None = None, **kwargs: Any) -> TextEncoder:
        """`AutoModel` + `AutoTokenizer`; loading options (`dtype`, `quantization`, `device_map`,
        `trust_remote_code`) go to `load_frozen`, the rest to the constructor."""
        return load_hf_encoder(cls, AutoTokenizer, name_or_path, revision, kwargs)

    def preprocess_one(self, value: Any) -> str:
        return load_text(value)

    def encode(self, items: list[str]) -> torch.Tensor:
        inputs = self.tokenizer(
            items, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        outputs = self.model(**inputs)
        hidden, mask = outputs.last_hidden_state, inputs["attention_mask"]  # (B, L, D), (B, L)
        if self.pooling == "mean":
            return masked_mean(hidden, mask)
        if self.pooling == "cls":
            return hidden[:, 0].float()
        if self.pooling == "pooler":
            return outputs.pooler_output.float()
        last = mask.sum(1) - 1 if self.tokenizer.padding_side == "right" else torch.full_like(mask[:, 0], -1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()

    def identity(self) -> dict[str, Any]:
        return hf_identity(self, "text", {"max_length": self.max_length, "tokenizer": type(self.tokenizer).__name__})


class VisionEncoder(ModalityEncoder):
    """A transformers vision tower (CLIP, SigLIP, ViT, DINOv2, ConvNeXt, ResNet, ...) with a pooled output.

    A full dual encoder (`CLIPModel`, `SiglipModel`) is reduced to its `vision_model`.

    Args:
        model: The vision model.
        image_processor: Its image processor (resizing, cropping, normalisation).
        pooling (`str`, *optional*, defaults to `"auto"`): `"pooler"` (`pooler_output`: CLIP's normalised CLS
            token, SigLIP's attention-pooling head), `"mean"` over all output tokens (or spatial positions of a
            convolutional map), or `"cls"` (first token). `"auto"` picks `"pooler"` for CLIP/SigLIP and `"mean"`
            otherwise.
        name_or_path, revision, quantization: Recorded in the identity.
    """

    kind = "image"
    POOLINGS = ("auto", "pooler", "mean", "cls")

    def __init__(
        self,
        model: nn.Module,
        image_processor: Any,
        *,
        pooling: str = "auto",
        name_or_path: str | None = None,
        revision: str | None = None,
        quantization: str | None = None,
    ):
        super().__init__()
        if pooling not in self.POOLINGS:
            raise ValueError(f"image pooling must be one of {self.POOLINGS}, got {pooling!r}")
        self.name_or_path = name_or_path or model.config._name_or_path
        if hasattr(model, "vision_model") and not hasattr(model, "embeddings"):
            model = model.vision_model
        self.model, self.image_processor = model, image_processor
        if pooling == "auto":
            pooling = "pooler" if model.config.model_type in _POOLER_VISION_TYPES else "mean"
        self.pooling = pooling
        self.revision, self.quantization = revision, quantization
        config = model.config
        size = getattr(config, "hidden_size", None) or (getattr(config, "hidden_sizes", None) or [None])[-1]
        if size is None:
            raise ValueError(f"cannot tell the feature size of {type(model).__name__} from its config")
        self.feature_size = int(size)

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, revision: str | None = None, **kwargs: Any) -> VisionEncoder:
        """`AutoModel` + `AutoImageProcessor`; options as in `TextEncoder.from_pretrained`."""
        return load_hf_encoder(cls, AutoImageProcessor, name_or_path, revision, kwargs)

    def preprocess_one(self, value: Any) -> Image.Image:
        return load_image(value)

    def encode(self, items: list[Image.Image]) -> torch.Tensor:
        pixel_values = self.image_processor(images=items, return_tensors="pt")["pixel_values"]
        dtype = next(self.model.parameters()).dtype
        outputs = self.model(pixel_values=pixel_values.to(self.device, dtype if dtype.is_floating_point else None))
        if self.pooling == "pooler":
            return outputs.pooler_output.flatten(1).float()  # (B, D)
        hidden = outputs.last_hidden_state
        if hidden.ndim == 4:  # convolutional map (B, C, H, W)
            return hidden.float().mean(dim=(2, 3)) if self.pooling == "mean" else hidden[:, :, 0, 0].float()
        return hidden.float().mean(1) if self.pooling == "mean" else hidden[:, 0].float()  # (B, D)

    def identity(self) -> dict[str, Any]:
        settings = {k: v for k, v in self.image_processor.to_dict().items() if not k.startswith("_")}
        return hf_identity(self, "image", jsonable(settings))


class AudioEncoder(ModalityEncoder):
    """A transformers speech encoder: Whisper's encoder, or a wav2vec2-like model (wav2vec2, HuBERT, WavLM).

    Pooling is a mean over the output frames that cover the audio: for Whisper, whose encoder always reads a
    full window (30 s, or what the feature extractor's `chunk_length` and the model's `max_source_positions`
    say), padding frames are left out and audio beyond the window is cut; for wav2vec2-like models, frames past
    each clip's length are left out. `pooling="mean_all"` averages every output frame instead.

    Args:
        model: `WhisperModel` / `WhisperForConditionalGeneration` / `WhisperEncoder`, or a wav2vec2-like model.
        feature_extractor: Its feature extractor (gives the sampling rate).
        pooling (`str`, *optional*, defaults to `"mean"`): `"mean"` or `"mean_all"`.
        resample (`bool`, *optional*, defaults to `True`): Resample audio at another rate (else refuse it).
        name_or_path, revision, quantization: Recorded in the identity.
    """

    kind = "audio"
    POOLINGS = ("mean", "mean_all")

    def __init__(
        self,
        model: nn.Module,
        feature_extractor: Any,
        *,
        pooling: str = "mean",
        resample: bool = True,
        name_or_path: str | None = None,
        revision: str | None = None,
        quantization: str | None = None,
    ):
        super().__init__()
        if pooling not in self.POOLINGS:
            raise ValueError(f"audio pooling must be one of {self.POOLINGS}, got {pooling!r}")
        self.name_or_path = name_or_path or model.config._name_or_path
        self.is_whisper = model.config.model_type == "whisper"
        if self.is_whisper and hasattr(model, "get_encoder"):
            model = model.get_encoder()
        self.model, self.feature_extractor = model, feature_extractor
        self.pooling, self.resample = pooling, bool(resample)
        self.revision, self.quantization = revision, quantization
        self.sampling_rate = int(feature_extractor.sampling_rate)
        if self.is_whisper:
            expected = 2 * model.config.max_source_positions
            if feature_extractor.nb_max_frames != expected:
                raise ValueError(
                    f"the feature extractor makes {feature_extractor.nb_max_frames} mel frames but this Whisper "
                    f"encoder reads {expected} (max_source_positions={model.config.max_source_positions}); set the "
                    f"feature extractor's chunk_length to {expected // 100} s"
                )
        self.feature_size = int(model.config.hidden_size if not self.is_whisper else model.config.d_model)

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, revision: str | None = None, **kwargs: Any) -> AudioEncoder:
        """`AutoModel` + `AutoFeatureExtractor` (e.g. a folder written by `backbones.whisper_ct2.convert`);
        options as in `TextEncoder.from_pretrained`."""
        return load_hf_encoder(cls, AutoFeatureExtractor, name_or_path, revision, kwargs)

    def preprocess_one(self, value: Any) -> np.ndarray:
        return load_audio(value, self.sampling_rate, resample=self.resample)

    def encode(self, items: list[np.ndarray]) -> torch.Tensor:
        dtype = next(self.model.parameters()).dtype
        dtype = dtype if dtype.is_floating_point else torch.float16
        if self.is_whisper:
            extracted = self.feature_extractor(
                items,
                sampling_rate=self.sampling_rate,
                padding="max_length",
                return_attention_mask=True,
                return_tensors="pt",
            )
            hidden = self.model(extracted["input_features"].to(self.device, dtype)).last_hidden_state  # (B, T, D)
            frames = extracted["attention_mask"][:, ::2][:, : hidden.shape[1]]  # (B, T): frames covering audio
        else:
            extracted = self.feature_extractor(
                items, sampling_rate=self.sampling_rate, padding=True, return_attention_mask=True, return_tensors="pt"
            )
            mask = extracted["attention_mask"]
            use_mask = getattr(self.feature_extractor, "return_attention_mask", True)
            hidden = self.model(
                extracted["input_values"].to(self.device, dtype),
                attention_mask=mask.to(self.device) if use_mask else None,
            ).last_hidden_state  # (B, T, D)
            lengths = self.model._get_feat_extract_output_lengths(mask.sum(-1))
            frames = torch.arange(hidden.shape[1])[None, :] < lengths[:, None]  # (B, T)
        if self.pooling == "mean_all":
            frames = torch.ones(hidden.shape[:2], dtype=torch.bool)
        return masked_mean(hidden, frames)

    def identity(self) -> dict[str, Any]:
        extractor = self.feature_extractor
        preprocessing = {
            key: getattr(extractor, key)
            for key in ("sampling_rate", "feature_size", "chunk_length", "hop_length", "n_fft", "do_normalize")
            if getattr(extractor, key, None) is not None
        }
        preprocessing["resample"] = "resample_poly" if self.resample else "refuse"
        return hf_identity(self, "audio", preprocessing)


class TorchImageEncoder(ModalityEncoder):
    """Any plain `torch.nn.Module` image network, with a fixed input pipeline and global average pooling.

    Preprocessing: RGB, resized (bilinear, aspect ratio not kept) to `image_size` x `image_size`, scaled to
    [0, 1], then `(x - mean) / std` per channel. Pooling: `feature_fn(module, x)` gives either a vector
    `(B, D)` (used as is) or a feature map `(B, D, H, W)`, averaged over its spatial positions.

    Args:
        module (`nn.Module`): The network.
        feature_size (`int`): Size `D` of the pooled vector.
        name (`str`): Recorded in the identity (with a hash of the module's weights as its revision).
        image_size (`int`, *optional*, defaults to 224): Side of the square input.
        mean, std (`Sequence[float]`, *optional*): Per-channel normalisation (defaults: ImageNet).
        feature_fn (`Callable`, *optional*): `(module, x) -> features`; defaults to `module(x)`.
    """

    kind = "image"

    def __init__(
        self,
        module: nn.Module,
        *,
        feature_size: int,
        name: str,
        image_size: int = 224,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        feature_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
    ):
        super().__init__()
        self.module = module.eval().requires_grad_(False)
        self.feature_size, self.name, self.image_size = int(feature_size), name, int(image_size)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.feature_fn = feature_fn or (lambda network, x: network(x))
        self._weights_hash = module_weights_hash(module)

    def preprocess_one(self, value: Any) -> Image.Image:
        return load_image(value)

    def pixel_tensor(self, items: list[Image.Image]) -> torch.Tensor:
        """Resized and normalised images, `(B, 3, image_size, image_size)` float32."""
        size = (self.image_size, self.image_size)
        arrays = [np.asarray(image.resize(size, resample=Image.Resampling.BILINEAR)) for image in items]
        pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0  # (B, 3, H, W)
        return (pixels.to(self.mean.device) - self.mean) / self.std

    def encode(self, items: list[Image.Image]) -> torch.Tensor:
        features = self.feature_fn(self.module, self.pixel_tensor(items))
        if features.ndim == 4:  # (B, D, H, W) -> (B, D)
            features = features.mean(dim=(2, 3))
        return features.flatten(1).float()

    def identity(self) -> dict[str, Any]:
        return {
            "type": "torch-module",
            "id": self.name,
            "revision": self._weights_hash,
            "layer": "feature_fn",
            "pooling": "global average over spatial positions",
            "preprocessing": {
                "image_size": self.image_size,
                "resize": "bilinear, square",
                "mean": [round(v, 6) for v in self.mean.flatten().tolist()],
                "std": [round(v, 6) for v in self.std.flatten().tolist()],
            },
            "quantization": None,
            "dtype": dtype_name(next(self.module.parameters()).dtype),
        }


class VideoEncoder(ModalityEncoder):
    """Frame-wise video features: an image encoder on every frame, then the mean over frames.

    Args:
        frame_encoder (`ModalityEncoder`): An image encoder (`VisionEncoder` or `TorchImageEncoder`).
        max_frames (`int`, *optional*, defaults to 16): At most this many frames per clip, evenly spread.
    """

    kind = "video"

    def __init__(self, frame_encoder: ModalityEncoder, *, max_frames: int = 16):
        super().__init__()
        if frame_encoder.kind != "image":
            raise ValueError(f"a video encoder needs an image encoder for its frames, got {frame_encoder.kind!r}")
        self.frame_encoder, self.max_frames = frame_encoder, int(max_frames)
        self.feature_size = frame_encoder.feature_size

    def preprocess_one(self, value: Any) -> list[Image.Image]:
        return load_video(value, max_frames=self.max_frames)

    def encode(self, items: list[list[Image.Image]]) -> torch.Tensor:
        frames = [frame for clip in items for frame in clip]
        per_frame = self.frame_encoder.encode(frames)  # (sum T_i, D)
        return torch.stack([chunk.mean(0) for chunk in per_frame.split([len(clip) for clip in items])])  # (B, D)

    def identity(self) -> dict[str, Any]:
        return {
            "type": "frames",
            "frames": self.frame_encoder.identity(),
            "pooling": "mean over frames",
            "preprocessing": {"max_frames": self.max_frames, "frame_sampling": "evenly spread"},
        }
