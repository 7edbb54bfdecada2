"""Backbones by name: `load_backbone("qwen2.5-omni:Qwen/Qwen2.5-Omni-7B")`, `load_backbone({"type": ...})`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .base import Backbone
from .composite import CompositeBackbone
from .ola import OlaBackbone
from .omni import QwenOmniBackbone

BackboneFactory = Callable[..., Backbone]
_BACKBONES: dict[str, BackboneFactory] = {}


def register_backbone(
    name: str, factory: BackboneFactory | None = None, *, exist_ok: bool = False
) -> BackboneFactory | Callable[[BackboneFactory], BackboneFactory]:
    """Registers a backbone type; usable as a decorator.

    The factory is called as `factory(target, **options)`, where `target` is the text after `"name:"` in a string
    spec, or the `name_or_path` (else `encoders`) entry of a config dict.

    Args:
        name (`str`): The type name, e.g. `"qwen2.5-omni"`.
        factory (`Callable`, *optional*): The factory; omit it to use `register_backbone` as a decorator.
        exist_ok (`bool`, *optional*, defaults to `False`): Allow replacing a registered name.
    """

    def register(function: BackboneFactory) -> BackboneFactory:
        if name in _BACKBONES and not exist_ok and _BACKBONES[name] is not function:
            raise ValueError(f"a backbone type named {name!r} is already registered")
        _BACKBONES[name] = function
        return function

    return register(factory) if factory is not None else register


def registered_backbones() -> list[str]:
    """The registered backbone type names."""
    return sorted(_BACKBONES)


def load_backbone(spec: str | Mapping[str, Any] | Backbone, **options: Any) -> Backbone:
    """Builds a frozen backbone from a spec.

    Args:
        spec: A `Backbone` (returned as is); a string `"<type>:<target>"` such as
            `"qwen2.5-omni:Qwen/Qwen2.5-Omni-7B"`, `"qwen2.5-omni:/models/omni"` or
            `"composite:text=minilm,image=efficientnet-lite0,audio=/models/whisper-tiny.en-3s"`; or a dict with a
            `"type"` key and the factory's options, e.g.
            `{"type": "qwen2.5-omni", "name_or_path": "Qwen/Qwen2.5-Omni-7B", "quantization": "8bit", "layer": -1}`.
        options: Extra options for the factory (`dtype`, `quantization`, `device_map`, `revision`, ...); a dict
            spec's own entries take precedence.

    Returns:
        `Backbone`: frozen and in eval mode.
    """
    if isinstance(spec, Backbone):
        return spec
    if isinstance(spec, str):
        kind, sep, target = spec.partition(":")
        if not sep or not target:
            raise ValueError(f"backbone spec {spec!r} is not '<type>:<target>'; types: {registered_backbones()}")
    elif isinstance(spec, Mapping):
        entries = dict(spec)
        if "type" not in entries:
            raise ValueError(f"a backbone config needs a 'type' (one of {registered_backbones()}), got {entries}")
        kind = entries.pop("type")
        target = entries.pop("name_or_path", None) or entries.pop("encoders", None)
        options = {**options, **entries}
    else:
        raise ValueError(f"unsupported backbone spec {spec!r}")
    if kind not in _BACKBONES:
        raise ValueError(f"unknown backbone type {kind!r}; registered: {registered_backbones()}")
    return _BACKBONES[kind](target, **options)


def parse_composite_target(target: str | Mapping[str, Any]) -> dict[str, Any]:
    """`"text=minilm,image=efficientnet-lite0"` -> `{"text": "minilm", "image": "efficientnet-lite0"}`."""
    if isinstance(target, Mapping):
        return dict(target)
    encoders = {}
    for part in str(target).split(","):
        modality, sep, name = part.partition("=")
        if not sep or not modality.strip() or not name.strip():
            raise ValueError(f"composite spec part {part!r} is not '<modality>=<encoder>'")
        encoders[modality.strip()] = name.strip()
    return encoders


def _qwen_omni(target: str, **options: Any) -> Backbone:
    return QwenOmniBackbone.from_pretrained(target, **options)


def _ola(target: str, **options: Any) -> Backbone:
    return OlaBackbone.from_pretrained(target, **options)


def _composite(target: str | Mapping[str, Any], **options: Any) -> Backbone:
    return CompositeBackbone.from_config(parse_composite_target(target), **options)


for _name in ("qwen2.5-omni", "qwen3-omni", "qwen-omni"):
    register_backbone(_name, _qwen_omni, exist_ok=True)
register_backbone("ola", _ola, exist_ok=True)
register_backbone("composite", _composite, exist_ok=True)
