"""The reliability suite: hostile but fair inputs a careless operator would try, each a clear one-line error or a counted outcome.

Every case here failed once (see docs/reliability.md); each
test fails if its fix is undone.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from s2s import onnx_contract as contract
from tests.cli import REPO, assert_one_line_error, assert_only_s2s_log_lines, run_cli, scheduler_environment
from tests.toy import IN_PROCESS


@pytest.fixture
def source_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("abcdef\n0N9x1y\n")
    return path


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--beam-size", "100000"], "beam_size must be between 1 and the target vocabulary's"),
        (["--beam-size", "0"], "beam_size must be at least 1"),
        (["--max-output-length", "-1"], "max_output_length must be 0 (the model's) or more"),
        (["--length-penalty", "-0.5"], "length_penalty must be 0 or more"),
        (["--batch-size", "-2"], "batch_size must be 0 (automatic) or more"),
    ],
)
def test_meaningless_decoding_values_are_refused_before_any_work(toy_onnx, source_file: Path, tmp_path: Path, flags, fragment) -> None:
    output = tmp_path / "out.txt"
    result = run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(source_file), "-o", str(output), *flags)
    assert_one_line_error(result, fragment)
    assert not output.exists()


def test_translate_beam_checks_its_decoding_values_before_the_pipeline_starts(toy_onnx, source_file: Path, tmp_path: Path) -> None:
    result = run_cli("translate-beam", "--model", str(toy_onnx[0]), "-i", str(source_file), "-o", str(tmp_path / "out"), "--beam-size", "5000")
    assert_one_line_error(result, "beam_size must be between 1")
    assert not list(tmp_path.glob("out*"))


def test_max_output_length_0_means_the_models_own_limit_everywhere(toy_onnx, source_file: Path, tmp_path: Path) -> None:
    """One convention for "not set" in the flags, the chain's tables and the library: 0 is the model's limit."""
    default, zero, short = (tmp_path / f"{name}.txt" for name in ("default", "zero", "short"))
    for output, flags in ((default, []), (zero, ["--max-output-length", "0"]), (short, ["--max-output-length", "2"])):
        result = run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(source_file), "-o", str(output), *flags)
        assert result.returncode == 0, result.stderr
    assert zero.read_text() == default.read_text() == "cba\n9N0\n"
    assert short.read_text() == "cb\n9N\n"


def test_an_attention_model_accepts_a_beam(toy_onnx, source_file: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.txt"
    result = run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(source_file), "-o", str(output), "--beam-size", "4")
    assert result.returncode == 0, result.stderr
    assert output.read_text().splitlines() == ["cba", "9N0"]


@pytest.mark.parametrize(("key", "value"), [(contract.META_MAX_SOURCE_LENGTH, "-3"), (contract.META_ARCH, "transformer")])
def test_metadata_out_of_range_is_an_error(toy_onnx, source_file: Path, tmp_path: Path, key: str, value: str) -> None:
    damaged = tmp_path / "model"
    shutil.copytree(toy_onnx[0], damaged)
    (damaged / contract.CHECKSUMS_FILE).unlink()  # a hand edit: only the range check stands between it and a translation
    for path in damaged.glob("*.onnx"):
        model = onnx.load(path)
        for entry in model.metadata_props:
            if entry.key == key:
                entry.value = value
        onnx.save(model, path)
    result = run_cli("translate", "--model", str(damaged), "-i", str(source_file), "-o", str(tmp_path / "out.txt"), "--no-verify")
    result.stderr = "\n".join(line for line in result.stderr.splitlines() if "not verifying" not in line)  # --no-verify's warning
    assert_one_line_error(result, "metadata out of range", value)


def test_a_misspelt_table_in_a_stage_config_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[prepar]\nmin_char_count = 1\n")
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("a\tb\n")
    result = run_cli("prepare", "--config", str(config), "-i", str(corpus), "-o", str(tmp_path / "data"))
    assert_one_line_error(result, "unknown table [prepar]")
    assert not (tmp_path / "data").exists()


def test_run_rejects_an_unknown_option_even_when_prepare_would_be_skipped(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[run]\ninput = ['pairs.tsv']\noutput = 'run'\n")
    (tmp_path / "pairs.tsv").write_text("a\tb\n")
    result = run_cli("run", "--config", str(config), "--bogus-option")
    assert_one_line_error(result, "unrecognised option --bogus-option")
    assert not (tmp_path / "run").exists()


def test_a_run_manifest_that_is_not_an_object_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[run]\ninput = ['pairs.tsv']\noutput = 'run'\n")
    (tmp_path / "pairs.tsv").write_text("a\tb\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("[]")
    result = run_cli("run", "--config", str(config))
    assert_one_line_error(result, "is not a run manifest")


def corpus(path: Path, lines: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    alphabet = list("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN")
    path.write_text("".join("".join(rng.choice(alphabet, size=6)) + "\n" for _ in range(lines)))
    return path


def start_translate(model: Path, source: Path, output: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "s2s.app.cli", "translate", "--model", str(model), "-i", str(source), "-o", str(output), *extra]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for_checkpoint(process: subprocess.Popen, checkpoint: Path, lines: int) -> dict:
    deadline = time.monotonic() + 120
    while not (checkpoint.exists() and json.loads(checkpoint.read_text())["lines_done"] >= lines):
        assert process.poll() is None, "finished too soon: " + process.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return json.loads(checkpoint.read_text())


def test_a_second_run_to_the_same_output_is_refused_and_the_first_finishes_intact(toy_onnx, tmp_path: Path) -> None:
    big, small = corpus(tmp_path / "big.txt", 40_000), corpus(tmp_path / "small.txt", 300, seed=1)
    reference = tmp_path / "reference.txt"
    assert run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(big), "-o", str(reference), "--batch-size", "64", "--window", "1024").returncode == 0
    output = tmp_path / "same.out"
    first = start_translate(toy_onnx[0], big, output, "--batch-size", "64", "--window", "1024")
    wait_for_checkpoint(first, Path(f"{output}.partial.json"), 1024)
    second = run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(small), "-o", str(output))
    assert_one_line_error(second, f"is being written by another s2s translate (pid {first.pid})")
    assert first.wait(timeout=300) == 0, first.stderr.read().decode()
    assert output.read_bytes() == reference.read_bytes()
    assert not Path(f"{output}.lock").exists()


def test_a_fifo_output_is_written_through_not_replaced(toy_onnx, source_file: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(source_file), "-o", str(fifo))
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert received == [b"cba\n9N0\n"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.txt", "out.fifo"]  # no partial, lock or summary beside it


@pytest.mark.parametrize("case", ["directory", "same-file"])
def test_an_output_that_cannot_be_right_fails_before_any_work(toy_onnx, source_file: Path, tmp_path: Path, case: str) -> None:
    output = tmp_path if case == "directory" else source_file
    before = source_file.read_bytes()
    result = run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(source_file), "-o", str(output))
    assert_one_line_error(result, "is a directory" if case == "directory" else "is also the output")
    assert source_file.read_bytes() == before


def test_gzip_input_is_read_decompressed_and_a_cut_one_is_refused(toy_onnx, tmp_path: Path) -> None:
    plain = corpus(tmp_path / "plain.txt", 20_000)
    packed = tmp_path / "packed.txt.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    outputs = {}
    for source in (plain, packed):
        outputs[source.name] = tmp_path / f"{source.name}.out"
        assert run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(source), "-o", str(outputs[source.name])).returncode == 0
    assert outputs["packed.txt.gz"].read_bytes() == outputs["plain.txt"].read_bytes()
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    result = run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(cut), "-o", str(tmp_path / "cut.out"))
    assert_one_line_error(result, f"input {cut} is a corrupt or truncated gzip file")
    assert not (tmp_path / "cut.out").exists()


def test_prepare_refuses_a_cut_gzip_corpus_in_one_line(tmp_path: Path) -> None:
    pairs = "".join(f"source {index}\tcible {index}\n" for index in range(5000)).encode()
    cut = tmp_path / "pairs.tsv.gz"
    cut.write_bytes(gzip.compress(pairs)[: len(gzip.compress(pairs)) // 2])
    result = run_cli("prepare", "-i", str(cut), "-o", str(tmp_path / "data"))
    assert_one_line_error(result, f"input {cut} is not a whole gzip file", "cut short")


@pytest.mark.parametrize("kind", ["fifo", "dev-null"])
def test_readable_non_regular_inputs_are_read_as_streams(toy_onnx, tmp_path: Path, kind: str) -> None:
    output = tmp_path / "out.txt"
    if kind == "dev-null":
        result = run_cli("translate", "--model", str(toy_onnx[0]), "-i", "/dev/null", "-o", str(output))
        expected = b""
    else:
        fifo = tmp_path / "in.fifo"
        os.mkfifo(fifo)
        writer = threading.Thread(target=lambda: fifo.write_bytes(b"abcdef\nzzzAAA\n"))
        writer.start()
        result = run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(fifo), "-o", str(output))
        writer.join(timeout=60)
        expected = b"cba\nzzz\n"
    assert result.returncode == 0, result.stderr
    assert "cannot resume" in result.stderr
    assert output.read_bytes() == expected


@pytest.mark.parametrize("damage", ["short-partial", "edited-input"])
def test_resume_does_not_trust_a_checkpoint_that_no_longer_matches(toy_onnx, tmp_path: Path, damage: str) -> None:
    source = corpus(tmp_path / "in.txt", 12_000)  # killed after 2 of its 12 windows
    output = tmp_path / "out.txt"
    process = start_translate(toy_onnx[0], source, output, "--batch-size", "64", "--window", "1024")
    state = wait_for_checkpoint(process, Path(f"{output}.partial.json"), 2048)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = Path(f"{output}.partial")
    if damage == "short-partial":
        with open(partial, "r+b") as stream:
            stream.truncate(state["bytes"] // 2)
    else:  # the same size and mtime, as cp -p or rsync -t leave an edited file
        status = source.stat()
        lines = source.read_text().splitlines()
        lines[0] = lines[0][::-1]
        source.write_text("\n".join(lines) + "\n")
        os.utime(source, ns=(status.st_atime_ns, status.st_mtime_ns))
        assert source.stat().st_size == status.st_size
    result = run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(source), "-o", str(output), "--batch-size", "64", "--window", "1024")
    assert result.returncode == 0, result.stderr
    fresh = tmp_path / "fresh.txt"
    assert run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(source), "-o", str(fresh), "--batch-size", "64", "--window", "1024").returncode == 0
    assert b"\0" not in output.read_bytes()
    assert output.read_bytes() == fresh.read_bytes()


def test_a_resumed_run_reports_the_rate_of_the_lines_it_translated(toy_onnx, tmp_path: Path) -> None:
    source = corpus(tmp_path / "in.txt", 16_000)
    output = tmp_path / "out.txt"
    process = start_translate(toy_onnx[0], source, output, "--batch-size", "64", "--window", "1024")
    wait_for_checkpoint(process, Path(f"{output}.partial.json"), 4096)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(source), "-o", str(output), "--batch-size", "64", "--window", "1024").returncode == 0
    summary = json.loads(Path(f"{output}.summary.json").read_text())
    translated = summary["lines"] - summary["resumed_at_line"]
    assert summary["resumed_at_line"] >= 4096 and summary["lines"] == 16_000
    assert summary["sentences_per_second"] == pytest.approx(translated / summary["seconds"], rel=0.01)


def test_flipped_weight_bytes_are_caught_at_load(toy_onnx, source_file: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "model"
    shutil.copytree(toy_onnx[0], damaged)
    decoder = damaged / contract.DECODER_GREEDY_FILE  # the decoder file every loop of the Python host reads
    content = bytearray(decoder.read_bytes())
    content[len(content) // 2] ^= 0x40  # inside the weights: onnxruntime would load it and translate garbage
    decoder.write_bytes(bytes(content))
    result = run_cli("translate", "--model", str(damaged), "-i", str(source_file), "-o", str(tmp_path / "out.txt"))
    assert_one_line_error(result, f"{decoder} is damaged", contract.CHECKSUMS_FILE)


def test_files_from_different_exports_are_refused(toy_onnx, source_file: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "model"
    shutil.copytree(toy_onnx[0], mixed)
    (mixed / contract.CHECKSUMS_FILE).unlink()  # a hand-assembled directory: the model ids still tell the files apart
    decoder = onnx.load(mixed / contract.DECODER_GREEDY_FILE)
    for entry in decoder.metadata_props:
        if entry.key == contract.META_MODEL_ID:
            entry.value = "f" * 64
    onnx.save(decoder, mixed / contract.DECODER_GREEDY_FILE)
    result = run_cli("translate", "--model", str(mixed), "-i", str(source_file), "-o", str(tmp_path / "out.txt"), "--no-verify")
    result.stderr = "\n".join(line for line in result.stderr.splitlines() if "not verifying" not in line)  # --no-verify's warning
    assert_one_line_error(result, "are files from different exports")


def _listening_sockets(root_pid: int) -> set[tuple[str, str]]:
    """(local address hex, inode) of the TCP sockets in LISTEN state held by a process and its descendants."""
    pids, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in pids:
                    pids.add(child)
                    frontier.append(child)
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.add((fields[1].split(":")[0], fields[9]))
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, ::1, ::ffff:127.0.0.1


def test_the_local_beam_runner_listens_on_loopback_only_and_its_job_log_holds_only_s2s_lines(tmp_path: Path) -> None:
    """Beam's local runner serves pickled code and data over unauthenticated gRPC: nothing may listen beyond this machine.
    What a scheduler captures from prepare on that multi-process runner is s2s's log format alone."""
    corpus_path = tmp_path / "pairs.tsv"
    assert run_cli("synth", "reverse-4", "--n", "2000", "-o", str(corpus_path)).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "s2s.app.cli", "prepare", "-i", str(corpus_path), "-o", str(tmp_path / "data"), "--min-char-count", "1"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=scheduler_environment(),
    )
    seen: set[tuple[str, str]] = set()
    while process.poll() is None:
        seen |= _listening_sockets(process.pid)
        time.sleep(0.05)
    log = process.stderr.read().decode()
    assert process.returncode == 0, log
    assert len(seen) >= 4, "the runner's gRPC servers were never seen listening: the check observed nothing"
    assert {address for address, _ in seen} <= LOOPBACK, seen
    assert_only_s2s_log_lines(log)


