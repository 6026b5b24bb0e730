"""s2s export on the real toy model: self-describing files, native LSTM ops, verified against Keras, hermetic."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from s2s import onnx_contract as contract
from s2s.export.config import ExportConfig
from s2s.export.step_graph import SHAPE_OPS, shape_nodes
from s2s.records import load_references
from s2s.spec import DatasetSpec
from s2s.training.model_dir import ModelDir
from tests.cli import REPO, assert_one_line_error, run_cli

ALL_FILES = [
    contract.ENCODER_FILE,
    contract.DECODER_FILE,
    contract.DECODER_GREEDY_FILE,
    contract.TRANSLATOR_FILE,
    contract.ENCODER_FP16_FILE,
    contract.DECODER_GREEDY_FP16_FILE,
    contract.ENCODER_INT8_FILE,
    contract.DECODER_GREEDY_INT8_FILE,
]


@pytest.fixture
def exported(toy_onnx) -> tuple[Path, dict]:
    return toy_onnx


def test_export_writes_every_file_with_its_metadata(exported, toy_model) -> None:
    output, report = exported
    assert {path.name for path in output.iterdir()} == {*ALL_FILES, contract.MODEL_CARD_FILE, contract.CHECKSUMS_FILE, "verification.json"}
    spec = DatasetSpec.load(toy_model.model_dir)
    ids = set()
    for name in ALL_FILES:
        model = onnx.load(output / name)
        metadata = {entry.key: entry.value for entry in model.metadata_props}
        assert json.loads(metadata[contract.META_SOURCE_VOCABULARY]) == spec.source_vocabulary.to_list()
        assert json.loads(metadata[contract.META_TARGET_VOCABULARY]) == spec.target_vocabulary.to_list()
        assert json.loads(metadata[contract.META_NORMALIZATION]) == spec.normalizer.to_dict()
        assert json.loads(metadata[contract.META_SPECIAL_TOKENS])["end"] == {"token": "\n", "id": 2}
        assert metadata[contract.META_MAX_TARGET_LENGTH] == str(spec.max_target_length)
        assert metadata[contract.META_PRECISION] == ("float16" if "fp16" in name else "int8" if "int8" in name else "float32")
        assert (metadata[contract.META_FORMAT], metadata[contract.META_ARCH]) == ("2", "attention")
        assert set(json.loads(metadata[contract.META_OUTPUTS])) == {value.name for value in model.graph.output}
        ids.add(metadata[contract.META_MODEL_ID])
        assert {entry.domain: entry.version for entry in model.opset_import}[""] == 17
    assert ids == {report["model_id"]}


def test_models_use_the_native_lstm_op_with_sequence_lengths(exported) -> None:
    output, _ = exported
    encoder = onnx.load(output / contract.ENCODER_FILE)
    lstm_nodes = [node for node in encoder.graph.node if node.op_type == "LSTM"]
    assert len(lstm_nodes) == 1 and lstm_nodes[0].input[4]  # sequence_lens is fed
    assert {attribute.name: attribute.s for attribute in lstm_nodes[0].attribute}["direction"] == b"bidirectional"
    assert not any(node.op_type in ("Loop", "Scan") for node in encoder.graph.node)
    assert [(value.name, value.type.tensor_type.elem_type) for value in encoder.graph.input] == [(contract.SOURCE_IDS, TensorProto.INT32)]
    assert [value.name for value in encoder.graph.output] == ["h_0", "c_0", contract.ENCODER_OUTPUTS, contract.SOURCE_MASK]
    # The memory straight from the LSTM's output (batch-first, directions joined), not sliced, concatenated and transposed.
    producers = {name: node for node in encoder.graph.node for name in node.output}
    memory = producers[contract.ENCODER_OUTPUTS]
    assert memory.op_type == "Reshape" and producers[memory.input[0]].op_type == "Transpose"
    assert producers[memory.input[0]].input[0] == lstm_nodes[0].output[0]
    assert not any(node.op_type in ("GlobalMaxPool", "Squeeze") for node in encoder.graph.node)
    decoder = onnx.load(output / contract.DECODER_FILE)
    # The step graph: the LSTM cell as products and element-wise ops, no Loop and no shape arithmetic (what CUDA graphs need).
    # float32 step files write their outputs from the nodes themselves: no Identity copying states every step; one
    # product per gate: no Split copying one product apart.
    assert not {node.op_type for node in decoder.graph.node} & {"LSTM", "Loop", "Scan", "Identity", "Split", *SHAPE_OPS}
    assert any(node.op_type == "Gather" and node.input[1] == contract.PREVIOUS_TOKEN for node in decoder.graph.node)
    assert [value.name for value in decoder.graph.input] == [contract.PREVIOUS_TOKEN, "h_0", "c_0", *contract.MEMORY_NAMES]
    assert decoder.graph.input[0].type.tensor_type.elem_type == TensorProto.INT32
    assert [value.name for value in decoder.graph.output] == [contract.PROBABILITIES, "next_h_0", "next_c_0", contract.ATTENTION]
    greedy = onnx.load(output / contract.DECODER_GREEDY_FILE)
    assert shape_nodes(greedy) == [] and shape_nodes(onnx.load(output / contract.DECODER_GREEDY_FP16_FILE)) == []
    assert greedy.graph.output[-1].name == contract.NEXT_TOKEN and greedy.graph.output[-1].type.tensor_type.elem_type == TensorProto.INT32
    translator = onnx.load(output / contract.TRANSLATOR_FILE)
    assert [node.op_type for node in translator.graph.node].count("Loop") == 1


def test_verification_report_meets_the_bar(exported) -> None:
    output, report = exported
    assert max(report["parity_max_abs_difference"].values()) <= 1e-4
    compared = report["greedy_step_loop"]["compared"]
    assert compared >= 750 and report["greedy_step_loop"]["agreement"] == 1.0  # every distinct validation source (~790)
    assert report["greedy_translator"]["agreement"] == 1.0
    assert report["float16"]["measured"] and report["float16"]["max_abs_probability_difference"] < 1e-2
    assert report["int8"]["measured"] and report["int8"]["greedy_strings"]["agreement"] >= 0.95
    assert "int8 against float32" in (output / contract.MODEL_CARD_FILE).read_text()
    card = (output / contract.MODEL_CARD_FILE).read_text()
    assert report["model_id"] in card and "exact match" in card and f"translator.onnx {compared}/{compared}" in card


def test_padding_invariance_survives_the_export(exported) -> None:
    import onnxruntime

    output, _ = exported
    session = onnxruntime.InferenceSession(str(output / contract.ENCODER_FILE), providers=["CPUExecutionProvider"])
    info_vocab = json.loads(
        {e.key: e.value for e in onnx.load(output / contract.ENCODER_FILE).metadata_props}[contract.META_SOURCE_VOCABULARY]
    )
    assert len(info_vocab) > 10
    alone = np.array([[4, 5, 6, 7, 8, 9]], np.int32)
    padded = np.zeros((2, 40), np.int32)
    padded[0, :6] = alone[0]
    padded[1] = 10
    names = [output.name for output in session.get_outputs()]
    single, batch = session.run(names, {contract.SOURCE_IDS: alone}), session.run(names, {contract.SOURCE_IDS: padded})
    for name, one, many in zip(names, single, batch, strict=True):
        if name in contract.MEMORY_NAMES:  # (batch, time, ...): the real positions match, the padding is masked
            np.testing.assert_allclose(one[0], many[0, :6], atol=1e-5)
            assert not many[0, 6:].any()
        else:
            np.testing.assert_allclose(one[0], many[0], atol=1e-5)


def test_onnx_files_translate_alone_without_tensorflow(exported, tmp_path: Path) -> None:
    """Copy the export away from the training files and translate in a process that may not load TensorFlow or Beam."""
    output, _ = exported
    moved = tmp_path / "moved"
    shutil.copytree(output, moved)
    script = f"""
