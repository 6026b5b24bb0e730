"""Greedy decoding of a stream of windows that never drains between them, on one or more refilled pools.

Decoding window by window stops at each window's end: the pool shrinks as
its last long sentences finish, and a second loop (`inter_threads`) waits
for the first before the next window starts. On 2 cores, windows of 1,024
lines ran at 1,410 sentences/s where one window of 30,000 ran at 1,805.
Here the pools take batches from one stream that runs on into the next
window while the last rows of the previous one finish, and each window is
handed back, in order, as soon as all its rows are done.

- The stream reads on while fewer than `ahead_rows` rows wait in windows
  not yet handed back (16 batches per pool and two more pools' worth), so
  a slow consumer (a lazy `translate_iterable`) holds memory for a few
  thousand lines, never for the whole input. The window after the one
  being decoded is always taken, however big: a file's windows of 16,384
  lines would otherwise leave the pools draining at each window's end.
- A pool with live rows never waits for a batch; an empty one hands back
  what it has finished before it waits (`RefillGreedy.decode_supply`), so
  the oldest window can always complete.
- A failure while reading windows (a cut gzip file, a bad line) takes the
  place of the window it stopped at: the windows before it are still
  handed back first, as the window-by-window loop did.
- A window with target prefixes is not greedy's plain case: it comes back
  untranslated in its turn, for the caller's window-by-window loop.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from s2s.serving.refill import Batch, Finished, RefillGreedy, Supply
from s2s.serving.sessions import DecoderSession, EncoderSession
from s2s.serving.windows import PreparedWindow

_POOL_ENDED = object()  # a pool's thread has finished


@dataclass
class _Entry:
    """A window in the stream: the caller's object, its prepared sources, and its translations as they arrive."""

    window: Any
    prepared: PreparedWindow | None
    base: int  # the stream's number of the window's first row
    texts: np.ndarray
    cut: np.ndarray
    remaining: int  # rows with a source, not yet decoded
    direct: bool = False  # translated by the consumer itself
    failure: Exception | None = None  # reading stopped here

    @property
    def ready(self) -> bool:
        return self.remaining == 0 or self.direct or self.failure is not None