def test_a_failure_inside_a_beam_pipeline_is_one_line_naming_the_step() -> None:
    import apache_beam as beam

    from s2s.errors import S2SError
    from s2s.pipelines.options import beam_options, run_pipeline

    with pytest.raises(S2SError) as raised, run_pipeline(beam_options(IN_PROCESS), "the test pipeline") as pipeline:
        _ = pipeline | beam.Create([1, 2]) | "Explode" >> beam.Map(lambda value: value / 0)
    message = str(raised.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith("the test pipeline failed in step 'Explode'") and "ZeroDivisionError: division by zero" in message


def _dataset_is_whole(names: set[str]) -> bool:
    """A listing holding manifest.json must hold spec.json and every shard its names promise ("-of-N")."""
    if "manifest.json" not in names:
        return True
    for split in ("train", "validation", "test"):
        shards = [name for name in names if name.startswith(f"{split}-") and name.endswith(".tfrecord.gz")]
        if not shards or len(shards) != int(shards[0].split("-of-")[1].split(".")[0]):
            return False
    return "spec.json" in names


def test_republishing_a_dataset_never_shows_a_reader_a_partial_one(tmp_path: Path) -> None:
    """A reader listing the output while a second prepare publishes over the first sees the old dataset or the new, whole."""
    first, second = tmp_path / "first.tsv", tmp_path / "second.tsv"
    assert run_cli("synth", "reverse-4", "--n", "1000", "-o", str(first)).returncode == 0
    assert run_cli("synth", "reverse-4", "--n", "1500", "-o", str(second), "--seed", "1").returncode == 0
    output = tmp_path / "data"
    assert run_cli("prepare", "-i", str(first), "-o", str(output), "--min-char-count", "1", *IN_PROCESS).returncode == 0
    before = json.loads((output / "manifest.json").read_text())
    process = subprocess.Popen(
        [sys.executable, "-m", "s2s.app.cli", "prepare", "-i", str(second), "-o", str(output), "--min-char-count", "1", *IN_PROCESS],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    observations = 0
    while process.poll() is None:
        try:
            names = {entry.name for entry in os.scandir(output)}
        except FileNotFoundError:
            names = set()  # only the two-rename fallback may leave the path absent for an instant
        assert _dataset_is_whole(names), sorted(names)
        observations += 1
        time.sleep(0.001)  # a thousand looks a second, leaving the cores to the prepare being watched
    assert process.returncode == 0, process.stderr.read().decode()
    assert observations > 100
    after = json.loads((output / "manifest.json").read_text())
    assert after["lines_read"] == 1500 != before["lines_read"]
    assert _dataset_is_whole({entry.name for entry in os.scandir(output)})


def test_a_killed_runs_leftovers_are_removed_and_foreign_files_protected(tmp_path: Path) -> None:
    corpus_path = tmp_path / "pairs.tsv"
    assert run_cli("synth", "reverse-4", "--n", "2000", "-o", str(corpus_path)).returncode == 0
    output = tmp_path / "data"
    (output / ".staging-0123456789ab").mkdir(parents=True)
    (output / ".spec.json.x1y2.tmp").write_text("{")
    (tmp_path / ".data.staging-ba9876543210").mkdir()
    assert run_cli("prepare", "-i", str(corpus_path), "-o", str(output), "--min-char-count", "1", *IN_PROCESS).returncode == 0
    assert not [path.name for path in output.iterdir() if path.name.startswith(".")]
    assert not list(tmp_path.glob(".data.*"))
    (output / "notes.txt").write_text("mine")
    result = run_cli("prepare", "-i", str(corpus_path), "-o", str(output), "--min-char-count", "1", *IN_PROCESS)
    assert_one_line_error(result, "holds notes.txt, which is not part of an s2s dataset")
    assert (output / "notes.txt").read_text() == "mine"


def test_a_worker_failure_in_prepare_prints_one_line_not_pages_of_tracebacks(tmp_path: Path) -> None:
    """A corrupt .bz2 (which Beam decompresses in its worker processes) fails there; the user sees one line."""
    corrupt = tmp_path / "pairs.tsv.bz2"
    corrupt.write_bytes(b"BZh91AY&SY" + b"not bzip2 data at all" * 20)
    result = run_cli("prepare", "-i", str(corrupt), "-o", str(tmp_path / "data"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if " INFO " not in line]  # the timestamped progress log stays
    assert len(lines) == 1, result.stderr
    assert "failed in step 'ReadNumberedLines/SplitLines'" in lines[0] and "Invalid data stream" in lines[0] and str(corrupt) in lines[0]


def test_translate_beam_takes_batch_size_0_as_automatic(toy_onnx, source_file: Path, tmp_path: Path) -> None:

    prefix = tmp_path / "out" / "translated"
    result = run_cli("translate-beam", "--model", str(toy_onnx[0]), "-i", str(source_file), "-o", str(prefix), "--batch-size", "0", *IN_PROCESS)
    assert result.returncode == 0, result.stderr
    rows = sorted(line.split("\t")[1:] for path in prefix.parent.glob("translated-*.tsv") for line in path.read_text().splitlines())
    assert rows == [["1", "cba"], ["2", "9N0"]]
    negative = run_cli("translate-beam", "--model", str(toy_onnx[0]), "-i", str(source_file), "-o", str(prefix), "--batch-size", "-1")
    assert_one_line_error(negative, "batch_size must be 0 (automatic) or more")
