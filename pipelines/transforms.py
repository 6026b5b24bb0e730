"""The composite PTransforms of `s2s prepare`, each one step a reader can name.

    ReadNumberedLines -> CleanPairs -> DropDuplicates -> FilterRareCharacters
        -> AssignSplits -> WriteDatasetFiles (in dataset_files.py)

Steps that drop data return a `rejected` output beside their main one, so the
pipeline can flatten every rejection into one rejects file and count it. The
two come from one output split by two filters, not from tagged outputs,
which Beam's Dask runner hands to every consumer (see repro/).
"""

from __future__ import annotations

import posixpath
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio

from s2s.lines import bounded_lines
from s2s.pipelines import cleaning
from s2s.pipelines.cleaning import LengthLimits, Pair, Rejection
from s2s.pipelines.split import split_of
from s2s.text import TextNormalizer
from s2s.vocab import Vocabulary

REJECTED = "rejected"
PAIRS = "pairs"
COUNTS = "counts"
FACTS = "facts"
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Broadcast:
    """A value sent into every group of a GroupByKey beside the group's rows: a side input made of a join.

    prepare shares its character counts and dataset facts this way, not as
    side inputs: Beam's Dask runner computes a side input inside each task
    that reads it, under the task names of the job's own steps, and the two
    collide; the counts came out three times too high (repro/dask_runner_bugs.py).
    """

    name: str
    value: Any


def share_with(keys: Iterable[Any], name: str) -> beam.PTransform:
    """value -> (key, Broadcast(name, value)) for each key: a global value (one, from a global combine) sent to every group."""
    keys = list(keys)
    return beam.FlatMap(lambda value: [(key, Broadcast(name, value)) for key in keys])


def without_broadcasts(values: Iterable[Any]) -> tuple[dict[str, Any], list[Any]]:
    """A group's values split into its broadcasts, by name, and its own rows."""
    shared, rows = {}, []
    for value in values:
        if isinstance(value, Broadcast):
            shared[value.name] = value.value
        else:
            rows.append(value)
    return shared, rows


def shard_of(path: str, line_number: int, num_shards: int) -> int:
    """A line's shard: stable across workers and runs, so the same lines meet in the same group every time.

    Keyed by the file's name, not its whole path: the same corpus prepared from another folder (a moved checkout, a
    temporary directory, another bucket) gives the same dataset, so the same seed trains the same model.
    """
    return zlib.crc32(f"{posixpath.basename(path)}\t{line_number}".encode()) % num_shards


def numbered_lines(stream: Any) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, line bytes without its newline) of a binary stream.

    A final line without a newline counts; the empty string after a final
    newline does not. A UTF-8 byte order mark opening the stream is dropped.
    A line over `MAX_LINE_BYTES` comes as `OVERSIZED_LINE`, never held whole
    (see `s2s.lines`), and is rejected as `line_too_long` with its number.
    """
    line_number = 0
    for lines in bounded_lines(stream.read):
        if line_number == 0 and lines[0].startswith(_BYTE_ORDER_MARK):
            lines[0] = lines[0][len(_BYTE_ORDER_MARK) :]
        for line in lines:
            line_number += 1
            yield line_number, line


class _ReadNumberedLinesFn(beam.DoFn):
    def process(self, readable_file: fileio.ReadableFile) -> Iterator[tuple[str, int, bytes]]:
        path = readable_file.metadata.path
        with readable_file.open() as stream:  # decompresses .gz by its extension
            for line_number, line in numbered_lines(stream):
                yield path, line_number, line


class ReadNumberedLines(beam.PTransform):
    """File patterns -> (path, line number, raw bytes), one element per line read.

    Files are read whole by one worker each, so line numbers are exact; a
    reshuffle then spreads the lines over all workers, unless `spread` is
    False because the next step groups them anyway.
    """

    def __init__(self, patterns: list[str], *, spread: bool = True):
        super().__init__()
        self.patterns, self.spread = patterns, spread

    def expand(self, pipeline: beam.pvalue.PBegin) -> beam.PCollection:
        lines = (
            pipeline
            | "Patterns" >> beam.Create(self.patterns)
            | "Match" >> fileio.MatchAll()
            | "Open" >> fileio.ReadMatches()
            | "SplitLines" >> beam.ParDo(_ReadNumberedLinesFn())
        )
        return lines | "Spread" >> beam.Reshuffle() if self.spread else lines


class _CleanPairsFn(beam.DoFn):
    def __init__(self, normalizer: TextNormalizer, limits: LengthLimits, reverse: bool):
        self.normalizer = normalizer
        self.limits = limits
        self.reverse = reverse

    def process(self, line: tuple[str, int, bytes]) -> Iterator[Any]:
        yield cleaning.parse_line(*line, self.normalizer, self.limits, reverse=self.reverse)


def _is_rejection(element: Any) -> bool:
    return isinstance(element, Rejection)


def _kept_and_rejected(mixed: beam.PCollection) -> dict[str, beam.PCollection]:
    """A step's output of pairs and rejections as two collections, `pairs` and `rejected`, by two filters."""
    return {
        PAIRS: mixed | "Kept" >> beam.Filter(lambda element: not _is_rejection(element)),
        REJECTED: mixed | "Rejected" >> beam.Filter(_is_rejection),
    }


