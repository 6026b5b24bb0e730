"""Progress of long translations: a tqdm bar on a terminal, a timestamped log line every so often in a job log.

When the inputs are regular files their size is known, so both show the
share done and an ETA, counted in input bytes; for a pipe only lines and
the rate are known.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any, Protocol

logger = logging.getLogger(__name__)


class ProgressCallback(Protocol):
    """What a file translation calls after each window it writes: `Progress` is one; any callable of this shape will do."""

    def __call__(self, lines: int, seconds: float, bytes_done: int = 0) -> None:
        """`lines` input lines done, `seconds` since the run began, `bytes_done` input bytes done (skipped ones of a resumed run included)."""


class Progress:
    """Called with (lines done, seconds, input bytes done) after each window.

    On a terminal, a bar that counts lines and sentences/s; the input bytes
    serve only for the share done and the time left, shown beside them. Log
    lines written while the bar is up are printed above it, never over it.

    Args:
        total_bytes: the inputs' size when known (regular files), for a percentage and an ETA.
        interval: seconds between log lines when the output is not a terminal.
        stream: where the bar goes; standard error by default.
    """

    def __init__(self, total_bytes: int | None = None, interval: float = 30.0, stream: IO[str] | None = None):
        self.stream = stream or sys.stderr
        self.total_bytes = total_bytes or None
        self.interval = interval
        self.last = time.monotonic()
        self.bar: Any = None
        self.lines_shown = 0
        self.redirected: list[tuple[logging.StreamHandler, Any]] = []
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(unit=" lines", unit_scale=True, file=self.stream, desc="translating", dynamic_ncols=True)
            for handler in logging.getLogger().handlers:  # log lines go above the bar, not through it
                if isinstance(handler, logging.StreamHandler) and handler.stream is self.stream:
                    self.redirected.append((handler, handler.setStream(_AboveTheBar(self.stream))))

    def __call__(self, lines: int, seconds: float, bytes_done: int = 0) -> None:
        rate = lines / seconds if seconds else 0.0
        share = min(bytes_done / self.total_bytes, 1.0) if self.total_bytes and bytes_done else None
        remaining = seconds * (1 - share) / share if share else None
        if self.bar is not None:
            self.bar.update(max(0, lines - self.lines_shown))
            self.lines_shown = max(self.lines_shown, lines)
            where = f"{100 * share:.0f}% of the input, about {remaining:.0f} s left, " if share is not None else ""
            self.bar.set_postfix_str(f"{where}{lines:,} lines, {rate:,.0f} sentences/s", refresh=True)
        elif time.monotonic() - self.last >= self.interval:
            self.last = time.monotonic()
            if share is not None:
                logger.info("translated %d lines, %.0f sentences/s, %.1f%% done, about %.0f s left", lines, rate, 100 * share, remaining)
            else:
                logger.info("translated %d lines, %.0f sentences/s", lines, rate)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        for handler, stream in self.redirected:
            handler.setStream(stream)
        self.redirected = []


class _AboveTheBar:
    """A stream for log handlers while a bar is up: tqdm clears the bar, writes the line, and draws the bar again below it."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text.rstrip("\n"), file=self.stream)

    def flush(self) -> None:
        self.stream.flush()
