"""The wheel a translation host installs: its own name, one import package, the shipped model inside, no training stack."""

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("wheel")  # under pytest-xdist the module's tests share one worker, so the wheel is built once


@pytest.fixture(scope="module")
def translation_host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the built wheel with the cpu extra only: what `pip install 's2s-translate[cpu]'` gives."""
    root = tmp_path_factory.mktemp("host")
    # Built from a copy, so the build leaves nothing (build/, *.egg-info) in the checkout.
    ignored = shutil.ignore_patterns(".git", ".venv", "runs", "build", "dist", "node_modules", "*.egg-info", "__pycache__", ".*_cache")
    source = shutil.copytree(REPO, root / "source", ignore=ignored)
    build = subprocess.run(
        # This environment's setuptools builds it (no isolated build environment to fill: 3 s instead of 6.5).
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "--disable-pip-version-check", "-w", str(root / "dist"), str(source)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (root / "dist").glob("s2s_translate-*.whl")
    # A venv without pip of its own (ensurepip takes seconds), filled by this interpreter's pip through --python.
    venv.EnvBuilder(with_pip=False).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    install = subprocess.run(
        # --no-compile: numpy's and onnxruntime's modules compile when first imported (7 s instead of 11.5).
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile", "--disable-pip-version-check", f"{wheel}[cpu]"],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    return root


def host_run(root: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    # Run from an empty folder with a clean environment, so nothing of the checkout can be imported.
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "S2S_MODEL", "VIRTUAL_ENV")}
    return subprocess.run(args, cwd=root, capture_output=True, text=True, env=environment, timeout=300, **kwargs)


def test_the_wheel_translates_with_its_shipped_model_and_no_checkout(translation_host: Path) -> None:
    from s2s.app.cli import DEFAULT_MODEL_DIR
    from s2s.serving.translator import Translator

    sources = ["How are you?", "Thank you.", "Where is the station?"]
    result = host_run(translation_host, str(translation_host / "venv" / "bin" / "s2s"), "translate", "-i", "-", "-o", "-", input="\n".join(sources) + "\n")
    assert result.returncode == 0, result.stderr
    # The checkout's shipped model, translated here: the wheel's copy gives the same strings.
    assert result.stdout.split("\n")[:-1] == Translator.from_dir(DEFAULT_MODEL_DIR, device="cpu").translate_batch(sources)
    module = host_run(translation_host, str(translation_host / "venv" / "bin" / "python"), "-m", "s2s", "--version")
    assert module.returncode == 0 and module.stdout.startswith("s2s "), module.stderr


def test_the_wheel_brings_no_training_stack_and_one_import_name(translation_host: Path) -> None:
    python = str(translation_host / "venv" / "bin" / "python")
    probe = (
        "import importlib.util, sysconfig, os; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'apache_beam', 'tf2onnx', 'sacrebleu') if importlib.util.find_spec(m))); "
        "site = sysconfig.get_paths()['purelib']; "
        "print(sorted(n for n in ('training', 'export', 'serving', 'pipelines', 'app', 'models') if os.path.exists(os.path.join(site, n))))"
    )
    result = host_run(translation_host, python, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "[]"]


def test_a_subcommand_whose_extra_is_missing_names_the_extra(translation_host: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("go\tva\n")
    result = host_run(translation_host, str(translation_host / "venv" / "bin" / "s2s"), "prepare", "-i", str(corpus), "-o", str(tmp_path / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 's2s-translate[pipeline]'" in lines[0], result.stderr
