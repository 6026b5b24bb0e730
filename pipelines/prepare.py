"""`s2s prepare`: bilingual text files in, padded one-hot TFRecords, spec and manifest out.

The pipeline writes into a staging folder. Only when it has finished, and
its line accounting balances, does the dataset take the output's place:
locally the staging folder, `spec.json` and `manifest.json` included,
replaces the output folder in one atomic exchange, so a run killed at any
moment leaves the old dataset or the new one, whole; the next run removes
what a killed one left behind. On remote filesystems the files are moved in
and `manifest.json` is written last.

The same code runs on Dataflow, Flink or Spark: the runner comes from the
Beam options, and paths go through Beam's FileSystems (gs://, s3://, hdfs://).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import logging
import os
import shutil
import time
import uuid
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

import s2s
from s2s.config import log_config, validated
from s2s.errors import S2SError, first_line
from s2s.locks import exclusive_lock
from s2s.pipelines import cleaning, dataset_files, transforms
from s2s.pipelines.cleaning import LengthLimits
from s2s.pipelines.config import PrepareConfig
from s2s.pipelines.inputs import DATASET_SHARDS, automatic_shards, input_bytes, resolve_inputs
from s2s.pipelines.options import beam_options, run_pipeline
from s2s.publish import replace_directory, write_json
from s2s.spec import MANIFEST_FILE, SPEC_FILE, SPLITS, TEST, TRAIN, VALIDATION, DatasetSpec, record_pattern
from s2s.text import TextNormalizer
from s2s.vocab import Vocabulary

REJECTS_PATTERN = f"{dataset_files.REJECTS}-*-of-*{dataset_files.REJECTS_SUFFIX}"
_SUMMARY_NAME = dataset_files.SUMMARY_FILE

logger = logging.getLogger(__name__)


def prepare(inputs: list[str], output_dir: str, config: PrepareConfig, pipeline_args: list[str] | None = None) -> dict[str, Any]:
    """Runs the pipeline and publishes its outputs; returns the manifest.

    Args:
        inputs: files or globs of tab-separated pairs, plain or .gz.
        output_dir: where records, rejects, spec.json and manifest.json go.
        config: cleaning limits and split fractions.
        pipeline_args: Beam pipeline options, e.g. ["--runner=DataflowRunner", ...].

    Raises:
        S2SError: an input is missing or empty, the output is unwritable, an option is unknown.
    """
    started = time.time()
    validated(config)
    options = beam_options(list(pipeline_args or []))
    input_files = resolve_inputs(inputs)
    if FileSystems.get_scheme(output_dir) is None:
        _check_dataset_folder(Path(output_dir))
    _ensure_writable(output_dir)
    with _owned(output_dir):
        return _prepare_owned(input_files, output_dir, config, options, started)


def _owned(output_dir: str) -> AbstractContextManager[Any]:
    """A lock beside a local output folder (it is replaced whole, so the lock cannot live inside it): one prepare at a time.

    Without it, a second run would take the first one's live staging folder
    for a killed run's leftovers and delete it. Remote outputs are not locked:
    object stores have no locks, and their staging folders have unique names.
    """
    if FileSystems.get_scheme(output_dir) is not None:
        return nullcontext()
    target = Path(output_dir).absolute()
    return exclusive_lock(target.parent / f".{target.name}.lock", f"another s2s prepare (pid {{pid}}) is writing {output_dir}; wait for it to finish")


def _prepare_owned(input_files: list[dict[str, Any]], output_dir: str, config: PrepareConfig, options: Any, started: float) -> dict[str, Any]:
    """The pipeline run and the publishing of its outputs, once this process owns the output folder."""
    log_config(logger, "prepare", config)  # once the arguments are known good: a bad one is the only line printed
    logger.info(
        "cleaning %d file(s), %.1f MB, on %s",
        len(input_files),
        sum(entry["bytes"] for entry in input_files) / 1e6,
        options.get_all_options().get("runner") or "the local FnApiRunner",
    )
    if FileSystems.get_scheme(output_dir) is None:  # local: build beside the folder, then swap it in whole
        target = Path(output_dir)
        _remove_leftovers(target)
        staging = str(target.parent / f".{target.name}.staging-{uuid.uuid4().hex[:12]}")
    else:
        staging = FileSystems.join(output_dir, f".staging-{uuid.uuid4().hex[:12]}")
    normalizer = TextNormalizer(fold_quotes=config.fold_quotes)
    num_shards = config.num_shards or automatic_shards(input_bytes(input_files), DATASET_SHARDS)
    try:
        paths = [entry["path"] for entry in input_files]
        with run_pipeline(options, f"the prepare pipeline over {', '.join(paths)}") as pipeline:
            build_pipeline(pipeline, paths, staging, config, normalizer, num_shards)
        dataset_files.complete_shards(staging, num_shards)
        summary = _read_summary(staging)
        _check_rows_written(staging, summary)
        spec = DatasetSpec(
            source_vocabulary=Vocabulary.from_list(summary["facts"]["source_vocabulary"]),
            target_vocabulary=Vocabulary.from_list(summary["facts"]["target_vocabulary"]),
            max_source_length=summary["facts"]["max_source_length"],
            max_target_length=summary["facts"]["max_target_length"],
            normalizer=normalizer,
            split_sizes={split: summary["split_sizes"].get(split, 0) for split in SPLITS},
        )
        manifest = _manifest(input_files, summary, spec, config, options, started)
        _publish(staging, output_dir, spec, manifest)
    finally:
        _delete_tree(staging)
    return manifest


def build_pipeline(
    pipeline: beam.Pipeline, input_files: list[str], staging: str, config: PrepareConfig, normalizer: TextNormalizer, num_shards: int
) -> None:
    """Adds every step of `s2s prepare` to `pipeline`, writing `num_shards` files per split, and the rejects, under `staging`.

    Every branch ends in one step, `WriteDatasetFiles`, which writes records,
    rejects and the summary alike. Global values (character counts, dataset
    facts) reach the steps that need them through joins, not side inputs
    (see `transforms.Broadcast`), and global combines have no default, so the
    pipeline holds no side input at all: that is what lets it run on Beam's
    Dask runner with the same output as on the others.
    """
    limits = LengthLimits(config.max_source_length, config.max_target_length)
    lines = pipeline | "ReadNumberedLines" >> transforms.ReadNumberedLines(input_files)
    cleaned = lines | "CleanPairs" >> transforms.CleanPairs(normalizer, limits, reverse=config.direction == "reverse")
    unique = cleaned[transforms.PAIRS] | "DropDuplicates" >> transforms.DropDuplicates()
    counts = unique[transforms.PAIRS] | "CountCharacters" >> beam.CombineGlobally(transforms.CharacterCountsFn()).without_defaults()
    rare_rejected: list[beam.PCollection] = []
    if config.rare_characters == "reject":
        common = unique[transforms.PAIRS] | "FilterRareCharacters" >> transforms.FilterRareCharacters(
            config.min_char_count, counts, num_shards
        )
        kept, rare_rejected = common[transforms.PAIRS], [common[transforms.REJECTED]]
    else:
        kept = unique[transforms.PAIRS]
    facts = kept | "MeasureDataset" >> beam.CombineGlobally(transforms.DatasetFactsFn()).without_defaults()
    if config.rare_characters == "unk":
        facts = (
            (
                facts | "KeyFacts" >> transforms.share_with([None], transforms.FACTS),
                counts | "KeyCounts" >> transforms.share_with([None], transforms.COUNTS),
            )
            | "FactsWithCounts" >> beam.Flatten()
            | "GroupFactsWithCounts" >> beam.GroupByKey()
            | "RareCharactersToUnknown" >> beam.Map(_facts_without_rare_characters, min_count=config.min_char_count)
        )
    split_pairs = kept | "AssignSplits" >> transforms.AssignSplits(config.validation_fraction, config.test_fraction)
    rejected = (cleaned[transforms.REJECTED], unique[transforms.REJECTED], *rare_rejected) | "AllRejects" >> beam.Flatten()

    summary = dataset_files.SUMMARY, 0
    tallies = (
        lines
        | "CountLines" >> beam.CombineGlobally(beam.combiners.CountCombineFn()).without_defaults()
        | "LinesRead" >> beam.Map(lambda count: (summary, ("lines_read", count))),
        rejected
        | "ReasonOf" >> beam.Map(lambda rejection: rejection.reason)
        | "CountReasons" >> beam.combiners.Count.PerElement()
        | "Rejected" >> beam.Map(lambda reason_count: (summary, ("rejected", reason_count))),
        split_pairs
        | "SplitOf" >> beam.Keys()
        | "CountSplits" >> beam.combiners.Count.PerElement()
        | "SplitSizes" >> beam.Map(lambda split_count: (summary, ("split_sizes", split_count))),
    )
    _ = (
        (
            split_pairs | "KeyRecordsByFile" >> beam.Map(dataset_files.keyed_pair, num_shards=num_shards),
            rejected | "KeyRejectsByFile" >> beam.Map(dataset_files.keyed_rejection, num_shards=num_shards),
            facts | "ShareFacts" >> transforms.share_with(dataset_files.file_keys(num_shards), transforms.FACTS),
            *tallies,
        )
        | "AllFiles" >> beam.Flatten()
        | "WriteDatasetFiles" >> dataset_files.WriteDatasetFiles(staging, num_shards)
    )


def _facts_without_rare_characters(group: tuple[None, list[Any]], min_count: int) -> dict[str, Any]:
    shared, _ = transforms.without_broadcasts(group[1])
    return transforms.without_rare_characters(shared[transforms.FACTS], shared[transforms.COUNTS], min_count)


def _read_summary(staging: str) -> dict[str, Any]:
    """The pipeline's own tallies; their absence means the runner skipped the step that writes them."""
    path = FileSystems.join(staging, _SUMMARY_NAME)
    if not FileSystems.exists(path):
        raise S2SError("the runner finished without writing the prepare summary: it skipped steps of the pipeline; nothing was published")
    return json.loads(_read_text(path))


