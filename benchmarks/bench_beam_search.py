"""Beam search against greedy decoding on the CPU, side by side in one run: the time for the same sentences.

The goal is that beam 5 costs at most 5x greedy: every beam step is one
decoder call over all sentences' beams (batch x beam rows) and one top-k over
(batch, beam x vocab), so it should cost about beam times a greedy step.

    python benchmarks/bench_beam_search.py [--sentences 2000] [--model models/fra-eng] [--beams 2 5]
"""

from __future__ import annotations

import argparse
import gzip
import os
import time
from pathlib import Path
from typing import Any

from s2s.serving.translator import Translator

REPO = Path(__file__).resolve().parents[1]


def sentences(count: int) -> list[str]:
    """Distinct English sources spread over the bundled corpus (it is sorted by length, so every length is represented)."""
    with gzip.open(REPO / "data" / "fra-eng" / "fra.txt.gz", "rt", encoding="utf-8") as stream:
        sources = list(dict.fromkeys(line.split("\t")[0] for line in stream))
    step = max(1, len(sources) // count)
    return sources[::step][:count]


def time_cases(translator: Translator, texts: list[str], cases: dict[str, dict[str, Any]]) -> list[tuple[str, float]]:
    """(case, seconds) of `translate_batch` on `texts` with each case's options, after one warm-up call."""
    translator.translate_batch(texts[:64])  # warm up the sessions
    rows = []
    for name, options in cases.items():
        started = time.perf_counter()
        translator.translate_batch(texts, **options)
        rows.append((name, time.perf_counter() - started))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--model", default=str(REPO / "models" / "fra-eng"))
    parser.add_argument("--beams", type=int, nargs="+", default=[2, 5])
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    translator = Translator.from_dir(args.model, device="cpu")
    texts = sentences(args.sentences)
    rows = time_cases(translator, texts, {str(beam): {"max_batch_size": args.batch_size, "beam_size": beam} for beam in [1, *args.beams]})
    greedy_seconds = rows[0][1]
    print(f"Beam search against greedy: {len(texts):,} sentences, batch {args.batch_size}, CPU ({os.cpu_count()} cores)\n")
    print("| beam | seconds | sentences/s | cost against greedy | goal |")
    print("|---|---|---|---|---|")
    for beam, seconds in rows:
        goal = "at most 5x" if beam == "5" else ""  # the target; other widths are shown for the trend
        print(f"| {beam} | {seconds:.2f} | {len(texts) / seconds:,.0f} | {seconds / greedy_seconds:.2f}x | {goal} |")


if __name__ == "__main__":
    main()
