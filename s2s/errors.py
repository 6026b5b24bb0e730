"""The one exception type the command line turns into a one-line message, and the helpers that make one line of others."""

from __future__ import annotations

import re


class S2SError(Exception):
    """A problem the user can fix: bad input, bad config, unwritable output.

    The message names what is wrong and, where it can, the fix. The CLI prints
    it as `s2s: error: <message>` and exits non-zero, without a traceback.
    """


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