def _check_rows_written(staging: str, summary: dict[str, Any]) -> None:
    """Counts the records and rejects in the written shards against the pipeline's tallies.

    Raises:
        S2SError: a split or the rejects file holds other than what the pipeline counted; nothing is published.
    """
    from s2s.pipelines.row_counts import count_lines, count_tfrecords

    for split in SPLITS:
        written = count_tfrecords(FileSystems.join(staging, record_pattern(split)))
        expected = summary["split_sizes"].get(split, 0)
        if written != expected:
            raise S2SError(f"prepare wrote {written} {split} records for {expected} {split} pairs: the runner lost or repeated rows")
    rejects = count_lines(FileSystems.join(staging, REJECTS_PATTERN))
    if rejects != sum(summary["rejected"].values()):
        raise S2SError(
            f"prepare wrote {rejects} rejects for {sum(summary['rejected'].values())} rejected lines: the runner lost or repeated rows"
        )
    logger.info("wrote %s records and %d rejects, as counted", "/".join(str(summary["split_sizes"].get(s, 0)) for s in SPLITS), rejects)


def _ensure_writable(output_dir: str) -> None:
    probe = FileSystems.join(output_dir, f".write-probe-{uuid.uuid4().hex[:8]}")
    try:
        if FileSystems.get_scheme(output_dir) is None:
            os.makedirs(output_dir, exist_ok=True)
        with FileSystems.create(probe) as stream:
            stream.write(b"")
        FileSystems.delete([probe])
    except Exception as error:  # OSError locally, BeamIOError remotely
        raise S2SError(f"cannot write to output directory {output_dir}: {first_line(error)}") from None


