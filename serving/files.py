"""`Translator.translate_file`'s engine: stream a corpus of any size through a Translator, resumably.

- Streaming: lines are read in windows of `window` lines (default 16 batches);
  memory holds one window, whatever the corpus size.
- Order: output line i is the translation of input line i. Inside a window
  sources are sorted by length for batching, then put back in order.
- Every line is accounted for: an empty line gives an empty line; invalid
  UTF-8 is decoded with replacement characters and counted; a TSV line
  without the asked column translates as empty and is counted.
- Resumable: output goes to `OUTPUT.partial`, and after every window a
  checkpoint `OUTPUT.partial.json` records the lines and bytes done. A run
  killed at any moment and started again with the same arguments truncates
  the partial file to the last checkpoint and carries on; windows fall on
  the same lines, so the result is byte-identical to an uninterrupted run.
  `OUTPUT` appears, by rename, only when complete.
- One owner: a run holds `OUTPUT.lock` (an flock) while it writes; a second
  run aimed at the same output is refused with the holder's pid.
- Not every output is a file to replace: a device (`/dev/null`), a FIFO or
  `/dev/stdout` is written straight through, with no partial file, rename,
  lock or resume. An input that is the output is refused before any work.
- Compressed input: a `.gz` file (recognised by its magic bytes) is read
  decompressed, and a corrupt or truncated one is a one-line error naming
  it, never text made of its bytes.
- Pipes and other non-regular inputs (`<(cmd)`, `/dev/null`) are read as
  streams; a run reading one cannot resume, and says so.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import logging
import os
import sys
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from s2s.compression import GzipIntegrity
from s2s.config import check_choice, log_config
from s2s.errors import ConfigError, InputDataError, InputMissingError, S2SError
from s2s.files import atomic_open, open_no_follow
from s2s.lines import MAX_LINE_BYTES, OVERSIZED_LINE, bounded_lines
from s2s.locks import exclusive_lock
from s2s.serving.formats import FORMATS, JSONL, TEXT, Records, render, sources_of
from s2s.serving.long_lines import ERROR
from s2s.serving.options import DecodingOptions
from s2s.serving.stats import COUNTERS, TranslationStats
from s2s.serving.translator import SourceWindow, WindowTranslations

if TYPE_CHECKING:
    from s2s.serving.translator import Translator

STDIO = "-"
GZIP_MAGIC = b"\x1f\x8b"
CONTENT_SAMPLE_BYTES = 1 << 20

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileWindow:
    """A file job's bookkeeping for one window, carried through the translator as `SourceWindow.tag`."""

    lines: int
    size: int  # input bytes, line ends included
    records: Records | None  # what the format keeps of the lines for writing them back


@dataclass(frozen=True)
class FileJob:
    """How one file is translated, resolved: everything that must match for a killed run to resume."""

    batch_size: int  # resolved, never 0
    window: int  # lines read and sorted together, resolved
    options: DecodingOptions
    input_format: str = TEXT
    column: int = 0
    field: str = "source"
    batch_type: str = "examples"

    def check(self) -> None:
        check_choice("format", self.input_format, FORMATS)
        if self.column < 0:
            raise ConfigError(f"--column must be 0 or more, got {self.column}")
        if self.window < 1:
            raise ConfigError(f"the window must be at least 1 line, got {self.window}")
        if self.input_format == TEXT and self.options.rich:
            raise ConfigError("scores, n-best and attention need a format with room for them: use --format tsv or jsonl")


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
            continue  # a stream can be read once only; `_raw_lines` still catches a cut one as it goes
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


