"""Host work per line of `s2s translate`, with no model call: ours against the per-line path, side by side in one run.

Everything `s2s translate` does on the host for one line, phase by phase, on
one core (numpy runs single-threaded here):

- read: raw lines from the corpus file, in windows of 4,096;
- normalise: UTF-8 decode, the model's normalisation, counters (characters,
  unknown characters, truncations) and the length cut;
- encode: length sort, then int32 ids per batch of 256, as fed to the encoder;
- decode: the decoder's output ids back to text (the corpus's reference
  translations stand in for the model's output);
- write: one UTF-8 string per window to the output file.

The reference does the same work one line and one character at a time, the
way a straightforward host (and s2s before its vectorised path) does: a
normaliser call, a dictionary lookup per character and a per-row decode.
Both must give the same strings; the goal is at least 500,000 lines/s (2 µs
a line) for ours.

    python benchmarks/bench_host.py [--lines 1000000] [--model models/fra-eng]
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from s2s.onehot import ID_DTYPE, encode_ids, texts_of_ids
from s2s.serving.engine import Engine
from s2s.serving.file_job import FileJob
from s2s.serving.inputs import LineWindows, decoded_sources, line_blocks
from s2s.serving.options import DecodingOptions
from s2s.serving.stats import TranslationStats
from s2s.serving.windows import prepare_window
from s2s.vocab import END_ID, PAD_ID

REPO = Path(__file__).resolve().parents[1]
WINDOW, BATCH = 4096, 256
JOB = FileJob(BATCH, WINDOW, DecodingOptions())  # text input, default decoding: what `s2s translate` runs


def corpus_lines(count: int) -> tuple[list[str], list[str]]:
    """`count` English sources and their French references from the bundled corpus, repeated as needed."""
    with gzip.open(REPO / "data" / "fra-eng" / "fra.txt.gz", "rt", encoding="utf-8") as stream:
        pairs = [line.rstrip("\n").split("\t")[:2] for line in stream]
    pairs = [pair for pair in pairs if len(pair) == 2]
    repeated = (pairs * (count // len(pairs) + 1))[:count]
    return [source for source, _ in repeated], [target for _, target in repeated]


def decoder_output(targets: list[str], engine: Engine) -> list[np.ndarray]:
    """The ids a decoder would return for `targets`, per window: (window, steps) int32, end-token padded."""
    info = engine.info
    outputs = []
    for start in range(0, len(targets), WINDOW):
        texts = info.normalizer.normalize_lines(targets[start : start + WINDOW])
        ids = encode_ids(texts, info.target_vocabulary, max_length=info.max_target_length, reverse=False)
        ids[ids == PAD_ID] = END_ID
        outputs.append(np.concatenate([ids, np.full((len(ids), 1), END_ID, dtype=ID_DTYPE)], axis=1))
    return outputs


def ours(path: Path, output: Path, engine: Engine, decoded: list[np.ndarray]) -> tuple[dict[str, float], list[str]]:
    info, seconds = engine.info, dict.fromkeys(("read", "normalise", "encode", "decode", "write"), 0.0)
    stats, strings = TranslationStats(), []
    clock = time.perf_counter
    with open(output, "wb") as sink:
        windows = iter(LineWindows([str(path)], WINDOW))
        for window_ids in decoded:
            started = clock()
            chunk = next(windows)
            seconds["read"] += clock() - started
            started = clock()
            window = prepare_window(info, decoded_sources(chunk, JOB, stats)[0], stats)
            seconds["normalise"] += clock() - started
            started = clock()
            for _ in engine.batches(window, BATCH, "examples"):
                pass
            seconds["encode"] += clock() - started
            started = clock()
            translations = texts_of_ids(window_ids, info.target_vocabulary)
            seconds["decode"] += clock() - started
            started = clock()
            sink.write(("\n".join(translations) + "\n").encode("utf-8"))
            seconds["write"] += clock() - started
            strings += translations
    return seconds, strings


def per_line(path: Path, output: Path, engine: Engine, decoded: list[np.ndarray]) -> tuple[dict[str, float], list[str]]:
    info, seconds = engine.info, dict.fromkeys(("read", "normalise", "encode", "decode", "write"), 0.0)
    source_ids, limit, strings = info.source_vocabulary._ids, info.max_source_length, []
    clock = time.perf_counter
    with open(output, "wb") as sink:
        lines = (line for block in line_blocks([str(path)]) for line in block)
        for window_ids in decoded:
            started = clock()
            chunk = [raw for _, raw in zip(range(WINDOW), lines, strict=False)]
            seconds["read"] += clock() - started
            started = clock()
            texts, characters, unknown, truncated = [], 0, 0, 0
            for raw in chunk:
                text = info.normalizer(raw.decode("utf-8", errors="replace"))
                characters += len(text)
                unknown += sum(char not in source_ids for char in text)
                truncated += len(text) > limit
                texts.append(text[:limit])
            seconds["normalise"] += clock() - started
            started = clock()
            order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
            for start in range(0, len(order), BATCH):
                batch = [texts[index] for index in order[start : start + BATCH]]
                ids = np.zeros((len(batch), max(map(len, batch), default=0) or 1), dtype=ID_DTYPE)
                for row, text in enumerate(batch):
                    ids[row, : len(text)] = [info.source_vocabulary.id_of(char) for char in text]
            seconds["encode"] += clock() - started
            started = clock()
            translations = [info.target_vocabulary.decode(row) for row in window_ids]
            seconds["decode"] += clock() - started
            started = clock()
            for translation in translations:
                sink.write(f"{translation}\n".encode())
            seconds["write"] += clock() - started
            strings += translations
    return seconds, strings


def measure(name: str, run: Callable, *args: object) -> tuple[dict[str, float], list[str]]:
    seconds, strings = run(*args)
    print(f"  {name}: {sum(seconds.values()):.2f} s", file=sys.stderr)
    return seconds, strings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="corpus lines (default 1,000,000)")
    parser.add_argument("--model", default=str(REPO / "models" / "fra-eng"), help="an export folder, for its vocabularies and normalisation")
    args = parser.parse_args()
    engine = Engine.open(args.model, device="cpu")
    sources, targets = corpus_lines(args.lines)
    decoded = decoder_output(targets, engine)
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "corpus.txt"
        corpus.write_text("".join(f"{source}\n" for source in sources), encoding="utf-8")
        engine.info.normalizer.normalize_lines(["warm up the character table"])
        fast, fast_strings = measure("vectorised", ours, corpus, Path(scratch) / "ours.txt", engine, decoded)
        slow, slow_strings = measure("per line", per_line, corpus, Path(scratch) / "reference.txt", engine, decoded)
        same_file = (Path(scratch) / "ours.txt").read_bytes() == (Path(scratch) / "reference.txt").read_bytes()
    assert fast_strings == slow_strings and same_file, "the vectorised host path must write exactly the per-line path's output"
    lines = len(sources)
    print(f"Host work per line, no model call: {lines:,} corpus lines, one core ({os.cpu_count()} on this machine)\n")
    print("| phase | vectorised µs/line | per-line µs/line | speed-up |")
    print("|---|---|---|---|")
    for phase in fast:
        print(f"| {phase} | {fast[phase] / lines * 1e6:.2f} | {slow[phase] / lines * 1e6:.2f} | {slow[phase] / max(fast[phase], 1e-9):.1f}x |")
    total_fast, total_slow = sum(fast.values()), sum(slow.values())
    print(f"| **all** | **{total_fast / lines * 1e6:.2f}** | **{total_slow / lines * 1e6:.2f}** | **{total_slow / total_fast:.1f}x** |")
    print(f"\nvectorised: {lines / total_fast:,.0f} lines/s (goal 500,000); per line: {lines / total_slow:,.0f} lines/s; outputs identical")


if __name__ == "__main__":
    main()
