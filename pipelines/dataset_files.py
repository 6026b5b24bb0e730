"""The last step of `s2s prepare`: every file of the staged dataset, each written whole by one worker.

Records, rejects and the summary travel as (file key, rows) groups to one
writer step, `WriteDatasetFiles`. Each group becomes one file, named by its
key, with its rows sorted, written to a temporary name and renamed. A file is
therefore a function of its rows: a retried or repeated group rewrites the
same bytes, the dataset is the same from run to run, and the job ends in one
step that depends on every other. Beam's Dask runner needs the last two: it
computes only what the last step needs, and its own file sinks lose rows
(see repro/dask_runner_bugs.py). The dataset facts reach the writer as a
`Broadcast` into each group, not as a side input. Records are encoded as
they are written, so only the light text pairs are grouped, never the
one-hot bytes (3.9 GB for the fra-eng train split).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from s2s.pipelines.cleaning import Pair
from s2s.pipelines.transforms import FACTS, DatasetFactsFn, shard_of, without_broadcasts
from s2s.publish import fill_missing, publish_lines, publish_written
from s2s.records import ExampleEncoder
from s2s.spec import RECORD_SUFFIX, SPLITS
from s2s.tfrecord_io import gzip_records, write_gzip_records
from s2s.vocab import Vocabulary

REJECTS = "rejects"
REJECTS_SUFFIX = ".jsonl"
SUMMARY = "summary"
SUMMARY_FILE = "summary.json"

FileKey = tuple[str, int]  # (a split name, "rejects" or "summary"; shard number)


def file_name(kind: str, shard: int, num_shards: int) -> str:
    """The staged file of a key, named as Beam's file sinks name theirs."""
    if kind == SUMMARY:
        return SUMMARY_FILE
    suffix = REJECTS_SUFFIX if kind == REJECTS else RECORD_SUFFIX
    return f"{kind}-{shard:05d}-of-{num_shards:05d}{suffix}"


class _WriteFileFn(beam.DoFn):
    """((kind, shard), rows and the facts broadcast) -> the file written whole; yields (kind, rows written)."""

    def __init__(self, staging: str, num_shards: int):
        self.staging, self.num_shards = staging, num_shards
        self._encoder: ExampleEncoder | None = None
        self._facts: dict[str, Any] | None = None

    def process(self, group: tuple[FileKey, Iterable[Any]]) -> Iterator[tuple[str, int]]:
        (kind, shard), values = group
        shared, rows = without_broadcasts(values)
        path = FileSystems.join(self.staging, file_name(kind, shard, self.num_shards))
        if kind in SPLITS:
            pairs = sorted(rows, key=lambda pair: (pair.path, pair.line_number))
            written = write_records(path, self._encoder_for(shared[FACTS]), pairs) if pairs else 0
        elif kind == SUMMARY:
            written = publish_lines(path, [summary_json(rows, shared.get(FACTS))])
        else:
            written = publish_lines(path, sorted(rows))
        yield kind, written

    def _encoder_for(self, facts: dict[str, Any]) -> ExampleEncoder:
        if self._encoder is None or facts != self._facts:
            self._encoder = ExampleEncoder(
                Vocabulary.from_list(facts["source_vocabulary"]),
                Vocabulary.from_list(facts["target_vocabulary"]),
                facts["max_source_length"],
                facts["max_target_length"],
            )
            self._facts = facts
        return self._encoder


def summary_json(parts: list[tuple[str, Any]], facts: dict[str, Any] | None) -> str:
    """The pipeline's tallies as one JSON text: parts are ("lines_read", n), ("rejected", (reason, n)), ("split_sizes", (split, n))."""
    summary: dict[str, Any] = {"lines_read": 0, "rejected": {}, "split_sizes": {}}
    for name, value in parts:
        if name == "lines_read":
            summary["lines_read"] = value
        else:
            summary[name][value[0]] = value[1]
    summary["facts"] = facts if facts is not None else _no_facts()
    return json.dumps(summary, ensure_ascii=False, sort_keys=True)


def _no_facts() -> dict[str, Any]:
    """The facts of a dataset that kept no pair (every line rejected)."""
    combine = DatasetFactsFn()
    return combine.extract_output(combine.create_accumulator())


class WriteDatasetFiles(beam.PTransform):
    """(file key, row) elements, with the facts broadcast to the split and summary keys -> the dataset's files in `staging`.

    Rows are `Pair`s for a split's key (encoded with the facts), text lines
    for the rejects, and (name, value) tallies for the summary. Outputs
    (kind, rows written) per file.
    """

    def __init__(self, staging: str, num_shards: int):
        super().__init__()
        self.staging, self.num_shards = staging, num_shards

    def expand(self, keyed_rows: beam.PCollection) -> beam.PCollection:
        return keyed_rows | "GroupByFile" >> beam.GroupByKey() | "WriteFile" >> beam.ParDo(_WriteFileFn(self.staging, self.num_shards))


def file_keys(num_shards: int) -> list[FileKey]:
    """The keys of the files that need the dataset facts: each split's shards and the summary."""
    return [*((split, shard) for split in SPLITS for shard in range(num_shards)), (SUMMARY, 0)]


def keyed_pair(element: tuple[str, Pair], num_shards: int) -> tuple[FileKey, Pair]:
    split, pair = element
    return (split, shard_of(pair.path, pair.line_number, num_shards)), pair


def keyed_rejection(rejection: Any, num_shards: int) -> tuple[FileKey, str]:
    return (REJECTS, shard_of(rejection.path, rejection.line_number, num_shards)), json.dumps(rejection.to_dict(), ensure_ascii=False)


def write_records(path: str, encoder: ExampleEncoder, pairs: list[Pair]) -> int:
    """Writes the pairs' Examples as one GZIP TFRecord file, whole (no TensorFlow on a worker); returns how many."""
    return publish_written(path, lambda stream: write_gzip_records(stream, (encoder.encode(pair.source, pair.target) for pair in pairs)))


def complete_shards(staging: str, num_shards: int) -> None:
    """Writes an empty file for every shard no row reached, so each split has all its numbered files."""
    for kind in (*SPLITS, REJECTS):
        paths = (FileSystems.join(staging, file_name(kind, shard, num_shards)) for shard in range(num_shards))
        fill_missing(paths, gzip_records(()) if kind in SPLITS else b"")
