"""How close CPU translation comes to this machine's float32 matrix-multiply peak: a roofline, in one run.

Translates random lines of the bundled corpus with the code of
`s2s translate` (`Translator.translate_file`, default settings), measures
this machine's float32 matmul peak on all cores (numpy, 512x512 by
512x1024, best of several rounds, before and after), and prints per model
folder (and precision):

- sentences/s;
- useful GFLOP/s: 2 x multiply-adds counted from the model's weight shapes
  and the actual lengths (`useful_flops`);
- that as a percentage of the peak;

and the same for the batched Keras greedy loop (`--keras-model`, where
TensorFlow is installed) as the peer. Two kernel rows say where the
ceiling is on this machine: onnxruntime's own MatMul at the step's largest
product, and the first model's decoder step alone on one thread, with one
source position and with the run's mean per step, whose difference is what
attention's two passes over the memory cost. Several `--model` folders (an older
export, say), `--precision` values and `--batch-size` values make rows side
by side; with `--data` (prepared data of the model's corpus) each row also
scores its translations of the test split (chrF, BLEU), which is how int8's
loss is measured against float32.

    python benchmarks/bench_cpu.py [--lines 30000] [--model models/fra-eng ...] [--precision float32 int8]
        [--batch-size 0 ...] [--data runs/fra-eng/data] [--keras-model runs/x/model]
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from s2s import onnx_contract as contract  # noqa: E402
from s2s.serving.translator import Translator  # noqa: E402
from s2s.serving.windows import prepare_sources  # noqa: E402


@dataclass(frozen=True)
class Dimensions:
    """What the useful work of one translation depends on."""

    encoder_weights: int  # multiply-adds per source character: every encoder LSTM's input and recurrent weights
    latent: int
    num_layers: int
    target_vocab: int
    attention: bool

    def decoder_step(self, source_length: np.ndarray) -> np.ndarray:
        """Multiply-adds of one decoder step, per sentence: LSTMs (one-hot input counted), attention, projection, output."""
        h = self.latent
        lstm = 4 * h * (self.target_vocab + h) + (self.num_layers - 1) * 4 * h * (2 * h)
        fixed = lstm + h * self.target_vocab + (2 * h * h if self.attention else 0)
        return fixed + (2 * source_length * h if self.attention else 0)  # scores and context: source length x latent each

    def one_hot_share(self, source_length: float) -> float:
        """The part of a decoder step that multiplies the one-hot previous token (a lookup in s2s's step graph)."""
        return 4 * self.latent * self.target_vocab / float(self.decoder_step(np.array(source_length)))


def useful_flops(dims: Dimensions, source_lengths: np.ndarray, output_lengths: np.ndarray) -> float:
    """2 x multiply-adds: encoder weights x source characters, decoder step x (output characters + 1 for the end token)."""
    encoder = dims.encoder_weights * source_lengths
    decoder = dims.decoder_step(source_lengths) * (output_lengths + 1)
    return 2.0 * float(encoder.sum() + decoder.sum())


def onnx_dimensions(model_dir: Path) -> Dimensions:
    """The dimensions of an export, read from encoder.onnx's LSTM weights and the metadata."""
    import onnx
    from onnx import numpy_helper

    encoder = onnx.load(model_dir / contract.ENCODER_FILE)
    weights = {tensor.name: tensor for tensor in encoder.graph.initializer}
    per_character = 0
    for node in encoder.graph.node:
        if node.op_type == "LSTM":
            per_character += sum(int(np.prod(numpy_helper.to_array(weights[name]).shape)) for name in node.input[1:3])
    meta = {entry.key: entry.value for entry in encoder.metadata_props}
    import json

    return Dimensions(
        per_character,
        int(meta[contract.META_LATENT_DIM]),
        int(meta[contract.META_NUM_LAYERS]),
        len(json.loads(meta[contract.META_TARGET_VOCABULARY])),
        meta[contract.META_ARCH] == contract.ARCH_ATTENTION,
    )


def best_seconds(call: Callable[[], object], repeats: int, rounds: int = 5) -> float:
    """Seconds per call of `call`, in the fastest of `rounds` rounds of `repeats` calls (after one call to warm up)."""
    call()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            call()
        best = min(best, (time.perf_counter() - started) / repeats)
    return best


def matmul_peak(rounds: int = 5, repeats: int = 20) -> float:
    """float32 GFLOP/s of numpy's matmul (512x512 by 512x1024) on all cores: the best round."""
    rng = np.random.default_rng(0)
    a, b = rng.random((512, 512), dtype=np.float32), rng.random((512, 1024), dtype=np.float32)
    return 2 * 512 * 512 * 1024 / best_seconds(lambda: a @ b, repeats, rounds) / 1e9


def onnxruntime_matmul(rows: int, inner: int, columns: int, *, int8: bool = False, repeats: int = 200) -> float:
    """GFLOP/s (GOPS for `int8`) of one onnxruntime node (rows x inner by a constant inner x columns), best of 5 rounds.

    float32: a MatMul at the decoder step's largest product at the CPU's batch
    (128 x 256 by 256 x 1,024), what onnxruntime's own kernel reaches on this
    shape, the practical ceiling of a step made of such products. `int8`: the
    MatMulInteger (uint8 activations by int8 weights) that `--precision int8`
    runs, whose rate tells which kernel MLAS picked (AMX runs several times
    what AVX-512 VNNI can).
    """
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        weights = numpy_helper.from_array(rng.integers(-127, 128, (inner, columns), dtype=np.int8), name="weights")
        node, x_type, y_type = "MatMulInteger", TensorProto.UINT8, TensorProto.INT32
        x = rng.integers(0, 256, (rows, inner), dtype=np.uint8)
    else:
        weights = numpy_helper.from_array(rng.random((inner, columns), dtype=np.float32), name="weights")
        node, x_type, y_type = "MatMul", TensorProto.FLOAT, TensorProto.FLOAT
        x = rng.random((rows, inner), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node(node, ["x", "weights"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", x_type, [rows, inner])],
        [helper.make_tensor_value_info("y", y_type, [rows, columns])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {"x": x}
    return 2 * rows * inner * columns / best_seconds(lambda: session.run(None, feed), repeats) / 1e9


def step_alone(model_dir: Path, rows: int, positions: int, repeats: int = 200) -> float:
    """Microseconds of one float32 greedy decoder step of `model_dir` on one thread: `rows` rows, `positions` source positions.

    Between one position and a sentence's worth, the step's products stay the
    same and only attention's two passes over the memory (rows x positions x
    latent floats) grow: the difference is what attention costs a step.
    """
    from s2s.serving.engine import session_options
    from s2s.serving.sessions import open_session

    session = open_session(model_dir / contract.DECODER_GREEDY_FILE, options=session_options(1, spinning=False))
    rng = np.random.default_rng(0)
    feed = {}
    for value in session.get_inputs():
        shape = [rows if dim == "batch" else positions if dim == "source_time" else dim for dim in value.shape]
        if value.name == contract.PREVIOUS_TOKEN:
            feed[value.name] = rng.integers(4, 60, rows).astype(np.int32)
        elif value.name == contract.SOURCE_MASK:
            feed[value.name] = np.ones(shape, dtype=np.float32)
        else:
            feed[value.name] = (0.3 * rng.standard_normal(shape)).astype(np.float32)
    for _ in range(20):
        session.run(None, feed)
    return best_seconds(lambda: session.run(None, feed), repeats) * 1e6


def corpus_lines(count: int, seed: int = 0) -> list[str]:
    """`count` English sources drawn at random (with a fixed seed) from the bundled corpus."""
    with gzip.open(REPO / "data" / "fra-eng" / "fra.txt.gz", "rt", encoding="utf-8") as stream:
        sources = [line.split("\t")[0] for line in stream]
    return random.Random(seed).choices(sources, k=count)


def translate_file_run(
    model_dir: Path, precision: str, lines: list[str], scratch: Path, batch_size: int = 0, inter_threads: int = 0, window: int = 0
) -> tuple[float, list[str], Translator]:
    """(seconds, translations, translator) of `translate_file` on `lines`, as `s2s translate` runs it."""
    translator = Translator.from_dir(model_dir, device="cpu", precision=precision, inter_threads=inter_threads)
    source, output = scratch / "input.txt", scratch / f"output-{precision}.txt"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    translator.translate_batch(lines[:512])  # warm up: first-run allocations belong to no steady state
    started = time.perf_counter()
    translator.translate_file(str(source), str(output), max_batch_size=batch_size, window=window, summary_path=str(scratch / "summary.json"))
    seconds = time.perf_counter() - started
    return seconds, output.read_text(encoding="utf-8").splitlines(), translator


def keras_run(model_dir: Path, lines: list[str]) -> tuple[float, list[str], Dimensions, np.ndarray]:
    """(seconds, translations, dimensions, source lengths) of the batched Keras greedy loop (`s2s evaluate`'s)."""
    from s2s.training.model_dir import ModelDir

    decoder = ModelDir(model_dir).greedy_decoder()
    settings = ModelDir(model_dir).settings().config
    spec = decoder.spec
    per_character = 0
    for layer in decoder.encoder.layers:
        for weight in layer.weights:
            if "kernel" in weight.path.rsplit("/", 1)[-1]:  # kernel and recurrent_kernel, not the biases
                per_character += int(np.prod(weight.shape))
    dims = Dimensions(per_character, settings.latent_dim, settings.num_layers, len(spec.target_vocabulary), settings.arch == contract.ARCH_ATTENTION)
    texts = spec.normalizer.normalize_lines(lines)  # source lengths as the model reads them, as the ONNX rows count them
    decoder.translate(lines[:256])
    started = time.perf_counter()
    translations = decoder.translate(lines)
    seconds = time.perf_counter() - started
    lengths = np.minimum(np.array([len(text) for text in texts]), spec.max_source_length)
    return seconds, translations, dims, lengths


def cpu_description() -> str:
    """The CPU model and the SIMD extensions that decide which onnxruntime kernels run, as MLAS picks them at start.

    float32 products: AVX-512F where the CPU has it, else FMA3 (with AVX2),
    else AVX. int8 (uint8 x int8, dynamic quantization's products): AMX where
    the CPU has AMX-INT8 (Linux grants the tile state when MLAS asks), else
    AVX-512 VNNI, AVX-VNNI, AVX2 without VNNI, SSE4.1.
    """
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "unknown CPU")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    wanted = ["avx", "fma", "avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8"]
    int8_kernels = [("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"), ("avx2", "AVX2 (no VNNI)")]
    int8 = next((name for flag, name in int8_kernels if flag in flags and (flag != "amx_int8" or "amx_tile" in flags)), "SSE4.1")
    float32 = "AVX-512F" if "avx512f" in flags else "FMA3" if {"fma", "avx2"} <= flags else "AVX"
    return f"{model}; {' '.join(flag for flag in wanted if flag in flags)}; int8: {int8}; float32: {float32}"


def check_own_code() -> None:
    """Exits unless the serving code imported is this checkout's.

    An editable install maps `s2s.serving` to the checkout it was made from,
    so this script run from another worktree (an older commit, for a
    before-and-after row) would time today's code under the old name.
    """
    imported = Path(sys.modules[Translator.__module__].__file__ or "").resolve()
    if REPO not in imported.parents:
        sys.exit(f"bench_cpu: s2s.serving comes from {imported.parents[1]}, not this checkout {REPO}; link {REPO}/s2s/serving to ../serving")


def main() -> None:
    check_own_code()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=30_000)
    parser.add_argument("--model", type=Path, nargs="+", default=[REPO / "models" / "fra-eng"], help="export folders, one row each")
    parser.add_argument("--precision", nargs="+", default=["float32"], help="precisions to run each model at")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[0], help="batch sizes to run each at (0: automatic)")
    parser.add_argument(
        "--inter-threads", type=int, nargs="+", default=[0], help="decoding loops to run each with (0: automatic, one per core; 1: one loop on all cores)"
    )
    parser.add_argument("--window", type=int, nargs="+", default=[0], help="lines read and sorted together (`translate_file`'s window; 0: its default)")
    parser.add_argument("--data", type=Path, help="prepared data (s2s prepare) whose test split each row also scores")
    parser.add_argument("--keras-model", type=Path, help="an `s2s train` MODEL_DIR for the Keras peer row (needs TensorFlow)")
    parser.add_argument("--keras-lines", type=int, default=5000, help="lines for the Keras peer (it is slower)")
    args = parser.parse_args()
    logging.getLogger("s2s").setLevel(logging.ERROR)  # the run's cut and long-line counts would interleave with the table

    lines = corpus_lines(args.lines)
    peak_before = matmul_peak()
    rows = []
    quality: dict[tuple[str, str, int], dict[str, float]] = {}
    reference: list[str] | None = None
    step_model: tuple[Path, Dimensions, int] | None = None  # the first row's model and source length per decoder step
    with tempfile.TemporaryDirectory() as scratch:
        for model_dir in args.model:
            dims = onnx_dimensions(model_dir)
            runs = [
                (precision, size, inter, window)
                for precision in args.precision
                for size in args.batch_size
                for inter in args.inter_threads
                for window in args.window
            ]
            for precision, batch_size, inter_threads, window in runs:
                if not all((model_dir / name).exists() for name in contract.PRECISION_FILES[precision]):
                    continue  # an older export without this precision's files
                seconds, translations, translator = translate_file_run(model_dir, precision, lines, Path(scratch), batch_size, inter_threads, window)
                sources = np.array([len(text) for text in prepare_sources(translator.info, lines)])
                outputs = np.array([len(text) for text in translations])
                flops = useful_flops(dims, np.minimum(sources, translator.info.max_source_length), outputs)
                reference = reference or translations
                same = sum(a == b for a, b in zip(translations, reference, strict=True))
                batch = (f", batch {batch_size}" if batch_size else "") + (f", {inter_threads} loop(s)" if inter_threads else "") + (f", window {window}" if window else "")
                if args.data:
                    quality[(model_dir.name, precision, batch_size)] = test_quality(translator, args.data)
                rows.append((f"s2s translate, {model_dir.name} ({precision}{batch})", len(lines), seconds, flops, f"{same}/{len(lines)}"))
                one_hot = dims.one_hot_share(float(sources.mean()))
                per_step = round(float((sources * (outputs + 1)).sum() / (outputs + 1).sum()))  # source length a decoder step attends to
                step_model = step_model or (model_dir, dims, per_step)
    if args.keras_model:
        subset = lines[: args.keras_lines]
        seconds, translations, dims, sources = keras_run(args.keras_model, subset)
        outputs = np.array([len(text) for text in translations])
        rows.append(("Keras greedy, batched (peer)", len(subset), seconds, useful_flops(dims, sources, outputs), "own model"))
    peak = max(peak_before, matmul_peak())
    step_kernel = onnxruntime_matmul(128, 256, 1024)
    int8_kernel = onnxruntime_matmul(128, 256, 1024, int8=True) if "int8" in args.precision else None

    print(f"CPU roofline, {time.strftime('%Y-%m-%d')}: {os.cpu_count()} cores, {args.lines} random corpus lines")
    print(f"CPU: {cpu_description()}")
    print(f"float32 matmul peak (numpy, 512x512 @ 512x1024, all cores): {peak:.1f} GFLOP/s")
    print(f"onnxruntime MatMul, 128x256 by 256x1024 (the step's largest product at batch 128): {step_kernel:.1f} GFLOP/s, {step_kernel / peak:.0%} of peak")
    if int8_kernel:
        print(f"onnxruntime MatMulInteger (uint8 x int8, as --precision int8 runs), same shape: {int8_kernel:.1f} GOPS, {int8_kernel / step_kernel:.1f}x the float32 MatMul")
    print(f"useful work counts the one-hot input product as the issue defines it; it is {one_hot:.0%} of a decoder step")
    if step_model:
        model_dir, dims, positions = step_model
        core_peak = peak / (os.cpu_count() or 1)
        alone = {count: step_alone(model_dir, 128, count) for count in (1, positions)}
        rates = {count: 2 * 128 * float(dims.decoder_step(np.array(count))) / alone[count] / 1e3 for count in alone}
        print(
            f"{model_dir.name}'s decoder step alone, one thread, 128 rows: {alone[1]:.0f} us with 1 source position "
            f"({rates[1] / core_peak:.0%} of a core's share of the peak), {alone[positions]:.0f} us with {positions} "
            f"(the run's mean per step; {rates[positions] / core_peak:.0%}): attention's passes over the memory are "
            f"{1 - alone[1] / alone[positions]:.0%} of the step"
        )
    print(f"{'run':<48} {'lines':>7} {'seconds':>8} {'sent/s':>8} {'GFLOP/s':>8} {'% peak':>7} {'same strings':>13}")
    for label, count, seconds, flops, same in rows:
        rate = flops / seconds / 1e9
        print(f"{label:<48} {count:>7} {seconds:>8.2f} {count / seconds:>8.0f} {rate:>8.1f} {rate / peak:>7.1%} {same:>13}")
    for (name, precision, batch_size), scores in quality.items():
        batch = f", batch {batch_size}" if batch_size else ""
        print(f"test split, {name} ({precision}{batch}): chrF {scores['chrf']:.2f}, BLEU {scores['bleu']:.2f} ({scores['sentences']} sources, greedy)")


def test_quality(translator: Translator, data_dir: Path) -> dict[str, float]:
    """chrF and BLEU of greedy translations of the test split of prepared data, against all its references."""
    from s2s.records import load_references
    from s2s.training.metrics import score

    sources, references = load_references(data_dir, "test")
    return {**score(translator.translate_batch(sources), references), "sentences": len(sources)}


if __name__ == "__main__":
    main()