import sys
from s2s.serving.sessions import open_session, model_info, EncoderSession, DecoderSession
from s2s.serving.decoding import NumpyGreedy
directory = {str(moved)!r}
session = open_session(directory + "/encoder.onnx")
info = model_info(session, "encoder.onnx")
encoder, decoder = EncoderSession(session, info), DecoderSession(open_session(directory + "/decoder.onnx"), info)
ids = NumpyGreedy(encoder, decoder)(info.encode(["abcdef", "0N9x1y"]), info.max_target_length)
print([info.target_vocabulary.decode(row) for row in ids])
heavy = sorted(name for name in ("tensorflow", "keras", "apache_beam", "tf2onnx") if name in sys.modules)
print(heavy)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['cba', '9N0']", "[]"]


def test_javascript_host_gets_the_same_strings(exported, toy_model, tmp_path: Path) -> None:
    """The js/ package in onnxruntime-node, step by step and with translator.onnx, against Keras' reference strings."""
    node_modules = REPO / "js" / "node_modules" / "onnxruntime-node"
    assert node_modules.exists(), "run `make test` (it installs the js/ package's dependencies) or npm ci --ignore-scripts in js/"
    output, _ = exported
    sources, _ = load_references(toy_model.data_dir, "validation", 300)
    sources = [*sources, "a\u00a0b c", "\u2019??"]  # normalised by the host; unknown characters become <unk>
    source_file = tmp_path / "sources.txt"
    source_file.write_text("\n".join(sources) + "\n")
    spec = DatasetSpec.load(toy_model.model_dir)
    reference = ModelDir(toy_model.model_dir).greedy_decoder().translate([spec.normalizer(source) for source in sources])
    for loop in ([], ["--loop-model"]):
        command = ["node", str(REPO / "js" / "bin" / "translate.mjs"), str(output), str(source_file), *loop]
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split("\n")[:-1] == reference


