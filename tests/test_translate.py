"""The batch translator on the exported toy model: same strings as Keras, order kept, streaming, resumable, clear errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from s2s.errors import S2SError
from s2s.serving.decoding import BoundGreedy, NumpyGreedy
from s2s.serving.engine import Engine
from s2s.serving.sessions import open_session
from s2s.serving.stats import TranslationStats
from s2s.serving.translator import Translator
from s2s.serving.windows import prepare_sources
from s2s.training.model_dir import ModelDir
from tests.cli import REPO, run_cli
from tests.toy import kill_after_checkpoint


def test_translate_batch_matches_the_keras_reference(translator, toy_model, validation_sources) -> None:
    reference = ModelDir(toy_model.model_dir).greedy_decoder().translate(validation_sources)
    assert translator.translate_batch(validation_sources, max_batch_size=64) == reference
    assert reference == [source[2::-1] for source in validation_sources]  # and the toy model is right


def test_empty_lines_and_order_are_kept(translator) -> None:
    stats = TranslationStats()
    assert translator.translate_batch(["abcdef", "", "   ", "0N9x1y"], max_batch_size=1, stats=stats) == ["cba", "", "", "9N0"]
    assert (stats.lines, stats.empty_lines) == (4, 2)


def test_io_binding_loop_equals_the_numpy_loop(engine, toy_onnx, translator, validation_sources) -> None:
    """The GPU path's logic (device-resident states, ids only back to the host), run here on the CPU device."""
    directory = toy_onnx[0]
    info = translator.info
    bound = BoundGreedy(
        open_session(directory / "encoder.onnx"),
        open_session(directory / "decoder_greedy.onnx"),
        info.num_layers,
        info.arch,
        "cpu",
    )
    numpy_loop = NumpyGreedy(engine.encoder, engine.decoder)
    batch = info.encode(validation_sources[:100])
    assert np.array_equal(bound(batch, info.max_target_length), numpy_loop(batch, info.max_target_length))


def test_beam_one_is_greedy_and_beam_k_scores_at_least_greedy(engine, translator, validation_sources) -> None:
    # Short inputs off the training distribution too. Not one longer than the model's sources (6 characters): that one is
    # translated in pieces, joined, and the score of the joined text against the whole source is no beam search's score.
    sources = [*validation_sources[:60], "zz", "a", "9876", "zzzzzz"]
    greedy = translator.translate_batch(sources)
    assert translator.translate_batch(sources, beam_size=1) == greedy
    beam = translator.translate_batch(sources, beam_size=4)
    vocabulary = translator.info.target_vocabulary
    greedy_scores = engine.score_ids(sources, [vocabulary.encode(text) for text in greedy])
    beam_scores = engine.score_ids(sources, [vocabulary.encode(text) for text in beam])
    assert all(b >= g - 1e-9 for b, g in zip(beam_scores, greedy_scores, strict=True))


def _one_sentence_beam(
    engine: Engine, source_ids: np.ndarray, beam_size: int, max_length: int, penalty: float, n_best: int = 1
) -> list[tuple[list[int], float]]:
    """Textbook beam search for one sentence: every hypothesis extended by every token, no batching, OpenNMT's stopping rule.

    Returns the `n_best` best ended hypotheses, best first; the search stops once it holds that many and the worst of
    them scores at least the best running one ending now.
    """
    from s2s.vocab import END_ID, START_ID

    vocab = len(engine.info.target_vocabulary)
    states, memory = engine.encoder(source_ids)
    hypotheses = [([], 0.0, states)]
    ended: list[tuple[list[int], float]] = []

    def keep(sequence: list[int], score: float) -> None:
        if len(ended) < n_best or score > ended[-1][1]:
            ended.append((sequence, score))
            ended.sort(key=lambda hypothesis: -hypothesis[1])  # stable: an equal score found earlier stays first
            del ended[n_best:]

    for step in range(max_length):
        candidates = []
        for sequence, score, hypothesis_states in hypotheses:
            token = np.array([sequence[-1] if sequence else START_ID], dtype=np.int32)
            probabilities, next_states, _ = engine.decoder(token, hypothesis_states, memory)
            log_probabilities = np.log(np.maximum(probabilities[0].astype(np.float64), 1e-30))
            keep(sequence, (score + log_probabilities[END_ID]) / (step + 1) ** penalty)
            candidates += [([*sequence, v], score + log_probabilities[v], next_states) for v in range(vocab) if v != END_ID]
        hypotheses = sorted(candidates, key=lambda candidate: -candidate[1])[:beam_size]  # stable: ties keep their order
        if len(ended) == n_best and ended[-1][1] >= hypotheses[0][1] / (step + 1) ** penalty:
            return ended
    for sequence, score, _ in hypotheses:  # still running at the limit: scored as if they ended there
        keep(sequence, score / max_length**penalty)
    return ended


