"""Progress for long translations: a live line on a terminal, a timestamped log line every so often in a job log."""

from __future__ import annotations

import logging
import sys
import time

logger = logging.getLogger(__name__)


class Progress:
    """Called with (lines done, seconds); reports lines and sentences/s.

    On a terminal it redraws one line in place; otherwise (a scheduler's log)
    it logs a line at most every `interval` seconds, so logs stay readable.
    """

    def __init__(self, interval: float = 30.0, stream=None):
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.interval = interval
        self.last = 0.0

    def __call__(self, lines: int, seconds: float) -> None:
        rate = lines / seconds if seconds else 0.0
        if self.interactive:
            self.stream.write(f"\rtranslated {lines:,} lines, {rate:,.0f} sentences/s")
            self.stream.flush()
        elif time.monotonic() - self.last >= self.interval:
            self.last = time.monotonic()
            logger.info("translated %d lines, %.0f sentences/s", lines, rate)

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")
