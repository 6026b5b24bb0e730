"""Translation speed on the CPU, and memory on large inputs, side by side in one run.

1. Speed: the same model and sentences through
   - the source material's loop: Keras `predict()` once per character, one sentence at a time;
   - a batched Keras greedy loop (`training.decoding.KerasGreedyDecoder`);
   - the s2s Translator (onnxruntime, CPU).
   Strings are compared with the ONNX output; sentences/s and the ratios are printed.
2. Memory: peak RSS of `s2s translate` on N and 10 x N lines (goal: within 1.2x).

    python benchmarks/bench_translate.py --model runs/fra-eng/model --onnx runs/fra-eng/onnx --data runs/fra-eng/data
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from s2s.records import load_references
from s2s.serving.translator import Translator
from s2s.training.decoding import KerasGreedyDecoder
from s2s.training.model_dir import ModelDir
from s2s.vocab import END_ID, START_ID


def source_material_loop(decoder: KerasGreedyDecoder, sentence: str) -> str:
    """lstm_seq2seq's decode_sequence: predict() per character, batch 1."""
    from s2s.onehot import encode_sources

    spec = decoder.spec
    encoded = decoder.encoder.predict(
        encode_sources([sentence], spec.source_vocabulary, max_length=spec.max_source_length, reverse=decoder.reverse_source), verbose=0
    )
    states, memory = encoded[: decoder.state_count], encoded[decoder.state_count :]  # memory: attention's encoder outputs and mask
    target = np.zeros((1, 1, len(spec.target_vocabulary)), dtype=np.float32)
    target[0, 0, START_ID] = 1.0
    decoded = []
    for _ in range(spec.max_target_length):
        probabilities, *states = decoder.decoder.predict([target, *states, *memory], verbose=0)
        token = int(probabilities[0, -1].argmax())
        if token == END_ID:
            break
        decoded.append(token)
        target = np.zeros_like(target)
        target[0, 0, token] = 1.0
    return spec.target_vocabulary.decode(decoded)


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def speed(model_dir: Path, onnx_dir: Path, sources: list[str], slow_sentences: int) -> None:
    keras_decoder = ModelDir(model_dir).greedy_decoder()
    translator = Translator(onnx_dir, device="cpu")
    translator.translate_batch(sources[:256])  # warm up sessions
    keras_decoder.translate(sources[:256])
    onnx_strings, onnx_seconds = timed(translator.translate_batch, sources)
    keras_strings, keras_seconds = timed(keras_decoder.translate, sources)
    slow = sources[:slow_sentences]
    slow_strings, slow_seconds = timed(lambda: [source_material_loop(keras_decoder, sentence) for sentence in slow])
    onnx_rate = len(sources) / onnx_seconds
    rows = [
        ("source material: predict() per char, batch 1", len(slow), slow_seconds, slow_strings, onnx_strings[: len(slow)]),
        ("Keras greedy, batched (s2s evaluate)", len(sources), keras_seconds, keras_strings, onnx_strings),
        ("s2s Translator, onnxruntime CPU", len(sources), onnx_seconds, onnx_strings, onnx_strings),
    ]
    print(f"\n1. CPU speed: {len(sources)} test sentences ({len(slow)} for the per-character loop), {os.cpu_count()} cores")
    print(f"{'decoder':<48} {'sentences':>9} {'seconds':>8} {'sent/s':>9} {'ONNX is x faster':>16} {'same strings':>12}")
    for label, count, seconds, strings, reference in rows:
        same = sum(a == b for a, b in zip(strings, reference, strict=True))
        print(f"{label:<48} {count:>9} {seconds:>8.2f} {count / seconds:>9.1f} {onnx_rate / (count / seconds):>15.1f}x {same:>6}/{count}")


def peak_rss_of_translation(onnx_dir: Path, lines: int, sources: list[str], scratch: Path) -> tuple[float, float]:
    corpus = scratch / f"corpus-{lines}.txt"
    with corpus.open("w") as stream:
        for index in range(lines):
            stream.write(sources[index % len(sources)] + "\n")
    # Peak RSS from VmHWM, which belongs to the new process image. ru_maxrss would not do: Linux keeps it across execve,
    # so a child of this TensorFlow-sized process would report this process's peak.
    code = (
        "import re, time; from s2s.serving.translator import Translator; "
        f"t = Translator({str(onnx_dir)!r}, device='cpu'); s = time.perf_counter(); "
        f"t.translate_file({str(corpus)!r}, {str(scratch / 'out.txt')!r}); seconds = time.perf_counter() - s; "
        r"print(re.search(r'VmHWM:\s+(\d+) kB', open('/proc/self/status').read()).group(1), seconds)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(output[0]) / 1024, float(output[1])


def memory(onnx_dir: Path, sources: list[str], lines: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        small = peak_rss_of_translation(onnx_dir, lines, sources, Path(scratch))
        large = peak_rss_of_translation(onnx_dir, lines * 10, sources, Path(scratch))
    print(f"\n2. Memory: peak RSS of translate_file (test sentences repeated), {os.cpu_count()} cores")
    print(f"{'lines':>10} {'peak RSS MB':>12} {'seconds':>8} {'sent/s':>8}")
    for count, (rss, seconds) in ((lines, small), (lines * 10, large)):
        print(f"{count:>10,} {rss:>12.0f} {seconds:>8.1f} {count / seconds:>8.0f}")
    print(f"ratio {large[0] / small[0]:.2f} (goal at most 1.20)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="MODEL_DIR of s2s train (the Keras models)")
    parser.add_argument("--onnx", required=True, help="ONNX_DIR of s2s export of the same model")
    parser.add_argument("--data", required=True, help="prepared data; its test sources are translated")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--slow-sentences", type=int, default=10, help="sentences for the per-character predict() loop")
    parser.add_argument("--memory-lines", type=int, default=100_000, help="N for the N versus 10 x N memory comparison; 0 skips")
    args = parser.parse_args()
    sources, _ = load_references(args.data, "test", args.sentences)
    print(f"s2s translate benchmark, {time.strftime('%Y-%m-%d')}, model {args.onnx}")
    speed(Path(args.model), Path(args.onnx), sources, args.slow_sentences)
    if args.memory_lines:
        memory(Path(args.onnx), sources, args.memory_lines)


if __name__ == "__main__":
    main()