def _raw_lines(paths: list[str]) -> Iterator[list[bytes]]:
    """The inputs' lines without their line ends, a block of about a MiB of lines at a time, in order.

    Split by `s2s.lines.bounded_lines`: no Python per line, and a line over
    `MAX_LINE_BYTES` comes as `OVERSIZED_LINE` without being held whole.
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


def _windows(paths: list[str], window: int, skip: int, skipped: dict[str, int] | None = None) -> Iterator[list[bytes]]:
    """Windows of `window` lines counted from the first input line, after the first `skip` lines (a whole number of windows).

    `skipped["bytes"]`, when given, counts the input bytes of the skipped lines (line ends included).
    """
    pending: list[bytes] = []
    to_skip = skip
    for lines in _raw_lines(paths):
        if to_skip:
            dropped = min(to_skip, len(lines))
            if skipped is not None:
                skipped["bytes"] = skipped.get("bytes", 0) + sum(map(len, lines[:dropped])) + dropped
            lines, to_skip = lines[dropped:], to_skip - dropped
        pending += lines
        while len(pending) >= window:
            yield pending[:window]
            del pending[:window]
    if pending:
        yield pending


def _sources_of(raw_lines: list[bytes], job: FileJob, stats: TranslationStats) -> tuple[list[str], Records | None]:
    """The source text of each raw line, and what the format keeps of it for writing (see `s2s.serving.formats`).

    One UTF-8 decode for the whole window, line by line only where it is
    invalid. A line over `MAX_LINE_BYTES` (never read whole) translates as
    empty and is counted as `oversized_lines`, or fails the run under
    `--long-lines error`.
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


def _fingerprint(paths: list[str], translator: Translator, job: FileJob) -> str:
    """What a resumed run must find unchanged: model, settings, and each input's path, size, mtime and content sample.

    The content sample (the whole file up to 2 MiB, else its first and last
    MiB) catches an input edited with its size and mtime kept, as `cp -p` or
    `rsync -t` would.
    """
    digest = hashlib.sha256(json.dumps({"model": translator.model_id, "settings": asdict(job)}, sort_keys=True).encode())
    for path in paths:
        status = os.stat(path)
        digest.update(f"{os.path.abspath(path)}:{status.st_size}:{status.st_mtime_ns}:".encode())
        with open(path, "rb") as stream:
            if status.st_size <= 2 * CONTENT_SAMPLE_BYTES:
                digest.update(hashlib.file_digest(stream, "sha256").digest())
            else:
                digest.update(stream.read(CONTENT_SAMPLE_BYTES))
                stream.seek(status.st_size - CONTENT_SAMPLE_BYTES)
                digest.update(stream.read(CONTENT_SAMPLE_BYTES))
    return digest.hexdigest()


def is_special_output(path: str) -> bool:
    """A device, FIFO or other non-regular output (`/dev/null`, `/dev/stdout`): write through it, never replace it."""
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        return True
    return os.path.abspath(path).startswith("/dev/") or os.path.realpath(path).startswith("/proc/")


def _check_output(output_path: str, paths: list[str]) -> None:
    """Refuses, before any work, an output that is a directory or that is one of the inputs."""
    if os.path.isdir(output_path):
        raise S2SError(f"output {output_path} is a directory: name a file (the translations go into one file)")
    if not os.path.exists(output_path):
        return
    for path in paths:
        if path != STDIO and os.path.samefile(path, output_path):
            raise S2SError(f"input {path} is also the output: writing would destroy it; choose another output")


def _owned(output: Path) -> AbstractContextManager[None]:
    """Holds `OUTPUT.lock` while a run writes OUTPUT, so a second run aimed at it is refused instead of corrupting it."""
    return exclusive_lock(
        output.with_name(output.name + ".lock"), f"output {output} is being written by another s2s translate (pid {{pid}}); wait for it or choose another output"
    )


