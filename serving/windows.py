"""Windows of sources: what the engine decodes at a time, and how a window of text becomes ids.

Every entry point (a batch, a stream, a file) hands the engine windows of
sentences: normalised once, turned into ids once, long lines split, and the
translations put back in the window's order after the engine sorted them by
length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from s2s.errors import InputDataError
from s2s.onehot import ids_of_text
from s2s.serving.long_lines import ERROR, SPLIT, TRUNCATE, split_long_line
from s2s.serving.model_info import ModelInfo
from s2s.serving.results import TranslationResult, joined
from s2s.serving.stats import TranslationStats
from s2s.vocab import UNKNOWN_ID

Bookkeeping = TypeVar("Bookkeeping")

_NO_PREFIX = np.zeros(0, dtype=np.int32)


@dataclass(frozen=True)
class PreparedWindow:
    """A window of normalised sources as ids: all of them in one flat array, with each sentence's start and (cut) length.

    `text` is the normalised sources joined (`ids` are its characters' ids), so a source character can be found by
    position (replace_unknowns); `prefixes` holds each row's forced target ids (target_prefix), or None.
    """

    ids: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    pieces_per_line: np.ndarray | None = None  # when long lines were split: how many consecutive rows make each line
    text: str = ""
    prefixes: list[np.ndarray] | None = None


@dataclass
class SourceWindow(Generic[Bookkeeping]):
    """A window of sources on its way through the engine, with its own counts and the caller's bookkeeping.

    `counts` receives the window's counters as it is prepared (a file job adds
    them to its run only once the window is written); `bookkeeping` comes
    back as given (a file job's `FileWindow`: the lines, bytes and records it
    writes the translations with).
    """

    sources: Sequence[str]
    counts: TranslationStats = field(default_factory=TranslationStats)
    bookkeeping: Bookkeeping | None = None
    target_prefix: Sequence[str | None] | None = None


@dataclass(frozen=True)
class WindowTranslations:
    """A window's translations, in its order: the best string of each line, whether it was cut, and rich results when asked."""

    texts: list[str]
    cut: np.ndarray  # bool per line: the best translation reached its limit without the end token
    results: list[TranslationResult] | None = None  # with n-best, scores or attention


def prepare_window(
    info: ModelInfo,
    sources: Sequence[str],
    stats: TranslationStats | None = None,
    long_lines: str = SPLIT,
    target_prefix: Sequence[str | None] | None = None,
) -> PreparedWindow:
    """Normalises a window of sources and turns it into ids once, counting characters, unknowns and long lines.

    A source longer than max_source_length is split into pieces (translated apart, joined after), cut to
    the limit, or refused, as `long_lines` says. A target prefix applies to a split line's first piece.

    Raises:
        InputDataError: a long source with `long_lines="error"`.
        ValueError: `target_prefix` does not have one entry per source.
    """
    limit = info.max_source_length
    texts = info.normalizer.normalize_lines(sources)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    long = np.flatnonzero(lengths > limit)
    if stats is not None:
        stats.lines += len(texts)
        stats.empty_lines += int((lengths == 0).sum())
        stats.characters += int(lengths.sum())
        stats.long_lines += len(long)
        stats.truncated_lines += len(long) if long_lines == TRUNCATE else 0
    if len(long) and long_lines == ERROR:
        raise InputDataError(
            f"a source of {lengths[long[0]]} characters is longer than the model's {limit} ({texts[long[0]][:40]!r}...): "
            "use --long-lines split or truncate"
        )
    prefixes = None
    if target_prefix is not None:
        if len(target_prefix) != len(texts):
            raise ValueError(f"target_prefix needs one entry per source, got {len(target_prefix)} for {len(texts)} sources")
        prefix_texts = info.normalizer.normalize_lines([prefix or "" for prefix in target_prefix])
        prefixes = [ids_of_text(text, info.target_vocabulary) for text in prefix_texts]
    pieces_per_line = None
    if len(long) and long_lines == SPLIT:
        pieces_per_line = np.ones(len(texts), dtype=np.int64)
        pieces: list[str] = []
        piece_prefixes: list[np.ndarray] = []
        previous = 0
        for index in long.tolist():  # Python only for the long lines: short ones are copied a slice at a time
            pieces += texts[previous:index]
            parts = split_long_line(texts[index], limit)
            pieces += parts
            pieces_per_line[index] = len(parts)
            if prefixes is not None:
                piece_prefixes += prefixes[previous:index] + [prefixes[index]] + [_NO_PREFIX] * (len(parts) - 1)
            previous = index + 1
        texts = pieces + texts[previous:]
        if prefixes is not None:
            prefixes = piece_prefixes + prefixes[previous:]
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    text = "".join(texts)
    ids = ids_of_text(text, info.source_vocabulary)
    if stats is not None:
        stats.unknown_characters += int((ids == UNKNOWN_ID).sum())
    return PreparedWindow(ids, np.cumsum(lengths) - lengths, np.minimum(lengths, limit), pieces_per_line, text, prefixes)


def prepare_sources(info: ModelInfo, sources: Sequence[str]) -> list[str]:
    """Normalised sources cut to the model's max_source_length: the text the model sees."""
    limit = info.max_source_length
    return [text[:limit] for text in info.normalizer.normalize_lines(sources)]


def joined_lines(window: PreparedWindow, texts: np.ndarray, cut: np.ndarray, results: list[TranslationResult] | None) -> WindowTranslations:
    """Lines from rows: a split long line's pieces joined (texts with a space, a cut piece cuts the line)."""
    if window.pieces_per_line is None:
        return WindowTranslations(texts.tolist(), cut, results)
    first = np.cumsum(window.pieces_per_line) - window.pieces_per_line
    lines, line_cut = texts[first], np.logical_or.reduceat(cut, first) if len(first) else cut[:0]
    for line in np.flatnonzero(window.pieces_per_line > 1).tolist():  # a split line: its pieces' translations, joined
        lines[line] = " ".join(piece for piece in texts[first[line] : first[line] + window.pieces_per_line[line]] if piece)
    if results is not None:
        pieces = window.pieces_per_line.tolist()
        results = [joined(results[start : start + count]) for start, count in zip(first.tolist(), pieces, strict=True)]
    return WindowTranslations(lines.tolist(), line_cut, results)


def sentence_list(source: Any, method: str) -> Sequence[str]:
    """`source` as a sequence of str sentences, or a TypeError that says what was passed and what to pass instead.

    A str is a sequence of one-character sentences, None is nothing, and a
    generator can be read only once: each would otherwise give a confusing
    result deep in the loop, or an empty list without a word.
    """
    if source is None or isinstance(source, (str, bytes, bytearray)):
        raise TypeError(f"{method} takes a list of str sentences, got {type(source).__name__}; for one sentence, pass [sentence]")
    if isinstance(source, np.ndarray):
        if source.ndim != 1:
            raise TypeError(f"{method} takes a one-dimensional list of sentences, got an array of shape {source.shape}")
        source = source.tolist()
    if not isinstance(source, Sequence):
        raise TypeError(f"{method} takes a list of sentences, got a {type(source).__name__}: use translate_iterable for a stream")
    for index, sentence in enumerate(source):
        if not isinstance(sentence, str):
            hint = " (decode bytes first)" if isinstance(sentence, (bytes, bytearray)) else ""
            raise TypeError(f"{method} takes str sentences, got {type(sentence).__name__} at index {index}{hint}")
    return source
