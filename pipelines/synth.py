"""The source material's toy integer tasks, written as tab-separated pair corpora.

They are honest end-to-end tests: the right answer is known for every input,
a correct model reaches 100% exact match, and they train in seconds. Each
integer is written as one character, so the character-level model sees
exactly the integer-token task of the source material:

- `reverse-first-3`: 6 random integers of cardinality 50 in; the first 3, in
  reverse order, out. Integers 0-49 are written with the alphabet
  `0-9 a-z A-N` (0 -> "0", 10 -> "a", 36 -> "A", 49 -> "N").
- `reverse-4`: 4 random integers in 1..9 in, the same 4 reversed out (digits).

Lines are drawn independently, so small alphabets repeat pairs; `s2s prepare`
rejects the repeats as duplicates and counts them.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterator
from pathlib import Path

from s2s.errors import S2SError
from s2s.publish import atomic_open

CARDINALITY_50 = (string.digits + string.ascii_lowercase + string.ascii_uppercase)[:50]


def reverse_first_3(rng: random.Random) -> tuple[str, str]:
    """6 integers of cardinality 50 -> the first 3 reversed."""
    tokens = [rng.choice(CARDINALITY_50) for _ in range(6)]
    return "".join(tokens), "".join(reversed(tokens[:3]))


def reverse_4(rng: random.Random) -> tuple[str, str]:
    """4 integers in 1..9 -> the same 4 reversed."""
    tokens = [str(rng.randint(1, 9)) for _ in range(4)]
    return "".join(tokens), "".join(reversed(tokens))


TASKS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "reverse-first-3": reverse_first_3,
    "reverse-4": reverse_4,
}


def generate(task: str, count: int, seed: int = 0) -> Iterator[tuple[str, str]]:
    """`count` (source, target) pairs of `task`, the same for the same seed."""
    if task not in TASKS:
        raise S2SError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if count < 1:
        raise S2SError(f"--n must be at least 1, got {count}")
    rng = random.Random(seed)
    make_pair = TASKS[task]
    for _ in range(count):
        yield make_pair(rng)


def write_corpus(task: str, count: int, output_path: str | Path, seed: int = 0) -> Path:
    """Writes `count` pairs of `task` as `source<TAB>target` lines, atomically; returns the path."""
    pairs = generate(task, count, seed)
    try:
        with atomic_open(output_path) as stream:
            for source, target in pairs:
                stream.write(f"{source}\t{target}\n")
    except OSError as error:
        raise S2SError(f"cannot write {output_path}: {error.strerror or error}") from None
    return Path(output_path)
