"""Edit distance and the corpus metrics built on it, against values worked out by hand."""

import pytest

from s2s.training.metrics import edit_distance, score, score_by_length


@pytest.mark.parametrize(
    ("first", "second", "distance"),
    [
        ("", "", 0),
        ("abc", "", 3),
        ("", "abc", 3),
        ("kitten", "sitting", 3),  # k->s, e->i, +g
        ("flaw", "lawn", 2),  # -f, +n
        ("abc", "abc", 0),
        ("abc", "acb", 2),  # a transposition is two edits in Levenshtein's metric
        ("Va !", "Va-t'en !", 5),
        ("été", "ete", 2),  # characters, not bytes
    ],
)
def test_edit_distance_matches_hand_counts(first: str, second: str, distance: int) -> None:
    assert edit_distance(first, second) == distance
    assert edit_distance(second, first) == distance


def test_cer_uses_the_closest_reference_and_its_length() -> None:
    figures = score(["abcd", "xyz"], [["abed", "zzzzzzzz"], ["xyz"]])
    # "abcd" is one edit from "abed" (4 characters); "xyz" matches exactly: 1 edit over 4 + 3 reference characters.
    assert figures["cer"] == round(1 / 7, 4)
    assert figures["exact_match"] == 0.5
    assert figures["sentences"] == 2


def test_an_empty_corpus_scores_none() -> None:
    assert score([], []) == {"sentences": 0, "bleu": None, "chrf": None, "exact_match": None, "cer": None}


def test_length_buckets_hold_their_sentences_only() -> None:
    buckets = score_by_length(["short", "x" * 15], ["a", "b"], [["a"], ["c"]])
    assert set(buckets) == {"1-10", "11-20"}
    assert buckets["1-10"]["exact_match"] == 1.0 and buckets["11-20"]["exact_match"] == 0.0
