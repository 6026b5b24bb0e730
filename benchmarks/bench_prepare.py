"""`s2s prepare` on Beam versus a plain single-process loop doing the same work.

Both read the bundled fra-eng corpus, clean every line with the same
functions, drop duplicates and rare characters, split by source hash and
write GZIP TFRecords of the same Examples. The loop is what a script without
Beam would do; the ratio is what Beam's portability costs (or gains) here.
Printed side by side in one run; nothing is asserted.

    python benchmarks/bench_prepare.py [--input data/fra-eng/fra.txt.gz] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2s.pipelines import cleaning
from s2s.pipelines.cleaning import LengthLimits, Pair
from s2s.pipelines.config import PrepareConfig
from s2s.pipelines.prepare import prepare
from s2s.pipelines.split import split_of
from s2s.pipelines.transforms import numbered_lines
from s2s.records import ExampleEncoder
from s2s.spec import SPLITS
from s2s.text import TextNormalizer
from s2s.tfrecord_io import write_gzip_records
from s2s.vocab import Vocabulary

REPO = Path(__file__).resolve().parents[1]


def plain_loop(input_path: str, output_dir: Path, config: PrepareConfig) -> int:
    """The same cleaning, filtering, splitting and encoding in one Python process; returns pairs kept."""
    normalizer = TextNormalizer(fold_quotes=config.fold_quotes)
    limits = LengthLimits(config.max_source_length, config.max_target_length)
    first_of: dict[tuple[str, str], Pair] = {}
    with gzip.open(input_path, "rb") as stream:
        for line_number, raw in numbered_lines(stream):
            result = cleaning.parse_line(input_path, line_number, raw, normalizer, limits)
            if isinstance(result, Pair):
                first_of.setdefault((result.source, result.target), result)
    source_counts, target_counts = Counter(), Counter()
    for pair in first_of.values():
        source_counts.update(pair.source)
        target_counts.update(pair.target)
    kept = [
        pair
        for pair in first_of.values()
        if cleaning.find_rare_character(pair, source_counts, target_counts, config.min_char_count) is None
    ]
    encoder = ExampleEncoder(
        Vocabulary.from_characters(char for pair in kept for char in pair.source),
        Vocabulary.from_characters(char for pair in kept for char in pair.target),
        max(len(pair.source) for pair in kept),
        max(len(pair.target) for pair in kept),
    )
    split_of_pair = [split_of(pair.source, config.validation_fraction, config.test_fraction) for pair in kept]
    for split in SPLITS:  # each split streamed to its file by the writer prepare's workers use
        with open(output_dir / f"{split}-00000-of-00001.tfrecord.gz", "wb") as stream:
            records = (encoder.encode(pair.source, pair.target) for pair, its in zip(kept, split_of_pair, strict=True) if its == split)
            write_gzip_records(stream, records)
    return len(kept)


def records_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.glob("*.tfrecord.gz"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(REPO / "data/fra-eng/fra.txt.gz"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Beam runs with these direct_num_workers")
    args = parser.parse_args()
    config = PrepareConfig(rare_characters="reject")  # the plain loop below rejects rare characters, as this did before "unk"
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        loop_dir = Path(scratch) / "loop"
        loop_dir.mkdir()
        started = time.perf_counter()
        loop_pairs = plain_loop(args.input, loop_dir, config)
        loop_seconds = time.perf_counter() - started
        rows.append(("plain Python loop (reference)", loop_pairs, loop_seconds, records_bytes(loop_dir) / loop_pairs))
        for workers in args.workers:
            beam_dir = Path(scratch) / f"beam{workers}"
            beam_args = [f"--direct_num_workers={workers}"]
            if workers > 1:
                beam_args.append("--direct_running_mode=multi_processing")
            started = time.perf_counter()
            manifest = prepare([args.input], str(beam_dir), config, beam_args)
            seconds = time.perf_counter() - started
            label = f"s2s prepare, Beam FnApiRunner, {workers} worker{'s' if workers > 1 else ''}"
            rows.append((label, manifest["pairs_kept"], seconds, records_bytes(beam_dir) / manifest["pairs_kept"]))
    print(f"s2s prepare benchmark: {args.input}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print(f"{'run':<44} {'pairs kept':>10} {'seconds':>8} {'pairs/s':>8} {'bytes/pair':>10} {'time vs loop':>12}")
    for label, pairs, seconds, bytes_per_pair in rows:
        print(f"{label:<44} {pairs:>10} {seconds:>8.1f} {pairs / seconds:>8.0f} {bytes_per_pair:>10.0f} {seconds / loop_seconds:>11.2f}x")
    if any(pairs != loop_pairs for _, pairs, _, _ in rows):
        print("WARNING: the runs kept different numbers of pairs; the comparison is not like for like")


if __name__ == "__main__":
    main()
