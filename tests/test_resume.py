"""A training killed with SIGKILL mid-run resumes from its checkpoint: epochs and optimizer state carry on."""

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli import REPO, assert_only_s2s_log_lines, run_cli, scheduler_environment

TRAIN_PAIRS, BATCH, EPOCHS = 1280, 64, 5


def train_args(data_dir: Path, model_dir: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--data",
        str(data_dir),
        "--output",
        str(model_dir),
        "--latent-dim",
        "32",
        "--epochs",
        str(EPOCHS),
        "--batch-size",
        str(BATCH),
        "--max-train-pairs",
        str(TRAIN_PAIRS),
        "--optimizer",
        "adam",
        "--early-stopping-patience",
        "0",
        *extra,
    ]


def read_state(model_dir: Path) -> dict:
    path = model_dir / "checkpoints" / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_killed_training_resumes_where_it_stopped(toy_model, tmp_path: Path) -> None:
    """Killed with SIGKILL after two epochs, a training resumes from its checkpoint. Its log up to the kill, as a scheduler
    captures it, holds s2s's lines alone."""
    model_dir = tmp_path / "model"
    command = [sys.executable, "-m", "s2s.app.cli", *train_args(toy_model.data_dir, model_dir)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=scheduler_environment())
    deadline = time.monotonic() + 240
    while read_state(model_dir).get("epochs_done", 0) < 2:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert_only_s2s_log_lines(process.communicate()[1].decode())
    killed = read_state(model_dir)
    assert 2 <= killed["epochs_done"] < EPOCHS and not killed["finished"]

    refused = run_cli(*train_args(toy_model.data_dir, model_dir))
    assert refused.returncode == 1 and "pass --resume" in refused.stderr

    changed = run_cli(*train_args(toy_model.data_dir, model_dir, "--resume", "--seed", "5"))
    assert changed.returncode == 1 and "other settings (seed)" in changed.stderr

    resumed = run_cli(*train_args(toy_model.data_dir, model_dir, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    final = read_state(model_dir)
    assert final["finished"] and final["epochs_done"] == EPOCHS
    assert [row["epoch"] for row in final["history"]] == list(range(EPOCHS))
    assert final["history"][: killed["epochs_done"]] == killed["history"]  # the killed run's epochs are kept, not redone

    import keras

    last = keras.models.load_model(model_dir / "checkpoints" / "last.keras")
    steps_per_epoch = math.ceil(TRAIN_PAIRS / BATCH)
    assert int(last.optimizer.iterations.numpy()) == EPOCHS * steps_per_epoch  # the optimizer's step count carried on


def test_resume_without_a_checkpoint_is_a_clear_error(toy_model, tmp_path: Path) -> None:
    result = run_cli(*train_args(toy_model.data_dir, tmp_path / "fresh", "--resume"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"s2s: error: nothing to resume in {tmp_path / 'fresh'}: no checkpoint there; run without --resume"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--latent-dim", "0"], "latent_dim must be at least 1"),
        (["--dropout", "1.5"], "dropout must be in [0, 1)"),
        (["--latent-dim", "7"], "latent_dim must be even for arch = attention"),
        (["--arch", "repeat-vector", "--bucket-by-length"], "bucket_by_length needs arch = attention or lstm"),
    ],
)
def test_bad_settings_are_one_line_errors(toy_model, tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli(*train_args(toy_model.data_dir, tmp_path / "m", *args))
    assert result.returncode == 2 and "Traceback" not in result.stderr  # a config error: exit status 2
    assert message in result.stderr.strip().splitlines()[-1]


def test_a_config_naming_an_unknown_arch_lists_the_known_ones(toy_model, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[train]\narch = "transformer"\n')
    result = run_cli(*train_args(toy_model.data_dir, tmp_path / "m", "--config", str(config)))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "arch must be one of attention, lstm, repeat-vector, got 'transformer'" in lines[0], result.stderr


def test_data_dir_without_records_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli(*train_args(tmp_path, tmp_path / "m"))
    assert result.returncode == 1
    assert "spec.json does not exist" in result.stderr and "Traceback" not in result.stderr


def test_spec_that_does_not_match_the_records_is_a_clear_error(toy_model, tmp_path: Path) -> None:
    import shutil

    data_dir = tmp_path / "data"
    shutil.copytree(toy_model.data_dir, data_dir)
    spec = json.loads((data_dir / "spec.json").read_text())
    spec["max_source_length"] += 2
    (data_dir / "spec.json").write_text(json.dumps(spec))
    result = run_cli(*train_args(data_dir, tmp_path / "m"))
    assert result.returncode == 1
    assert "spec.json does not match the records" in result.stderr and "Traceback" not in result.stderr
