"""Bulk translation output: nothing cut short without a word, keyed and scored rows, and CTranslate2's decoding options.

Each decoding option is checked against `reference_decode`, a one-sentence
loop written here over the raw onnxruntime sessions, apart from the
translator's batched loops.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from s2s import onnx_contract as contract
from s2s import output_length
from s2s.app.cli import main
from s2s.checksums import file_sha256
from s2s.serving.engine import Engine
from s2s.serving.results import TranslationResult
from s2s.serving.stats import TranslationStats
from s2s.serving.translator import Translator
from s2s.serving.windows import prepare_sources, prepare_window
from s2s.vocab import END_ID, START_ID, UNKNOWN_ID
from tests.cli import run_cli
from tests.toy import kill_after_checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sources(validation_sources) -> list[str]:
    return validation_sources[:200]


def reference_decode(
    engine: Engine, source: str, *, limit: int, prefix: list[int] = (), min_length: int = 0
) -> tuple[list[int], list[np.ndarray], list[np.ndarray]]:
    """One sentence, greedily, over the raw sessions: (ids before the end, each step's probabilities, each step's attention)."""
    info = engine.info
    ids = info.encode(prepare_sources(info, [source]))
    encoder, decoder = engine.encoder.session, engine.decoder.session
    state_names = contract.state_names(info.num_layers)
    memory_names = contract.memory_names(info.arch)
    encoded = encoder.run([*state_names, *memory_names], {contract.SOURCE_IDS: ids})
    states, memory = encoded[: len(state_names)], encoded[len(state_names) :]
    token, emitted, steps, weights = START_ID, [], [], []
    names = [contract.PROBABILITIES, *contract.next_state_names(info.num_layers), contract.ATTENTION]
    for step in range(limit):
        feeds = {contract.PREVIOUS_TOKEN: np.array([token], dtype=np.int32), **dict(zip(state_names, states, strict=True)), **dict(zip(memory_names, memory, strict=True))}
        probabilities, *states, attention = decoder.run(names, feeds)
        steps.append(probabilities[0])
        weights.append(attention[0])
        candidates = probabilities[0].copy()
        if step < min_length:
            candidates[END_ID] = 0.0
        token = prefix[step] if step < len(prefix) else int(candidates.argmax())
        if token == END_ID:
            break
        emitted.append(token)
    return emitted, steps, weights


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# 1. No silent cut.


def test_the_output_limit_follows_the_source_not_the_longest_training_target(toy_onnx, tmp_path: Path, capsys) -> None:
    """A model whose longest training target is 2 characters still writes a 3-character translation whole."""
    model = tmp_path / "short"
    shutil.copytree(toy_onnx[0], model)
    for path in model.glob("*.onnx"):
        onnx_model = onnx.load(path)
        for entry in onnx_model.metadata_props:
            if entry.key == contract.META_MAX_TARGET_LENGTH:
                entry.value = "2"  # what the German-English model had: a limit far below its real translations
        onnx.save(onnx_model, path)
    names = sorted(path.name for path in model.glob("*.onnx"))
    (model / contract.CHECKSUMS_FILE).write_text("".join(f"{file_sha256(model / name)}  {name}\n" for name in names))
    source = tmp_path / "in.txt"
    source.write_text("abcdef\n0N9x1y\n")
    output = tmp_path / "out.txt"
    status, _, err = cli(capsys, "translate", "--model", str(model), "-i", str(source), "-o", str(output))
    assert status == 0, err
    assert output.read_text() == "cba\n9N0\n"
    assert json.loads(Path(f"{output}.summary.json").read_text())["cut_translations"] == 0


def test_a_translation_stopped_by_its_limit_is_counted_warned_about_and_marked(toy_onnx, tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "source": "abcdef"}\n{"id": 2, "source": ""}\n{"id": 3, "source": "0N9x1y"}\n')
    output = tmp_path / "out.jsonl"
    status, _, err = cli(capsys, "translate", "--model", str(toy_onnx[0]), "-i", str(source), "-o", str(output), "--format", "jsonl", "--max-output-length", "2")
    assert status == 0, err
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(row["id"], row["translation"], row["cut"]) for row in rows] == [(1, "cb", True), (2, "", False), (3, "9N", True)]
    assert json.loads(Path(f"{output}.summary.json").read_text())["cut_translations"] == 2
    warnings = [line for line in err.splitlines() if "WARNING" in line and "length limit" in line]
    assert len(warnings) == 1 and "2 translations" in warnings[0]


def test_the_fitted_limit_covers_the_pairs_it_was_fitted_to() -> None:
    rng = np.random.default_rng(0)
    source_lengths = rng.integers(1, 80, size=5000)
    target_lengths = np.round(source_lengths * rng.uniform(0.8, 1.6, size=5000)).astype(int) + rng.integers(0, 4, size=5000)
    fitted = output_length.fit(source_lengths, target_lengths)
    limits = output_length.limits(source_lengths, fitted, longest_target=1)
    assert (target_lengths <= limits).mean() > 0.999
    assert limits.max() <= output_length.CEILING and output_length.limits(np.array([10**6]), fitted, 1)[0] == output_length.CEILING


# 2. Keyed, scored output files.


def test_tsv_keeps_every_column_and_appends_translations_and_scores(toy_onnx, tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.tsv"
    source.write_text("7\tabcdef\tkeep me\n8\n9\t0N9x1y\t\n")
    output = tmp_path / "out.tsv"
    flags = ["--format", "tsv", "--column", "1", "--beam-size", "3", "--num-hypotheses", "2", "--scores"]
    status, _, err = cli(capsys, "translate", "--model", str(toy_onnx[0]), "-i", str(source), "-o", str(output), *flags)
    assert status == 0, err
    rows = [line.split("\t") for line in output.read_text().splitlines()]
    assert [row[:3] for row in rows[::2]] == [["7", "abcdef", "keep me"], ["9", "0N9x1y", ""]]
    assert rows[0][3] == "cba" and rows[2][3] == "9N0"  # row 2 keeps its empty third column
    assert len(rows[0]) == 3 + 4 and float(rows[0][4]) >= float(rows[0][6])  # two hypotheses, each with its score, best first
    assert rows[1][0] == "8" and rows[1][1:] == ["", "0.000000", "", "0.000000"]  # the short row: kept in place, counted
    assert json.loads(Path(f"{output}.summary.json").read_text())["missing_column_lines"] == 1


def test_jsonl_keeps_each_object_and_writes_an_error_in_place_of_a_malformed_line(toy_onnx, tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "text": "abcdef", "meta": {"x": 1}}\nnot json\n[1, 2]\n{"id": "b", "text": 5}\n{"id": "c", "text": "0N9x1y"}\n')
    output = tmp_path / "out.jsonl"
    flags = ["--format", "jsonl", "--field", "text", "--scores", "--attention"]
    status, _, err = cli(capsys, "translate", "--model", str(toy_onnx[0]), "-i", str(source), "-o", str(output), *flags)
    assert status == 0, err
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 5
    assert rows[0]["meta"] == {"x": 1} and rows[0]["translation"] == "cba" and rows[0]["score"] <= 0
    assert np.allclose(np.sum(rows[0]["attention"], axis=1), 1.0, atol=1e-3) and np.shape(rows[0]["attention"]) == (3, 6)
    assert [row.get("error", "")[:8] for row in rows[1:4]] == ["not JSON", "a JSON l", "no strin"]
    assert rows[1]["input"] == "not json" and rows[4]["translation"] == "9N0"
    assert json.loads(Path(f"{output}.summary.json").read_text())["malformed_lines"] == 3


def test_text_output_refuses_what_it_has_no_room_for(toy_onnx, tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.txt"
    source.write_text("abcdef\n")
    status, _, err = cli(capsys, "translate", "--model", str(toy_onnx[0]), "-i", str(source), "-o", str(tmp_path / "o"), "--scores")
    assert status == 2 and "use --format tsv or jsonl" in err


def test_the_readme_example_prints_one_object_with_three_scored_hypotheses() -> None:
    command = [sys.executable, "-m", "s2s.app.cli", "translate", "--format", "jsonl", "-i", "-", "-o", "-", "--num-hypotheses", "3"]
    result = subprocess.run([*command, "--beam-size", "5", "--scores"], input='{"id": 7, "source": "How are you?"}\n', capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and result.stderr == "", result.stderr  # standard input: no INFO lines, no summary
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["id"] == 7 and len(row["hypotheses"]) == 3 and all("score" in hypothesis for hypothesis in row["hypotheses"])
    assert row["translation"] == row["hypotheses"][0]["translation"] and row["score"] == row["hypotheses"][0]["score"]


@pytest.mark.parametrize("kind", ["tsv", "jsonl"])
def test_a_killed_keyed_translation_resumes_to_identical_output(toy_onnx, tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(1)
    alphabet = list("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN")
    texts = ["".join(rng.choice(alphabet, size=6)) for _ in range(10_000)]  # 10 windows: the kill after the second lands mid-run
    corpus = tmp_path / f"in.{kind}"
    if kind == "tsv":
        corpus.write_text("".join(f"{index}\t{text}\n" for index, text in enumerate(texts)))
    else:
        corpus.write_text("".join(json.dumps({"id": index, "source": text}) + "\n" for index, text in enumerate(texts)))
    args = ["translate", "--model", str(toy_onnx[0]), "-i", str(corpus), "--format", kind, "--column", "1", "--batch-size", "64", "--window", "1024", "--beam-size", "2", "--scores"]
    reference = tmp_path / "reference"
    assert run_cli(*args, "-o", str(reference)).returncode == 0
    output = tmp_path / "out"
    checkpoint = Path(f"{output}.partial.json")
    kill_after_checkpoint([sys.executable, "-m", "s2s.app.cli", *args, "-o", str(output)], checkpoint, 2048, REPO)
    assert 0 < json.loads(checkpoint.read_text())["lines_done"] < 10_000
    resumed = run_cli(*args, "-o", str(output))
    assert resumed.returncode == 0, resumed.stderr
    assert output.read_bytes() == reference.read_bytes()
    assert json.loads(Path(f"{output}.summary.json").read_text())["resumed_at_line"] > 0


# 3. One API surface, with CTranslate2's options.


def test_translate_iterable_takes_the_batch_options_and_yields_after_one_batch(translator, sources) -> None:
    read = itertools.count()

    def endless():
        for number in read:
            yield sources[number % len(sources)]

    results = translator.translate_iterable(endless(), max_batch_size=8, beam_size=2, num_hypotheses=2, return_scores=True)
    first = next(results)
    assert isinstance(first, TranslationResult) and len(first.hypotheses) == 2
    assert first.hypotheses[0] == sources[0][2::-1]
    assert next(read) <= 3 * 8  # one batch decoded, the next read ahead: never a 4,096-line window


def test_target_prefix_forces_the_start_and_decoding_goes_on_from_it(engine, translator) -> None:
    vocabulary = translator.info.target_vocabulary
    for source, prefix in [("abcdef", "c"), ("abcdef", "x"), ("0N9x1y", "9Nz")]:
        expected, _, _ = reference_decode(engine, source, limit=9, prefix=vocabulary.encode(prefix))
        (translation,) = translator.translate_batch([source], [prefix])
        assert translation == vocabulary.decode(expected) and translation.startswith(prefix)


def test_min_and_max_decoding_length_bound_each_translation(engine, translator, sources) -> None:
    vocabulary = translator.info.target_vocabulary
    longer = translator.translate_batch(sources[:20], min_decoding_length=5)
    for source, translation in zip(sources[:20], longer, strict=True):
        expected, _, _ = reference_decode(engine, source, limit=9, min_length=5)
        assert translation == vocabulary.decode(expected) and len(translation) >= 5
    shorter = translator.translate_batch(sources[:20], max_decoding_length=2, return_scores=True)
    assert all(result.hypotheses[0] == source[2:0:-1] and result.cut == [True] for result, source in zip(shorter, sources, strict=False))


def test_return_attention_gives_the_decoders_weights(engine, translator, sources) -> None:
    results = translator.translate_batch(sources[:10], return_attention=True, max_batch_size=4)
    for source, result in zip(sources[:10], results, strict=True):
        _, _, weights = reference_decode(engine, source, limit=9)
        (attention,) = result.attention
        assert attention.shape == (3, len(source))
        assert np.allclose(attention, np.array(weights[:3])[:, : len(source)], atol=1e-5)
    beam = translator.translate_batch(sources[:10], return_attention=True, beam_size=3)
    assert all(np.allclose(a.attention[0], b.attention[0], atol=1e-5) for a, b in zip(results, beam, strict=True))


def test_replace_unknowns_copies_the_source_character_attended_to_most(translator) -> None:
    """A prefix of a character outside the target vocabulary forces `<unk>` out, which the option turns into a source character."""
    plain = translator.translate_batch(["abcdef"], ["é"], return_attention=True)[0]
    assert plain.hypotheses[0].startswith("\ufffd")
    attended = "abcdef"[int(plain.attention[0][0].argmax())]
    (replaced,) = translator.translate_batch(["abcdef"], ["é"], replace_unknowns=True)
    assert replaced == attended + plain.hypotheses[0][1:]
    assert translator.info.target_vocabulary.encode("é") == [UNKNOWN_ID]


def test_sampling_draws_among_the_top_k_and_repeats_with_its_seed(engine, translator, sources) -> None:
    vocabulary = translator.info.target_vocabulary
    options = {"sampling_topk": 2, "sampling_temperature": 20.0, "sampling_seed": 11}  # hot: the toy model is all but certain
    results = translator.translate_batch(sources[:40], return_scores=True, **options)
    first = [result.hypotheses[0] for result in results]
    assert translator.translate_batch(sources[:40], **options) == first  # the seed repeats a run
    assert translator.translate_batch(sources[:40], **{**options, "sampling_seed": 12}) != first
    assert first != translator.translate_batch(sources[:40])  # a hot temperature strays from greedy somewhere
    for source, sampled, result in zip(sources[:40], first, results, strict=True):
        forced = [*vocabulary.encode(sampled), *([] if result.cut[0] else [END_ID])]
        _, steps, _ = reference_decode(engine, source, limit=len(forced), prefix=forced)
        for token, probabilities in zip(forced, steps, strict=False):
            assert token in np.argsort(-probabilities)[:2]  # every sampled character was one of the two most likely
    assert translator.translate_batch(sources[:40], sampling_topk=0, sampling_temperature=0.01) == translator.translate_batch(sources[:40])


def test_token_batches_hold_at_most_the_budget_and_translate_the_same(engine, translator) -> None:
    mixed = ["a", "abcdef", "ab", "0N9x1y", "xyzxyz", "q"] * 10
    assert translator.translate_batch(mixed, max_batch_size=12, batch_type="tokens") == translator.translate_batch(mixed)
    window = prepare_window(engine.info, mixed)
    for indices, batch in engine.batches(window, 12, "tokens"):
        assert batch.size <= 12 or len(indices) == 1


def test_score_batch_gives_each_characters_log_probability(engine, translator) -> None:
    (result,) = translator.score_batch(["abcdef"], ["cba"])
    assert result.tokens == ["c", "b", "a", "</s>"]
    forced = [*translator.info.target_vocabulary.encode("cba"), END_ID]
    _, steps, _ = reference_decode(engine, "abcdef", limit=4, prefix=forced)
    expected = [float(np.log(probabilities[token])) for token, probabilities in zip(forced, steps, strict=True)]
    assert result.log_probs == pytest.approx(expected, abs=1e-5)
    assert result.score == pytest.approx(sum(expected) / 4, abs=1e-5)


def test_every_entry_point_validates_options_in_one_place(translator, tmp_path: Path) -> None:
    from s2s.errors import ConfigError

    source = tmp_path / "in.txt"
    source.write_text("abcdef\n")
    calls = [
        lambda **options: translator.translate_batch(["abcdef"], **options),
        lambda **options: list(translator.translate_iterable(["abcdef"], **options)),
        lambda **options: translator.translate_file(str(source), str(tmp_path / "out.txt"), **options),
    ]
    for call in calls:
        with pytest.raises(ConfigError, match="num_hypotheses must be between 1 and beam_size"):
            call(num_hypotheses=3)
        with pytest.raises(ConfigError, match="use it with beam_size 1"):
            call(sampling_topk=5, beam_size=2)
        with pytest.raises(TypeError, match="unknown decoding option 'beamsize'"):
            call(beamsize=2)
    stats = TranslationStats()
    translator.translate_batch(["abcdef"], max_output_length=1, stats=stats)
    assert stats.cut_translations == 1


def test_retrofit_brings_an_older_export_up_to_date_without_changing_its_translations(toy_onnx, toy_model, tmp_path: Path, sources) -> None:
    from s2s.export.retrofit import main as retrofit

    old = tmp_path / "old"
    shutil.copytree(toy_onnx[0], old)
    for path in old.glob("*.onnx"):  # as exports were before: no attention output, no fitted limit
        model = onnx.load(path)
        graph = model.graph
        for listing in (graph.output, graph.node, graph.initializer):
            kept = [item for item in listing if item.name != contract.ATTENTION and not item.name.startswith("s2s_attention")]
            del listing[:]
            listing.extend(kept)
        entries = [(entry.key, entry.value) for entry in model.metadata_props if entry.key != contract.META_OUTPUT_LENGTH]
        del model.metadata_props[:]
        for key, value in entries:
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, path)
    names = sorted(path.name for path in old.glob("*.onnx"))
    (old / contract.CHECKSUMS_FILE).write_text("".join(f"{file_sha256(old / name)}  {name}\n" for name in names))
    before = Translator(old, device="cpu")
    assert not Engine.open(old, "cpu").decoder.has_attention and before.info.output_length is None
    assert retrofit([str(old), "--pairs", str(toy_model.corpus)]) == 0
    after = Translator(old, device="cpu")
    assert Engine.open(old, "cpu").decoder.has_attention and after.info.output_length["slope"] > 0
    assert after.translate_batch(sources) == before.translate_batch(sources) == [source[2::-1] for source in sources]
    assert after.translate_batch(["abcdef"], return_attention=True)[0].attention[0].shape == (3, 6)


def _one_product_for_all_gates(step: onnx.ModelProto) -> onnx.ModelProto:
    """`step` in the layout of exports before one product per gate: layer 0's four products as one, then a Split."""
    from onnx import helper, numpy_helper

    graph = step.graph
    arrays = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    whole = {kind: f"s2s_step/layer0_{kind}" for kind in ("recurrent", "input_table")}
    per_gate = {kind: [f"{name}_{gate}" for gate in "iofc"] for kind, name in whole.items()}
    gate_nodes = [node for node in graph.node if set(node.input) & {*per_gate["recurrent"], *per_gate["input_table"]}]
    gate_values = {name for node in gate_nodes for name in node.output}
    sums = [node for node in graph.node if node.op_type == "Add" and set(node.input) <= gate_values]
    activations = [node for node in graph.node if node.input and node.input[0] in {add.output[0] for add in sums}]
    assert len(gate_nodes) == 8 and len(sums) == 4 and len(activations) == 4
    split_outputs = [f"old_gates:{index}" for index in range(4)]
    order = {add.output[0]: index for index, add in enumerate(sums)}
    for node in activations:
        node.input[0] = split_outputs[order[node.input[0]]]
    new_nodes = [
        helper.make_node("MatMul", ["h_0", whole["recurrent"]], ["old_recurrent"]),
        helper.make_node("Gather", [whole["input_table"], contract.PREVIOUS_TOKEN], ["old_input"], axis=0),
        helper.make_node("Add", ["old_input", "old_recurrent"], ["old_sum"]),
        helper.make_node("Split", ["old_sum", "old_sizes"], split_outputs, axis=1),
    ]
    kept = [node for node in graph.node if node not in gate_nodes and node not in sums]
    del graph.node[:]
    graph.node.extend(new_nodes + kept)
    hidden = arrays[per_gate["recurrent"][0]].shape[1]
    initializers = [tensor for tensor in graph.initializer if tensor.name not in {*per_gate["recurrent"], *per_gate["input_table"]}]
    initializers += [numpy_helper.from_array(np.concatenate([arrays[name] for name in per_gate[kind]], axis=1), whole[kind]) for kind in whole]
    initializers.append(numpy_helper.from_array(np.full(4, hidden, dtype=np.int64), "old_sizes"))
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    onnx.checker.check_model(step, full_check=True)
    return step


