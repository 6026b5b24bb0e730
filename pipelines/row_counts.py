"""Counts of what a Beam job actually wrote, read back from its shards after the run.

A runner that drops a step or a bundle still reports success (Beam's Dask
runner does, see `repro/dask_runner_bugs.py`), so a job's own tallies, made
inside the pipeline, cannot vouch for its files. These counts read the files.
"""

from __future__ import annotations

import struct

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
    total = 0
    for path in matching_files(pattern):
        with FileSystems.open(path) as stream:
            pending = b""
            while chunk := stream.read(_CHUNK):
                total += chunk.count(b"\n")
                pending = chunk[-1:]
            total += pending not in (b"", b"\n")  # a last line without a newline
    return total


def count_tfrecords(pattern: str) -> int:
    """Records in the TFRecord files matching `pattern` (compressed by their extension), read by their framing alone.

    Raises:
        S2SError: a file ends inside a record.
    """
    total = 0
    for path in matching_files(pattern):
        with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as stream:
            while header := stream.read(_LENGTH_AND_CRC):
                if len(header) < _LENGTH_AND_CRC:
                    raise S2SError(f"{path} ends inside a record header: the file is cut short")
                (length,) = struct.unpack("<Q", header[:8])
                body = stream.read(length + _DATA_CRC)
                if len(body) < length + _DATA_CRC:
                    raise S2SError(f"{path} ends inside a record: the file is cut short")
                total += 1
    return total
