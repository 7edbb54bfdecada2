"""Building blocks of a balanced model: adapter, cross-modal mapping, modality memory."""

from .adapter import ModalityAdapter
from .mapping import CrossModalMapping
from .memory import ModalityMemory

__all__ = ["ModalityAdapter", "CrossModalMapping", "ModalityMemory"]
