"""Shared test setup: quiet TensorFlow, no telemetry, and the repository on sys.path."""

import dataclasses
import fcntl
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as s2s.tensorflow_import.quiet_native_logs sets it
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tests run on the CPU, as CI does
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fails a `--dist loadgroup` run's grouped tests when their `xdist_group` marks did not take: pytest-xdist groups
    tests by a suffix it writes into their node ids, which some pytest releases silently drop (pytest-xdist issue #1386),
    and then each worker builds the groups' costly module fixtures (the chain, the wheel) again."""
    if getattr(item.config.option, "loadgroup", False) and item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
        pytest.fail("pytest-xdist's --dist loadgroup lost this test's xdist_group: pin pytest as pyproject.toml does")


# Tests that train models of their own, 10-30 s each: run early, so that short tests, not these, fill the workers' ends.
TRAINING_TESTS = ("test_training_progress.py", "test_training.py::test_repeat_vector_variant_trains_and_decodes")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Starts the two longest chains of work first, on different workers: a test that needs the toy model (whose first
    user trains it, about a minute, while any other worker that needs it waits) and then the `s2s run` chain's group
    (about two and a half minutes on one worker, which must not come last). The training tests follow; everything else
    keeps its order. The chain's module and the toy test's module hold no module fixture that a split would build twice."""
    first_toy = next((item for item in items if "toy_model" in getattr(item, "fixturenames", ()) and item.path.name == "test_training.py"), None)
    chain = [item for item in items if item.path.name == "test_run_chain.py"]
    if first_toy is None or not chain:
        return
    training = [item for item in items if item.nodeid.split("/")[-1].startswith(TRAINING_TESTS) and item is not first_toy]
    front = [first_toy, *chain, *training]
    items[:] = front + [item for item in items if item not in front]


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Any]) -> Any:
    """`build(folder)`'s result, made once for the whole test run.

    Under pytest-xdist each worker is a process with its own session: the
    first to get here builds in a folder all workers share, under a lock, and
    the others wait for it and read the result back (JSON), so the toy model
    is trained once rather than once per worker. Training uses both cores
    anyway, so a waiting worker costs nothing.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build(tmp_path_factory.mktemp(name))
    folder = tmp_path_factory.getbasetemp().parent / name  # the run's temporary folder, shared by its workers
    with open(folder.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result_file = folder.with_suffix(".json")
        if not result_file.exists():
            folder.mkdir()
            result_file.write_text(json.dumps(build(folder)))
        return json.loads(result_file.read_text())


@pytest.fixture(scope="session")
def toy_model(tmp_path_factory: pytest.TempPathFactory):
    """The reverse-first-3 task trained once per test run (about half a minute on 2 cores)."""
    from tests.toy import ToyModel, build_toy_model

    def build(folder: Path) -> dict[str, Any]:
        fields = dataclasses.asdict(build_toy_model(folder))
        return {name: value if name == "summary" else str(value) for name, value in fields.items()}

    fields = built_once(tmp_path_factory, "toy", build)
    return ToyModel(**{name: value if name == "summary" else Path(value) for name, value in fields.items()})


@pytest.fixture(scope="session")
def toy_onnx(toy_model, tmp_path_factory: pytest.TempPathFactory):
    """The toy model evaluated (so its model card has figures) and exported to ONNX, once per test run: (dir, report)."""
    from s2s.export.config import ExportConfig
    from s2s.export.export import export_model
    from s2s.training.evaluate import evaluate

    def build(output: Path) -> tuple[str, dict]:
        evaluate(toy_model.model_dir, toy_model.data_dir)
        return str(output), export_model(toy_model.model_dir, output, ExportConfig(verify_sources=1000))

    output, report = built_once(tmp_path_factory, "onnx", build)
    return Path(output), report


@pytest.fixture(scope="session")
def translator(toy_onnx):
    """The toy export loaded on the CPU, shared by the tests that only read from it."""
    from s2s.serving.translator import Translator

    return Translator(toy_onnx[0], device="cpu")


@pytest.fixture(scope="session")
def engine(toy_onnx):
    """The toy export's engine on the CPU: the sessions and decoding loops under `Translator`, for tests of the loops."""
    from s2s.serving.engine import Engine

    return Engine.open(toy_onnx[0], device="cpu")


@pytest.fixture(scope="session")
def validation_sources(toy_model) -> list[str]:
    """The toy task's first 500 distinct validation sources (its target is each source's first three characters reversed)."""
    from s2s.records import load_references

    sources, _ = load_references(toy_model.data_dir, "validation", 500)
    return sources


@pytest.fixture(autouse=True)
def _restore_logging():
    """Puts the root and s2s loggers back as they were: `s2s.app.cli.main` called in-process points them at a captured
    stream that pytest closes after the test, and a later log line would then fail to write."""
    import logging

    root, s2s_logger = logging.getLogger(), logging.getLogger("s2s")
    handlers, levels = list(root.handlers), (root.level, s2s_logger.level)
    yield
    root.handlers[:] = handlers
    root.setLevel(levels[0])
    s2s_logger.setLevel(levels[1])