class CleanPairs(beam.PTransform):
    """Raw lines -> cleaned `Pair`s, plus `Rejection`s under the `rejected` tag."""

    def __init__(self, normalizer: TextNormalizer, limits: LengthLimits, *, reverse: bool = False):
        super().__init__()
        self.normalizer = normalizer
        self.limits = limits
        self.reverse = reverse

    def expand(self, lines: beam.PCollection) -> dict[str, beam.PCollection]:
        return _kept_and_rejected(lines | "Clean" >> beam.ParDo(_CleanPairsFn(self.normalizer, self.limits, self.reverse)))


def _keep_first(grouped: tuple[tuple[str, str], Iterable[Pair]]) -> Iterator[Any]:
    _, pairs = grouped
    first, *repeats = sorted(pairs, key=lambda pair: (pair.path, pair.line_number))
    yield first
    for repeat in repeats:
        detail = f"first seen at {first.path}:{first.line_number}"
        yield cleaning.reject_pair(repeat, cleaning.DUPLICATE, detail)


class DropDuplicates(beam.PTransform):
    """Keeps the first occurrence (by file, then line) of each exact cleaned pair."""

    def expand(self, pairs: beam.PCollection) -> dict[str, beam.PCollection]:
        return _kept_and_rejected(
            pairs
            | "KeyByText" >> beam.Map(lambda pair: ((pair.source, pair.target), pair))
            | "Group" >> beam.GroupByKey()
            | "KeepFirst" >> beam.FlatMap(_keep_first)
        )


class CharacterCountsFn(beam.CombineFn):
    """Counts every character of the sources and of the targets: (Counter, Counter)."""

    def create_accumulator(self) -> tuple[Counter, Counter]:
        return Counter(), Counter()

    def add_input(self, accumulator: tuple[Counter, Counter], pair: Pair) -> tuple[Counter, Counter]:
        accumulator[0].update(pair.source)
        accumulator[1].update(pair.target)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[tuple[Counter, Counter]]) -> tuple[Counter, Counter]:
        source, target = Counter(), Counter()
        for source_counts, target_counts in accumulators:
            source.update(source_counts)
            target.update(target_counts)
        return source, target

    def extract_output(self, accumulator: tuple[Counter, Counter]) -> tuple[dict[str, int], dict[str, int]]:
        return dict(accumulator[0]), dict(accumulator[1])


def _reject_rare_in_group(group: tuple[int, Iterable[Any]], min_count: int) -> Iterator[Any]:
    _, values = group
    shared, pairs = without_broadcasts(values)
    source_counts, target_counts = shared.get(COUNTS, ({}, {}))
    for pair in pairs:
        rare = cleaning.find_rare_character(pair, source_counts, target_counts, min_count)
        yield pair if rare is None else cleaning.reject_pair(pair, cleaning.RARE_CHARACTER, rare)


