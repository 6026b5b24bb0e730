"""Where the Beam jobs' work comes from: their input files resolved on any filesystem, and how many shards to cut the work into.

`s2s prepare`, `s2s translate-beam` and the chain's record of its inputs
all resolve inputs here, so a glob, a `gs://` path and a checksum mean the
same thing in each. A job's size sets its automatic shard count through
one function, with one policy per job kind side by side.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from s2s.compression import GZIP_SUFFIX, GzipIntegrity
from s2s.errors import S2SError, first_line
from s2s.pipelines.config import MAX_SHARDS

_CHECKSUM_CHUNK = 1 << 22


@dataclass(frozen=True)
class ShardPolicy:
    """How a job's input size becomes its automatic shard count: one shard per `bytes_per_shard`, within [at_least, at_most]."""

    bytes_per_shard: int
    at_least: int
    at_most: int


# prepare: shards per split and for the rejects; 2 at least, so two local workers share the encoding.
DATASET_SHARDS = ShardPolicy(bytes_per_shard=16 << 20, at_least=2, at_most=256)
# translate-beam: 4 MiB is about 100,000 short lines, a minute or two of one CPU worker.
TRANSLATION_SHARDS = ShardPolicy(bytes_per_shard=4 << 20, at_least=1, at_most=MAX_SHARDS)


def automatic_shards(input_bytes: int, policy: ShardPolicy) -> int:
    """The shard count `policy` gives `input_bytes` of input (compressed size for .gz files)."""
    return max(policy.at_least, min(policy.at_most, math.ceil(input_bytes / policy.bytes_per_shard)))


def input_bytes(input_files: list[dict[str, Any]]) -> int:
    """The total size of resolved inputs."""
    return sum(entry["bytes"] for entry in input_files)


def resolve_inputs(patterns: list[str]) -> list[dict[str, Any]]:
    """Each input file matched by `patterns` with its size and SHA-256.

    Raises:
        S2SError: no pattern given, a pattern matches no file, or every file is empty.
    """
    if not patterns:
        raise S2SError("no input given: pass --input PATH (a file or a glob)")
    files: dict[str, int] = {}
    for pattern in patterns:
        try:
            matched = FileSystems.match([pattern])[0].metadata_list
        except Exception as error:  # Beam raises BeamIOError or ValueError depending on the filesystem
            raise S2SError(f"cannot read input {pattern}: {first_line(error)}") from None
        matched = [metadata for metadata in matched if not metadata.path.endswith("/")]
        if not matched:
            raise S2SError(f"input {pattern} matches no file")
        files.update({metadata.path: metadata.size_in_bytes for metadata in matched})
    if sum(files.values()) == 0:
        raise S2SError(f"input is empty: {', '.join(sorted(files))} hold no bytes")
    return [{"path": path, "bytes": size, "sha256": _sha256(path)} for path, size in sorted(files.items())]


def _sha256(path: str) -> str:
    """The file's SHA-256; a `.gz` file is also checked, in the same pass, to end where gzip says it ends.

    Not `hashlib.file_digest`: one read of a remote file feeds both the digest and the gzip check.
    """
    digest = hashlib.sha256()
    integrity = GzipIntegrity() if path.endswith(GZIP_SUFFIX) else None
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
            while chunk := stream.read(_CHECKSUM_CHUNK):
                digest.update(chunk)
                if integrity is not None:
                    integrity.feed(chunk)
    except OSError as error:
        raise S2SError(f"cannot read input {path}: {error}") from None
    problem = integrity.finish() if integrity is not None else None
    if problem:
        raise S2SError(f"input {path} is not a whole gzip file: {problem}")
    return digest.hexdigest()
