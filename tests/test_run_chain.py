"""`s2s run` end to end on the reverse-4 task: every stage for real, reruns that skip, changes that rerun the right stages."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s2s.app.chain.runner import RUN_MANIFEST, run_chain
from s2s.app.chain.settings import load_chain_settings
from s2s.checksums import tree_checksums
from s2s.errors import S2SError
from s2s.pipelines.synth import write_corpus
from tests.toy import IN_PROCESS

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("chain")  # under pytest-xdist the module's tests share one worker and one pristine chain
CONFIG = """
[run]
input = ["corpus/*.tsv"]
output = "run"

[prepare]
min_char_count = 1
validation_fraction = 0.1
test_fraction = 0.1

[train]
latent_dim = 16
epochs = 2
batch_size = 64

[evaluate]
limit = 100

[export]
verify_sources = 50
float16 = false
"""
ALL_RAN = {stage: "ran" for stage in ("prepare", "train", "evaluate", "export", "translate")}


@pytest.fixture(scope="module")
def pristine_chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A config beside its corpus, run once: (the directory holding both, a copy of it as the run left it)."""
    root = tmp_path_factory.mktemp("chain")
    write_corpus("reverse-4", 1500, root / "corpus" / "part-1.tsv", seed=1)
    (root / "run.toml").write_text(CONFIG)
    manifest = run(root)
    assert manifest["this_run"] == ALL_RAN
    snapshot = tmp_path_factory.mktemp("chain-snapshot") / "copy"
    shutil.copytree(root, snapshot, symlinks=True)
    return root, snapshot


@pytest.fixture
def chain(pristine_chain: tuple[Path, Path]) -> Path:
    """The chain directory as the first run left it, at the same path: each test starts from there, in any order."""
    root, snapshot = pristine_chain
    shutil.rmtree(root)
    shutil.copytree(snapshot, root, symlinks=True)
    return root


def run(root: Path, *assignments: str, force: str | None = None) -> dict:
    settings = load_chain_settings(root / "run.toml", list(assignments))
    return run_chain(settings, pipeline_args=IN_PROCESS, force=force)