def write_translations(
    translator: Translator,
    input_path: str,
    output_path: str,
    job: FileJob,
    *,
    summary_path: str | None = None,
    progress: Any = None,
) -> TranslationStats:
    """Translates every line of `input_path` (a file, a glob or "-") into `output_path` (a file or "-"); see the module docstring.

    Args:
        summary_path: where the run summary JSON goes; default OUTPUT.summary.json (none for "-").
        progress: a callable(lines_done, seconds) called after each window, e.g. a progress bar.
    """
    job.check()
    job.options.check(len(translator.info.target_vocabulary))  # before any work
    paths = input_files(input_path)
    check_compressed_inputs(paths)
    if output_path != STDIO:
        _check_output(output_path, paths)
    stats = TranslationStats(device=translator.device, model_id=translator.model_id)
    started = time.perf_counter()
    special = output_path != STDIO and is_special_output(output_path)
    if special and os.path.islink(output_path) and not os.path.abspath(output_path).startswith("/dev/"):
        raise S2SError(f"output {output_path} is a symbolic link to a device or pipe: s2s does not write through links; name it directly")
    try:
        if output_path == STDIO:
            _translate_stream(translator, paths, sys.stdout.buffer, stats, job, skip=0, checkpoint=None, progress=progress)
        elif special:
            with open(output_path, "wb") as stream:
                _translate_stream(translator, paths, stream, stats, job, skip=0, checkpoint=None, progress=progress)
        else:
            output = Path(output_path)
            output.parent.mkdir(parents=True, exist_ok=True)
            with _owned(output):
                _translate_to_file(translator, paths, output, stats, job, progress)
    except BrokenPipeError:
        raise  # the reader of standard output went away: the command line exits quietly
    except OSError as error:  # reading errors are S2SErrors already: this is the output's file system (full, read-only)
        raise S2SError(f"cannot write {'standard output' if output_path == STDIO else output_path}: {error.strerror or error}") from None
    stats.seconds = time.perf_counter() - started
    if stats.cut_translations:  # once per run, with the count: a translation that may be cut short must not pass unseen
        logger.warning(
            "%d translations reached their length limit without ending and may be cut short (cut_translations in the summary%s)",
            stats.cut_translations,
            "; \"cut\": true in the output" if job.input_format == JSONL else "",
        )
    if stats.long_lines:  # once per run, with the count: long input is easy to miss in a summary file
        what = {"split": "split at sentence ends and their translations joined", "truncate": "cut to it"}[job.options.long_lines]
        logger.warning(
            "%d lines were longer than the model's %d characters: %s", stats.long_lines, translator.info.max_source_length, what
        )
    if (output_path != STDIO and not special) or summary_path:
        with atomic_open(summary_path or f"{output_path}.summary.json") as stream:
            json.dump(stats.to_dict(), stream, indent=2)
    return stats


