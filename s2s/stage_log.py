"""Stage names on log lines: `2026-11-22 03:00:12 INFO [train] training.checkpoints: epoch 3/40 ...`.

A scheduler's log viewer shows one long stream for the whole chain; every
line logged while a stage runs carries that stage's name, whichever library
module logged it, so a reader can tell where a night's run spent its time.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager

_current_stage: contextvars.ContextVar[str] = contextvars.ContextVar("s2s_stage", default="")


@contextmanager
def stage_context(stage: str) -> Iterator[None]:
    """Tags every log record made inside the block with `stage`."""
    token = _current_stage.set(stage)
    try:
        yield
    finally:
        _current_stage.reset(token)


class StageFilter(logging.Filter):
    """Sets `record.stage` to "[name] " inside a stage, "" outside, for the format string `%(stage)s`."""

    def filter(self, record: logging.LogRecord) -> bool:
        stage = _current_stage.get()
        record.stage = f"[{stage}] " if stage else ""
        return True