@pytest.mark.parametrize(("penalty", "n_best"), [(0.0, 1), (1.0, 1), (1.0, 3)])
def test_batched_pruned_beam_search_equals_the_textbook_one(engine, translator, validation_sources, penalty: float, n_best: int) -> None:
    """The batched search (top-k over beam x vocab, sentences leaving once decided) finds what plain beam search finds."""
    from s2s.serving.decoding import beam_search

    sources = [*validation_sources[:12], "zz", "0123456789"]
    batch = engine.info.encode(prepare_sources(engine.info, sources))
    limit = engine.info.max_target_length
    vocab = len(engine.info.target_vocabulary)
    batched = beam_search(engine.encoder, engine.decoder, batch, vocab, limit, 3, penalty, n_best)
    for row, found in enumerate(batched):
        expected = _one_sentence_beam(engine, batch[row : row + 1], 3, limit, penalty, n_best)
        assert [ids for ids, _ in found] == [ids for ids, _ in expected], sources[row]
        assert [score for _, score in found] == pytest.approx([score for _, score in expected], abs=1e-5)


def test_n_best_results_carry_hypotheses_and_their_scores(engine, translator, validation_sources) -> None:
    from s2s.serving.results import TranslationResult

    sources = [*validation_sources[:10], "", "zz"]
    results = translator.translate_batch(sources, beam_size=4, num_hypotheses=3)
    assert all(isinstance(result, TranslationResult) for result in results)
    assert [result.hypotheses[0] for result in results] == translator.translate_batch(sources, beam_size=4)
    assert results[10] == TranslationResult([""], [0.0], None, [False])
    for source, result in zip(sources, results, strict=True):
        if not source:
            continue
        assert len(result.hypotheses) == 3 and len(set(result.hypotheses)) == 3
        assert result.scores == sorted(result.scores, reverse=True)
        ids = [translator.info.target_vocabulary.encode(text) for text in result.hypotheses]
        assert engine.score_ids([source] * 3, ids) == pytest.approx(result.scores, abs=1e-4)  # the model's score of each text
    greedy = translator.translate_batch(sources, return_scores=True)
    assert [result.hypotheses for result in greedy] == [[text] for text in translator.translate_batch(sources)]
    ids = [translator.info.target_vocabulary.encode(greedy[0].hypotheses[0])]
    assert greedy[0].scores == pytest.approx(engine.score_ids(sources[:1], ids), abs=1e-4)
    with pytest.raises(S2SError, match="num_hypotheses must be between 1 and beam_size"):
        translator.translate_batch(sources, beam_size=2, num_hypotheses=3)


def test_translate_file_streams_in_windows_and_counts(translator, tmp_path: Path) -> None:
    source = tmp_path / "in.tsv"
    lines = [b"1\tabcdef", b"2\t", b"3\t0N9\xffx1y", b"4", b"5\tzzzAAA\tmore"] * 7
    source.write_bytes(b"\n".join(lines) + b"\n")
    output = tmp_path / "out.txt"
    stats = translator.translate_file(str(source), str(output), max_batch_size=3, window=4, input_format="tsv", column=1)
    translated = output.read_text().split("\n")[:-1]
    expected_one = translator.translate_batch(["abcdef", "", "0N9\ufffdx1y", "", "zzzAAA"])
    kept = ["1\tabcdef", "2\t", "3\t0N9\ufffdx1y", "4", "5\tzzzAAA\tmore"]  # every column kept, the translation appended
    assert translated == [f"{line}\t{translation}" for line, translation in zip(kept, expected_one, strict=True)] * 7
    summary = json.loads(Path(f"{output}.summary.json").read_text())
    assert summary["lines"] == 35 and summary["invalid_utf8_lines"] == 7 and summary["missing_column_lines"] == 7
    assert summary["empty_lines"] == 14 and summary["unknown_characters"] == 7 and summary["model_id"] == translator.model_id
    assert stats.lines == 35 and not Path(f"{output}.partial").exists()



