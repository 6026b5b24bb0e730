"""The toy integer tasks produce what they claim."""

import random

import pytest

from s2s.errors import S2SError
from s2s.pipelines.synth import CARDINALITY_50, generate, reverse_4, reverse_first_3, write_corpus


def test_reverse_first_3() -> None:
    rng = random.Random(1)
    for _ in range(200):
        source, target = reverse_first_3(rng)
        assert len(source) == 6 and set(source) <= set(CARDINALITY_50)
        assert target == source[2::-1]
    assert len(set(CARDINALITY_50)) == 50


def test_reverse_4() -> None:
    rng = random.Random(2)
    for _ in range(200):
        source, target = reverse_4(rng)
        assert len(source) == 4 and set(source) <= set("123456789")
        assert target == source[::-1]


def test_generation_is_seeded(tmp_path) -> None:
    assert list(generate("reverse-4", 50, seed=3)) == list(generate("reverse-4", 50, seed=3))
    assert list(generate("reverse-4", 50, seed=3)) != list(generate("reverse-4", 50, seed=4))
    path = write_corpus("reverse-first-3", 10, tmp_path / "t.tsv", seed=3)
    lines = path.read_text().splitlines()
    assert len(lines) == 10 and all(line.split("\t")[1] == line.split("\t")[0][2::-1] for line in lines)


def test_unknown_task_and_bad_count() -> None:
    with pytest.raises(S2SError, match="unknown task"):
        list(generate("sort", 5))
    with pytest.raises(S2SError, match="at least 1"):
        list(generate("reverse-4", 0))