def _manifest(
    input_files: list[dict[str, Any]], summary: dict[str, Any], spec: DatasetSpec, config: PrepareConfig, options: Any, started: float
) -> dict[str, Any]:
    rejected = {reason: summary["rejected"].get(reason, 0) for reason in cleaning.REJECTION_REASONS}
    pairs_kept = sum(spec.split_sizes.values())
    if summary["lines_read"] != pairs_kept + sum(rejected.values()):
        raise S2SError(
            f"line accounting does not balance: {summary['lines_read']} read, {pairs_kept} kept, "
            f"{sum(rejected.values())} rejected; this is a bug in s2s, please report it"
        )
    return {
        "s2s_version": s2s.__version__,
        "created_unix": round(started),
        "elapsed_seconds": round(time.time() - started, 3),
        "inputs": input_files,
        "lines_read": summary["lines_read"],
        "pairs_kept": pairs_kept,
        "rejected": rejected,
        "rejection_reasons": dict(cleaning.REJECTION_REASONS),
        "split_sizes": spec.split_sizes,
        "max_source_length": spec.max_source_length,
        "max_target_length": spec.max_target_length,
        "source_vocabulary_size": len(spec.source_vocabulary),
        "target_vocabulary_size": len(spec.target_vocabulary),
        # occurrences of characters rarer than min_char_count, left out of the vocabulary and encoded as <unk>
        "unknown_characters": summary["facts"].get("unknown_characters", {"source": 0, "target": 0}),
        "config": dataclasses.asdict(config),
        "pipeline_options": options.get_all_options(drop_default=True),
        "outputs": {
            "spec": SPEC_FILE,
            "records": {split: record_pattern(split) for split in (TRAIN, VALIDATION, TEST)},
            "rejects": REJECTS_PATTERN,
        },
    }


