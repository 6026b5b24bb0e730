"""`s2s run`: prepare, train, evaluate, export and translate into one run directory, rerunning only what changed.

RUN_DIR after a successful run:

| folder / file | stage | content |
|---|---|---|
| `data/` | prepare | TFRecords, rejects, `spec.json`, `manifest.json` |
| `model/` | train | Keras models, checkpoints, history and curves |
| `evaluation/` | evaluate | `eval-test.json` and `eval-test.md` |
| `onnx/` | export | the ONNX files, `MODEL_CARD.md`, `verification.json` |
| `translation/` | translate | `translations.txt` (and `sources.txt` when translating the test split), `summary.json` |
| `run.json` | | per stage: settings, input and output checksums, figures, timings; the last failure |

How a rerun decides. A stage's key is the hash of its settings and of its
inputs (the corpus files' SHA-256, or the recorded output checksums of the
stages it reads). A stage is skipped when its key equals the one recorded at
its last success and every output file still has its recorded checksum;
otherwise it runs, and so does every stage after it. A stage writes into
`RUN_DIR/.work/STAGE` and its folder is swapped in only on success, so a
failed stage leaves the last good outputs where they were. A killed training
resumes from its last epoch checkpoint when the chain is started again with
the same settings. One `s2s run` at a time holds a run directory.
"""

from __future__ import annotations

import logging
import shutil
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import s2s
from s2s.app.chain.settings import ChainSettings
from s2s.app.chain.stages import STAGE_FOLDERS, STAGE_LIST, STAGES, ChainContext, Stage
from s2s.checksums import tree_checksums, value_digest
from s2s.errors import InputDataError, S2SError, Terminated, first_line
from s2s.files import read_json
from s2s.locks import exclusive_lock
from s2s.publish import atomic_open, replace_directory, write_json
from s2s.stage_log import stage_context

RUN_MANIFEST = "run.json"
RUN_FORMAT_VERSION = 1
WORK_DIR = ".work"
LOCK_FILE = ".lock"

logger = logging.getLogger("s2s.run")


def run_chain(settings: ChainSettings, *, pipeline_args: list[str] | None = None, force: str | None = None) -> dict[str, Any]:
    """Runs the stages that need it and returns the run manifest (also written as RUN_DIR/run.json).

    Args:
        pipeline_args: Beam pipeline options for the prepare stage, e.g. ["--runner=DataflowRunner", ...].
        force: run this stage and every later one even if nothing changed.

    Raises:
        S2SError: a stage failed (its earlier good outputs stay in place), or another run holds the directory.
    """
    if force is not None and force not in STAGES:
        raise S2SError(f"--force expects one of {', '.join(STAGES)}, got {force!r}")
    run_dir = Path(settings.run.output)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise S2SError(f"cannot create run directory {run_dir}: {error.strerror}") from None
    with _exclusive(run_dir):
        manifest = _load_manifest(run_dir)
        context = ChainContext(settings=settings, run_dir=run_dir, pipeline_args=list(pipeline_args or []), records=manifest["stages"])
        manifest.update(
            {
                "s2s_version": s2s.__version__,
                "config_file": str(settings.config_path),
                "started_at": _now(),
                "finished_at": None,
                "status": "running",
                "this_run": {},
            }
        )
        must_run = False
        for stage in STAGE_LIST:
            with stage_context(stage.name):
                must_run = must_run or stage.name == force
                outcome = _run_or_skip(stage, context, manifest, must_run)
            manifest["this_run"][stage.name] = outcome
            must_run = must_run or outcome == "ran"
        manifest.update({"status": "succeeded", "finished_at": _now()})
        write_json(run_dir / RUN_MANIFEST, manifest)
        return manifest


def _run_or_skip(stage: Stage, context: ChainContext, manifest: dict[str, Any], must_run: bool) -> str:
    """Skips `stage` if its key and outputs match the record, else runs and publishes it; returns "ran" or "skipped"."""
    run_dir = context.run_dir
    settings = context.settings.stage_settings(stage.name)
    folder = context.folder(stage.name)
    started, started_at = time.monotonic(), _now()
    try:
        inputs = stage.inputs(context)
        key = value_digest({"stage": stage.name, "settings": settings, "inputs": inputs})
        record = manifest["stages"].get(stage.name)
        if not must_run and record and record["key"] == key:
            problem = _check_outputs(folder, record["outputs"])
            if problem is None:
                logger.info("skipped: settings and inputs unchanged, %d output files verified by checksum", len(record["outputs"]))
                return "skipped"
            logger.info("running again: %s", problem)
        elif record is None:
            logger.info("running: no earlier run of this stage")
        elif must_run:
            logger.info("running: an earlier stage ran or --force asked for it")
        else:
            logger.info("running: %s changed since the last run", _what_changed(record, settings, inputs))
        work = run_dir / WORK_DIR / stage.name
        resume = _prepare_work_folder(stage, work, key)
        # Recorded before the work starts: a run killed mid-stage leaves run.json saying so, not the last run's "succeeded".
        manifest["this_run"][stage.name] = "running"
        write_json(run_dir / RUN_MANIFEST, manifest)
        figures = stage.run(context, work, resume)
    except BaseException as error:
        # A stop (SIGINT, SIGTERM) is recorded as such, not as a failure of the stage, nor left as "running".
        outcome = "interrupted" if isinstance(error, (KeyboardInterrupt, Terminated)) else "failed"
        manifest["status"] = outcome
        manifest["finished_at"] = _now()
        manifest["last_failure"] = {"stage": stage.name, "at": manifest["finished_at"], "error": _one_line(error)}
        manifest["this_run"][stage.name] = outcome
        write_json(run_dir / RUN_MANIFEST, manifest)
        if outcome == "interrupted":
            logger.warning("interrupted by %s: run.json records it; run again to resume", _signal_name(error))
        if isinstance(error, S2SError):  # the same class, so the exit status still says what kind of problem it is
            raise type(error)(f"stage {stage.name} failed: {error} (the outputs of its last good run are left in place)") from None
        raise
    _publish(work, folder)
    outputs = tree_checksums(folder)
    seconds = round(time.monotonic() - started, 1)
    manifest["stages"][stage.name] = {
        "key": key,
        "folder": STAGE_FOLDERS[stage.name],
        "settings": settings,
        "inputs": inputs,
        "outputs": outputs,
        "figures": figures,
        "started_at": started_at,
        "finished_at": _now(),
        "seconds": seconds,
    }
    write_json(run_dir / RUN_MANIFEST, manifest)
    logger.info("done in %.1f s: %s", seconds, _describe(figures))
    return "ran"