@pytest.mark.parametrize("damage", ["missing", "mismatch", "unwritable"])
def test_bad_input_is_a_one_line_error(toy_model, tmp_path: Path, damage: str) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(toy_model.model_dir, model_dir, ignore=shutil.ignore_patterns("logs", "checkpoints"))
    output = tmp_path / "onnx"
    expected = {
        "missing": "decoder.keras does not exist",
        "mismatch": "spec.json does not match the model",
        "unwritable": "cannot write to output directory",
    }[damage]
    if damage == "missing":
        (model_dir / "decoder.keras").unlink()
    elif damage == "mismatch":
        spec = json.loads((model_dir / "spec.json").read_text())
        spec["target_vocabulary"].append("\u263a")
        (model_dir / "spec.json").write_text(json.dumps(spec))
    else:
        (tmp_path / "file").write_text("")
        output = tmp_path / "file" / "onnx"
    result = run_cli("export", "--model", str(model_dir), "--output", str(output), "--verify-sources", "50")
    assert result.returncode == 1
    assert_one_line_error(result, expected)


def test_a_version_1_export_is_refused_in_one_line(exported, tmp_path: Path) -> None:
    """Format 1 took one-hot inputs; feeding it ids would fail deep in onnxruntime, so the host names the fix instead."""
    output, _ = exported
    old = tmp_path / "old"
    shutil.copytree(output, old)
    (old / contract.CHECKSUMS_FILE).unlink()  # version 1 wrote none
    for path in old.glob("*.onnx"):
        model = onnx.load(path)
        for entry in model.metadata_props:
            if entry.key == contract.META_FORMAT:
                entry.value = "1"
        onnx.save(model, path)
    source = tmp_path / "in.txt"
    source.write_text("abcdef\n")
    result = run_cli("translate", "--model", str(old), "-i", str(source), "-o", str(tmp_path / "out.txt"), "--no-verify")
    assert result.returncode == 65 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if "not verifying" not in line]
    assert len(lines) == 1 and "format version 1" in lines[0] and "re-export" in lines[0], result.stderr


def test_the_lstm_architecture_exports_to_the_same_contract(toy_model, tmp_path: Path) -> None:
    """The source material's lstm_seq2seq stays available: version 2 ids in and out, no memory tensors, verified against Keras."""
    from s2s.export.export import export_model
    from s2s.serving.translator import Translator
    from s2s.training.config import TrainConfig
    from s2s.training.train import train

    config = TrainConfig(arch="lstm", latent_dim=64, optimizer="adam", learning_rate=0.005, epochs=2, max_train_pairs=4000, seed=1)
    train(toy_model.data_dir, tmp_path / "model", config)
    # Exported into a folder that already holds a file of its own and an older encoder: the export replaces the folder in
    # one exchange, keeping the foreign file and leaving no staging folder behind.
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "NOTES.txt").write_text("ours")
    (tmp_path / "onnx" / contract.ENCODER_FILE).write_bytes(b"an older export")
    report = export_model(tmp_path / "model", tmp_path / "onnx", ExportConfig(verify_sources=200, float16=False), data_dir=toy_model.data_dir)
    assert (tmp_path / "onnx" / "NOTES.txt").read_text() == "ours"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model", "onnx"]
    assert max(report["parity_max_abs_difference"].values()) <= 1e-4
    assert report["greedy_step_loop"]["agreement"] == report["greedy_translator"]["agreement"] == 1.0
    encoder = onnx.load(tmp_path / "onnx" / contract.ENCODER_FILE)
    assert [value.name for value in encoder.graph.output] == ["h_0", "c_0"]
    metadata = {entry.key: entry.value for entry in encoder.metadata_props}
    assert metadata[contract.META_ARCH] == "lstm"
    sources, _ = load_references(toy_model.data_dir, "validation", 100)
    reference = ModelDir(tmp_path / "model").greedy_decoder().translate(sources)
    translator = Translator(tmp_path / "onnx", device="cpu")
    # Keras' reference loop stops at the longest training target; the host's limit follows the source (s2s.output_length).
    assert translator.translate_batch(sources, max_output_length=translator.info.max_target_length) == reference
    assert len(translator.translate_batch(sources[:10], beam_size=3)) == 10
    assert shape_nodes(onnx.load(tmp_path / "onnx" / contract.DECODER_GREEDY_FILE)) == []