_DATASET_FILES = [
    *(record_pattern(split) for split in SPLITS),
    REJECTS_PATTERN,
    SPEC_FILE,
    MANIFEST_FILE,
]
_DATASET_NAMES = [  # what an output folder may hold: a dataset, and what a killed run leaves in it
    *_DATASET_FILES,
    ".staging-*",
    ".*.tmp",
    ".write-probe-*",
]


def _check_dataset_folder(target: Path) -> None:
    """Refuses a local output folder holding anything but an earlier dataset: publishing replaces the folder whole."""
    if not target.is_dir():
        return
    foreign = sorted(path.name for path in target.iterdir() if not any(fnmatch.fnmatch(path.name, name) for name in _DATASET_NAMES))
    if foreign:
        raise S2SError(
            f"output directory {target} holds {foreign[0]}, which is not part of an s2s dataset: "
            "choose an empty directory or an earlier s2s prepare output (it is replaced whole)"
        )


def _remove_leftovers(target: Path) -> None:
    """Deletes what a killed run left: staging and old folders beside the output, staging folders and temp files in it."""
    leftovers = [*target.parent.glob(f".{target.name}.staging-*"), *target.parent.glob(f".{target.name}.old-*")]
    if target.is_dir():
        leftovers += [*target.glob(".staging-*"), *target.glob(".*.tmp")]
    for path in leftovers:
        logger.info("removing %s, left by a run that was killed", path)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _publish(staging: str, output_dir: str, spec: DatasetSpec, manifest: dict[str, Any]) -> None:
    """Makes the staged dataset the one at `output_dir`: whole, or not at all.

    Locally, spec.json and manifest.json are written into the staging folder,
    which then replaces `output_dir` in one atomic exchange: a run killed at
    any moment leaves the old dataset or the new one. On a remote filesystem,
    where folders cannot be renamed in one step, the old files go first,
    manifest.json among them, so an interrupted publish reads as incomplete.
    """
    if FileSystems.get_scheme(output_dir) is None:
        staged = Path(staging)
        (staged / _SUMMARY_NAME).unlink(missing_ok=True)
        write_json(staged / SPEC_FILE, spec.to_dict())
        write_json(staged / MANIFEST_FILE, manifest)
        replace_directory(staged, Path(output_dir))
        return
    stale = [
        metadata.path
        for result in FileSystems.match([FileSystems.join(output_dir, pattern) for pattern in _DATASET_FILES])
        for metadata in result.metadata_list
    ]
    manifests = [path for path in stale if path.endswith("/" + MANIFEST_FILE)]
    if manifests:  # alone and first: from here until the new one is written, the dataset reads as incomplete
        FileSystems.delete(manifests)
    if len(stale) > len(manifests):
        FileSystems.delete([path for path in stale if path not in manifests])
    staged = [metadata.path for metadata in FileSystems.match([FileSystems.join(staging, "*")])[0].metadata_list]
    staged = [path for path in staged if not path.endswith(_SUMMARY_NAME)]
    FileSystems.rename(staged, [FileSystems.join(output_dir, path.rsplit("/", 1)[-1]) for path in staged])
    write_json(FileSystems.join(output_dir, SPEC_FILE), spec.to_dict())
    write_json(FileSystems.join(output_dir, MANIFEST_FILE), manifest)


def _read_text(path: str) -> str:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
        return stream.read().decode("utf-8")


def _delete_tree(path: str) -> None:
    try:
        if FileSystems.exists(path):
            FileSystems.delete([path])
    except Exception as error:  # a leftover staging folder is untidy, not fatal
        logger.warning("could not remove staging folder %s: %s", path, error)
