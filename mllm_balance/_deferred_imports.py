"""Optional heavy dependencies that other packages import eagerly, run only when something uses them.

Importing `transformers.Trainer` imports `peft` (when installed), and `peft` imports `bitsandbytes` at the top of
`peft.helpers`. `bitsandbytes` takes seconds to import and, on CPUs with AVX-512 BF16, logs that its optional 4-bit
CPU kernel package is missing, although nothing is quantised. Importing this module (the package does it first)
makes the module object of `bitsandbytes` lazy: `import bitsandbytes` still succeeds, and its code runs on the first
attribute access, which is when a quantised backbone is actually loaded.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

#: Top-level modules whose code runs on first use rather than on import.
DEFERRED_MODULES = ("bitsandbytes",)


class DeferredImportFinder(importlib.abc.MetaPathFinder):
    """Finds the modules in `names` on the regular path and wraps their loader in `importlib.util.LazyLoader`.

    Args:
        names (`Iterable[str]`): top-level module names (submodules are imported normally, once the parent runs).
    """

    def __init__(self, names: Iterable[str]):
        self.names = frozenset(names)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return None  # not found here (or an unusual loader): the other finders decide
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def defer_imports(names: Iterable[str] = DEFERRED_MODULES) -> None:
    """Make the not yet imported modules of `names` lazy (idempotent; a module already imported is left as it is)."""
    if any(isinstance(finder, DeferredImportFinder) for finder in sys.meta_path):
        return
    pending = [name for name in names if name not in sys.modules]
    if pending:
        sys.meta_path.insert(0, DeferredImportFinder(pending))


defer_imports()

__all__ = ["DEFERRED_MODULES", "DeferredImportFinder", "defer_imports"]
