"""Translation throughput on a GPU: batch sizes 1 to 65,536, IO binding or not, float16 or float32, CUDA or CPU.

Needs only numpy and onnxruntime(-gpu), like a translation host: run it on a
GPU machine with an exported model and a file of test-like sentences (one per
line; `s2s evaluate` inputs or `data/` lines). All rows are measured in one
run, on the same sentences; the strings of every configuration are compared
with CUDA float32's.

    python benchmarks/bench_gpu.py --onnx models/fra-eng --sentences test_sources.txt [--batches 1 256 4096 65536]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from s2s.serving.translator import Translator

CONFIGS = [  # (label, device, precision, io_binding)
    ("CUDA float32, IO binding", "cuda", "float32", True),
    ("CUDA float32, through numpy", "cuda", "float32", False),
    ("CUDA float16, IO binding", "cuda", "float16", True),
    ("CPU float32", "cpu", "float32", False),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", required=True, help="output directory of s2s export")
    parser.add_argument("--sentences", required=True, help="a text file of source sentences, one per line")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 256, 4096, 16384, 65536])
    parser.add_argument("--min-sentences", type=int, default=4096, help="each measurement translates at least this many")
    parser.add_argument("--cpu-max-batch", type=int, default=4096, help="skip larger batches on the CPU (they take minutes)")
    parser.add_argument("--corpus-lines", type=int, default=1_000_000, help="lines of the end-to-end translate_file row; 0 skips it")
    args = parser.parse_args()
    with open(args.sentences, encoding="utf-8") as stream:
        base = [line.rstrip("\n") for line in stream if line.strip()]
    print(f"s2s GPU benchmark, {time.strftime('%Y-%m-%d')}, model {args.onnx}, {len(base)} distinct sentences")
    print(f"{'configuration':<30} {'batch':>6} {'sentences':>9} {'seconds':>8} {'sent/s':>10} {'same strings':>13}")
    reference: dict[int, list[str]] = {}
    for label, device, precision, io_binding in CONFIGS:
        try:
            translator = Translator(args.onnx, device=device, precision=precision, io_binding=io_binding)
        except Exception as error:  # e.g. no CUDA provider: report and go on
            print(f"{label:<30} skipped: {error}")
            continue
        for batch in args.batches:
            if device == "cpu" and batch > args.cpu_max_batch:
                continue
            count = max(batch, args.min_sentences if batch > 1 else 256)
            sentences = [base[index % len(base)] for index in range(count)]
            translator.translate_batch(sentences[: min(batch, 256)], max_batch_size=batch)  # warm up kernels and allocator
            started = time.perf_counter()
            strings = translator.translate_batch(sentences, max_batch_size=batch)
            seconds = time.perf_counter() - started
            expected = reference.setdefault(batch, strings)
            same = sum(a == b for a, b in zip(strings, expected, strict=True))
            print(f"{label:<30} {batch:>6} {count:>9} {seconds:>8.2f} {count / seconds:>10.0f} {same:>6}/{count}")
    if args.corpus_lines:
        end_to_end(args, base)


def end_to_end(args: argparse.Namespace, base: list[str]) -> None:
    """`translate_file` over a corpus file, the default device and batch size: what `s2s translate` does, phase by phase."""
    import resource
    import tempfile

    translator = Translator(args.onnx, device="auto")
    with tempfile.TemporaryDirectory() as scratch:
        corpus = os.path.join(scratch, "corpus.txt")
        with open(corpus, "w", encoding="utf-8") as stream:
            stream.writelines(base[index % len(base)] + "\n" for index in range(args.corpus_lines))
        stats = translator.translate_file(corpus, os.path.join(scratch, "out.txt"))
    summary = stats.to_dict()
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in summary["seconds_by_phase"].items())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nend to end: translate_file over {summary['lines']:,} lines on {summary['device']}: {summary['seconds']:.1f} s, "
        f"{summary['sentences_per_second']:,.0f} sentences/s ({phases}; the host phases overlap decoding); peak RSS {peak:.0f} MB"
    )


if __name__ == "__main__":
    main()
