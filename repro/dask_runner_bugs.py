"""Minimal reproductions, Beam alone, of the four ways Beam's Dask runner loses or mis-routes rows.

    pip install 'apache-beam' 'dask[distributed]'
    python repro/dask_runner_bugs.py

Seen on Beam 2.77 with dask/distributed 2026.8, on a LocalCluster of two
worker processes; each case also runs on the local FnApiRunner, which gets
them right. What each prints, FnApiRunner against DaskRunner:

1. `WriteToText` of 50 lines: 50 against 0. The runner evaluates a side
   input's upstream graph again inside each task that reads it, so the write
   step and the finalising step see different `beam-temp-*` folders, and the
   finaliser renames the files of one that holds nothing.
2. `BatchElements` (which RunInference uses) of 50 elements: 50 against 48.
   `apply_dofn_to_bundle` collects a bundle's outputs before it calls
   `finish_bundle`, so what a DoFn emits there (the last partial batch) is lost.
3. A ParDo `with_outputs`: the main output of 10 numbers split 5 and 5 holds
   5 against 10. Every output of a multi-output ParDo lands in one bag, and
   each consumer reads all of it.
4. Two sinks from one source: (10, 10) against (0, 10). `run_pipeline`
   computes only the bag of the last transform visited, so any branch that
   does not lead to it never runs.

`s2s translate-beam` avoids all four (one linear chain ending in a sink of its
own that writes each shard whole) and runs on this runner with the same rows
as locally; tests/test_translate_beam.py checks that. `s2s prepare` writes
four record sets, a rejects file and a summary through tagged outputs and
side inputs, so it meets 1, 3 and 4: its row counts make it fail with one
line there instead of publishing a partial dataset.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


class _WriteAll(beam.DoFn):
    """A sink that runs once per evaluation and writes every element it gets, so a count of its file is a count of rows."""

    def __init__(self, path: str):
        self.path = path

    def process(self, grouped):
        with open(self.path, "w") as stream:
            stream.writelines(f"{value}\n" for value in grouped[1])
        yield len(grouped[1])


def _sink(values, path: str, name: str):
    return (
        values
        | f"Key{name}" >> beam.Map(lambda value: (0, value))
        | f"Group{name}" >> beam.GroupByKey()
        | f"Write{name}" >> beam.ParDo(_WriteAll(path))
    )


def _count(path: str) -> int:
    return sum(1 for _ in open(path)) if os.path.exists(path) else 0


def write_to_text(args: list[str], folder: str) -> int:
    prefix = os.path.join(folder, "out")
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
        _ = pipeline | beam.Create([f"line {number}" for number in range(50)]) | beam.io.WriteToText(prefix, file_name_suffix=".txt")
    return sum(_count(os.path.join(folder, name)) for name in os.listdir(folder) if name.startswith("out-"))


def batch_elements(args: list[str], folder: str) -> int:
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
        batches = pipeline | beam.Create(list(range(50))) | beam.BatchElements(min_batch_size=1, max_batch_size=8)
        _sink(batches | beam.FlatMap(lambda batch: batch), os.path.join(folder, "rows"), "Rows")
    return _count(os.path.join(folder, "rows"))


def tagged_outputs(args: list[str], folder: str) -> int:
    def odd_or_even(value: int):
        yield value if value % 2 == 0 else beam.pvalue.TaggedOutput("odd", value)

    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
        split = pipeline | beam.Create(list(range(10))) | beam.FlatMap(odd_or_even).with_outputs("odd", main="even")
        _sink(split.even, os.path.join(folder, "even"), "Even")
    return _count(os.path.join(folder, "even"))


def two_sinks(args: list[str], folder: str) -> tuple[int, int]:
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
        values = pipeline | beam.Create(list(range(10)))
        _sink(values, os.path.join(folder, "first"), "First")
        _sink(values | beam.Map(lambda value: value), os.path.join(folder, "second"), "Second")
    return _count(os.path.join(folder, "first")), _count(os.path.join(folder, "second"))


CASES: list[Callable[[list[str], str], object]] = [write_to_text, batch_elements, tagged_outputs, two_sinks]

if __name__ == "__main__":
    from distributed import LocalCluster

    all_equal = True
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask = ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner", f"--dask_client_address={cluster.scheduler_address}"]
        for case in CASES:
            with tempfile.TemporaryDirectory() as local_folder, tempfile.TemporaryDirectory() as dask_folder:
                on_local, on_dask = case(["--runner=FnApiRunner"], local_folder), case(dask, dask_folder)
            print(f"{case.__name__}: FnApiRunner {on_local}, DaskRunner {on_dask}")
            all_equal &= on_local == on_dask
    sys.exit(0 if all_equal else 1)
