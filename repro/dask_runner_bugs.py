"""Minimal reproductions, Beam alone, of the five ways Beam's Dask runner loses or miscounts rows.

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
5. A global count used as a side input by a step over the same (grouped)
   rows: 10 against 30. The side input is computed inside the reading task,
   under the same task names as the job's own steps, and the scheduler mixes
   the two ("old run_spec ... new run_spec" in its log).

`s2s translate-beam` and `s2s prepare` avoid all five: each is one graph
ending in a writing step of their own that writes each file whole, with no
tagged output and no side input (prepare joins its global values in with a
GroupByKey). Both give the same files on this runner as locally;
tests/test_translate_pipeline.py and tests/test_prepare_pipeline.py check that.
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


class _CountWithSideInput(beam.DoFn):
    def process(self, grouped, total: int):
        yield total


def side_input_over_the_same_rows(args: list[str], folder: str) -> int:
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
        grouped = (
            pipeline | beam.Create(list(range(10))) | "Key" >> beam.Map(lambda value: (value % 3, value)) | "Group" >> beam.GroupByKey()
        )
        total = grouped | "Sizes" >> beam.Map(lambda group: len(list(group[1]))) | "Total" >> beam.CombineGlobally(sum)
        seen = grouped | "Read" >> beam.ParDo(_CountWithSideInput(), total=beam.pvalue.AsSingleton(total))
        _sink(
            seen | "First" >> beam.combiners.Sample.FixedSizeGlobally(1) | beam.FlatMap(lambda sample: sample),
            os.path.join(folder, "total"),
            "Total",
        )
    with open(os.path.join(folder, "total")) as stream:
        return int(stream.read().strip() or 0)


CASES: list[Callable[[list[str], str], object]] = [write_to_text, batch_elements, tagged_outputs, two_sinks, side_input_over_the_same_rows]

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
