"""One owner per output: an exclusive, non-blocking lock file that refuses a planted link, shared by every stage that writes.

`s2s translate` locks `OUTPUT.lock`, `s2s prepare` `.DIR.lock` beside its
output folder, and `s2s run` `RUN_DIR/.lock`. A second run aimed at the same
output is refused at once with the holder's pid (exit status 75, "try again
later"), instead of both writing. The lock file is opened without following
links and must be a regular file: s2s runs as root in many schedulers, and a
symlink planted at the lock's path must not make it truncate another file.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from s2s.errors import BusyError, S2SError
from s2s.files import open_no_follow


@contextmanager
def exclusive_lock(lock_path: Path, busy: str) -> Iterator[None]:
    """Holds `lock_path` (created if absent, removed on exit) while the block runs.

    Args:
        busy: the message when another process holds it, with `{pid}` where the holder's pid goes.

    Raises:
        BusyError: another process holds the lock.
        S2SError: the lock's path is a link or not a regular file, or cannot be created.
    """
    while True:
        descriptor = open_no_follow(lock_path, os.O_RDWR | os.O_CREAT)
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise S2SError(f"lock file {lock_path} is not a regular file: remove it")
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(descriptor)
            raise BusyError(busy.replace("{pid}", holder)) from None  # not format(): paths may hold braces
        try:  # the holder before us may have removed the lock file after we opened it: lock the file that is there
            if os.lstat(lock_path).st_ino == os.fstat(descriptor).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(descriptor)
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, str(os.getpid()).encode(), 0)
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        os.close(descriptor)
