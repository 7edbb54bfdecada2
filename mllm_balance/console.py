"""What a training run prints: library notices that say nothing about the run are kept off the console.

[`EpochSummaryCallback`](mllm_balance.callbacks.EpochSummaryCallback) prints the run itself (a progress bar and one
line per epoch); the helpers here quiet what other libraries print around it while it trains and saves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from transformers.utils import logging as hf_logging

#: `{logger name: message prefixes}` of notices that describe a library's internals, never the user's run.
KNOWN_NOTICES: Mapping[str, Sequence[str]] = {
    # Checkpoints written less than a second apart (short epochs) have equal mtimes; transformers then orders them by
    # their step number, which is the right order for this trainer's numbered checkpoints.
    "transformers.trainer_utils": ("mtime may not be reliable on this filesystem",),
}


class KnownNoticeFilter(logging.Filter):
    """Drops the log records whose message starts with one of `prefixes`.

    Args:
        prefixes (`Sequence[str]`): message beginnings to drop.
    """

    def __init__(self, prefixes: Sequence[str]):
        super().__init__()
        self.prefixes = tuple(prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


@contextmanager
def known_notices_hidden(notices: Mapping[str, Sequence[str]] = KNOWN_NOTICES) -> Iterator[None]:
    """Within the block, the loggers of `notices` drop those notices (every other record passes)."""
    filters = [(logging.getLogger(name), KnownNoticeFilter(prefixes)) for name, prefixes in notices.items()]
    for logger, notice_filter in filters:
        logger.addFilter(notice_filter)
    try:
        yield
    finally:
        for logger, notice_filter in filters:
            logger.removeFilter(notice_filter)


@contextmanager
def library_progress_bars_hidden() -> Iterator[None]:
    """Within the block, transformers draws no progress bar of its own (e.g. "Writing model shards" on every save);
    the state before the block is restored after it."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextmanager
def quiet_console() -> Iterator[None]:
    """[`known_notices_hidden`] and [`library_progress_bars_hidden`] together."""
    with known_notices_hidden(), library_progress_bars_hidden():
        yield


__all__ = [
    "KNOWN_NOTICES",
    "KnownNoticeFilter",
    "known_notices_hidden",
    "library_progress_bars_hidden",
    "quiet_console",
]
