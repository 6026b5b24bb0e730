"""The shipped English-to-French model: complete, self-describing, used by default, and still translating well."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnxruntime

from s2s import onnx_contract as contract
from s2s.app.cli import DEFAULT_MODEL_DIR

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = DEFAULT_MODEL_DIR / "test-samples.tsv"
# The shipped attention model scores chrF 57.35 on these samples (57.48 on the whole test split; the model it replaced,
# 54.79); a model decoded with a wrong vocabulary, normalisation or source direction scores in single figures. The margin
# absorbs onnxruntime versions.
MIN_SAMPLE_CHRF = 55.0


def read_sample_rows(path: Path) -> list[list[str]]:
    """A samples TSV's rows: the source, then every reference."""
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def translate_with_default_model(lines: list[str], cwd: Path) -> list[str]:
    env = {key: value for key, value in os.environ.items() if key != "S2S_MODEL"}
    result = subprocess.run(
        [sys.executable, "-m", "s2s.app.cli", "translate", "--input", "-", "--output", "-", "--device", "cpu"],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split("\n")[:-1]


def test_the_shipped_model_is_a_complete_verified_export() -> None:
    files = {path.name for path in DEFAULT_MODEL_DIR.iterdir()}
    expected = {
        contract.ENCODER_FILE,
        contract.DECODER_FILE,
        contract.DECODER_GREEDY_FILE,
        contract.TRANSLATOR_FILE,
        contract.MODEL_CARD_FILE,
        contract.CHECKSUMS_FILE,
        "verification.json",
        "_about.txt",
    }
    assert expected <= files
    size = sum(path.stat().st_size for path in DEFAULT_MODEL_DIR.iterdir())
    assert size < 11_000_000  # float32, float16 and int8 files together, kept small enough for a git repository
    ids = {
        onnxruntime.InferenceSession(DEFAULT_MODEL_DIR / name).get_modelmeta().custom_metadata_map[contract.META_MODEL_ID]
        for name in files
        if name.endswith(".onnx")
    }
    verification = json.loads((DEFAULT_MODEL_DIR / "verification.json").read_text())
    assert ids == {verification["model_id"]}
    metadata = onnxruntime.InferenceSession(DEFAULT_MODEL_DIR / contract.ENCODER_FILE).get_modelmeta().custom_metadata_map
    assert (metadata[contract.META_ARCH], metadata[contract.META_FORMAT]) == ("attention", contract.FORMAT_VERSION)
    card = (DEFAULT_MODEL_DIR / contract.MODEL_CARD_FILE).read_text()
    assert verification["model_id"] in card and "| sources | BLEU | chrF |" in card


def test_translate_uses_the_shipped_model_without_model_and_it_translates_held_out_sentences(tmp_path: Path) -> None:
    from s2s.training.metrics import score

    rows = read_sample_rows(SAMPLES)
    sources = [row[0] for row in rows]
    translations = translate_with_default_model(sources, cwd=tmp_path)  # any working directory
    assert len(translations) == len(sources)
    chrf = score(translations, [row[1:] for row in rows])["chrf"]
    assert chrf >= MIN_SAMPLE_CHRF, chrf


def test_without_model_or_default_the_error_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "s2s.app.cli", "translate", "--input", "-", "--output", "-"],
        input="Hello.\n",
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "S2S_MODEL": str(tmp_path / "nowhere")},
    )
    assert result.returncode == 66  # EX_NOINPUT: the model is not there (yet)
    assert result.stderr.strip().splitlines() == [
        f"s2s: error: no --model given and no default model at {tmp_path / 'nowhere'}: pass --model ONNX_DIR (the output of s2s export)"
    ]


def test_the_shipped_decoder_steps_compute_no_shapes() -> None:
    """Every decoder file of the shipped model is the step graph: no LSTM or Loop node, no Shape, Reshape or other shape
    arithmetic, which is what CUDA graphs (fixed shapes, every node on the GPU) need, checked here without a GPU."""
    import onnx

    from s2s.export.step_graph import SHAPE_OPS

    for name in (contract.DECODER_FILE, contract.DECODER_GREEDY_FILE, contract.DECODER_GREEDY_FP16_FILE):
        ops = {node.op_type for node in onnx.load(DEFAULT_MODEL_DIR / name).graph.node}
        assert not ops & {"LSTM", "Loop", "Scan", *SHAPE_OPS}, (name, ops)


def test_the_samples_are_a_repeatable_draw_of_distinct_test_sources_with_all_their_references(toy_model, tmp_path: Path) -> None:
    """models/draw_test_samples.py, which made test-samples.tsv, on the toy task's prepared data: the same seed draws the
    same rows, each a test source followed by every reference the split holds for it."""
    from s2s.records import load_references

    script = ROOT / "models" / "draw_test_samples.py"
    output = tmp_path / "samples.tsv"
    command = [sys.executable, str(script), str(toy_model.data_dir), str(output), "--count", "40"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    assert result.returncode == 0, result.stderr
    rows = read_sample_rows(output)
    sources, references = load_references(toy_model.data_dir, "test")
    by_source = dict(zip(sources, references, strict=True))
    assert len(rows) == 40 and len({row[0] for row in rows}) == 40
    assert all(row[1:] == by_source[row[0]] for row in rows)
    assert [row[0] for row in rows] != sources[:40]  # drawn at random, not the split's first sources
    subprocess.run(command, check=True, capture_output=True, env=environment)
    assert read_sample_rows(output) == rows