def modification_times(folder: Path) -> dict[str, int]:
    return {str(path): path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


def test_first_run_fills_the_run_directory_and_records_checksums(chain: Path) -> None:
    manifest = json.loads((chain / "run" / RUN_MANIFEST).read_text())
    assert manifest["status"] == "succeeded"
    for stage, record in manifest["stages"].items():
        assert record["outputs"] == tree_checksums(chain / "run" / record["folder"]), stage
        assert record["seconds"] >= 0 and record["finished_at"] >= record["started_at"], stage  # a toy stage can take under 0.05 s
    data = manifest["stages"]["prepare"]["figures"]
    assert data["lines_read"] == 1500 == data["pairs_kept"] + data["rejected"]
    sources = (chain / "run" / "translation" / "sources.txt").read_text().splitlines()
    translations = (chain / "run" / "translation" / "translations.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(sources) == len(translations) > 50  # one translation per distinct test source
    evaluation = json.loads((chain / "run" / "evaluation" / "eval-test.json").read_text())
    assert evaluation["sources"] == manifest["stages"]["evaluate"]["figures"]["sources"] == 100
    card = (chain / "run" / "onnx" / "MODEL_CARD.md").read_text()
    assert f"| {evaluation['overall']['chrf']} |" in card  # the export saw this run's evaluation
    assert not (chain / "run" / ".work" / "train").exists()


def test_rerun_skips_every_unchanged_stage_without_touching_outputs(chain: Path) -> None:
    before = modification_times(chain / "run")
    manifest = run(chain)
    assert set(manifest["this_run"].values()) == {"skipped"}
    after = modification_times(chain / "run")
    del before[str(chain / "run" / RUN_MANIFEST)], after[str(chain / "run" / RUN_MANIFEST)]
    assert after == before


def test_a_new_file_to_translate_reruns_only_translate(chain: Path) -> None:
    (chain / "extra.txt").write_text("1234\n\n9876\n")
    manifest = run(chain, 'translate.input="extra.txt"')
    assert manifest["this_run"] == {**{stage: "skipped" for stage in ALL_RAN}, "translate": "ran"}
    assert len((chain / "run" / "translation" / "translations.txt").read_text().split("\n")) == 4  # 3 lines, the empty one kept
    manifest = run(chain)  # back to the test split
    assert manifest["this_run"]["translate"] == "ran"
    assert manifest["this_run"]["export"] == "skipped"


def test_compare_with_scores_another_export_on_the_same_test_sources_and_the_report_shows_both(chain: Path, tmp_path: Path, capsys) -> None:
    from s2s.app.chain.report import print_run_report
    from s2s.records import load_references
    from s2s.training.metrics import score

    other = tmp_path / "other"
    shutil.copytree(chain / "run" / "onnx", other)  # the same model again: its figures must be this run's to the digit
    manifest = run(chain, f'translate.compare_with="{other}"', "translate.beam_size=2")
    assert manifest["this_run"] == {**{stage: "skipped" for stage in ALL_RAN}, "translate": "ran"}
    figures = manifest["stages"]["translate"]["figures"]
    assert figures["decoding"] == "beam 2"
    ours, compared = figures["test_scores"], figures["compared"]
    translation = chain / "run" / "translation"
    hypotheses = (translation / "translations.txt").read_text(encoding="utf-8").splitlines()
    _, references = load_references(chain / "run" / "data", "test")
    assert ours == {key: value for key, value in score(hypotheses, references).items() if key in ours} and ours["sentences"] > 50
    assert compared == {"model": str(other), **ours}
    assert (translation / "compared_translations.txt").read_text(encoding="utf-8") == (translation / "translations.txt").read_text(encoding="utf-8")
    print_run_report(manifest, chain / "run")
    printed = capsys.readouterr().out
    assert f"translated by this run's model and by {other} (beam 2):" in printed  # both models decoded alike, and said so
    assert printed.count(f"{ours['chrf']:>6.2f}  {ours['bleu']:>6.2f}") == 2
    assert f"this run's model | {other.name}:" in printed
    evaluation, training = manifest["stages"]["evaluate"]["figures"], manifest["stages"]["train"]["figures"]
    assert f"chrF {evaluation['chrf']}, exact match {evaluation['exact_match']:.2%}" in printed  # the same printer as s2s evaluate's
    assert f"best epoch {training['best_epoch']}: validation loss {training['best_val_loss']:.4f}" in printed


def test_a_changed_corpus_reruns_every_stage(chain: Path) -> None:
    write_corpus("reverse-4", 300, chain / "corpus" / "part-2.tsv", seed=2)
    manifest = run(chain, "train.epochs=3")
    assert manifest["this_run"] == ALL_RAN
    assert manifest["stages"]["prepare"]["figures"]["lines_read"] == 1800


def test_a_damaged_output_is_noticed_and_rebuilt(chain: Path) -> None:
    card = chain / "run" / "onnx" / "MODEL_CARD.md"
    card.write_text("edited by hand\n")
    manifest = run(chain)
    assert manifest["this_run"] == {"prepare": "skipped", "train": "skipped", "evaluate": "skipped", "export": "ran", "translate": "ran"}
    assert card.read_text().startswith("# s2s model card")


def test_a_failing_stage_leaves_the_last_good_outputs_and_exits_with_one_line(chain: Path) -> None:
    before = {folder: tree_checksums(chain / "run" / folder) for folder in ("data", "model", "evaluation", "onnx", "translation")}
    # every pair is longer than 1 character, so cleaning keeps nothing and the prepare stage fails after its pipeline ran
    failing = ("--set", "prepare.max_source_length=1")
    result = subprocess.run(
        [sys.executable, "-m", "s2s.app.cli", "run", "--config", str(chain / "run.toml"), *failing, *IN_PROCESS],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("s2s: error")]
    assert errors == [
        "s2s: error: stage prepare failed: no training pair survived cleaning: see the rejects files and the [prepare] limits "
        "(the outputs of its last good run are left in place)"
    ]
    assert "Traceback" not in result.stderr
    assert {folder: tree_checksums(chain / "run" / folder) for folder in before} == before
    manifest = json.loads((chain / "run" / RUN_MANIFEST).read_text())
    assert manifest["status"] == "failed" and manifest["last_failure"]["stage"] == "prepare"
    manifest = run(chain)  # the good outputs still serve: nothing needs to run
    assert set(manifest["this_run"].values()) == {"skipped"}


def test_a_killed_training_resumes_when_the_chain_starts_again_and_a_changed_setting_reruns_what_follows(chain: Path) -> None:
    """The pristine chain trained 2 epochs: asking for 5 reruns training and every stage after it, not prepare. Killed
    mid-training, the run resumes from its checkpoint; once it succeeds, the same settings again skip every stage."""
    epochs = ["--set", "train.epochs=5", "--set", "train.early_stopping_patience=0"]
    command = [sys.executable, "-m", "s2s.app.cli", "run", "--config", str(chain / "run.toml"), *epochs, *IN_PROCESS]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    state_path = chain / "run" / ".work" / "train" / "checkpoints" / "state.json"
    deadline = time.monotonic() + 240
    while not state_path.exists() or json.loads(state_path.read_text()).get("epochs_done", 0) < 2:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    record = json.loads((chain / "run" / RUN_MANIFEST).read_text())
    assert (record["status"], record["this_run"]["train"]) == ("running", "running")  # not the previous run's "succeeded"
    killed = json.loads(state_path.read_text())
    assert 2 <= killed["epochs_done"] < 5 and not killed["finished"]
    model_before = tree_checksums(chain / "run" / "model")

    manifest = run(chain, "train.epochs=5", "train.early_stopping_patience=0")
    assert manifest["this_run"] == {**ALL_RAN, "prepare": "skipped"}
    assert manifest["stages"]["train"]["figures"]["epochs"] == 5
    state = json.loads((chain / "run" / "model" / "checkpoints" / "state.json").read_text())
    assert state["epochs_done"] == 5 and state["finished"]
    assert state["history"][: killed["epochs_done"]] == killed["history"]  # the killed run's epochs were kept, not redone
    assert tree_checksums(chain / "run" / "model") != model_before
    manifest = run(chain, "train.epochs=5", "train.early_stopping_patience=0")
    assert set(manifest["this_run"].values()) == {"skipped"}


@pytest.mark.parametrize(("stop", "status", "line"), [(signal.SIGTERM, 143, "s2s: stopped (SIGTERM)"), (signal.SIGINT, 130, "s2s: interrupted (SIGINT)")])
def test_a_stopped_run_says_so_in_one_line_in_its_exit_status_and_in_run_json(chain: Path, stop: int, status: int, line: str) -> None:
    """A scheduler's stop is neither a stage failure nor a run left "running": it is recorded as interrupted."""
    command = [sys.executable, "-m", "s2s.app.cli", "run", "--config", str(chain / "run.toml"), "--set", "train.epochs=30", *IN_PROCESS]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        # A shell without job control starts background jobs with SIGINT ignored, and Python keeps it so: the run must
        # get the default handler that a scheduler's or a terminal's SIGINT meets, however the suite was started.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    manifest_path = chain / "run" / RUN_MANIFEST
    deadline = time.monotonic() + 240
    while json.loads(manifest_path.read_text())["this_run"].get("train") != "running":  # the training stage has begun
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the training stage never started"
        time.sleep(0.05)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    assert stderr.strip().splitlines()[-1] == line and "Traceback" not in stderr, stderr
    record = json.loads((chain / "run" / RUN_MANIFEST).read_text())
    assert (record["status"], record["this_run"]["train"]) == ("interrupted", "interrupted")
    assert not (chain / "run" / ".lock").exists()


def test_config_errors_are_one_line_and_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    cases = {
        "[run]\ninput = ['x']\noutput = 'r'\n[trian]\nepochs = 1\n": "unknown table [trian]",
        "[run]\ninput = ['x']\noutput = 'r'\n[train]\nepochz = 1\n": "[train]: unknown key 'epochz'",
        "[run]\ninput = ['x']\noutput = 'r'\n[train]\nepochs = 'ten'\n": "[train]: 'epochs' must be int, got 'ten'",
        "[run]\ninput = ['x']\noutput = 'r'\n[train]\ndropout = 1.5\n": "[train]: dropout must be in [0, 1)",
        "[run]\noutput = 'r'\n": "[run]: input is missing",
        "[run]\ninput = ['x']\noutput = 'r'\n[translate]\ndevice = 'tpu'\n": "[translate]: device must be one of auto, cuda, cpu",
        "[run]\ninput = ['x']\noutput = 'r'\n[translate]\ncompare_with = 'nowhere'\n": "compare_with: ",
        "[run\n": "is not valid TOML",
    }
    for text, message in cases.items():
        config.write_text(text)
        with pytest.raises(S2SError, match=None) as raised:
            load_chain_settings(config)
        assert message in str(raised.value), (text, str(raised.value))
        assert "\n" not in str(raised.value)
    config.write_text("[run]\ninput = ['x']\noutput = 'r'\n")
    with pytest.raises(S2SError, match="--set expects TABLE"):
        load_chain_settings(config, ["epochs=3"])
    assert load_chain_settings(config, ["train.max_minutes=8"]).train.max_minutes == 8
