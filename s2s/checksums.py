"""SHA-256 checksums of files, directory trees and settings: how `s2s run` knows what changed.

A scheduled chain skips a stage only when its inputs and settings hash to the
value recorded at its last success and every output file still hashes to what
was recorded, so an edited, truncated or deleted output is noticed and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of one file's bytes, streamed (inputs may be gigabytes)."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def tree_checksums(directory: str | Path) -> dict[str, str]:
    """SHA-256 of every file under `directory`, keyed by its POSIX path relative to it, in sorted order.

    Hidden entries (a leading dot: staging folders, temporary files) are not outputs and are left out.
    """
    root = Path(directory)
    checksums: dict[str, str] = {}
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                path = Path(folder) / name
                checksums[path.relative_to(root).as_posix()] = file_sha256(path)
    return dict(sorted(checksums.items()))


def value_digest(value: Any) -> str:
    """SHA-256 of a JSON-serialisable value in canonical form (sorted keys): settings, checksum tables."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
