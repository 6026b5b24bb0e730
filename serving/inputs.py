"""Reading translation inputs: files, globs, standard input and pipes, plain or gzip, as windows of decoded sources.

- Every line is accounted for: an empty line is a source of its own;
  invalid UTF-8 is decoded with replacement characters and counted; a line
  over `MAX_LINE_BYTES` is never held whole and translates as empty.
- Compressed input: a `.gz` file (recognised by its magic bytes) is read
  decompressed, and a corrupt or truncated one is a one-line error naming
  it, never text made of its bytes.
- Pipes and other non-regular inputs (`<(cmd)`, `/dev/null`) are streams:
  read once, so a run reading one cannot resume.
"""

from __future__ import annotations

import glob
import gzip
import os
import sys
import zlib
from collections.abc import Iterator
from typing import IO

from s2s.compression import GzipIntegrity
from s2s.errors import InputDataError, InputMissingError, S2SError
from s2s.lines import MAX_LINE_BYTES, OVERSIZED_LINE, bounded_lines
from s2s.serving.file_job import FileJob
from s2s.serving.formats import Records, sources_of
from s2s.serving.long_lines import ERROR
from s2s.serving.stats import TranslationStats

STDIO = "-"
GZIP_MAGIC = b"\x1f\x8b"


def input_files(pattern: str) -> list[str]:
    """The files a path or glob names, sorted; "-" is standard input.

    Raises:
        S2SError: nothing matches, or a match is a directory, missing or unreadable.
    """
    if pattern == STDIO:
        return [STDIO]
    paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    if not paths:
        raise InputMissingError(f"input {pattern} matches no file")
    for path in paths:
        if os.path.isdir(path):
            raise S2SError(f"input {path} is a directory: name the files in it, or a glob such as {os.path.join(path, '*.txt')}")
        if not os.path.exists(path):
            raise InputMissingError(f"input {path} does not exist")
        if not os.access(path, os.R_OK):
            raise S2SError(f"input {path} is not readable")
    return paths


def input_size(pattern: str) -> int | None:
    """The inputs' total size in bytes when every one is a regular, uncompressed file (what a progress bar can count), else None."""
    try:
        paths = input_files(pattern)
    except S2SError:
        return None  # the run itself reports it
    if any(is_stream(path) for path in paths):
        return None
    for path in paths:
        with open(path, "rb") as stream:
            if stream.read(len(GZIP_MAGIC)) == GZIP_MAGIC:
                return None  # progress counts decompressed bytes; the file's size would not match
    return sum(os.path.getsize(path) for path in paths)


def check_compressed_inputs(paths: list[str]) -> None:
    """Reads each regular gzip input to its end marker before any work, so a cut file fails first, not after hours.

    Raises:
        S2SError: a gzip input is corrupt or cut short.
    """
    for path in paths:
        if is_stream(path):
            continue  # a stream can be read once only; `line_blocks` still catches a cut one as it goes
        with open(path, "rb") as stream:
            if stream.read(len(GZIP_MAGIC)) != GZIP_MAGIC:
                continue
            stream.seek(0)
            integrity = GzipIntegrity()
            while chunk := stream.read(1 << 20):
                integrity.feed(chunk)
        problem = integrity.finish()
        if problem:
            raise InputDataError(f"input {path} is a corrupt or truncated gzip file ({problem})")


def is_stream(path: str) -> bool:
    """Standard input or a non-regular file (a pipe, `<(cmd)`, a device): read once, so never resumed."""
    return path == STDIO or not os.path.isfile(path)


def line_blocks(paths: list[str]) -> Iterator[list[bytes]]:
    """The inputs' lines without their line ends, a block of about a MiB of lines at a time, in order.

    Split by `s2s.lines.bounded_lines`: no Python per line, and a line over
    `MAX_LINE_BYTES` comes as `OVERSIZED_LINE` without being held whole.

    Raises:
        InputDataError: a corrupt or truncated gzip input.
        S2SError: an input that cannot be read.
    """
    for path in paths:
        stream: IO[bytes] = sys.stdin.buffer if path == STDIO else open(path, "rb")  # noqa: SIM115 - closed below
        name = "standard input" if path == STDIO else path
        try:
            if stream.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)] == GZIP_MAGIC:
                stream = gzip.GzipFile(fileobj=stream, mode="rb")
            # read1: a pipe's lines are translated as they come, not per MiB
            yield from bounded_lines(stream.read1, strip_carriage_returns=True)
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:  # EOFError: the stream ended before gzip's end marker
            raise InputDataError(f"input {name} is a corrupt or truncated gzip file ({error})") from None
        except OSError as error:
            raise S2SError(f"cannot read input {name}: {error.strerror or error}") from None
        finally:
            if path != STDIO:
                stream.close()


class LineWindows:
    """Windows of `window` raw lines counted from the first input line, after the first `skip` lines (a whole number of windows).

    Iterate it once; `skipped_bytes` then holds the input bytes of the skipped lines (line ends included), so a resumed
    run's progress counts from where the input really is.
    """

    def __init__(self, paths: list[str], window: int, skip: int = 0):
        self.paths, self.window, self.skip = paths, window, skip
        self.skipped_bytes = 0

    def __iter__(self) -> Iterator[list[bytes]]:
        pending: list[bytes] = []
        to_skip = self.skip
        for lines in line_blocks(self.paths):
            if to_skip:
                dropped = min(to_skip, len(lines))
                self.skipped_bytes += sum(map(len, lines[:dropped])) + dropped
                lines, to_skip = lines[dropped:], to_skip - dropped
            pending += lines
            while len(pending) >= self.window:
                yield pending[: self.window]
                del pending[: self.window]
        if pending:
            yield pending


def decoded_sources(raw_lines: list[bytes], job: FileJob, stats: TranslationStats) -> tuple[list[str], Records | None]:
    """The source text of each raw line, and what the format keeps of it for writing (see `s2s.serving.formats`).

    One UTF-8 decode for the whole window, line by line only where it is
    invalid. A line over `MAX_LINE_BYTES` (never read whole) translates as
    empty and is counted as `oversized_lines`, or fails the run under
    `--long-lines error`.

    Raises:
        InputDataError: an oversized line under `--long-lines error`.
    """
    if OVERSIZED_LINE in raw_lines:
        if job.options.long_lines == ERROR:
            raise InputDataError(f"an input line is longer than {MAX_LINE_BYTES} bytes: use --long-lines split or truncate")
        oversized = raw_lines.count(OVERSIZED_LINE)
        stats.extra["oversized_lines"] = stats.extra.get("oversized_lines", 0) + oversized
        raw_lines = [b"" if line == OVERSIZED_LINE else line for line in raw_lines]
    try:
        texts = b"\n".join(raw_lines).decode("utf-8").split("\n")
    except UnicodeDecodeError:
        texts = []
        for raw in raw_lines:
            try:
                texts.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                texts.append(raw.decode("utf-8", errors="replace"))
                stats.invalid_utf8_lines += 1
    return sources_of(texts, job, stats)