def test_a_stacked_attention_model_with_dropout_trains_and_exports(toy_model, tmp_path: Path) -> None:
    """Two bidirectional layers (each layer's states seeding its decoder layer) and dropout: native LSTM nodes, verified."""
    from s2s.export.export import export_model
    from s2s.training.config import TrainConfig
    from s2s.training.train import train

    config = TrainConfig(num_layers=2, latent_dim=32, dropout=0.2, optimizer="adam", learning_rate=0.005, epochs=1, max_train_pairs=3000)
    train(toy_model.data_dir, tmp_path / "model", config)
    # Exported into a folder that already holds a file of its own and an older encoder: the export replaces the folder in
    # one exchange, keeping the foreign file and leaving no staging folder behind.
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "NOTES.txt").write_text("ours")
    (tmp_path / "onnx" / contract.ENCODER_FILE).write_bytes(b"an older export")
    report = export_model(tmp_path / "model", tmp_path / "onnx", ExportConfig(verify_sources=200, float16=False), data_dir=toy_model.data_dir)
    assert (tmp_path / "onnx" / "NOTES.txt").read_text() == "ours"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model", "onnx"]
    assert max(report["parity_max_abs_difference"].values()) <= 1e-4
    assert report["greedy_step_loop"]["agreement"] == report["greedy_translator"]["agreement"] == 1.0
    encoder = onnx.load(tmp_path / "onnx" / contract.ENCODER_FILE)
    lstm_nodes = [node for node in encoder.graph.node if node.op_type == "LSTM"]
    assert len(lstm_nodes) == 2 and all(node.input[4] for node in lstm_nodes)
    assert [value.name for value in encoder.graph.output] == ["h_0", "c_0", "h_1", "c_1", *contract.MEMORY_NAMES]
    decoder = onnx.load(tmp_path / "onnx" / contract.DECODER_FILE)
    assert shape_nodes(decoder) == [] and not any(node.op_type == "LSTM" for node in decoder.graph.node)


def test_the_int8_variant_is_quantized_and_translates_on_the_cpu(exported, validation_sources) -> None:
    """--precision int8: onnxruntime's dynamic quantization (DynamicQuantizeLSTM, MatMulInteger), the same strings nearly
    always on the near-certain toy model, and a one-line refusal on a GPU, where those kernels do not run."""
    from s2s.errors import ConfigError
    from s2s.serving.translator import Translator

    output, _ = exported
    encoder_ops = {node.op_type for node in onnx.load(output / contract.ENCODER_INT8_FILE).graph.node}
    decoder_ops = {node.op_type for node in onnx.load(output / contract.DECODER_GREEDY_INT8_FILE).graph.node}
    assert "DynamicQuantizeLSTM" in encoder_ops and "LSTM" not in encoder_ops
    assert decoder_ops & {"MatMulInteger", "DynamicQuantizeMatMul"}
    int8 = Translator(output, device="cpu", precision="int8")
    float32 = Translator(output, device="cpu")
    sources = validation_sources[:300]
    same = sum(a == b for a, b in zip(int8.translate_batch(sources), float32.translate_batch(sources), strict=True))
    assert same >= 0.95 * len(sources)
    assert int8.device == "cpu" and int8.precision == "int8"
    with pytest.raises(ConfigError, match="int8 runs on the CPU"):
        Translator(output, device="cuda", precision="int8")

