"""The `s2s` command line run inside the test process, and the one-line-error check every CLI test shares.

Starting a Python process per CLI call costs about a second and a half of
interpreter start and imports; most CLI tests only need what `main(argv)`
returns and prints. Tests that need a real process (a kill, a signal, file
descriptors, a clean interpreter, an installed wheel) still start one.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# 1 a failure, 2 usage or config, 65 bad data, 66 missing input, 75 busy: see test_reliability_hostile for which is which
ERROR_STATUSES = (1, 2, 65, 66, 75)


@dataclass
class CliResult:
    """What a finished `s2s` call left: its exit status and everything it wrote, as `subprocess.CompletedProcess` holds it."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path = REPO, stdin: str = "") -> CliResult:
    """Runs `s2s ARGS` through `s2s.app.cli.main` in this process, with its own standard streams and working directory.

    An exception that escapes `main` is written to stderr as a traceback with
    status 1, as the interpreter would, so "no traceback" checks still fail
    when the code is wrong.
    """
    from s2s.app.cli import main

    stdout, stderr = _byte_stream(), _byte_stream()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8")), encoding="utf-8")
    sys.stdout, sys.stderr = stdout, stderr
    try:
        with contextlib.chdir(cwd):
            status = main(list(args))
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    except Exception:
        traceback.print_exc(file=stderr)
        status = 1
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return CliResult(status, _text(stdout), _text(stderr))


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    """A refusal: an error status, no traceback, and one line of stderr that holds every fragment."""
    assert result.returncode in ERROR_STATUSES and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("s2s"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def scheduler_environment() -> dict[str, str]:
    """The environment a scheduler starts a job in: without the TF_CPP_MIN_LOG_LEVEL that conftest sets for the suite."""
    return {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}


def assert_only_s2s_log_lines(log: str) -> None:
    """Every non-blank line is in s2s's log format: Beam's workers once added "apitools not found" and "Logging handler
    created", and oneDNN on CPUs without AVX-512 an "E0000 ... DT_BOOL" line when training starts."""
    s2s_line = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) ")
    foreign = [line for line in log.splitlines() if line.strip() and not s2s_line.match(line)]
    assert not foreign, foreign


def _byte_stream() -> io.TextIOWrapper:
    """A text stream over bytes (`.buffer` works, as `-o -` needs), writing through so text and bytes keep their order."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    return stream.buffer.getvalue().decode("utf-8", errors="replace")
