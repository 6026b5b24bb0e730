"""Counts of what a Beam job actually wrote, read back from its shards after the run.

A runner that drops a step or a bundle still reports success (Beam's Dask
runner does, see `repro/dask_runner_bugs.py`), so a job's own tallies, made
inside the pipeline, cannot vouch for its files. These counts read the files.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from s2s.errors import S2SError

_LENGTH_AND_CRC = 12  # TFRecord framing: uint64 length, uint32 masked CRC of the length; then data and a uint32 CRC
_DATA_CRC = 4
_CHUNK = 1 << 20


def matching_files(pattern: str) -> list[str]:
    """The files a glob matches on any filesystem, sorted; none is an empty list."""
    return sorted(metadata.path for metadata in FileSystems.match([pattern])[0].metadata_list)


def count_lines(pattern: str) -> int:
    """Lines in the (uncompressed or .gz) text files matching `pattern`."""
    return sum(count_lines_in(path) for path in matching_files(pattern))


def count_lines_in(path: str) -> int:
    """Lines in one text file on any filesystem, decompressed by its extension; a last line without a newline counts."""
    total = 0
    with FileSystems.open(path) as stream:
        pending = b""
        while chunk := stream.read(_CHUNK):
            total += chunk.count(b"\n")
            pending = chunk[-1:]
        total += pending not in (b"", b"\n")
    return total


@contextmanager
def _opened(path: str) -> Iterator[Any]:
    """The file's bytes on any filesystem, decompressed by Python's gzip when it ends in .gz."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        if not path.endswith(".gz"):
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            yield stream


def count_tfrecords(pattern: str) -> int:
    """Records in the TFRecord files matching `pattern` (compressed by their extension), read by their framing alone.

    The one-hot records are large once decompressed (3.9 GB for the fra-eng
    train split), so the framing is walked in large chunks through Python's
    gzip, at about twice the speed of Beam's compressed reader.

    Raises:
        S2SError: a file ends inside a record.
    """
    total = 0
    for path in matching_files(pattern):
        header, skip = b"", 0  # the part of a header read so far; bytes of the current record still to pass
        with _opened(path) as stream:
            while chunk := stream.read(_CHUNK):
                position = 0
                while position < len(chunk):
                    if skip:
                        passed = min(skip, len(chunk) - position)
                        skip, position = skip - passed, position + passed
                        continue
                    needed = _LENGTH_AND_CRC - len(header)
                    header, position = header + chunk[position : position + needed], position + needed
                    if len(header) == _LENGTH_AND_CRC:
                        skip = struct.unpack("<Q", header[:8])[0] + _DATA_CRC
                        header = b""
                        total += 1
        if header or skip:
            raise S2SError(f"{path} ends inside a record: the file is cut short")
    return total
