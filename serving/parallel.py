"""Batches decoded side by side on several threads: CTranslate2's `inter_threads`, for onnxruntime on the CPU.

One onnxruntime call spread over two cores synchronises its threads at every
node, and a decoder step is some thirty small nodes: on 2 cores a step of 128
rows ran at 95k rows/s on two intra-op threads and at 113k as two
single-threaded loops. Two independent decoding loops, each on its own core
with a single-threaded session, keep both cores busy instead (about 1.4x
the sentences/s of one loop on two intra-op threads end to end,
`benchmarks/bench_cpu.py --inter-threads 1 0`; docs/benchmarks.md). onnxruntime
releases the GIL while it runs and one session serves concurrent calls, so
the loops share the sessions and need no copy of the model.

A sentence's translation does not depend on the rows decoded beside it (the
refilled pool already relies on that), so which loop takes which batch
changes nothing in the output.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, as a container or `taskset` sets it), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(inter_threads: int, intra_threads: int, device: str) -> tuple[int, int]:
    """(loops decoding at once, threads per onnxruntime call) for `device`, 0 meaning automatic in either.

    On the CPU the automatic choice is one single-threaded loop per core; a
    given `intra_threads` divides the cores among fewer loops. On a GPU one
    loop feeds the device, and its session keeps onnxruntime's own choice.
    The intra-op value 0 that comes back means onnxruntime's choice.
    """
    if device != "cpu":
        return inter_threads or 1, intra_threads
    cores = available_cores()
    inter = inter_threads or max(1, cores // max(1, intra_threads))
    intra = intra_threads or (max(1, cores // inter) if inter > 1 else 0)
    return inter, intra


class SharedIterator(Iterator[Item]):
    """An iterator that several threads take from, one item per call, until it is exhausted or closed."""

    def __init__(self, items: Iterable[Item]):
        self._items = iter(items)
        self._lock = threading.Lock()
        self._closed = False

    def __next__(self) -> Item:
        with self._lock:
            if self._closed:
                raise StopIteration
            return next(self._items)

    def close(self) -> None:
        """Hands out nothing more: the loops finish what they hold and stop."""
        self._closed = True


def drain_in_parallel(items: Iterable[Item], workers: int, work: Callable[[Iterator[Item]], Iterable[Result]]) -> list[Result]:
    """Every result of `workers` threads each running `work` over one shared iterator of `items`, in no set order.

    A failure in one thread, or an interrupt of the caller, closes the
    iterator, so the others stop at their next item instead of running on
    through the rest; the first failure is raised.
    """
    shared = SharedIterator(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s2s-decode") as pool:
        futures = [pool.submit(lambda: list(work(shared))) for _ in range(workers)]
        try:
            return [result for future in futures for result in future.result()]
        finally:
            shared.close()


def map_in_parallel(function: Callable[[Item], Result], items: Iterable[Item], workers: int) -> list[Result]:
    """`[function(item) for item in items]`, `workers` items at a time, in order; the first failure is raised."""
    if workers <= 1:
        return [function(item) for item in items]
    def work(numbered: Iterator[tuple[int, Item]]) -> Iterator[tuple[int, Result]]:
        for index, item in numbered:
            yield index, function(item)

    return [result for _, result in sorted(drain_in_parallel(enumerate(items), workers, work), key=lambda pair: pair[0])]