def test_killed_translation_resumes_to_identical_output(toy_onnx, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    alphabet = list("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN")
    corpus = tmp_path / "corpus.txt"
    # 12 windows of 1,024 lines: the kill after the second window's checkpoint always lands mid-run.
    corpus.write_text("".join("".join(rng.choice(alphabet, size=6)) + "\n" if i % 50 else "\n" for i in range(12_000)))
    args = ["translate", "--model", str(toy_onnx[0]), "--input", str(corpus), "--device", "cpu", "--batch-size", "64", "--window", "1024"]
    reference = tmp_path / "reference.txt"
    assert run_cli(*args, "--output", str(reference)).returncode == 0

    output = tmp_path / "out.txt"
    checkpoint = Path(f"{output}.partial.json")
    kill_after_checkpoint([sys.executable, "-m", "s2s.app.cli", *args, "--output", str(output)], checkpoint, 2048, REPO)
    assert not output.exists()  # no output file until the run completes
    done = json.loads(checkpoint.read_text())["lines_done"]
    assert 0 < done < 12_000

    resumed = run_cli(*args, "--output", str(output))
    assert resumed.returncode == 0, resumed.stderr
    assert output.read_bytes() == reference.read_bytes()
    summary = json.loads(Path(f"{output}.summary.json").read_text())
    assert summary["resumed_at_line"] == done and summary["lines"] == 12_000


@pytest.mark.parametrize("damage", ["no_model", "truncated", "truncated_unlisted", "no_metadata", "no_input", "cuda"])
def test_bad_input_is_a_one_line_error(toy_onnx, tmp_path: Path, damage: str) -> None:
    import shutil

    import onnx

    model = tmp_path / "onnx"
    shutil.copytree(toy_onnx[0], model)
    source = tmp_path / "in.txt"
    source.write_text("abcdef\n")
    expected = {
        "no_model": (66, "does not exist"),
        "truncated": (65, "is damaged: its SHA-256 differs"),
        "truncated_unlisted": (65, "cannot load"),
        "no_metadata": (65, "not an s2s export"),
        "no_input": (66, "matches no file"),
        "cuda": (1, "--device cuda, but"),  # the CPU build: no CUDA provider; onnxruntime-gpu without a device: none usable
    }[damage]
    code, expected = expected
    args = ["translate", "--model", str(model), "--input", str(source), "--output", str(tmp_path / "out.txt")]
    if damage == "no_model":
        args[2] = str(tmp_path / "missing")
    elif damage in ("truncated", "truncated_unlisted"):
        if damage == "truncated_unlisted":  # no SHA256SUMS to compare with: onnxruntime's own check is the last line of defence
            (model / "SHA256SUMS").unlink()
        data = (model / "decoder_greedy.onnx").read_bytes()  # the decoder file every loop of the Python host reads
        (model / "decoder_greedy.onnx").write_bytes(data[: len(data) // 2])
    elif damage == "no_metadata":
        (model / "SHA256SUMS").unlink()  # a hand-assembled directory
        encoder = onnx.load(model / "encoder.onnx")
        del encoder.metadata_props[:]
        onnx.save(encoder, model / "encoder.onnx")
    elif damage == "no_input":
        args[4] = str(tmp_path / "nothing-*.txt")
    args += ["--device", "cuda" if damage == "cuda" else "cpu"]  # "auto" would add its one-line CPU fallback warning
    if damage in ("truncated_unlisted", "no_metadata"):
        args.append("--no-verify")  # a folder without SHA256SUMS loads only when asked to
    result = run_cli(*args)
    assert result.returncode == code and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if "not verifying" not in line]  # --no-verify's warning
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_serving_needs_neither_tensorflow_nor_beam(toy_onnx) -> None:
    script = f"""
import sys
from s2s.serving.translator import Translator
import s2s.serving.files, s2s.serving.jobs, s2s.serving.config, s2s.serving.engine, s2s.serving.writer, s2s.serving.inputs, s2s.serving.resume
print(Translator.from_dir({str(toy_onnx[0])!r}, device="cpu").translate_batch(["abcdef"]))
print(sorted(name for name in ("tensorflow", "keras", "apache_beam", "tf2onnx", "onnx") if name in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['cba']", "[]"]


def test_beam_pipeline_gives_the_same_lines_as_s2s_translate(toy_onnx, translator, tmp_path: Path) -> None:
    from s2s.pipelines.translate_pipeline import translate_with_pipeline
    from s2s.serving.config import TranslateConfig

    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("abcdef\n\n0N9x1y\n")
    second.write_bytes(b"zzzAAA\r\nbad\xff12\n")
    translate_with_pipeline(
        str(toy_onnx[0]),
        [str(tmp_path / "*.txt")],
        str(tmp_path / "out" / "translated"),
        TranslateConfig(batch_size=2),
        pipeline_args=["--direct_num_workers=1", "--direct_running_mode=in_memory"],
    )
    rows = [line.split("\t") for path in sorted((tmp_path / "out").glob("translated-*.tsv")) for line in path.read_text().splitlines()]
    by_line = {(path, int(number)): translation for path, number, translation in rows}
    expected = {}
    for path in (first, second):
        output = tmp_path / f"{path.stem}.out"
        translator.translate_file(str(path), str(output))
        for number, line in enumerate(output.read_text().split("\n")[:-1], 1):
            expected[(str(path), number)] = line
    assert by_line == expected


def test_float16_files_translate_like_float32(toy_onnx, translator, validation_sources) -> None:
    half = Translator(toy_onnx[0], device="cpu", precision="float16")
    assert half.translate_batch(validation_sources[:200]) == translator.translate_batch(validation_sources[:200])


def test_auto_device_on_the_cpu_build_translates_without_a_warning(toy_onnx, tmp_path: Path) -> None:
    """The CPU build of onnxruntime is a host's choice (the cpu extra): no warning on every run of a scheduled job."""
    source = tmp_path / "in.txt"
    source.write_text("abcdef\n")
    result = run_cli("translate", "--model", str(toy_onnx[0]), "--input", str(source), "--output", "-")
    assert result.returncode == 0
    assert result.stdout == "cba\n"
    assert "WARNING" not in result.stderr


def test_a_plain_string_is_refused_with_the_fix(translator) -> None:
    with pytest.raises(TypeError, match=r"pass \[sentence\]"):
        translator.translate_batch("abcdef")


def test_long_lines_are_split_at_spaces_by_default_or_cut_or_refused(translator, validation_sources) -> None:
    first, second, third = validation_sources[:3]  # the toy model's limit is one 6-character source
    expected = [source[2::-1] for source in (first, second, third)]
    stats = TranslationStats()
    split = translator.translate_batch([f"{first} {second}", third, f"{first} {second} {third}"], stats=stats)
    assert split == [f"{expected[0]} {expected[1]}", expected[2], f"{expected[0]} {expected[1]} {expected[2]}"]
    assert (stats.long_lines, stats.truncated_lines) == (2, 0)
    stats = TranslationStats()
    assert translator.translate_batch([f"{first}{second}"], long_lines="truncate", stats=stats) == [expected[0]]
    assert (stats.long_lines, stats.truncated_lines) == (1, 1)
    with pytest.raises(S2SError, match="longer than the model's 6"):
        translator.translate_batch([third, f"{first} {second}"], long_lines="error")


def test_a_run_with_long_lines_warns_once_with_the_count(toy_onnx, validation_sources, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("".join(f"{a} {b}\n" for a, b in zip(validation_sources[:40], validation_sources[40:80], strict=True)))
    command = [
        sys.executable,
        "-m",
        "s2s.app.cli",
        "translate",
        "--model",
        str(toy_onnx[0]),
        "-i",
        str(source),
        "-o",
        str(tmp_path / "out.txt"),
    ]
    result = subprocess.run([*command, "--device", "cpu", "--batch-size", "8"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "40 lines were longer than the model's 6 characters" in warnings[0], result.stderr
    refused = subprocess.run([*command, "--long-lines", "error"], capture_output=True, text=True, cwd=REPO)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("s2s: error:")]
    assert refused.returncode == 65 and "Traceback" not in refused.stderr  # bad input data
    assert len(errors) == 1 and "--long-lines split or truncate" in errors[0]


@pytest.mark.parametrize(
    ("text", "limit", "pieces"),
    [
        ("Hello there. How are you today? I am fine", 20, ["Hello there.", "How are you today?", "I am fine"]),
        ("one two three four", 9, ["one two", "three", "four"]),  # no sentence end: the last space that fits
        ("abcdefghijk", 4, ["abcd", "efgh", "ijk"]),  # no space either: at the limit
        ("Oui. Non.", 9, ["Oui. Non."]),  # short enough: whole
    ],
)
def test_long_lines_split_at_sentence_ends_then_spaces(text: str, limit: int, pieces: list[str]) -> None:
    from s2s.serving.long_lines import split_long_line

    assert split_long_line(text, limit) == pieces
    assert all(len(piece) <= limit for piece in split_long_line(text, limit))


def test_translate_beam_fails_when_the_runner_lost_rows(tmp_path: Path) -> None:
    from s2s.pipelines.translate_pipeline import check_row_count

    source = tmp_path / "in.txt"
    source.write_text("a\n\nb\n")
    (tmp_path / "out-00000-of-00002.tsv").write_text(f"{source}\t1\tx\n{source}\t2\t\n")
    (tmp_path / "out-00001-of-00002.tsv").write_text(f"{source}\t3\ty\n")
    assert check_row_count([str(source)], str(tmp_path / "out"), 2) == 3
    (tmp_path / "out-00001-of-00002.tsv").write_text("")  # what Beam's Dask runner wrote through WriteToText
    with pytest.raises(S2SError, match="wrote 2 rows for 3 input lines"):
        check_row_count([str(source)], str(tmp_path / "out"), 2)


def test_translate_iterable_is_lazy_and_in_order(toy_onnx, validation_sources) -> None:
    """The pools read ahead while fewer than 16 batches per pool and two more pools' worth wait (256 rows of batch 4 on
    two pools, so at most one window more), plus the window being prepared and the one prefetched: never the whole stream."""
    from s2s.serving.translator import Translator

    consumed = []
    sources = validation_sources * 2

    def stream():
        for source in sources:
            consumed.append(source)
            yield source

    translator = Translator(toy_onnx[0], device="cpu", inter_threads=2)
    translations = translator.translate_iterable(stream(), max_batch_size=4, window=8)
    first = next(translations)
    assert first == sources[0][2::-1] and 8 <= len(consumed) <= 16 * 4 * (2 + 2) + 3 * 8 < len(sources)
    assert [first, *translations] == [source[2::-1] for source in sources]
    with pytest.raises(TypeError):
        next(translator.translate_iterable("abcdef"))


def test_score_batch_prefers_the_right_translation(translator, validation_sources) -> None:
    sources = [source for source in validation_sources[:40] if source[:3] != source[2::-1]][:20]  # wrong differs from right
    right = translator.score_batch(sources, [source[2::-1] for source in sources])
    wrong = translator.score_batch(sources, [source[:3] for source in sources])
    assert all(r.score > w.score for r, w in zip(right, wrong, strict=True))
    assert all(-1.0 < result.score <= 0.0 for result in right)  # the toy model is sure of its answers
    with pytest.raises(ValueError, match="one target per source"):
        translator.score_batch(sources, sources[:3])
