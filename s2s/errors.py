"""The one exception type the command line turns into a one-line message, and the helpers that make one line of others."""

from __future__ import annotations

import re

# Exit codes by cause, so a scheduler can tell "fix the config" from "the data is bad" from "try again later".
# Values follow sysexits.h where it has one; 2 is argparse's own for a bad command line.
EXIT_FAILURE = 1  # a stage failed: look at the one-line error
EXIT_USAGE = 2  # the command line or a config value is wrong: fix it, retrying will not help
EXIT_DATA = 65  # EX_DATAERR: an input or a model file is damaged or malformed
EXIT_NO_INPUT = 66  # EX_NOINPUT: an input or a model does not exist (yet)
EXIT_BUSY = 75  # EX_TEMPFAIL: another run holds the output; try again later
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C), as a shell reports it
EXIT_TERMINATED = 143  # SIGTERM (a scheduler's stop), as a shell reports it
EXIT_BROKEN_PIPE = 141  # SIGPIPE: the reader of standard output went away (`| head`)


class S2SError(Exception):
    """A problem the user can fix: bad input, bad config, unwritable output.

    The message names what is wrong and, where it can, the fix. The CLI prints
    it as `s2s: error: <message>` and exits with the class's `exit_code`,
    without a traceback.
    """

    exit_code = EXIT_FAILURE


class ConfigError(S2SError):
    """A flag, a config file or a setting is wrong: the command will fail the same way until it is changed."""

    exit_code = EXIT_USAGE


class InputDataError(S2SError):
    """An input file or a model file is there but damaged or malformed: fix or replace the data."""

    exit_code = EXIT_DATA


class InputMissingError(S2SError):
    """An input file or a model does not exist: an upstream job may not have written it yet."""

    exit_code = EXIT_NO_INPUT


class BusyError(S2SError):
    """Another run holds the output: the same command can succeed later."""

    exit_code = EXIT_BUSY


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM, so a stopped run unwinds (records, unlocks) as Ctrl-C does."""


_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit)): (.+)$", re.MULTILINE)
_BEAM_STEP = re.compile(r"\[while running '([^']+)'\]")
_BEAM_STEP_SUFFIX = " [while running"


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def pipeline_failure(error: BaseException, what: str) -> S2SError:
    """One line for a failed Beam pipeline: the step and the original cause, not the runner's pages of tracebacks.

    Beam wraps a worker's exception in a RuntimeError whose message holds the
    whole remote traceback; the original exception is the first
    `SomeError: message` line in it, and the step is named in
    `[while running 'Step']`.
    """
    text = str(error)
    causes = _EXCEPTION_LINE.findall(text)
    cause = f"{causes[0][0]}: {causes[0][1]}" if causes else f"{type(error).__name__}: {first_line(error)}"
    cause = cause.split(_BEAM_STEP_SUFFIX)[0].strip()
    step = _BEAM_STEP.search(text)
    where = f" in step '{step.group(1)}'" if step else ""
    return S2SError(f"{what} failed{where}: {cause} (set S2S_DEBUG=1 for the worker's traceback)")
