"""Whole files on any filesystem Beam reaches: written under a temporary name, then renamed into place.

The Beam jobs write each output file in one step of their own instead of
through Beam's file sinks, so that a repeated step rewrites the same bytes
(see `translate_beam` and `dataset_files`). A reader never sees a half-written
file: locally the rename is atomic; on object stores it is a copy and a delete.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_COPY_CHUNK = 1 << 22


def publish(path: str, stream: Any) -> None:
    """Copies a readable binary stream to `path` under a temporary name, then renames it into place, replacing any file there."""
    temp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        with FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED) as target:
            shutil.copyfileobj(stream, target, _COPY_CHUNK)
        if FileSystems.exists(path):  # a repeated step: the same bytes again
            FileSystems.delete([path])
        FileSystems.rename([temp], [path])
    except BaseException:
        # A full disk or a killed worker must not leave temporary files beside the outputs; the first error is the one to
        # report, and a temp file that cannot be deleted either is untidy, not wrong.
        with contextlib.suppress(Exception):
            delete_files(temp)
        raise


def delete_files(*paths: str) -> None:
    """Deletes those of `paths` that exist, on any filesystem Beam reaches."""
    present = [path for path in paths if FileSystems.exists(path)]
    if present:
        FileSystems.delete(present)


def publish_lines(path: str, lines: Iterable[str]) -> int:
    """Writes lines (each without its newline) to `path` as UTF-8 text, whole; returns how many."""
    count = 0
    with tempfile.TemporaryFile() as stream:
        for line in lines:
            stream.write(line.encode("utf-8") + b"\n")
            count += 1
        stream.seek(0)
        publish(path, stream)
    return count


def fill_missing(paths: Iterable[str], empty: bytes = b"") -> None:
    """Writes `empty` (an empty file of the format) at each path that no step wrote, so a numbered set of shards is complete."""
    for path in paths:
        if not FileSystems.exists(path):
            publish(path, io.BytesIO(empty))
