"""What to do with a source longer than the model's `max_source_length`: split it, cut it, or refuse it.

A model exported from a corpus of short sentences has a short limit (80
characters for fra-eng; 22 for a corpus of short phrases), and real input is
often longer. Cutting loses the rest of the sentence without trace in the
output, so the default splits: at the last sentence end (`.`, `!`, `?`, `…`,
`;`, `:` followed by a space) that fits, else at the last space, else at the
limit, then translates the pieces and joins their translations with a space.
"""

from __future__ import annotations

import re

SPLIT, TRUNCATE, ERROR = "split", "truncate", "error"
LONG_LINE_POLICIES = (SPLIT, TRUNCATE, ERROR)
_SENTENCE_END = re.compile(r"[.!?…;:](?= )")


def split_long_line(text: str, limit: int) -> list[str]:
    """`text` as pieces of at most `limit` characters, cut at sentence ends, else spaces, else anywhere."""
    pieces = []
    while len(text) > limit:
        window = text[: limit + 1]  # a space right after the limit still counts as a place to cut
        ends = [match.end() for match in _SENTENCE_END.finditer(window) if match.end() <= limit]
        cut = ends[-1] if ends else (window.rfind(" ") if window.rfind(" ") > 0 else limit)
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text or not pieces:
        pieces.append(text)
    return pieces
