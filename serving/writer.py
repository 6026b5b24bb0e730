"""The file translation loop: a corpus of any size streamed through the engine into one output, in order, resumably.

- Streaming: lines are read in windows of `FileJob.window` lines (default
  16,384 lines or 16 batches, `resolve_window`); memory holds a few windows,
  whatever the corpus size.
- Order: output line i is the translation of input line i. Inside a window
  sources are sorted by length for batching, then put back in order.
- Resumable and owned: see `s2s.serving.resume`.
- Not every output is a file to replace: a device (`/dev/null`), a FIFO or
  `/dev/stdout` is written straight through, with no partial file, rename,
  lock or resume. An input that is the output is refused before any work.
- Inputs: see `s2s.serving.inputs`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from s2s.config import log_config
from s2s.errors import S2SError
from s2s.publish import atomic_open
from s2s.serving.engine import Engine
from s2s.serving.file_job import FileJob, FileWindow
from s2s.serving.formats import JSONL, render
from s2s.serving.inputs import STDIO, LineWindows, check_compressed_inputs, decoded_sources, input_files, is_stream
from s2s.serving.progress import ProgressCallback
from s2s.serving.resume import PartialOutput, fingerprint, output_lock
from s2s.serving.stats import TranslationStats
from s2s.serving.windows import SourceWindow, WindowTranslations

logger = logging.getLogger(__name__)


def write_translations(
    engine: Engine,
    input_path: str,
    output_path: str,
    job: FileJob,
    *,
    summary_path: str | None = None,
    progress: ProgressCallback | None = None,
) -> TranslationStats:
    """Translates every line of `input_path` (a file, a glob or "-") into `output_path` (a file or "-"); see the module docstring.

    Args:
        summary_path: where the run summary JSON goes; default OUTPUT.summary.json (none for "-").
        progress: called after each window is written.

    Raises:
        S2SError: a bad job, a missing or unreadable input, an output that is a directory, an input or a link to a device,
            or an output file system that fails.
    """
    job.validate()
    engine.validated(job.options)  # before any work
    paths = input_files(input_path)
    check_compressed_inputs(paths)
    if output_path != STDIO:
        _check_output(output_path, paths)
    stats = TranslationStats(device=engine.device, model_id=engine.model_id)
    started = time.perf_counter()
    special = output_path != STDIO and is_special_output(output_path)
    if special and os.path.islink(output_path) and not os.path.abspath(output_path).startswith("/dev/"):
        raise S2SError(f"output {output_path} is a symbolic link to a device or pipe: s2s does not write through links; name it directly")
    try:
        if output_path == STDIO:
            _translate_stream(engine, paths, sys.stdout.buffer, stats, job, skip=0, partial=None, progress=progress)
        elif special:
            with open(output_path, "wb") as stream:
                _translate_stream(engine, paths, stream, stats, job, skip=0, partial=None, progress=progress)
        else:
            output = Path(output_path)
            output.parent.mkdir(parents=True, exist_ok=True)
            with output_lock(output):
                _translate_to_file(engine, paths, output, stats, job, progress)
    except BrokenPipeError:
        raise  # the reader of standard output went away: the command line exits quietly
    except OSError as error:  # reading errors are S2SErrors already: this is the output's file system (full, read-only)
        raise S2SError(f"cannot write {'standard output' if output_path == STDIO else output_path}: {error.strerror or error}") from None
    stats.seconds = time.perf_counter() - started
    _warn_once(stats, job, engine.info.max_source_length)
    if (output_path != STDIO and not special) or summary_path:
        with atomic_open(summary_path or f"{output_path}.summary.json") as stream:
            json.dump(stats.to_dict(), stream, indent=2)
    return stats


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


def _warn_once(stats: TranslationStats, job: FileJob, max_source_length: int) -> None:
    """Once per run, with the count: a cut translation or a long input line must not pass unseen in a summary file."""
    if stats.cut_translations:
        logger.warning(
            "%d translations reached their length limit without ending and may be cut short (cut_translations in the summary%s)",
            stats.cut_translations,
            "; \"cut\": true in the output" if job.input_format == JSONL else "",
        )
    if stats.long_lines:
        what = {"split": "split at sentence ends and their translations joined", "truncate": "cut to it"}[job.options.long_lines]
        logger.warning("%d lines were longer than the model's %d characters: %s", stats.long_lines, max_source_length, what)


def _translate_to_file(engine: Engine, paths: list[str], output: Path, stats: TranslationStats, job: FileJob, progress: ProgressCallback | None) -> None:
    streams = [path for path in paths if is_stream(path)]
    if streams:
        logger.info("input %s is a stream: this run cannot resume if it is interrupted", streams[0])
    partial = PartialOutput(output, "" if streams else fingerprint(paths, engine.model_id, job))
    stream, skip = partial.open(stats)
    with partial.removed_unless_checkpointed(), stream:
        _translate_stream(engine, paths, stream, stats, job, skip=skip, partial=partial, progress=progress)
    partial.publish()


def _translate_stream(
    engine: Engine,
    paths: list[str],
    stream: IO[bytes],
    stats: TranslationStats,
    job: FileJob,
    *,
    skip: int,
    partial: PartialOutput | None,
    progress: ProgressCallback | None,
) -> None:
    """Writes the translations of the inputs after their first `skip` lines to `stream`, checkpointing into `partial` when given."""
    # Logged once the arguments are known good and the output is ours, so that a refusal is the only line printed.
    resolved = {"device": engine.device, "precision": engine.precision, "inter_threads": engine.inter_threads, "intra_threads": engine.intra_threads}
    log_config(logger, "translate", job, resolved={**resolved, "model": str(engine.model_dir)})
    started = time.perf_counter()
    lines_done = skip  # resuming: these lines were translated before the interruption
    windows = LineWindows(paths, job.window, skip)
    input_bytes = 0  # the input bytes of the windows written; the skipped lines' bytes are added once they are read
    phases = dict.fromkeys(("read_and_prepare", "decode", "write"), 0.0)  # seconds in each, for the summary and benchmarks

    def source_windows() -> Iterator[SourceWindow[FileWindow]]:
        """The input's windows as sources; runs on the engine's prefetch thread, so reading overlaps decoding."""
        for chunk in windows:
            counts = TranslationStats()  # this window's counts, added to the run's only once it is written
            size = sum(map(len, chunk)) + len(chunk)  # line ends included, as in the file
            sources, records = decoded_sources(chunk, job, counts)
            yield SourceWindow(sources, counts, FileWindow(len(chunk), size, records))

    def write(translated: WindowTranslations, window: SourceWindow[FileWindow]) -> None:
        nonlocal lines_done, input_bytes
        bookkeeping = window.bookkeeping
        assert bookkeeping is not None  # every window above carries one
        phase_started = time.perf_counter()
        stream.write(render(translated, bookkeeping.records, job))
        phases["write"] += time.perf_counter() - phase_started
        stats.add(window.counts)
        lines_done += bookkeeping.lines
        input_bytes += bookkeeping.size
        if partial is not None:
            partial.save(stream, lines_done, stats)
        if progress is not None:
            progress(lines_done, time.perf_counter() - started, windows.skipped_bytes + input_bytes)

    # A writer thread writes window k-1 (and its checkpoint) while window k decodes, one window at a time and in order, so
    # output, checkpoints and bytes are those of a sequential run.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2s-writer") as writer:
        written: Future | None = None
        for window, translated in engine.translate_windows(source_windows(), job.batch_size, job.options, phases, batch_type=job.batch_type):
            if written is not None:
                written.result()  # raises a write error here, not later
            written = writer.submit(write, translated, window)
        if written is not None:
            written.result()
    stream.flush()
    # The prefetch and writer threads overlap the decoding: the phases can sum to more than the run's seconds.
    stats.extra["seconds_by_phase"] = {name: round(seconds, 3) for name, seconds in phases.items()}