def _memory_through_copies(encoder: onnx.ModelProto) -> onnx.ModelProto:
    """`encoder` with its memory made time-first, joined and then made batch-first: two copies more, the same numbers."""
    from onnx import helper

    graph = encoder.graph
    producers = {name: node for node in graph.node for name in node.output}
    reshape = producers[contract.ENCODER_OUTPUTS]
    transpose = producers[reshape.input[0]]
    assert reshape.op_type == "Reshape" and transpose.op_type == "Transpose"
    transpose.ClearField("attribute")
    transpose.attribute.append(helper.make_attribute("perm", [0, 2, 1, 3]))  # (time, batch, directions, hidden)
    reshape.output[0] = "time_first_memory"
    graph.node.append(helper.make_node("Transpose", ["time_first_memory"], [contract.ENCODER_OUTPUTS], perm=[1, 0, 2]))
    onnx.checker.check_model(encoder, full_check=True)
    return encoder


def test_retrofit_rebuilds_older_step_graph_and_encoder_layouts_with_the_same_translations(toy_onnx, tmp_path: Path, sources) -> None:
    from s2s.export.retrofit import main as retrofit

    old = tmp_path / "old"
    shutil.copytree(toy_onnx[0], old)
    for name in (contract.DECODER_FILE, contract.DECODER_GREEDY_FILE):
        onnx.save(_one_product_for_all_gates(onnx.load(old / name)), old / name)
    onnx.save(_memory_through_copies(onnx.load(old / contract.ENCODER_FILE)), old / contract.ENCODER_FILE)
    names = sorted(path.name for path in old.glob("*.onnx"))
    (old / contract.CHECKSUMS_FILE).write_text("".join(f"{file_sha256(old / name)}  {name}\n" for name in names))
    assert "Split" in {node.op_type for node in onnx.load(old / contract.DECODER_GREEDY_FILE).graph.node}
    before = Translator(old, device="cpu").translate_batch(sources)
    int8 = (old / contract.DECODER_GREEDY_INT8_FILE).read_bytes()

    assert retrofit([str(old)]) == 0
    for name in (contract.DECODER_FILE, contract.DECODER_GREEDY_FILE):
        current = onnx.load(toy_onnx[0] / name).graph
        assert onnx.load(old / name).graph.node == current.node  # today's layout, rebuilt from the old file's own weights
    encoder, current = (onnx.load(folder / contract.ENCODER_FILE).graph.node for folder in (old, toy_onnx[0]))
    assert [node.op_type for node in encoder] == [node.op_type for node in current]  # the memory straight from the LSTM again
    assert Translator(old, device="cpu").translate_batch(sources) == before
    assert onnx.load(old / contract.DECODER_GREEDY_INT8_FILE).graph == onnx.load_from_string(int8).graph  # kept, not quantized again
    rewritten = {name: (old / name).read_bytes() for name in (contract.DECODER_GREEDY_FILE, contract.ENCODER_FILE)}
    assert retrofit([str(old)]) == 0
    assert {name: (old / name).read_bytes() for name in rewritten} == rewritten  # up to date: unchanged
