"""Publishing outputs: a file or a folder appears whole, or not at all, locally or on any filesystem Beam reaches.

Scheduled jobs get killed. Every output s2s writes goes to a temporary name
first and takes its real name once complete, so a crash leaves either the
previous good output or nothing:

- a local file: a private temporary file in the same folder, flushed to
  disk and renamed over the target (`atomic_open`, `write_json`,
  `publish_text`, `publish_stream`, `publish_lines`, `publish_written`);
- a file on an object store or HDFS (`gs://`, `s3://`, `hdfs://`): written
  under `PATH.tmp-XXXX`, then renamed (a copy and a delete there) through
  Beam's FileSystems, imported only for such a path;
- a local folder: swapped in whole with Linux's `renameat2(RENAME_EXCHANGE)`,
  or two renames where the system lacks it (`replace_directory`).

A rename replaces a link at the target path, never the file it points to.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO, Any, TypeVar

from s2s.errors import S2SError

logger = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEME = re.compile(r"[a-zA-Z][-a-zA-Z0-9+.]*://")  # as Beam's FileSystems.get_scheme recognises one
_COPY_CHUNK = 1 << 22
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def is_local(path: str | Path) -> bool:
    """True for a path on this machine's filesystem, False for a URL Beam's FileSystems serves (gs://, s3://, hdfs://...)."""
    return not _SCHEME.match(str(path))


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Opens a temporary file beside the local `path`; renames it over `path` if the block succeeds.

    A failure of the file system (a full disk, a read-only mount) is an
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


def write_json(path: str | Path, value: Any) -> None:
    """Writes `value` as indented, key-sorted UTF-8 JSON, whole, at a local or remote `path`."""
    publish_text(path, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def publish_text(path: str | Path, text: str) -> None:
    """Writes a text file whole, at a local or remote `path`."""
    publish_stream(path, io.BytesIO(text.encode("utf-8")))


def publish_stream(path: str | Path, stream: IO[bytes]) -> None:
    """Copies a readable binary stream to a local or remote `path` under a temporary name, then renames it into place."""
    if is_local(path):
        with atomic_open(path, "wb") as target:
            shutil.copyfileobj(stream, target, _COPY_CHUNK)
        return
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    path = str(path)
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


def publish_written(path: str | Path, write: Callable[[IO[bytes]], T]) -> T:
    """Publishes what `write` writes to a binary stream, whole, at a local or remote `path`; returns what `write` returns.

    A local file is written once, straight into the temporary file that is renamed into place; a remote one is spooled
    to a local temporary file first and copied, as `publish_stream` does.
    """
    if is_local(path):
        with atomic_open(path, "wb") as target:
            return write(target)
    with tempfile.TemporaryFile() as spool:
        result = write(spool)
        spool.seek(0)
        publish_stream(path, spool)
    return result


def publish_lines(path: str | Path, lines: Iterable[str]) -> int:
    """Writes lines (each without its newline) to a local or remote `path` as UTF-8 text, whole; returns how many."""

    def write(stream: IO[bytes]) -> int:
        count = 0
        for line in lines:
            stream.write(line.encode("utf-8") + b"\n")
            count += 1
        return count

    return publish_written(path, write)


def fill_missing(paths: Iterable[str], empty: bytes = b"") -> None:
    """Writes `empty` (an empty file of the format) at each path that no step wrote, so a numbered set of shards is complete."""
    for path in paths:
        if not exists(path):
            publish_stream(path, io.BytesIO(empty))


def exists(path: str | Path) -> bool:
    """Whether a local or remote file exists."""
    if is_local(path):
        return os.path.exists(path)
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.exists(str(path))


def delete_files(*paths: str) -> None:
    """Deletes those of `paths` that exist, local or remote."""
    local = [path for path in paths if is_local(path)]
    for path in local:
        Path(path).unlink(missing_ok=True)
    remote = [path for path in paths if not is_local(path)]
    if remote:
        from apache_beam.io.filesystems import FileSystems

        present = [path for path in remote if FileSystems.exists(path)]
        if present:
            FileSystems.delete(present)


def leftover_temporary_files(pattern: str) -> list[str]:
    """The temporary files a killed writer left for the outputs a glob `pattern` names (its wildcards in the last part).

    They carry the names this module gives them: `.NAME.XXXX.tmp` beside a local output, `PATH.tmp-XXXX` remotely.
    """
    if is_local(pattern):
        target = Path(pattern)
        return [str(path) for path in target.parent.glob(f".{target.name}.*.tmp")]
    from apache_beam.io.filesystems import FileSystems

    return [metadata.path for metadata in FileSystems.match([f"{pattern}.tmp-*"])[0].metadata_list]


def replace_directory(new: Path, target: Path, *, keep_others: bool = False) -> None:
    """Puts the complete local directory `new` at `target`, replacing whatever directory is there, in one atomic step where possible.

    Args:
        keep_others: carry the files of the old directory that `new` lacks into it first (as hard links, or copies
            across filesystems), for a folder shared with files s2s did not write.
    """
    if keep_others and target.is_dir():
        for old in target.iterdir():
            if old.is_file() and not old.is_symlink() and not (new / old.name).exists():
                try:
                    os.link(old, new / old.name)
                except OSError:
                    shutil.copy2(old, new / old.name)
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        os.replace(new, target)  # an absent or empty target: one rename
        return
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old directory
        return
    logger.debug("no atomic exchange on this system: replacing %s with two renames", target)
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(first: Path, second: Path) -> bool:
    """Swaps two existing paths atomically; False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


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


def _finish(step: Any, path: Path) -> None:
    """Runs one step of publishing `path`, turning a file-system failure into an S2SError that names it."""
    try:
        step()
    except OSError as error:
        raise S2SError(f"cannot write {path}: {error.strerror or error}") from None
