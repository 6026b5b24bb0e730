"""Composite transforms in Beam's TestPipeline, checked with assert_that."""

import io

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from s2s.pipelines import cleaning
from s2s.pipelines.cleaning import Pair
from s2s.pipelines.transforms import PAIRS, REJECTED, CharacterCountsFn, DropDuplicates, FilterRareCharacters, numbered_lines


def test_numbered_lines_counts_every_line_and_drops_the_bom() -> None:
    stream = io.BytesIO(b"\xef\xbb\xbfa\n\nb\r\nlast")
    assert list(numbered_lines(stream)) == [(1, b"a"), (2, b""), (3, b"b\r"), (4, b"last")]
    assert list(numbered_lines(io.BytesIO(b"a\n"))) == [(1, b"a")]
    assert list(numbered_lines(io.BytesIO(b""))) == []


def test_numbered_lines_splits_across_read_chunks() -> None:
    long_line = b"x" * (3 * 1024 * 1024)
    assert [number for number, _ in numbered_lines(io.BytesIO(b"a\n" + long_line + b"\nb"))] == [1, 2, 3]


def test_drop_duplicates_keeps_the_earliest_by_file_then_line() -> None:
    pairs = [Pair("a", "b", "f2", 1), Pair("a", "b", "f1", 9), Pair("a", "b", "f1", 3), Pair("c", "d", "f1", 1)]
    with TestPipeline(runner="FnApiRunner") as pipeline:
        result = pipeline | beam.Create(pairs) | DropDuplicates()
        assert_that(result[PAIRS], equal_to([Pair("a", "b", "f1", 3), Pair("c", "d", "f1", 1)]), label="Kept")
        lines = result[REJECTED] | beam.Map(lambda rejection: (rejection.path, rejection.line_number, rejection.reason, rejection.detail))
        assert_that(
            lines,
            equal_to([("f2", 1, cleaning.DUPLICATE, "first seen at f1:3"), ("f1", 9, cleaning.DUPLICATE, "first seen at f1:3")]),
            label="Rejected",
        )


def test_filter_rare_characters_counts_each_side_separately() -> None:
    pairs = [Pair("ab", "xy", "f", 1), Pair("ab", "xy", "f", 2), Pair("ay", "xa", "f", 3)]  # "y" twice on target, once on source
    with TestPipeline(runner="FnApiRunner") as pipeline:
        created = pipeline | beam.Create(pairs)
        counts = created | beam.CombineGlobally(CharacterCountsFn())
        result = created | FilterRareCharacters(min_count=2, counts=counts, num_groups=3)
        assert_that(result[PAIRS] | beam.Map(lambda pair: pair.line_number), equal_to([1, 2]), label="Kept")
        assert_that(
            result[REJECTED] | beam.Map(lambda rejection: rejection.detail.split(" seen")[0]),
            equal_to(["source U+0079 'y'"]),
            label="Rejected",
        )
