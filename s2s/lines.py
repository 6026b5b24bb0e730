"""Splitting a byte stream into lines with bounded memory: what `s2s translate` and `s2s prepare` both read with.

A line longer than `MAX_LINE_BYTES` is never held whole. Its bytes are read
and dropped as they come, and it is yielded as `OVERSIZED_LINE`, a value no
real line can have (lines never hold a newline), so the caller counts it and
keeps its place: the line numbering and the one-output-per-input-line
accounting stay exact. A 3 GB line in a 5 MB gzip file (a decompression bomb)
then costs a few MiB of memory, not gigabytes.

Blocks are split with one `bytes.split` each, so no Python runs per
character; a line's pieces across blocks are gathered in a list and joined
once, never rebuilt block after block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

MAX_LINE_BYTES = 1 << 20  # 1 MiB: thousands of sentences; longer is a damaged file or a hostile one
OVERSIZED_LINE = b"\n"  # stands for a line over the limit: a real line never contains a newline
READ_BLOCK = 1 << 20


def bounded_lines(
    read: Callable[[int], bytes], max_line_bytes: int = MAX_LINE_BYTES, *, strip_carriage_returns: bool = False
) -> Iterator[list[bytes]]:
    """The lines of a stream, a block's worth at a time, each without its newline; oversized ones as `OVERSIZED_LINE`.

    Args:
        read: reads up to n bytes, b"" at the end (`stream.read1` lets a pipe's lines through as they come).
        max_line_bytes: the longest line kept; a longer one becomes `OVERSIZED_LINE`.
        strip_carriage_returns: Windows line ends (CRLF) lose their CR; only blocks that hold a CR pay for this.

    A final line without a newline counts; the empty string after a final newline does not.
    """
    pieces: list[bytes] = []  # the current unfinished line, as read so far
    size = 0
    oversized = False
    while block := read(READ_BLOCK):
        if b"\n" not in block:
            if not oversized:
                pieces.append(block)
                size += len(block)
                if size > max_line_bytes:
                    oversized, pieces = True, []
            continue
        has_carriage_return = strip_carriage_returns and (b"\r" in block or (bool(pieces) and pieces[-1].endswith(b"\r")))
        lines = block.split(b"\n")
        if oversized or size + len(lines[0]) > max_line_bytes:
            lines[0] = OVERSIZED_LINE
        elif pieces:
            lines[0] = b"".join([*pieces, lines[0]])
        rest = lines.pop()
        oversized = len(rest) > max_line_bytes
        pieces, size = ([] if oversized or not rest else [rest]), len(rest)
        if len(block) > max_line_bytes:  # only then can a whole line inside this block be over the limit
            lines = [OVERSIZED_LINE if len(line) > max_line_bytes else line for line in lines]
        yield _without_carriage_returns(lines) if has_carriage_return else lines
    if oversized:
        yield [OVERSIZED_LINE]
    elif pieces:
        yield _without_carriage_returns([b"".join(pieces)]) if strip_carriage_returns else [b"".join(pieces)]


def _without_carriage_returns(lines: list[bytes]) -> list[bytes]:
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]
