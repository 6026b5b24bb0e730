"""Progress of long translations: a tqdm bar on a terminal, a timestamped log line every so often in a job log.

When the inputs are regular files their size is known, so both show the
share done and an ETA, counted in input bytes; for a pipe only lines and
the rate are known.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

logger = logging.getLogger(__name__)


class Progress:
    """Called with (lines done, seconds, input bytes done) after each window.

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
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.total_bytes, unit="B", unit_scale=True, unit_divisor=1024, file=self.stream, desc="translating", dynamic_ncols=True
            )
            self.bytes_shown = 0

    def __call__(self, lines: int, seconds: float, bytes_done: int = 0) -> None:
        rate = lines / seconds if seconds else 0.0
        if self.bar is not None:
            self.bar.update(max(0, bytes_done - self.bytes_shown))
            self.bytes_shown = max(self.bytes_shown, bytes_done)
            self.bar.set_postfix_str(f"{lines:,} lines, {rate:,.0f} sentences/s", refresh=False)
        elif time.monotonic() - self.last >= self.interval:
            self.last = time.monotonic()
            if self.total_bytes and bytes_done:
                share = min(bytes_done / self.total_bytes, 1.0)
                remaining = seconds * (1 - share) / share if share else 0.0
                logger.info("translated %d lines, %.0f sentences/s, %.1f%% done, about %.0f s left", lines, rate, 100 * share, remaining)
            else:
                logger.info("translated %d lines, %.0f sentences/s", lines, rate)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
