"""Draw a shipped model's `test-samples.tsv`: test-split sources at random, each followed by all its references.

The default model's tests (tests/test_default_model.py) and the JavaScript hosts' tests translate these sources with
the shipped model. Drawn from that model's own test split, they are sentences it never saw, so their chrF says how it
translates new text; a fixed seed makes the draw repeatable from the prepared data alone.

    .venv/bin/python models/draw_test_samples.py runs/fra-eng/data models/fra-eng/test-samples.tsv
"""

from __future__ import annotations

import argparse
import random

from s2s.publish import publish_lines
from s2s.records import load_references

SAMPLES = 300
SEED = 0


def draw(data_dir: str, count: int = SAMPLES, seed: int = SEED) -> list[str]:
    """`count` distinct test sources in a seeded random order, each as a tab-separated row: source, then references."""
    sources, references = load_references(data_dir, "test")
    chosen = random.Random(seed).sample(range(len(sources)), min(count, len(sources)))
    return ["\t".join([sources[index], *references[index]]) for index in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="the model's s2s prepare output")
    parser.add_argument("output", help="the TSV to write (atomically)")
    parser.add_argument("--count", type=int, default=SAMPLES, help="how many sources (default %(default)s)")
    parser.add_argument("--seed", type=int, default=SEED, help="the draw's seed (default %(default)s)")
    arguments = parser.parse_args()
    rows = publish_lines(arguments.output, draw(arguments.data, arguments.count, arguments.seed))
    print(f"{rows} samples written to {arguments.output}")


if __name__ == "__main__":
    main()
