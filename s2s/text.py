"""The one text normalisation every stage applies: pipeline, training, serving.

Training and serving must see the same characters, or the model meets inputs
at translation time that it never saw while learning. So the scheme has a name
and a version, is written into `spec.json` and the ONNX metadata, and serving
rebuilds it from there with `TextNormalizer.from_dict`.

Scheme `s2s-text` version 1, in order:
1. Unicode NFC, so "é" is one code point whatever the source keyboard did.
2. The narrow no-break space (U+202F), no-break space (U+00A0), thin space
   (U+2009) and other Unicode space separators become a plain space: French
   typography puts them before "?" and "!", English text does not.
3. Invisible format characters (category Cf: zero-width space and joiners,
   the byte order mark, the soft hyphen) are removed.
4. Optionally (`fold_quotes`, on by default) typographic apostrophes and
   double quotes become ASCII `'` and `"`. Guillemets stay: they are French
   punctuation, not a typographic variant.
5. Runs of whitespace collapse to one space; leading and trailing space goes.

Control characters (NUL, other C0/C1 codes) are not silently removed: a line
holding them is damaged, and the pipeline rejects it with a reason instead.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

SCHEME_NAME = "s2s-text"
SCHEME_VERSION = 1

_APOSTROPHES = "\u2018\u2019\u201a\u201b\u2032\u02bc"
_DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u2033"
_WHITESPACE_RUN = re.compile(r"\s+")
_SPACE_RUN_IN_LINE = re.compile(r"[^\S\n]+")  # whitespace other than the line separator of a window
_SPACE_AT_LINE_EDGE = re.compile(r" ?\n ?")


@cache
def _character_table(fold_quotes: bool) -> dict[int, str | None]:
    """`str.translate` table of steps 2-4: every Zs code point to a space, every Cf one removed, quotes folded.

    Built once from the whole code space (a fraction of a second), so the
    mapping runs in C for every character instead of in Python.
    """
    table: dict[int, str | None] = {}
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        if category == "Zs" and code != 0x20:
            table[code] = " "
        elif category == "Cf":
            table[code] = None
    if fold_quotes:
        table.update({ord(char): "'" for char in _APOSTROPHES})
        table.update({ord(char): '"' for char in _DOUBLE_QUOTES})
    return table


@dataclass(frozen=True)
class TextNormalizer:
    """Normalises one side of a sentence pair.

    Args:
        fold_quotes: map typographic apostrophes and double quotes to ASCII.

    >>> TextNormalizer()("  Qu\u2019est-ce\u202fque c\u2019est\u00a0?  ")
    "Qu'est-ce que c'est ?"
    """

    fold_quotes: bool = True
    name: str = SCHEME_NAME
    version: int = SCHEME_VERSION

    def __post_init__(self) -> None:
        if self.name != SCHEME_NAME or self.version != SCHEME_VERSION:
            raise ValueError(
                f"unknown normalisation scheme {self.name} v{self.version}; this s2s knows "
                f"{SCHEME_NAME} v{SCHEME_VERSION}: upgrade s2s or re-prepare the data"
            )

    def __call__(self, text: str) -> str:
        if not text.isascii():  # ASCII is already NFC and holds no Zs, Cf or typographic quote characters
            text = unicodedata.normalize("NFC", text).translate(_character_table(self.fold_quotes))
        return _WHITESPACE_RUN.sub(" ", text).strip()

    def normalize_lines(self, lines: Sequence[str]) -> list[str]:
        """`[self(line) for line in lines]`, done as a few whole-window string operations instead of one call per line.

        The lines are joined by "\n", which no step touches: NFC never
        composes across it, it is neither Zs nor Cf, and whitespace runs are
        collapsed around it, not through it. A line holding a "\n" itself is
        normalised one by one, to keep the line count.
        """
        if not lines:
            return []
        text = "\n".join(lines)
        if text.count("\n") != len(lines) - 1:
            return [self(line) for line in lines]
        if not text.isascii():
            text = unicodedata.normalize("NFC", text).translate(_character_table(self.fold_quotes))
        text = _SPACE_AT_LINE_EDGE.sub("\n", _SPACE_RUN_IN_LINE.sub(" ", text)).strip(" ")
        return text.split("\n")

    def to_dict(self) -> dict[str, Any]:
        """The scheme as written into spec.json and the ONNX metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TextNormalizer:
        """Rebuilds the scheme a dataset or model was made with."""
        return cls(**values)
