"""The five stages of `s2s run`: what each reads, and how it writes its folder of the run directory.

Each stage runs the same library function as its own subcommand (`s2s
prepare`, `s2s train`, ...) with the config's table, writes into a fresh work
folder and returns its headline figures; the runner publishes the folder and
records checksums. Heavy imports (Beam, TensorFlow) happen inside the stage
that needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2s.app.chain.settings import ChainSettings
from s2s.checksums import file_sha256, tree_checksums, value_digest
from s2s.errors import S2SError
from s2s.publish import atomic_open

SOURCES_FILE = "sources.txt"
TRANSLATIONS_FILE = "translations.txt"
COMPARED_FILE = "compared_translations.txt"  # the same sources by [translate] compare_with's model
COMPARED_SUMMARY_FILE = "compared_summary.json"
SUMMARY_FILE = "summary.json"


@dataclass
class ChainContext:
    """What a stage may look at: the settings, the run directory and the records of earlier stages."""

    settings: ChainSettings
    run_dir: Path
    pipeline_args: list[str]
    records: dict[str, dict[str, Any]]  # run.json's "stages": each has "outputs", {relative path: sha256} of its folder

    def folder(self, stage: str) -> Path:
        return self.run_dir / STAGE_FOLDERS[stage]

    def digest(self, stage: str) -> str:
        """One hash of a published stage's output checksums: how a later stage notices that it changed."""
        if stage not in self.records:
            raise S2SError(f"stage {stage} has no recorded outputs in {self.run_dir}: run the chain from the start")
        return value_digest(self.records[stage]["outputs"])


def _never_resumable(_: Path) -> bool:
    return False


@dataclass(frozen=True)
class Stage:
    """One stage: what it reads (for its key), how it runs, and whether a killed run of it can continue.

    `resumable(work folder)` is the stage's own answer, so the runner needs to
    know nothing of, say, training's checkpoints.
    """

    name: str
    inputs: Callable[[ChainContext], dict[str, Any]]
    run: Callable[[ChainContext, Path, bool], dict[str, Any]]  # (context, work folder, resume) -> figures
    resumable: Callable[[Path], bool] = _never_resumable


def _prepare_inputs(context: ChainContext) -> dict[str, Any]:
    from s2s.pipelines.inputs import resolve_inputs

    return {"corpus": {entry["path"]: entry["sha256"] for entry in resolve_inputs(list(context.settings.run.input))}}


def _run_prepare(context: ChainContext, work: Path, _: bool) -> dict[str, Any]:
    from s2s.pipelines.prepare import prepare

    manifest = prepare(list(context.settings.run.input), str(work), context.settings.prepare, context.pipeline_args)
    if not manifest["split_sizes"].get("train"):
        raise S2SError("no training pair survived cleaning: see the rejects files and the [prepare] limits")
    return {
        "lines_read": manifest["lines_read"],
        "pairs_kept": manifest["pairs_kept"],
        "rejected": sum(manifest["rejected"].values()),
        "split_sizes": manifest["split_sizes"],
    }


def _train_inputs(context: ChainContext) -> dict[str, Any]:
    return {"data": context.digest("prepare")}


def _run_train(context: ChainContext, work: Path, resume: bool) -> dict[str, Any]:
    from s2s.training.train import train

    summary = train(context.folder("prepare"), work, context.settings.train, resume=resume)
    return {key: summary[key] for key in ("epochs", "best_epoch", "best_val_loss", "best_val_accuracy", "stop_reason")}


def _train_resumable(work: Path) -> bool:
    from s2s.training.model_dir import ModelDir

    return ModelDir(work).can_resume()


def _evaluate_inputs(context: ChainContext) -> dict[str, Any]:
    return {"data": context.digest("prepare"), "model": context.digest("train")}


def _run_evaluate(context: ChainContext, work: Path, _: bool) -> dict[str, Any]:
    from s2s.training.evaluate import evaluate

    settings = context.settings.evaluate
    report = evaluate(context.folder("train"), context.folder("prepare"), settings, output_dir=work)
    return {"split": settings.split, "sources": report["sources"], **report["overall"]}


