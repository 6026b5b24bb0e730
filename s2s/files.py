"""Opening local files safely: never through a planted symbolic link; and reading back the JSON s2s writes.

Writing an output whole is `s2s.publish`'s job.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

from s2s.errors import S2SError


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


def read_json(path: str | Path) -> Any:
    """Reads a JSON file written by `write_json`."""
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)
