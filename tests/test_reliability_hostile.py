"""The second reliability battery: what a hostile user tried on 2026-12-01, each case failing without its fix.

Planted symbolic links, model folders that fail open, unbounded lengths and
lines, locks, leftover shards, and exit codes a scheduler can act on. Most
cases call the command line in this process (`s2s.app.cli.main`); the ones
that need a real process (a closed pipe, a full disk's worker crash) start one.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest

from s2s import onnx_contract as contract
from s2s.app.cli import main
from s2s.checksums import file_sha256
from s2s.errors import EXIT_BUSY, EXIT_DATA, EXIT_FAILURE, EXIT_NO_INPUT, EXIT_USAGE
from s2s.lines import OVERSIZED_LINE, bounded_lines
from s2s.locks import exclusive_lock
from tests.toy import IN_PROCESS

REPO = Path(__file__).resolve().parents[1]
TOY_LINES = "abcdef\n0N9x1y\n"
TOY_TRANSLATIONS = "cba\n9N0\n"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Runs `s2s ARGS` in this process: (exit status, stdout, stderr)."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(result: tuple[int, str, str], code: int, *fragments: str) -> None:
    """The command exited with `code` after one `s2s: error:` line holding every fragment, and no traceback."""
    status, _, err = result
    errors = [line for line in err.splitlines() if line.startswith("s2s: error:")]
    assert status == code and len(errors) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text(TOY_LINES)
    return path


@pytest.fixture
def model_copy(toy_onnx, tmp_path: Path) -> Path:
    """A private copy of the toy export, free to damage."""
    copy = tmp_path / "model"
    shutil.copytree(toy_onnx[0], copy)
    return copy


def translate(capsys, model: Path, source: Path, output: Path | str, *flags: str) -> tuple[int, str, str]:
    return cli(capsys, "translate", "--model", str(model), "-i", str(source), "-o", str(output), *flags)


def rewrite_metadata(model_dir: Path, key: str, value: str) -> None:
    """Sets one metadata entry in every ONNX file and lists the new bytes in SHA256SUMS, as a careful forger would."""
    for path in model_dir.glob("*.onnx"):
        model = onnx.load(path)
        for entry in model.metadata_props:
            if entry.key == key:
                entry.value = value
        onnx.save(model, path)
    relist_checksums(model_dir)


def relist_checksums(model_dir: Path) -> None:
    names = sorted(path.name for path in model_dir.glob("*.onnx"))
    (model_dir / contract.CHECKSUMS_FILE).write_text("".join(f"{file_sha256(model_dir / name)}  {name}\n" for name in names))


# 1. Planted symbolic links are refused, never followed.


@pytest.mark.parametrize("suffix", [".lock", ".partial"])
def test_a_link_planted_at_translates_lock_or_partial_is_refused_and_its_target_kept(
    toy_onnx, sources: Path, tmp_path: Path, capsys, suffix: str
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    output = tmp_path / "out.txt"
    os.symlink(victim, f"{output}{suffix}")
    assert_refused(translate(capsys, toy_onnx[0], sources, output), EXIT_FAILURE, "is a symbolic link")
    assert victim.read_text() == "precious\n"
    assert not output.exists() and not output.is_symlink()


def test_a_link_planted_at_the_run_lock_is_refused(tmp_path: Path, capsys) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "pairs.tsv").write_text("a\tb\n")
    (tmp_path / "run.toml").write_text("[run]\ninput = ['pairs.tsv']\noutput = 'run'\n")
    (tmp_path / "run").mkdir()
    os.symlink(victim, tmp_path / "run" / ".lock")
    assert_refused(cli(capsys, "run", "--config", str(tmp_path / "run.toml")), EXIT_FAILURE, "is a symbolic link")
    assert victim.read_text() == "precious\n"


def test_a_link_planted_at_prepares_lock_is_refused(tmp_path: Path, capsys) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "pairs.tsv").write_text("a\tb\n")
    os.symlink(victim, tmp_path / ".data.lock")
    result = cli(capsys, "prepare", "-i", str(tmp_path / "pairs.tsv"), "-o", str(tmp_path / "data"), *IN_PROCESS)
    assert_refused(result, EXIT_FAILURE, "is a symbolic link")
    assert victim.read_text() == "precious\n"


# 2. A model folder whose files are not all listed fails closed.


def test_a_model_folder_without_checksums_is_refused_unless_told_not_to_verify(model_copy: Path, sources: Path, tmp_path: Path, capsys) -> None:
    (model_copy / contract.CHECKSUMS_FILE).unlink()
    output = tmp_path / "out.txt"
    assert_refused(translate(capsys, model_copy, sources, output), EXIT_DATA, f"has no {contract.CHECKSUMS_FILE}", "--no-verify")
    status, _, err = translate(capsys, model_copy, sources, output, "--no-verify")
    assert status == 0 and output.read_text() == TOY_TRANSLATIONS
    assert "not verifying" in err  # the escape hatch is visible in the log


def test_a_model_file_missing_from_the_checksums_is_refused(model_copy: Path, sources: Path, tmp_path: Path, capsys) -> None:
    sums = model_copy / contract.CHECKSUMS_FILE
    sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines() if not line.endswith(contract.ENCODER_FILE)))
    result = translate(capsys, model_copy, sources, tmp_path / "out.txt")
    assert_refused(result, EXIT_DATA, f"{contract.ENCODER_FILE} is not listed in")


# 3. Output lengths have a ceiling, and memory grows with the output, not with the limit.


def test_an_absurd_output_limit_is_refused_before_any_work(toy_onnx, sources: Path, tmp_path: Path, capsys) -> None:
    result = translate(capsys, toy_onnx[0], sources, tmp_path / "out.txt", "--max-output-length", "100000000")
    assert_refused(result, EXIT_USAGE, "max_output_length must be at most 4096")


def test_an_absurd_metadata_target_length_is_refused(model_copy: Path, sources: Path, tmp_path: Path, capsys) -> None:
    rewrite_metadata(model_copy, contract.META_MAX_TARGET_LENGTH, "100000000")
    assert_refused(translate(capsys, model_copy, sources, tmp_path / "out.txt"), EXIT_DATA, "metadata out of range", "max_target_length")


def test_decoding_memory_follows_the_output_not_the_limit(toy_onnx) -> None:
    from s2s.serving.translator import Translator

    translator = Translator.from_dir(toy_onnx[0], device="cpu")
    sentences = ["abcdef", "0N9x1y"] * 1024
    tracemalloc.start()
    try:
        translations = translator.translate_batch(sentences, max_output_length=4096, max_batch_size=2048)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert translations[:2] == ["cba", "9N0"]
    assert peak < 8 << 20, f"{peak / 2**20:.1f} MiB for 2,048 three-character translations"  # (2048, 4096) ids up front: 32 MiB


# 4. External data is refused: it would be read from wherever the file points, unchecked.


def test_a_model_with_external_data_is_refused_even_where_the_data_can_be_found(
    model_copy: Path, sources: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    encoder = onnx.load(model_copy / contract.ENCODER_FILE)
    onnx.save(encoder, model_copy / contract.ENCODER_FILE, save_as_external_data=True, location="weights.bin", size_threshold=0)
    relist_checksums(model_copy)
    monkeypatch.chdir(model_copy)  # where onnxruntime, loading from bytes, would find weights.bin
    result = translate(capsys, model_copy, sources, tmp_path / "out.txt")
    assert_refused(result, EXIT_DATA, "external data file")
    assert not (tmp_path / "out.txt").exists()


# 5. A line too long to hold costs bounded memory and is counted, not lost.


class _EndlessLine(io.RawIOBase):
    """A stream of `size` bytes of one line, made as it is read: nothing holds it whole but the code under test."""

    def __init__(self, size: int):
        self.left = size

    def read(self, size: int = -1) -> bytes:
        chunk = min(self.left, size if size > 0 else 1 << 20)
        self.left -= chunk
        return b"a" * chunk


def test_a_quarter_gigabyte_line_is_skipped_in_bounded_memory() -> None:
    stream = _EndlessLine(256 << 20)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        lines = [line for block in bounded_lines(stream.read) for line in block]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == [OVERSIZED_LINE]
    assert peak < 8 << 20, f"peak {peak / 2**20:.0f} MiB"
    assert time.perf_counter() - started < 30  # linear: the line is never rebuilt block after block


def test_translate_counts_an_oversized_line_and_keeps_every_line_in_place(toy_onnx, tmp_path: Path, capsys) -> None:
    source = tmp_path / "bomb.txt.gz"
    with gzip.open(source, "wb") as stream:
        stream.write(b"abcdef\n" + b"x" * (3 << 20) + b"\n0N9x1y\n")
    output = tmp_path / "out.txt"
    status, _, err = translate(capsys, toy_onnx[0], source, output)
    assert status == 0, err
    assert output.read_text() == "cba\n\n9N0\n"
    summary = json.loads(Path(f"{output}.summary.json").read_text())
    assert (summary["lines"], summary["oversized_lines"]) == (3, 1)


def test_prepare_rejects_an_oversized_line_as_counted_line_too_long(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "pairs.tsv.gz"
    with gzip.open(corpus, "wb") as stream:
        stream.write(b"abc\tcba\n" + b"y" * (2 << 20) + b"\nxyz\tzyx\n")
    data = tmp_path / "data"
    status, _, err = cli(capsys, "prepare", "-i", str(corpus), "-o", str(data), "--min-char-count", "1", *IN_PROCESS)
    assert status == 0, err
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["lines_read"] == 3 and manifest["rejected"]["line_too_long"] == 1 and manifest["pairs_kept"] == 2


# 6. translate-beam on a full disk: one line, nothing left behind.


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a disk that fills up. Needs root and mount(2), as the CI machine has; skipped where they are missing."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def toy_corpus(path: Path, lines: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    alphabet = list("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN")
    path.write_text("".join("".join(rng.choice(alphabet, size=6)) + "\n" for _ in range(lines)))
    return path


def test_translate_beam_on_a_full_disk_fails_in_one_line_and_leaves_no_temporary_files(toy_onnx, tmp_path: Path, tiny_disk: Path) -> None:
    source = toy_corpus(tmp_path / "in.txt", 20_000)
    command = [sys.executable, "-m", "s2s.app.cli", "translate-beam", "--model", str(toy_onnx[0]), "-i", str(source)]
    result = subprocess.run([*command, "-o", str(tiny_disk / "out"), "--num-shards", "4"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Exception in thread" not in result.stderr, result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("s2s: error:")]) == 1, result.stderr
    assert not [path.name for path in tiny_disk.iterdir() if ".tmp" in path.name]  # neither SHARD.tmp-X nor .SHARD.X.tmp


def test_translate_to_a_full_disk_names_the_output(toy_onnx, tmp_path: Path, tiny_disk: Path, capsys) -> None:
    source = toy_corpus(tmp_path / "in.txt", 20_000)
    output = tiny_disk / "out.txt"
    assert_refused(translate(capsys, toy_onnx[0], source, output), EXIT_FAILURE, f"cannot write {output}", "No space left on device")
    assert_refused(translate(capsys, toy_onnx[0], source, "/dev/full"), EXIT_FAILURE, "cannot write /dev/full: No space left on device")


# 7. prepare has an owner.


def test_a_second_prepare_on_the_same_output_is_refused_and_leaves_the_firsts_staging_alone(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("abc\tcba\n")
    data = tmp_path / "data"
    staging = tmp_path / ".data.staging-0123456789ab"  # the first run's live work
    staging.mkdir()
    with exclusive_lock(tmp_path / ".data.lock", "held by the first prepare"):
        result = cli(capsys, "prepare", "-i", str(corpus), "-o", str(data), *IN_PROCESS)
    assert_refused(result, EXIT_BUSY, f"another s2s prepare (pid {os.getpid()}) is writing")
    assert staging.is_dir()


# 8. The metadata vocabulary must fit the graph.


def test_a_metadata_vocabulary_of_another_size_than_the_graph_is_refused(model_copy: Path, sources: Path, tmp_path: Path, capsys) -> None:
    decoder = onnx.load(model_copy / contract.DECODER_FILE)
    target = next(json.loads(entry.value) for entry in decoder.metadata_props if entry.key == contract.META_TARGET_VOCABULARY)
    padded = target + [chr(0x4E00 + index) for index in range(20_004 - len(target))]  # distinct single characters
    rewrite_metadata(model_copy, contract.META_TARGET_VOCABULARY, json.dumps(padded))
    result = translate(capsys, model_copy, sources, tmp_path / "out.txt", "--beam-size", "500")
    assert_refused(result, EXIT_DATA, f"scores {len(target)} target tokens", "20004")


# 9. translate-beam leaves one run's shards, vouched for by a manifest.


def test_a_translate_beam_rerun_with_fewer_shards_leaves_only_its_own(toy_onnx, tmp_path: Path, capsys) -> None:
    source = toy_corpus(tmp_path / "in.txt", 300)
    prefix = tmp_path / "out" / "part"
    for shards in ("3", "2"):
        status, _, err = cli(capsys, "translate-beam", "--model", str(toy_onnx[0]), "-i", str(source), "-o", str(prefix), "--num-shards", shards, *IN_PROCESS)
        assert status == 0, err
        if shards == "3":  # what a run killed while writing a shard leaves: the next run removes it
            (prefix.parent / ".part-00001-of-00003.tsv.x1y2z3.tmp").write_text("a killed run's temporary shard")
    assert not list(prefix.parent.glob(".*.tmp"))
    files = sorted(path.name for path in prefix.parent.glob("part-*"))
    assert files == ["part-00000-of-00002.tsv", "part-00001-of-00002.tsv"]
    manifest = json.loads(Path(f"{prefix}.manifest.json").read_text())
    assert (manifest["rows"], manifest["num_shards"], manifest["shards"]) == (300, 2, files)
    assert sum(len(path.read_text().splitlines()) for path in prefix.parent.glob("part-*")) == 300


def test_a_failed_translate_beam_rerun_leaves_no_manifest_over_a_mixed_shard_set(toy_onnx, tmp_path: Path, capsys) -> None:
    source = toy_corpus(tmp_path / "in.txt", 300)
    prefix = tmp_path / "part"
    flags = ["--model", str(toy_onnx[0]), "-o", str(prefix), "--num-shards", "2", *IN_PROCESS]
    assert cli(capsys, "translate-beam", "-i", str(source), *flags)[0] == 0
    assert Path(f"{prefix}.manifest.json").exists()
    source.write_text(source.read_text() + "x" * 500 + "\n")  # the input changes, and one line now fails the run
    status, _, _ = cli(capsys, "translate-beam", "-i", str(source), *flags, "--long-lines", "error")
    assert status != 0
    assert not Path(f"{prefix}.manifest.json").exists()


# 10. Smaller items.


def test_a_run_manifest_with_wrong_inner_types_is_one_line_about_run_json(tmp_path: Path, capsys) -> None:
    (tmp_path / "pairs.tsv").write_text("a\tb\n")
    (tmp_path / "run.toml").write_text("[run]\ninput = ['pairs.tsv']\noutput = 'run'\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"format_version": 1, "stages": {"prepare": {"key": 5, "outputs": []}}}))
    result = cli(capsys, "run", "--config", str(tmp_path / "run.toml"))
    assert_refused(result, EXIT_DATA, "run.json", "stage 'prepare' has key of type int")
    assert "failed" not in json.loads((tmp_path / "run" / "run.json").read_text()).get("status", "")


@pytest.mark.parametrize("command", ["prepare", "translate-beam"])
def test_shard_counts_have_a_ceiling(toy_onnx, tmp_path: Path, capsys, command: str) -> None:
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("a\tb\n")
    flags = ["--model", str(toy_onnx[0])] if command == "translate-beam" else []
    result = cli(capsys, command, *flags, "-i", str(corpus), "-o", str(tmp_path / "out"), "--num-shards", "400001", *IN_PROCESS)
    assert_refused(result, EXIT_USAGE, "num_shards must be 0 (automatic) to 10000")
    assert not list(tmp_path.glob("out*"))


def test_translate_batch_names_what_it_was_given(toy_onnx) -> None:
    from s2s.serving.translator import Translator

    translator = Translator.from_dir(toy_onnx[0], device="cpu")
    for wrong, fragment in [
        (None, "got NoneType"),
        (b"abcdef", "got bytes"),
        ((text for text in ["abcdef"]), "use translate_iterable"),
        ([b"abcdef"], "got bytes at index 0 (decode bytes first)"),
        (np.array([["abcdef"]]), "one-dimensional"),
    ]:
        with pytest.raises(TypeError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            translator.translate_batch(wrong)
    assert translator.translate_batch(np.array(["abcdef", "0N9x1y"])) == ["cba", "9N0"]


def test_a_closed_standard_output_ends_translate_quietly(toy_onnx, tmp_path: Path) -> None:
    source = toy_corpus(tmp_path / "in.txt", 20_000)
    command = f"{sys.executable} -m s2s.app.cli translate --model {toy_onnx[0]} -i {source} -o - | head -1"
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 141 and result.stdout.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr and "error" not in result.stderr, result.stderr


def test_long_lines_error_leaves_no_partial_file(toy_onnx, tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.txt"
    source.write_text("abcdef\n" + "x" * 500 + "\n")
    output = tmp_path / "out.txt"
    assert_refused(translate(capsys, toy_onnx[0], source, output, "--long-lines", "error"), EXIT_DATA, "longer than the model's")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.txt"]


# 11. Exit codes a scheduler can act on.


def test_exit_codes_tell_config_from_data_from_missing_input_from_busy(toy_onnx, sources: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "out.txt"
    assert_refused(translate(capsys, toy_onnx[0], sources, output, "--beam-size", "0"), EXIT_USAGE, "beam_size")
    assert_refused(translate(capsys, toy_onnx[0], tmp_path / "absent.txt", output), EXIT_NO_INPUT, "does not exist")
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(gzip.compress(b"abcdef\n" * 1000)[:-12])
    assert_refused(translate(capsys, toy_onnx[0], cut, output), EXIT_DATA, "corrupt or truncated gzip")
    with exclusive_lock(Path(f"{output}.lock"), "held by another translate"):
        assert_refused(translate(capsys, toy_onnx[0], sources, output), EXIT_BUSY, "being written by another s2s translate")
    with pytest.raises(SystemExit) as usage:  # argparse's own: an unknown choice
        main(["translate", "-i", str(sources), "-o", str(output), "--device", "tpu"])
    assert usage.value.code == EXIT_USAGE
