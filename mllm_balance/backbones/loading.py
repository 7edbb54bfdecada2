"""Loading frozen transformers models: dtype, 8-bit / 4-bit quantization and one device per process."""

from __future__ import annotations

from typing import Any

import torch
from accelerate import PartialState

from .base import local_files_revision

QUANTIZATION_CHOICES = (None, "8bit", "4bit")


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """Turns `"bfloat16"`, `"float16"`, `"float32"` (or a `torch.dtype`, or `None`) into a `torch.dtype`."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype name such as 'bfloat16', got {dtype!r}")
    return resolved


def dtype_name(dtype: torch.dtype | None) -> str:
    """`torch.bfloat16` -> `"bfloat16"`; `None` -> `"float32"` (what transformers loads by default)."""
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def normalize_quantization(quantization: str | None) -> str | None:
    """Accepts `None`, `"8bit"`/`"int8"`/`8`, `"4bit"`/`"nf4"`/`4`; returns `None`, `"8bit"` or `"4bit"`."""
    if quantization in (None, "none", "", False):
        return None
    aliases = {"8bit": "8bit", "int8": "8bit", "8": "8bit", "4bit": "4bit", "nf4": "4bit", "4": "4bit"}
    key = str(quantization).lower()
    if key not in aliases:
        raise ValueError(f"quantization must be one of None, '8bit' or '4bit', got {quantization!r}")
    return aliases[key]


def quantization_config(quantization: str | None, dtype: torch.dtype | None = None):
    """A `BitsAndBytesConfig` for `"8bit"` (LLM.int8) or `"4bit"` (NF4, compute in `dtype`), or `None`.

    Args:
        quantization (`str`, *optional*): `None`, `"8bit"` or `"4bit"`.
        dtype (`torch.dtype`, *optional*): Compute dtype of 4-bit layers (default float32 on CPU, bfloat16 on
            CUDA).
    """
    quantization = normalize_quantization(quantization)
    if quantization is None:
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = dtype or (torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)


def quantization_identity(quantization: str | None) -> str | None:
    """The quantization as it enters a feature fingerprint (method and its settings)."""
    quantization = normalize_quantization(quantization)
    return {None: None, "8bit": "bnb-int8", "4bit": "bnb-nf4"}[quantization]


def per_process_device_map() -> dict[str, Any]:
    """`{"": device}` placing the whole model on this process's device.

    Under `accelerate launch` on GPUs each rank gets its own GPU (`PartialState().local_process_index`), which is
    how 8-bit / 4-bit models must be placed with data parallelism; elsewhere the process's device (CPU, MPS, ...).
    """
    state = PartialState()
    if state.device.type == "cuda":
        return {"": state.local_process_index}
    return {"": str(state.device)}


def load_frozen(
    model_class: Any,
    name_or_path: str,
    *,
    revision: str | None = None,
    dtype: str | torch.dtype | None = None,
    quantization: str | None = None,
    device_map: Any = "per_process",
    trust_remote_code: bool = False,
    **kwargs: Any,
) -> torch.nn.Module:
    """`model_class.from_pretrained(...)` with the loading options this package supports, frozen and in eval mode.

    Args:
        model_class: A transformers class with `from_pretrained` (e.g. `AutoModel`).
        name_or_path (`str`): Hub id or local folder.
        revision (`str`, *optional*): Hub revision (branch, tag or commit).
        dtype (`str` or `torch.dtype`, *optional*): Weight dtype, e.g. `"bfloat16"`.
        quantization (`str`, *optional*): `None`, `"8bit"` or `"4bit"` (bitsandbytes).
        device_map (*optional*, defaults to `"per_process"`): `"per_process"` puts the whole model on this
            process's device (see `per_process_device_map`); anything else goes to `from_pretrained` as is
            (`"auto"` spreads a large model over the visible GPUs; `None` leaves it on CPU).
        trust_remote_code (`bool`, *optional*, defaults to `False`): Only when the user asks for it.
        kwargs: Passed on to `from_pretrained`.

    Returns:
        The loaded model with `requires_grad_(False)` and `eval()` applied.
    """
    torch_dtype = resolve_dtype(dtype)
    if device_map == "per_process":
        device_map = per_process_device_map()
    options: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code, **kwargs}
    if torch_dtype is not None:
        options["dtype"] = torch_dtype
    config = quantization_config(quantization, torch_dtype)
    if config is not None:
        options["quantization_config"] = config
    if device_map is not None:
        options["device_map"] = device_map
    model = model_class.from_pretrained(name_or_path, **options)
    model.requires_grad_(False)
    return model.eval()


def hub_revision(model: torch.nn.Module, name_or_path: str, revision: str | None) -> str | None:
    """The revision that determines a loaded model's weights: the resolved Hub commit when transformers recorded
    one, else the requested revision, else a hash of a local folder's files."""
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return commit or revision or local_files_revision(name_or_path)
