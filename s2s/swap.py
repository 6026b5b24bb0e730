"""Replacing a whole local directory in one step, so a reader (or a crash) sees the old one or the new one, never a mix.

Linux's `renameat2(RENAME_EXCHANGE)` swaps two paths atomically; the new
directory takes the old one's place and the old one, now at the staging
path, is deleted afterwards. Where the call is missing (another OS, an old
kernel or a filesystem without it), two renames do the job with a window of
microseconds in which the path is absent, never half-written.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


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


def replace_directory(new: Path, target: Path) -> None:
    """Puts the complete directory `new` at `target`, replacing whatever directory is there, in one atomic step where possible."""
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
