"""Minimal reproduction, Beam alone: WriteToText on Beam's Dask runner writes an empty file.

    pip install 'apache-beam' 'dask[distributed]'
    python repro/dask_writetotext.py

On Beam 2.77 with dask/distributed 2026.8 (a LocalCluster of 2 worker
processes), 50 lines go in and the final `out-00000-of-00001.txt` holds 0 of
them: the graph is evaluated once per consumer of the write's PCollections,
so several `beam-temp-*` folders appear, and the finalising step renames the
files of one that holds nothing. The same pipeline on the local FnApiRunner
writes all 50. `s2s translate-beam` counts the rows it wrote against the
lines it read, so on this runner it fails with one line instead of exiting 0.
"""

from __future__ import annotations

import glob
import os
import sys
import tempfile

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions


def lines_written(runner_args: list[str], folder: str) -> int:
    prefix = os.path.join(folder, "out")
    with beam.Pipeline(options=PipelineOptions(runner_args)) as pipeline:
        _ = pipeline | beam.Create([f"line {number}" for number in range(50)]) | beam.io.WriteToText(prefix, file_name_suffix=".txt")
    return sum(1 for path in glob.glob(f"{prefix}-*-of-*.txt") for _ in open(path))


if __name__ == "__main__":
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with tempfile.TemporaryDirectory() as local, tempfile.TemporaryDirectory() as dask:
        on_local = lines_written(["--runner=FnApiRunner"], local)
        dask_runner = "--runner=apache_beam.runners.dask.dask_runner.DaskRunner"
        on_dask = lines_written([dask_runner, f"--dask_client_address={cluster.scheduler_address}"], dask)
    cluster.close()
    print(f"lines written of 50: FnApiRunner {on_local}, DaskRunner {on_dask}")
    sys.exit(0 if on_dask == 50 else 1)
