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

import numpy as np

SCHEME_NAME = "s2s-text"
SCHEME_VERSION = 1

_APOSTROPHES = "\u2018\u2019\u201a\u201b\u2032\u02bc"
_DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u2033"
_WHITESPACE_RUN = re.compile(r"\s+")
_SPACE, _NEWLINE = ord(" "), ord("\n")
_DELETED = 0xFFFFFFFF  # marks a removed (Cf) character in the code point map


def _mapped(code: int, fold_quotes: bool) -> int:
    """Steps 2-4 and the whitespace half of step 5 for one code point: what `_CodePointMap` stores for it."""
    char = chr(code)
    category = unicodedata.category(char)
    if category == "Cf":
        return _DELETED
    if category == "Zs" or (char.isspace() and code != _NEWLINE):
        return _SPACE  # step 5 would collapse any whitespace to one space anyway
    if fold_quotes and char in _APOSTROPHES:
        return ord("'")
    if fold_quotes and char in _DOUBLE_QUOTES:
        return ord('"')
    return code


class _CodePointMap:
    """Every code point's replacement, as a uint32 table filled in lazily for the code points a window holds.

    Spaces and other whitespace but "\\n" become a space, Cf characters
    `_DELETED`, quotes fold when asked. Filling only what text uses keeps the
    first call cheap; after a few windows each lookup is one numpy `take`.
    The per-line `__call__` is the definition; a test holds the two equal.
    """

    _UNSET = 0xFFFFFFFE

    def __init__(self, fold_quotes: bool):
        self.fold_quotes = fold_quotes
        self.table = np.full(sys.maxunicode + 1, self._UNSET, dtype=np.uint32)

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        mapped = self.table.take(codes)
        unset = mapped == self._UNSET
        if unset.any():
            for code in np.unique(codes[unset]).tolist():
                self.table[code] = _mapped(code, self.fold_quotes)
            mapped = self.table.take(codes)
        return mapped


class _TranslationTable(dict):
    """A `str.translate` table computing each code point's replacement on first sight (`_mapped`), then cached."""

    def __init__(self, fold_quotes: bool):
        super().__init__()
        self.fold_quotes = fold_quotes

    def __missing__(self, code: int) -> int | None:
        mapped = _mapped(code, self.fold_quotes)
        self[code] = None if mapped == _DELETED else mapped
        return self[code]


@cache
def _translation_table(fold_quotes: bool) -> _TranslationTable:
    return _TranslationTable(fold_quotes)


@cache
def _code_point_map(fold_quotes: bool) -> _CodePointMap:
    return _CodePointMap(fold_quotes)


@cache
def _ascii_map() -> np.ndarray:
    """`_code_point_map` restricted to ASCII, as uint8: only whitespace other than "\\n" changes (to a space)."""
    table = np.arange(128, dtype=np.uint8)
    table[[code for code in range(128) if chr(code).isspace() and code != _NEWLINE]] = _SPACE
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
        """One text, normalised: the scheme step by step, with steps 2-4 as one `str.translate`."""
        if not text.isascii():  # ASCII is already NFC, with no Zs, Cf or typographic quote: only whitespace changes
            text = unicodedata.normalize("NFC", text).translate(_translation_table(self.fold_quotes))
        return _WHITESPACE_RUN.sub(" ", text).strip()

    def normalize_lines(self, lines: Sequence[str]) -> list[str]:
        """`[self(line) for line in lines]`, computed for the whole window at once with numpy: no Python runs per line or character.

        The lines are joined by "\\n", which no step touches: NFC never
        composes across it, it is neither Zs nor Cf, and whitespace is
        collapsed and stripped around it, not through it. Steps 2-5 then run on
        the window's code points: one table lookup maps spaces, removes format
        characters and folds quotes; two masks collapse space runs and strip
        each line's ends. A line holding a "\\n" itself is normalised one by
        one, to keep the line count.
        """
        if not lines:
            return []
        text = "\n".join(lines)
        if text.count("\n") != len(lines) - 1:
            return [self(line) for line in lines]
        ascii_only = text.isascii()
        if ascii_only:  # already NFC, and one byte per character
            codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
            codes = _ascii_map().take(codes)
        else:
            codes = np.frombuffer(unicodedata.normalize("NFC", text).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            codes = _code_point_map(self.fold_quotes)(codes)
            codes = codes[codes != _DELETED]
        space = codes == _SPACE
        codes = codes[~(space & np.concatenate(([False], space[:-1])))]  # a space right after a space goes: runs collapse
        space, newline = codes == _SPACE, codes == _NEWLINE
        at_line_start = np.concatenate(([True], newline[:-1]))
        at_line_end = np.concatenate((newline[1:], [True]))
        codes = codes[~(space & (at_line_start | at_line_end))]
        decoded = codes.tobytes().decode("ascii") if ascii_only else codes.tobytes().decode("utf-32-le", "surrogatepass")
        return decoded.split("\n")

    def to_dict(self) -> dict[str, Any]:
        """The scheme as written into spec.json and the ONNX metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TextNormalizer:
        """Rebuilds the scheme a dataset or model was made with."""
        return cls(**values)