def _translate_to_file(translator: Translator, paths: list[str], output: Path, stats: TranslationStats, job: FileJob, progress: Any) -> None:
    partial = output.with_name(output.name + ".partial")
    checkpoint = output.with_name(output.name + ".partial.json")
    streams = [path for path in paths if is_stream(path)]
    if streams:
        logger.info("input %s is a stream: this run cannot resume if it is interrupted", streams[0])
    fingerprint = "" if streams else _fingerprint(paths, translator, job)
    skip = 0
    try:
        state = json.loads(checkpoint.read_text()) if checkpoint.exists() and partial.exists() else None
        if state and fingerprint and state.get("fingerprint") == fingerprint and partial.stat().st_size < state.get("bytes", 0):
            logger.warning("%s is shorter than its checkpoint records: starting over", partial)
            state = None
        if state and fingerprint and state.get("fingerprint") == fingerprint:
            skip = state["lines_done"]
            restored = state["stats"]
            for name in COUNTERS:
                setattr(stats, name, restored.get(name, 0))
            stats.extra.update(restored.get("extra", {}))
            stats.extra["resumed_at_line"] = skip
            stream = os.fdopen(open_no_follow(partial, os.O_RDWR), "r+b")
            stream.truncate(state["bytes"])
            stream.seek(state["bytes"])
        else:
            checkpoint.unlink(missing_ok=True)  # another run's: this one starts over
            stream = os.fdopen(open_no_follow(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb")
    except OSError as error:
        raise S2SError(f"cannot write {output}: {error.strerror or error}") from None
    with _removed_unless_checkpointed(partial, checkpoint), stream:

        def save_checkpoint(lines_done: int) -> None:
            stream.flush()
            os.fsync(stream.fileno())
            values = {
                "fingerprint": fingerprint,
                "lines_done": lines_done,
                "bytes": stream.tell(),
                "stats": {**stats.counters(), "extra": stats.extra},
            }
            with atomic_open(checkpoint) as handle:
                json.dump(values, handle)

        _translate_stream(translator, paths, stream, stats, job, skip=skip, checkpoint=save_checkpoint, progress=progress)
    os.replace(partial, output)
    checkpoint.unlink(missing_ok=True)


@contextmanager
def _removed_unless_checkpointed(partial: Path, checkpoint: Path) -> Iterator[None]:
    """Deletes the partial file of a run that fails before its first checkpoint: it holds nothing a rerun could resume."""
    try:
        yield
    except BaseException:
        if not checkpoint.exists():
            partial.unlink(missing_ok=True)
        raise


def _translate_stream(
    translator: Translator,
    paths: list[str],
    stream: IO[bytes],
    stats: TranslationStats,
    job: FileJob,
    *,
    skip: int,
    checkpoint: Any,
    progress: Any,
) -> None:
    # Logged once the arguments are known good and the output is ours, so that a refusal is the only line printed.
    log_config(logger, "translate", job, resolved={"device": translator.device, "precision": translator.precision, "model": str(translator.onnx_dir)})
    started = time.perf_counter()
    lines_done = skip  # resuming: these lines were translated before the interruption
    input_bytes: dict[str, int] = {}  # "bytes": the input bytes done, the skipped lines of a resumed run included
    windows = _windows(paths, job.window, skip, input_bytes)

    phases = dict.fromkeys(("read_and_prepare", "decode", "write"), 0.0)  # seconds in each, for the summary and benchmarks

    def source_windows() -> Iterator[SourceWindow]:
        """The input's windows as sources; runs on the translator's prefetch thread, so reading overlaps decoding."""
        for chunk in windows:
            counts = TranslationStats()  # this window's counts, added to the run's only once it is written
            size = sum(map(len, chunk)) + len(chunk)  # line ends included, as in the file
            sources, records = _sources_of(chunk, job, counts)
            yield SourceWindow(sources, counts, FileWindow(len(chunk), size, records))

    def write(translated: WindowTranslations, window: SourceWindow) -> None:
        nonlocal lines_done
        tag: FileWindow = window.tag
        lines, size = tag.lines, tag.size
        phase_started = time.perf_counter()
        stream.write(render(translated, tag.records, job))
        phases["write"] += time.perf_counter() - phase_started
        stats.add(window.counts)
        lines_done += lines
        input_bytes["bytes"] = input_bytes.get("bytes", 0) + size
        if checkpoint is not None:
            checkpoint(lines_done)
        if progress is not None:
            progress(lines_done, time.perf_counter() - started, input_bytes["bytes"])

    # Built on the translator's streaming loop, as translate_iterable is; a writer thread writes window k-1 (and its
    # checkpoint) while window k decodes, one window at a time and in order, so output, checkpoints and bytes are those
    # of a sequential run.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2s-writer") as writer:
        written: Future | None = None
        translated_windows = translator.translate_windows(source_windows(), job.batch_size, job.options, phases, batch_type=job.batch_type)
        for window, translated in translated_windows:
            if written is not None:
                written.result()  # raises a write error here, not later
            written = writer.submit(write, translated, window)
        if written is not None:
            written.result()
    stream.flush()
    # The prefetch and writer threads overlap the decoding: the phases can sum to more than the run's seconds.
    stats.extra["seconds_by_phase"] = {name: round(seconds, 3) for name, seconds in phases.items()}
