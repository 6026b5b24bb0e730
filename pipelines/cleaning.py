"""Turning one raw input line into a clean sentence pair or a reasoned rejection.

Pure functions, no Beam: the pipeline maps them over lines, the benchmark's
plain loop calls them directly, and the tests check them case by case. Every
line read ends as exactly one `Pair` or one `Rejection`, so the manifest can
prove `lines_read == pairs_kept + sum(rejected)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from s2s.lines import MAX_LINE_BYTES, OVERSIZED_LINE
from s2s.text import TextNormalizer

LINE_TOO_LONG = "line_too_long"
BLANK_LINE = "blank_line"
UNDECODABLE = "undecodable"
CONTROL_CHARACTER = "control_character"
WRONG_COLUMN_COUNT = "wrong_column_count"
EMPTY_SIDE = "empty_side"
SOURCE_TOO_LONG = "source_too_long"
TARGET_TOO_LONG = "target_too_long"
DUPLICATE = "duplicate"
RARE_CHARACTER = "rare_character"

REJECTION_REASONS: dict[str, str] = {
    LINE_TOO_LONG: f"the line is longer than {MAX_LINE_BYTES} bytes: it was skipped without being read into memory",
    BLANK_LINE: "the line is empty or holds only whitespace",
    UNDECODABLE: "the line is not valid UTF-8",
    CONTROL_CHARACTER: "the line holds a control character (NUL, ESC, a lone CR, ...), a sign of damage",
    WRONG_COLUMN_COUNT: "not 2 tab-separated columns (or 3, with an attribution column)",
    EMPTY_SIDE: "the source or the target is empty after cleaning",
    SOURCE_TOO_LONG: "the cleaned source is longer than max_source_length characters",
    TARGET_TOO_LONG: "the cleaned target is longer than max_target_length characters",
    DUPLICATE: "the same cleaned pair appeared earlier (the first occurrence is kept)",
    RARE_CHARACTER: "holds a character seen fewer than min_char_count times on its side",
}

RAW_TEXT_LIMIT = 10_000  # characters of a rejected line kept in the rejects output
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # category Cc except the tab separator


class Pair(NamedTuple):
    """A cleaned sentence pair and where it came from."""

    source: str
    target: str
    path: str
    line_number: int


class Rejection(NamedTuple):
    """A line that did not become a pair, why, and the line itself."""

    path: str
    line_number: int
    reason: str
    detail: str
    raw: str

    def to_dict(self) -> dict[str, object]:
        return self._asdict()


class LengthLimits(NamedTuple):
    """Maximum characters of each cleaned side."""

    max_source_length: int
    max_target_length: int


def parse_line(
    path: str, line_number: int, raw: bytes, normalizer: TextNormalizer, limits: LengthLimits, *, reverse: bool = False
) -> Pair | Rejection:
    """Decodes, splits, cleans and length-checks one line (without its newline).

    A trailing CR (CRLF files) is dropped first. Checks run in a fixed order,
    so a line with several faults always gets the same reason. With
    `reverse`, the second column is the source and the first the target, so
    one corpus of `english<TAB>other` lines trains both directions.
    """
    if raw == OVERSIZED_LINE:
        return _reject(path, line_number, LINE_TOO_LONG, f"over {MAX_LINE_BYTES} bytes", "")
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return _reject(path, line_number, UNDECODABLE, f"invalid UTF-8 at byte {error.start}", raw)
    if not text.strip():
        return _reject(path, line_number, BLANK_LINE, "", text)
    control = _CONTROL_CHARACTERS.search(text)
    if control:
        return _reject(path, line_number, CONTROL_CHARACTER, f"U+{ord(control.group()):04X} at column {control.start()}", text)
    columns = text.split("\t")
    if len(columns) not in (2, 3):
        return _reject(path, line_number, WRONG_COLUMN_COUNT, f"{len(columns)} columns", text)
    source, target = normalizer(columns[1 if reverse else 0]), normalizer(columns[0 if reverse else 1])
    if not source or not target:
        return _reject(path, line_number, EMPTY_SIDE, "source" if not source else "target", text)
    if len(source) > limits.max_source_length:
        return _reject(path, line_number, SOURCE_TOO_LONG, f"{len(source)} characters", text)
    if len(target) > limits.max_target_length:
        return _reject(path, line_number, TARGET_TOO_LONG, f"{len(target)} characters", text)
    return Pair(source, target, path, line_number)


def find_rare_character(pair: Pair, source_counts: Mapping[str, int], target_counts: Mapping[str, int], min_count: int) -> str | None:
    """Describes the first character of `pair` seen fewer than `min_count` times on its side, if any."""
    for side, text, counts in (("source", pair.source, source_counts), ("target", pair.target, target_counts)):
        for char in text:
            if counts.get(char, 0) < min_count:
                return f"{side} U+{ord(char):04X} {char!r} seen {counts.get(char, 0)} times"
    return None


def reject_pair(pair: Pair, reason: str, detail: str) -> Rejection:
    """A rejection of an already cleaned pair (duplicates, rare characters)."""
    return Rejection(pair.path, pair.line_number, reason, detail, f"{pair.source}\t{pair.target}")


def _reject(path: str, line_number: int, reason: str, detail: str, raw: str | bytes) -> Rejection:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="backslashreplace")
    return Rejection(path, line_number, reason, detail, raw[:RAW_TEXT_LIMIT])
