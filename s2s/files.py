"""Atomic local file writes: a reader sees the old file or the new one, never half of one.

Scheduled jobs get killed. Every file s2s writes goes to a temporary name in
the same directory first and is renamed into place once complete, so a crash
leaves either the previous good output or nothing.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO, Any

from s2s.errors import S2SError


@cache
def _umask() -> int:
    """The process umask, read once when first needed (never at import, which must not touch process state).

    Linux reports it in /proc/self/status; elsewhere the only way to read it is
    to set it and put it back, done once.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def open_no_follow(path: str | Path, flags: int, mode: int = 0o666) -> int:
    """`os.open` that refuses a symbolic link at `path` with one line, instead of writing to whatever it points to.

    s2s often runs as root under a scheduler, in folders others can write to:
    a link planted at an output, partial or lock path must not turn a
    translation into an overwrite of another file.

    Raises:
        S2SError: `path` is a symbolic link, or cannot be opened (the message names it).
    """
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise S2SError(f"{path} is a symbolic link: s2s does not write through links; remove it or name another path") from None
        raise S2SError(f"cannot open {path}: {error.strerror or error}") from None


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Opens a temporary file beside `path`; renames it over `path` if the block succeeds.

    The rename replaces a link at `path`, never the file it points to. A
    failure of the file system (a full disk, a read-only mount) is an
    S2SError naming `path`; the block's own exceptions pass through as they are.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.chmod(temp_name, 0o666 & ~_umask())  # mkstemp makes 0600; a published file gets the usual mode
    except OSError as error:
        raise S2SError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        with os.fdopen(handle, mode, encoding=None if "b" in mode else encoding) as stream:
            yield stream
            _finish(stream.flush, path)
            _finish(lambda: os.fsync(stream.fileno()), path)
        _finish(lambda: os.replace(temp_name, path), path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _finish(step: Any, path: Path) -> None:
    """Runs one step of publishing `path`, turning a file-system failure into an S2SError that names it."""
    try:
        step()
    except OSError as error:
        raise S2SError(f"cannot write {path}: {error.strerror or error}") from None


def write_json(path: str | Path, value: Any) -> None:
    """Writes `value` as indented, key-sorted UTF-8 JSON, atomically."""
    with atomic_open(path) as stream:
        json.dump(value, stream, indent=2, sort_keys=True, ensure_ascii=False)
        stream.write("\n")


def read_json(path: str | Path) -> Any:
    """Reads a JSON file written by `write_json`."""
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)
