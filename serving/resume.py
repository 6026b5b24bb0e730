"""One owner per output file, and resuming a killed run where its last checkpoint left off.

- One owner: a run holds `OUTPUT.lock` (an flock) while it writes; a second
  run aimed at the same output is refused with the holder's pid.
- Resumable: output goes to `OUTPUT.partial`, and after every window a
  checkpoint `OUTPUT.partial.json` records the lines and bytes done. A run
  killed at any moment and started again with the same arguments truncates
  the partial file to the last checkpoint and carries on; windows fall on
  the same lines, so the result is byte-identical to an uninterrupted run.
  `OUTPUT` appears, by rename, only when complete.
- The fingerprint decides what "the same arguments" means: the model, the
  resolved job and each input's path, size, mtime and a sample of its bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import IO

from s2s.errors import S2SError
from s2s.files import open_no_follow
from s2s.locks import exclusive_lock
from s2s.publish import atomic_open
from s2s.serving.file_job import FileJob
from s2s.serving.stats import COUNTERS, TranslationStats

CONTENT_SAMPLE_BYTES = 1 << 20

logger = logging.getLogger(__name__)


def output_lock(output: Path) -> AbstractContextManager[None]:
    """Holds `OUTPUT.lock` while a run writes OUTPUT, so a second run aimed at it is refused instead of corrupting it."""
    return exclusive_lock(
        output.with_name(output.name + ".lock"), f"output {output} is being written by another s2s translate (pid {{pid}}); wait for it or choose another output"
    )


def fingerprint(paths: list[str], model_id: str, job: FileJob) -> str:
    """What a resumed run must find unchanged: model, settings, and each input's path, size, mtime and content sample.

    The content sample (the whole file up to 2 MiB, else its first and last
    MiB) catches an input edited with its size and mtime kept, as `cp -p` or
    `rsync -t` would.
    """
    digest = hashlib.sha256(json.dumps({"model": model_id, "settings": asdict(job)}, sort_keys=True).encode())
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


class PartialOutput:
    """`OUTPUT.partial` and its checkpoint `OUTPUT.partial.json`: opened fresh or resumed, saved per window, published whole.

    Args:
        output: the file the translations end up in.
        fingerprint: the run's `fingerprint`; "" for a run that cannot resume (a stream input), which starts over.
    """

    def __init__(self, output: Path, fingerprint: str):
        self.output, self.fingerprint = output, fingerprint
        self.partial = output.with_name(output.name + ".partial")
        self.checkpoint = output.with_name(output.name + ".partial.json")

    def open(self, stats: TranslationStats) -> tuple[IO[bytes], int]:
        """The partial file, positioned where writing goes on, and the input lines already done (restoring their counts into `stats`).

        Raises:
            S2SError: the partial file cannot be opened, or is a symbolic link.
        """
        try:
            state = json.loads(self.checkpoint.read_text()) if self.checkpoint.exists() and self.partial.exists() else None
            if state and self.fingerprint and state.get("fingerprint") == self.fingerprint and self.partial.stat().st_size < state.get("bytes", 0):
                logger.warning("%s is shorter than its checkpoint records: starting over", self.partial)
                state = None
            if state and self.fingerprint and state.get("fingerprint") == self.fingerprint:
                skip = state["lines_done"]
                restored = state["stats"]
                for name in COUNTERS:
                    setattr(stats, name, restored.get(name, 0))
                stats.extra.update(restored.get("extra", {}))
                stats.extra["resumed_at_line"] = skip
                stream = os.fdopen(open_no_follow(self.partial, os.O_RDWR), "r+b")
                stream.truncate(state["bytes"])
                stream.seek(state["bytes"])
                return stream, skip
            self.checkpoint.unlink(missing_ok=True)  # another run's: this one starts over
            return os.fdopen(open_no_follow(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb"), 0
        except OSError as error:
            raise S2SError(f"cannot write {self.output}: {error.strerror or error}") from None

    def save(self, stream: IO[bytes], lines_done: int, stats: TranslationStats) -> None:
        """Records, after the window's bytes are on disk, how many lines and bytes are done and the counts so far."""
        stream.flush()
        os.fsync(stream.fileno())
        values = {"fingerprint": self.fingerprint, "lines_done": lines_done, "bytes": stream.tell(), "stats": {**stats.counters(), "extra": stats.extra}}
        with atomic_open(self.checkpoint) as handle:
            json.dump(values, handle)

    @contextmanager
    def removed_unless_checkpointed(self) -> Iterator[None]:
        """Deletes the partial file of a run that fails before its first checkpoint: it holds nothing a rerun could resume."""
        try:
            yield
        except BaseException:
            if not self.checkpoint.exists():
                self.partial.unlink(missing_ok=True)
            raise

    def publish(self) -> None:
        """Renames the complete partial file to the output and drops its checkpoint."""
        os.replace(self.partial, self.output)
        self.checkpoint.unlink(missing_ok=True)
