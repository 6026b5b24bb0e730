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
from collections.abc import Callable, Iterable
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


def map_in_parallel(function: Callable[[Item], Result], items: Iterable[Item], workers: int) -> list[Result]:
    """`[function(item) for item in items]`, `workers` items at a time, in order.

    The first failure, in item order, is raised; items not yet started are
    cancelled rather than run through.
    """
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s2s-decode") as pool:
        futures = [pool.submit(function, item) for item in items]
        try:
            return [future.result() for future in futures]
        finally:
            for future in futures:
                future.cancel()
