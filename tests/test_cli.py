"""Bad input through the real command line: one line on stderr, a non-zero exit, never a traceback."""

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import REPO, assert_one_line_error, run_cli
from tests.toy import IN_PROCESS


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.tsv"
    path.write_text("go\tva\nrun\tcours\n")
    return path


def test_missing_input(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("prepare", "--input", str(tmp_path / "nope.tsv"), "--output", str(tmp_path / "out")), "matches no file")


def test_empty_input(tmp_path: Path) -> None:
    (tmp_path / "empty.tsv").write_bytes(b"")
    assert_one_line_error(run_cli("prepare", "--input", str(tmp_path / "empty.tsv"), "--output", str(tmp_path / "out")), "input is empty")


def test_unwritable_output(tmp_path: Path, corpus: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_one_line_error(run_cli("prepare", "--input", str(corpus), "--output", str(blocker / "out")), "cannot write to output directory")


def test_config_with_unknown_key(tmp_path: Path, corpus: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[prepare]\nmax_source_lenght = 5\n")
    result = run_cli("prepare", "--input", str(corpus), "--output", str(tmp_path / "out"), "--config", str(config))
    assert_one_line_error(result, "unknown key 'max_source_lenght'")


def test_config_value_out_of_range(tmp_path: Path, corpus: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[prepare]\ntest_fraction = 1.5\n")
    result = run_cli("prepare", "--input", str(corpus), "--output", str(tmp_path / "out"), "--config", str(config))
    assert_one_line_error(result, "test_fraction must be in [0, 1)")


def test_misspelt_option_is_not_passed_silently_to_beam(tmp_path: Path, corpus: Path) -> None:
    result = run_cli("prepare", "--input", str(corpus), "--output", str(tmp_path / "out"), "--max-source-lenght", "5")
    assert_one_line_error(result, "unrecognised option --max-source-lenght")


def test_garbage_file_is_counted_not_an_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.gz"
    garbage.write_bytes(gzip.compress(bytes(range(256)) * 40))
    result = run_cli("prepare", "--input", str(garbage), "--output", str(tmp_path / "out"), *IN_PROCESS)
    assert result.returncode == 0, result.stderr
    assert "kept 0 pairs" in result.stdout and "rejected" in result.stdout
    assert "Traceback" not in result.stderr


def test_prepare_and_synth_succeed_and_report(tmp_path: Path) -> None:
    corpus = tmp_path / "r4.tsv"
    assert run_cli("synth", "reverse-4", "--n", "300", "--output", str(corpus)).returncode == 0
    result = run_cli("prepare", "--input", str(corpus), "--output", str(tmp_path / "out"), "--min-char-count", "1", *IN_PROCESS)
    assert result.returncode == 0, result.stderr
    assert "read 300 lines" in result.stdout
    assert (tmp_path / "out" / "manifest.json").exists()


def _config_classes() -> list[tuple[str, type]]:
    from s2s.export.config import ExportConfig
    from s2s.pipelines.config import PrepareConfig
    from s2s.serving.config import TranslateConfig
    from s2s.training.config import EvaluateConfig, TrainConfig

    return [
        ("prepare", PrepareConfig),
        ("train", TrainConfig),
        ("evaluate", EvaluateConfig),
        ("export", ExportConfig),
        ("translate", TranslateConfig),
        ("translate-beam", TranslateConfig),
    ]


@pytest.mark.parametrize(("command", "config_class"), _config_classes(), ids=[command for command, _ in _config_classes()])
def test_help_lists_every_setting_of_the_stage_with_its_help_and_default(command: str, config_class: type) -> None:
    """Derived from the config dataclass, so a setting added without its flag, its help or its default fails here."""
    import dataclasses
    import typing

    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    text = "".join(result.stdout.split())  # argparse wraps lines (and hyphenated words) to the terminal's width
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        assert f"{flag} " in result.stdout or f"{flag}\n" in result.stdout or f"{flag}," in result.stdout, flag
        if hints[field.name] is bool:
            assert f"--no-{field.name.replace('_', '-')}" in result.stdout, flag
        assert "".join(f"{field.metadata['help']} (default {field.default})".split()) in text, flag
    assert "--config" in result.stdout


def test_help_of_prepare_names_its_paths_and_runners() -> None:
    result = run_cli("prepare", "--help")
    for option in ("--input", "--output", "Dataflow"):
        assert option in result.stdout


def test_a_handled_interrupt_exits_130_under_python_m_even_after_string_code(tmp_path: Path) -> None:
    """CPython kills a `python -m` process with SIGINT at exit when a KeyboardInterrupt once ended code run from a string
    (as during TensorFlow's import), even though s2s caught it: the parent saw -2, not 130 (fails without the reset)."""
    (tmp_path / "interrupted_cli.py").write_text(
        "import sys\n"
        "from s2s.app import cli\n"
        "class Args:\n"
        "    verbose = False\n"
        "    accepts_pipeline_options = False\n"
        "    @staticmethod\n"
        "    def handler(args, extra):\n"
        "        exec('raise KeyboardInterrupt', {})\n"
        "class Parser:\n"
        "    def parse_known_args(self, argv):\n"
        "        return Args(), []\n"
        "cli.build_parser = Parser\n"
        "sys.exit(cli.main([]))\n",
        encoding="utf-8",
    )
    done = subprocess.run([sys.executable, "-m", "interrupted_cli"], cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"})
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert done.stderr.strip().splitlines()[-1] == "s2s: interrupted (SIGINT)"