class _Stream:
    """The batches of a sequence of windows, for several pools at once; the windows registered so far, oldest first."""

    def __init__(
        self,
        windows: Iterator[tuple[Any, PreparedWindow]],
        batches_of: Callable[[PreparedWindow], Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]],
        is_plain: Callable[[PreparedWindow], bool],
        ahead_rows: int,
    ):
        self._windows, self._batches_of, self._is_plain, self._ahead_rows = windows, batches_of, is_plain, ahead_rows
        self._rows_waiting = 0  # rows of the registered windows
        self._condition = threading.Condition()
        self._batches: Iterator[Batch] | None = None
        self._next_base = 0
        self._exhausted = self._closed = False
        self.entries: deque[_Entry] = deque()

    def take(self, wait: bool) -> Batch | Supply:
        """The next batch; NOTHING_YET when `ahead_rows` rows wait to be handed back (and `wait` is false); ENDED at the end."""
        with self._condition:
            while True:
                if self._closed:
                    return Supply.ENDED
                if self._batches is not None:
                    batch = next(self._batches, None)
                    if batch is not None:
                        return batch
                    self._batches = None
                if self._exhausted:
                    return Supply.ENDED
                if len(self.entries) > 1 and self._rows_waiting >= self._ahead_rows:
                    if not wait:
                        return Supply.NOTHING_YET
                    self._condition.wait()
                    continue
                self._register_next()

    def _register_next(self) -> None:
        try:
            item = next(self._windows, None)
        except Exception as error:  # reading stopped here: the windows before still come out first
            self.entries.append(_Entry(None, None, self._next_base, np.empty(0, dtype=object), np.empty(0, dtype=bool), 0, failure=error))
            self._exhausted = True
            return
        if item is None:
            self._exhausted = True
            return
        window, prepared = item
        rows = len(prepared.lengths)
        direct = not self._is_plain(prepared)
        entry = _Entry(
            window, prepared, self._next_base, np.full(rows, "", dtype=object), np.zeros(rows, dtype=bool), int(np.count_nonzero(prepared.lengths)), direct
        )
        self._next_base += rows
        self._rows_waiting += rows
        self.entries.append(entry)
        if not direct:
            self._batches = (Batch(entry.base + indices, ids, limits) for indices, ids, limits in self._batches_of(prepared))

    def record(self, finished: Finished, texts: np.ndarray) -> None:
        """Puts finished rows (stream-numbered) and their texts into their windows."""
        with self._condition:
            entries = list(self.entries)
        bases = np.array([entry.base for entry in entries])
        owners = np.searchsorted(bases, finished.rows, side="right") - 1
        for owner in np.unique(owners).tolist():
            mine = owners == owner
            entry = entries[owner]
            local = finished.rows[mine] - entry.base
            entry.texts[local], entry.cut[local] = texts[mine], finished.cut[mine]
            entry.remaining -= int(mine.sum())

    def oldest_ready(self) -> _Entry | None:
        with self._condition:
            return self.entries[0] if self.entries and self.entries[0].ready else None

    def release(self) -> None:
        """The oldest window has been handed back: room for one more."""
        with self._condition:
            self._rows_waiting -= len(self.entries.popleft().texts)
            self._condition.notify_all()

    def close(self) -> None:
        """Hands out nothing more: each pool finishes the rows it holds and stops."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()


def translate_continuously(
    encoder: EncoderSession,
    decoder: DecoderSession,
    windows: Iterator[tuple[Any, PreparedWindow]],
    *,
    loops: int,
    slots: int,
    batches_of: Callable[[PreparedWindow], Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]],
    is_plain: Callable[[PreparedWindow], bool],
    texts_of: Callable[[np.ndarray], np.ndarray],
) -> Iterator[tuple[Any, PreparedWindow, np.ndarray | None, np.ndarray | None]]:
    """(window, prepared window, texts, cut flags) for each of `windows`, in order, decoded by `loops` pools of `slots` rows.

    A window that is not plain comes back in its turn with None for texts and cut flags: the caller translates it.

    Args:
        batches_of: a prepared window's batches as (window rows, int32 source ids, output limits).
        is_plain: whether a window is greedy's plain case (no target prefixes).
        texts_of: the texts of finished rows' ids.

    Raises:
        Exception: the first failure of a pool, or of reading a window once the windows before it are handed back.
    """
    stream = _Stream(windows, batches_of, is_plain, ahead_rows=16 * slots * (loops + 2))
    results: queue.Queue[Any] = queue.Queue()

    def run_pool() -> None:
        try:
            for finished in RefillGreedy(encoder, decoder).decode_supply(stream.take, slots):
                results.put(finished)
        except Exception as error:  # handed to the consumer, which raises it
            results.put(error)
        finally:
            results.put(_POOL_ENDED)

    threads = [threading.Thread(target=run_pool, name=f"s2s-decode-{index}", daemon=True) for index in range(loops)]
    for thread in threads:
        thread.start()
    running = loops
    try:
        while True:
            while (entry := stream.oldest_ready()) is not None:
                if entry.failure is not None:
                    raise entry.failure
                stream.release()
                yield entry.window, entry.prepared, None if entry.direct else entry.texts, None if entry.direct else entry.cut
            if not running:
                if stream.entries:  # every pool has ended with a window unfinished: never hand back fewer lines than read
                    raise RuntimeError(f"decoding ended with {len(stream.entries)} window(s) unfinished")
                break
            item = results.get()
            if item is _POOL_ENDED:
                running -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                stream.record(item, texts_of(item.ids))
    finally:
        stream.close()
        for thread in threads:
            thread.join()
