"""One raw line to one Pair or one Rejection, with the right reason."""

import pytest

from s2s.lines import OVERSIZED_LINE
from s2s.pipelines import cleaning
from s2s.pipelines.cleaning import LengthLimits, Pair, Rejection, parse_line
from s2s.text import TextNormalizer

LIMITS = LengthLimits(max_source_length=10, max_target_length=12)


def parse(raw: bytes) -> Pair | Rejection:
    return parse_line("f.txt", 7, raw, TextNormalizer(), LIMITS)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", cleaning.BLANK_LINE),
        (b" \t \r", cleaning.BLANK_LINE),
        (b"bad \xff\tbytes", cleaning.UNDECODABLE),
        (b"nul\x00\tx", cleaning.CONTROL_CHARACTER),
        (b"esc\x1b[0m\tx", cleaning.CONTROL_CHARACTER),
        (b"lone\rcr\tx", cleaning.CONTROL_CHARACTER),
        (b"one column", cleaning.WRONG_COLUMN_COUNT),
        (b"a\tb\tc\td", cleaning.WRONG_COLUMN_COUNT),
        (b" \tx", cleaning.EMPTY_SIDE),
        (b"x\t\xe2\x80\x8b", cleaning.EMPTY_SIDE),  # a target of one zero-width space
        (b"a" * 11 + b"\tb", cleaning.SOURCE_TOO_LONG),
        (b"a\t" + b"b" * 13, cleaning.TARGET_TOO_LONG),
        (OVERSIZED_LINE, cleaning.LINE_TOO_LONG),  # how a line over MAX_LINE_BYTES arrives, never read whole
    ],
)
def test_bad_lines_are_rejected_with_their_reason(raw: bytes, reason: str) -> None:
    result = parse(raw)
    assert isinstance(result, Rejection)
    assert (result.path, result.line_number, result.reason) == ("f.txt", 7, reason)


def test_good_lines_become_cleaned_pairs() -> None:
    assert parse("Go.\tVa\u202f!\r".encode()) == Pair("Go.", "Va !", "f.txt", 7)
    assert parse(b"Run!\tCours !\tCC-BY 2.0 (France) Attribution: tatoeba.org #906328") == Pair("Run!", "Cours !", "f.txt", 7)


def test_length_limits_count_cleaned_characters() -> None:
    assert isinstance(parse(("a" * 10 + "   ").encode() + b"\tb"), Pair)  # trailing spaces are stripped first
    assert isinstance(parse("é".encode() * 10 + b"\tb"), Pair)  # characters, not UTF-8 bytes


def test_rejection_keeps_undecodable_bytes_visible() -> None:
    result = parse(b"bad \xff\tbytes")
    assert result.raw == "bad \\xff\tbytes"
    assert result.detail == "invalid UTF-8 at byte 4"


def test_rare_character_is_found_on_its_own_side() -> None:
    pair = Pair("ab", "xy", "f", 1)
    assert cleaning.find_rare_character(pair, {"a": 5, "b": 5}, {"x": 5, "y": 5}, 5) is None
    assert "target U+0079 'y' seen 4 times" in cleaning.find_rare_character(pair, {"a": 5, "b": 5}, {"x": 5, "y": 4}, 5)
    assert cleaning.find_rare_character(pair, {"a": 5, "b": 5, "x": 0}, {"x": 5}, 5).startswith("target")


def test_every_reason_is_explained() -> None:
    reasons = {
        value for name, value in vars(cleaning).items() if name.isupper() and isinstance(value, str) and name not in ("RAW_TEXT_LIMIT",)
    }
    assert reasons == set(cleaning.REJECTION_REASONS)


def test_reverse_direction_takes_the_second_column_as_the_source() -> None:
    pair = parse_line("f.txt", 1, b"Go.\tVa !\tCC-BY", TextNormalizer(), LengthLimits(3, 80), reverse=True)
    assert isinstance(pair, Rejection) and pair.reason == "source_too_long"  # "Va !" is now the source, over 3 characters
    pair = parse_line("f.txt", 1, b"Go.\tVa !", TextNormalizer(), LengthLimits(80, 80), reverse=True)
    assert (pair.source, pair.target) == ("Va !", "Go.")