def _export_inputs(context: ChainContext) -> dict[str, Any]:
    return {"data": context.digest("prepare"), "model": context.digest("train"), "evaluation": context.digest("evaluate")}


def _run_export(context: ChainContext, work: Path, _: bool) -> dict[str, Any]:
    from s2s.export.export import export_model
    from s2s.training.model_dir import report_name

    report = export_model(
        context.folder("train"),
        work,
        context.settings.export,
        data_dir=context.folder("prepare"),
        evaluation=context.folder("evaluate") / report_name(context.settings.evaluate.split, "json"),
    )
    return {
        "model_id": report["model_id"],
        "parity_max_abs_difference": max(report["parity_max_abs_difference"].values()),
        "greedy_identical": f"{report['greedy_step_loop']['identical']}/{report['greedy_step_loop']['compared']}",
    }


def _translate_inputs(context: ChainContext) -> dict[str, Any]:
    source = context.settings.translate.input
    if not source:
        inputs = {"model": context.digest("export"), "data": context.digest("prepare")}
        compared = context.settings.translate.compare_with
        if compared:
            inputs["compared_model"] = tree_checksums(Path(compared))
        return inputs
    from s2s.serving.inputs import input_files

    return {"model": context.digest("export"), "corpus": {path: file_sha256(path) for path in input_files(source)}}


def _run_translate(context: ChainContext, work: Path, _: bool) -> dict[str, Any]:
    from s2s.serving.jobs import translate_corpus

    settings = context.settings.translate
    source = settings.input
    references = None
    if not source:
        source = str(work / SOURCES_FILE)
        references = _write_test_sources(context.folder("prepare"), Path(source))
    stats = translate_corpus(
        context.folder("export"), source, str(work / TRANSLATIONS_FILE), settings, summary_path=str(work / SUMMARY_FILE)
    )
    summary = stats.to_dict()
    figures = {key: summary[key] for key in ("lines", "sentences_per_second", "device", "unknown_characters", "truncated_lines")}
    figures["decoding"] = settings.decoding().method
    if references is not None:
        figures["test_scores"] = _score_test_translations(work / TRANSLATIONS_FILE, references)
    if settings.compare_with:  # settings.validate() allows it only with the test split
        translate_corpus(settings.compare_with, source, str(work / COMPARED_FILE), settings, summary_path=str(work / COMPARED_SUMMARY_FILE))
        figures["compared"] = {"model": settings.compare_with, **_score_test_translations(work / COMPARED_FILE, references)}
    return figures


def _score_test_translations(translations: Path, references: list[list[str]]) -> dict[str, Any]:
    """BLEU, chrF, exact match and CER of one translation per distinct test source (in `_write_test_sources`' order) against
    all its references: the same figures for this run's export and for the model it is compared with."""
    from s2s.training.metrics import score

    hypotheses = translations.read_text(encoding="utf-8").splitlines()
    if len(hypotheses) != len(references):
        raise S2SError(f"{translations} holds {len(hypotheses)} lines for {len(references)} test sources")
    figures = score(hypotheses, references)
    return {key: figures[key] for key in ("sentences", "bleu", "chrf", "exact_match", "cer")}


def _write_test_sources(data_dir: Path, path: Path) -> list[list[str]]:
    """Writes the distinct sources of the test split, one per line (text nobody trained on, for a translation smoke run);
    returns their references, in the same order, for scoring the translations."""
    from s2s.records import load_references

    sources, references = load_references(data_dir, "test")
    if not sources:
        raise S2SError(f"the test split of {data_dir} is empty: set [translate] input to a file to translate")
    with atomic_open(path) as stream:
        stream.writelines(source + "\n" for source in sources)
    return references


STAGE_FOLDERS = {"prepare": "data", "train": "model", "evaluate": "evaluation", "export": "onnx", "translate": "translation"}
STAGE_LIST = (
    Stage("prepare", _prepare_inputs, _run_prepare),
    Stage("train", _train_inputs, _run_train, _train_resumable),
    Stage("evaluate", _evaluate_inputs, _run_evaluate),
    Stage("export", _export_inputs, _run_export),
    Stage("translate", _translate_inputs, _run_translate),
)
STAGES = tuple(stage.name for stage in STAGE_LIST)
