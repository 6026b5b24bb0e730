"""Vocabulary ids: reserved tokens first, characters in code point order."""

import pytest

from s2s.vocab import END_ID, PAD_ID, RESERVED_TOKENS, START_ID, UNKNOWN_ID, Vocabulary


def test_reserved_tokens_come_first_then_code_point_order() -> None:
    vocab = Vocabulary.from_characters("zéa ba")
    assert vocab.tokens[:4] == RESERVED_TOKENS
    assert vocab.characters == (" ", "a", "b", "z", "é")
    assert (PAD_ID, START_ID, END_ID, UNKNOWN_ID) == (0, 1, 2, 3)


def test_same_characters_in_any_order_give_the_same_ids() -> None:
    assert Vocabulary.from_characters("cab") == Vocabulary.from_characters(["b", "a", "c", "a"])


def test_encode_maps_unknown_characters_and_decode_stops_at_end() -> None:
    vocab = Vocabulary.from_characters("abc")
    assert vocab.encode("cab?") == [6, 4, 5, UNKNOWN_ID]
    assert vocab.decode([START_ID, 6, 4, PAD_ID, 5, END_ID, 4, 4]) == "cab"


def test_round_trip_through_list() -> None:
    vocab = Vocabulary.from_characters("héllo")
    assert Vocabulary.from_list(vocab.to_list()) == vocab


@pytest.mark.parametrize("tokens", [("a", "b"), ("<pad>", "\t", "\n", "<unk>", "a", "a"), ("<pad>", "\t", "\n", "<unk>", "ab")])
def test_malformed_vocabularies_are_refused(tokens: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        Vocabulary(tokens)
