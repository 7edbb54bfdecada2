"""Local `evaluate` metric modules (they load by path, offline)."""

import os

EDM_METRIC_PATH = os.path.join(os.path.dirname(__file__), "edm")

__all__ = ["EDM_METRIC_PATH"]
