"""What the richer outputs cost against plain greedy decoding, side by side in one run on the same sentences (CPU).

Scores, n-best (beam search), attention weights, replaced unknowns, sampling
and token-budget batches, each against the plain greedy strings that
`s2s translate` writes by default.

    python benchmarks/bench_outputs.py [--sentences 2000] [--model models/fra-eng]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_beam_search import REPO, sentences, time_cases  # the same corpus sample as the beam benchmark

from s2s.serving.translator import Translator

CASES = {
    "plain greedy (the default)": {},
    "greedy + scores": {"return_scores": True},
    "greedy + attention": {"return_attention": True},
    "greedy + replace_unknowns": {"replace_unknowns": True},
    "sampling top-10": {"sampling_topk": 10, "sampling_seed": 1},
    "token batches (batch_type tokens)": {"batch_type": "tokens"},
    "beam 5": {"beam_size": 5},
    "beam 5, 3-best + scores": {"beam_size": 5, "num_hypotheses": 3, "return_scores": True},
    "beam 5 + attention": {"beam_size": 5, "return_attention": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--model", default=str(REPO / "models" / "fra-eng"))
    args = parser.parse_args()
    translator = Translator.from_dir(args.model, device="cpu")
    texts = sentences(args.sentences)
    rows = time_cases(translator, texts, CASES)
    plain = rows[0][1]
    print(f"Richer outputs against plain greedy: {len(texts):,} sentences, default batch, CPU ({os.cpu_count()} cores)\n")
    print("| output | seconds | sentences/s | cost against plain greedy |")
    print("|---|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {len(texts) / seconds:,.0f} | {seconds / plain:.2f}x |")


if __name__ == "__main__":
    main()