def _prepare_work_folder(stage: Stage, work: Path, key: str) -> bool:
    """Empties the stage's work folder unless it holds unfinished work of the same key that the stage can resume; True means resume."""
    key_file = work.with_name(f"{work.name}.key")
    if key_file.exists() and key_file.read_text() == key and stage.resumable(work):
        logger.info("resuming the unfinished run in %s", work)
        return True
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with atomic_open(key_file) as stream:  # a fresh private file renamed into place: never through a planted link
        stream.write(key)
    return False


def _publish(work: Path, folder: Path) -> None:
    """Swaps the finished work folder in for the stage's folder in one step (`s2s.publish.replace_directory`), then drops its key."""
    replace_directory(work, folder)
    work.with_name(f"{work.name}.key").unlink(missing_ok=True)


def _check_outputs(folder: Path, recorded: dict[str, str]) -> str | None:
    """None when the folder holds exactly the recorded files with the recorded checksums, else what differs."""
    if not folder.is_dir():
        return f"its folder {folder} is missing"
    actual = tree_checksums(folder)
    for path, checksum in recorded.items():
        if path not in actual:
            return f"output {path} is missing"
        if actual[path] != checksum:
            return f"output {path} changed since it was written"
    extra = sorted(set(actual) - set(recorded))
    return f"unexpected file {extra[0]} in its folder" if extra else None


def _what_changed(record: dict[str, Any], settings: dict[str, Any], inputs: dict[str, Any]) -> str:
    changed = [f"setting {key}" for key in sorted(settings) if record.get("settings", {}).get(key) != settings[key]]
    changed += [f"input {key}" for key in sorted(inputs) if record.get("inputs", {}).get(key) != inputs[key]]
    return ", ".join(changed) or "the stage's definition"


def _load_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_MANIFEST
    if not path.exists():
        return {"format_version": RUN_FORMAT_VERSION, "stages": {}}
    try:
        manifest = read_json(path)
    except (OSError, ValueError) as error:
        raise S2SError(f"cannot read {path} ({error}); move it aside to start the chain afresh") from None
    if not isinstance(manifest, dict):
        raise S2SError(f"{path} is not a run manifest (it holds a JSON {type(manifest).__name__}); move it aside to start afresh")
    if manifest.get("format_version") != RUN_FORMAT_VERSION:
        raise S2SError(f"{path} has format {manifest.get('format_version')!r}, not {RUN_FORMAT_VERSION}: use a new run directory")
    _check_records(manifest, path)
    return manifest


# What every stage record of run.json must hold, and of which type: a hand-edited or damaged file is refused in one line
# before any stage runs, instead of failing inside the first stage as if that stage had failed.
_RECORD_TYPES = {"key": str, "settings": dict, "inputs": dict, "outputs": dict, "figures": dict}


def _check_records(manifest: dict[str, Any], path: Path) -> None:
    stages = manifest.get("stages")
    if not isinstance(stages, dict):
        raise InputDataError(f"{path}: 'stages' must be an object, got {type(stages).__name__}; move the file aside to start afresh")
    for name, record in stages.items():
        if not isinstance(record, dict):
            raise InputDataError(f"{path}: stage {name!r} must be an object, got {type(record).__name__}; move the file aside to start afresh")
        for key, kind in _RECORD_TYPES.items():
            if not isinstance(record.get(key), kind):
                raise InputDataError(
                    f"{path}: stage {name!r} has {key} of type {type(record.get(key)).__name__}, not {kind.__name__}; "
                    "move the file aside to start afresh"
                )
        if not all(isinstance(checksum, str) for checksum in record["outputs"].values()):
            raise InputDataError(f"{path}: stage {name!r} has an output checksum that is not a string; move the file aside to start afresh")


def _exclusive(run_dir: Path) -> AbstractContextManager[None]:
    """Holds an exclusive lock on the run directory, so a scheduler's overlapping runs cannot interleave."""
    return exclusive_lock(run_dir / LOCK_FILE, f"another s2s run (pid {{pid}}) is working in {run_dir}; wait for it to finish")


def _describe(figures: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}" for key, value in figures.items())


def _one_line(error: BaseException) -> str:
    if isinstance(error, (KeyboardInterrupt, Terminated)):
        return f"interrupted by {_signal_name(error)}"
    return f"{type(error).__name__}: {first_line(error)}"


def _signal_name(error: BaseException) -> str:
    return "SIGTERM" if isinstance(error, Terminated) else "SIGINT"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
