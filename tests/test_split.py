"""Deterministic splits by a hash of the cleaned source."""

from collections import Counter

from s2s.pipelines.split import TEST, TRAIN, VALIDATION, split_of


def test_split_depends_on_the_source_and_is_stable() -> None:
    sources = [f"sentence number {index}" for index in range(2000)]
    first = [split_of(source, 0.1, 0.1) for source in sources]
    assert first == [split_of(source, 0.1, 0.1) for source in sources]
    assert len(set(first)) == 3


def test_fractions_are_respected() -> None:
    counts = Counter(split_of(f"source {index}", 0.1, 0.05) for index in range(20_000))
    assert abs(counts[VALIDATION] - 2000) < 200
    assert abs(counts[TEST] - 1000) < 150
    assert counts[TRAIN] == 20_000 - counts[VALIDATION] - counts[TEST]


def test_zero_fractions_put_everything_in_train() -> None:
    assert {split_of(f"s{index}", 0.0, 0.0) for index in range(500)} == {TRAIN}


def test_growing_a_held_out_fraction_only_moves_sources_into_it() -> None:
    """Raising test_fraction never moves a test sentence back into training."""
    sources = [f"s{index}" for index in range(3000)]
    small = {source for source in sources if split_of(source, 0.0, 0.05) == TEST}
    large = {source for source in sources if split_of(source, 0.0, 0.10) == TEST}
    assert small < large