class FilterRareCharacters(beam.PTransform):
    """Rejects pairs holding a character seen fewer than `min_count` times on its side.

    `counts` is the (source, target) character counts of the pairs reaching
    this step, as `CharacterCountsFn` gives them (taken before any
    rare-character rejection); they reach the pairs through a join over
    `num_groups` groups, not a side input (see `Broadcast`). A min_count of 1
    or less keeps everything.
    """

    def __init__(self, min_count: int, counts: beam.PCollection, num_groups: int):
        super().__init__()
        self.min_count, self.counts, self.num_groups = min_count, counts, num_groups

    def expand(self, pairs: beam.PCollection) -> dict[str, beam.PCollection]:
        groups = self.num_groups
        keyed = pairs | "KeyByLine" >> beam.Map(lambda pair: (shard_of(pair.path, pair.line_number, groups), pair))
        shared = self.counts | "ShareCounts" >> share_with(range(groups), COUNTS)
        return _kept_and_rejected(
            (keyed, shared)
            | "WithCounts" >> beam.Flatten()
            | "GroupByLine" >> beam.GroupByKey()
            | "RejectRare" >> beam.FlatMap(_reject_rare_in_group, min_count=self.min_count)
        )


def without_rare_characters(facts: dict[str, Any], counts: tuple[dict[str, int], dict[str, int]], min_count: int) -> dict[str, Any]:
    """The dataset facts with characters seen fewer than `min_count` times left out of the vocabularies.

    Those characters then encode as `<unk>`, in training as at translation
    time, and `unknown_characters` counts their occurrences on each side.
    """
    facts = dict(facts)
    for side, key, side_counts in (("source", "source_vocabulary", counts[0]), ("target", "target_vocabulary", counts[1])):
        characters = [char for char in Vocabulary.from_list(facts[key]).characters if side_counts.get(char, 0) >= min_count]
        facts[key] = Vocabulary.from_characters(characters).to_list()
        facts.setdefault("unknown_characters", {})[side] = sum(count for count in side_counts.values() if count < min_count)
    return facts


class DatasetFactsFn(beam.CombineFn):
    """The character sets and longest sides of the kept pairs, from which the spec is built."""

    def create_accumulator(self) -> dict[str, Any]:
        return {"source_characters": set(), "target_characters": set(), "max_source_length": 0, "max_target_length": 0}

    def add_input(self, facts: dict[str, Any], pair: Pair) -> dict[str, Any]:
        facts["source_characters"].update(pair.source)
        facts["target_characters"].update(pair.target)
        facts["max_source_length"] = max(facts["max_source_length"], len(pair.source))
        facts["max_target_length"] = max(facts["max_target_length"], len(pair.target))
        return facts

    def merge_accumulators(self, accumulators: Iterable[dict[str, Any]]) -> dict[str, Any]:
        merged = self.create_accumulator()
        for facts in accumulators:
            merged["source_characters"] |= facts["source_characters"]
            merged["target_characters"] |= facts["target_characters"]
            merged["max_source_length"] = max(merged["max_source_length"], facts["max_source_length"])
            merged["max_target_length"] = max(merged["max_target_length"], facts["max_target_length"])
        return merged

    def extract_output(self, facts: dict[str, Any]) -> dict[str, Any]:
        return {
            "source_vocabulary": Vocabulary.from_characters(facts["source_characters"]).to_list(),
            "target_vocabulary": Vocabulary.from_characters(facts["target_characters"]).to_list(),
            "max_source_length": facts["max_source_length"],
            "max_target_length": facts["max_target_length"],
        }


class AssignSplits(beam.PTransform):
    """Pair -> (split name, pair), by a hash of the cleaned source."""

    def __init__(self, validation_fraction: float, test_fraction: float):
        super().__init__()
        self.validation_fraction = validation_fraction
        self.test_fraction = test_fraction

    def expand(self, pairs: beam.PCollection) -> beam.PCollection:
        validation, test = self.validation_fraction, self.test_fraction
        return pairs | "HashSource" >> beam.Map(lambda pair: (split_of(pair.source, validation, test), pair))
