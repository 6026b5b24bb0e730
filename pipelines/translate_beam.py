"""`s2s translate-beam`: bulk translation as an Apache Beam pipeline, with RunInference.

The same Translator as `s2s translate`, wrapped in a RunInference model
handler: each worker loads the ONNX model once and translates batches of
lines. The runner comes from the pipeline options, so the job spreads over a
Dataflow, Flink or Spark cluster as it does over local processes.

Output: sharded TSV files `PREFIX-SSSSS-of-NNNNN.tsv` of
`path<TAB>line_number<TAB>translation`, one row per input line (empty lines
included). A distributed job writes rows in no particular order; sort by path
and line number to line them up with the input.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference

from s2s.config import log_config
from s2s.errors import S2SError
from s2s.pipelines.options import beam_options, run_pipeline
from s2s.pipelines.prepare import resolve_inputs
from s2s.pipelines.transforms import ReadNumberedLines
from s2s.serving.config import TranslateConfig, resolve_batch_size

logger = logging.getLogger(__name__)


class TranslatorModelHandler(ModelHandler):
    """RunInference handler: loads `s2s.serving.Translator` once per worker and translates batches of source strings.

    Args:
        config: the translate settings; its batch size must already be resolved (not 0), as Beam batches by it.
    """

    def __init__(self, onnx_dir: str, config: TranslateConfig):
        super().__init__()
        self.onnx_dir, self.config = onnx_dir, config

    def load_model(self) -> Any:
        from s2s.serving.translator import Translator

        return Translator.from_config(self.onnx_dir, self.config)

    def run_inference(self, batch: Sequence[str], model: Any, inference_args: dict[str, Any] | None = None) -> Iterable[str]:
        decoding = self.config.decoding()
        return model.translate_batch(
            list(batch),
            max_batch_size=self.config.batch_size,
            max_output_length=decoding.max_output_length,
            beam_size=decoding.beam_size,
            length_penalty=decoding.length_penalty,
            long_lines=decoding.long_lines,
        )

    def batch_elements_kwargs(self) -> dict[str, int]:
        return {"min_batch_size": 1, "max_batch_size": self.config.batch_size}


def _keyed_text(line: tuple[str, int, bytes]) -> tuple[tuple[str, int], str]:
    path, line_number, raw = line
    return (path, line_number), raw.rstrip(b"\r").decode("utf-8", errors="replace")


def _row(element: tuple[tuple[str, int], str]) -> str:
    (path, line_number), translation = element
    return f"{path}\t{line_number}\t{translation}"


def translate_beam(
    model: str,
    inputs: list[str],
    output_prefix: str,
    config: TranslateConfig | None = None,
    *,
    pipeline_args: list[str] | None = None,
) -> None:
    """Runs the translation pipeline; returns when it has finished.

    Raises:
        S2SError: an input is missing or empty, an option is unknown or a decoding value is out of range.
    """
    from s2s.serving.translator import Translator

    config = config or TranslateConfig()
    options = beam_options(list(pipeline_args or []))
    translator = Translator.from_dir(model, device="cpu" if config.device == "cpu" else "auto")  # fail fast on a bad model
    config.decoding().check(len(translator.info.target_vocabulary))
    # Resolved here, once, for the device the workers will use: Beam batches by it before any worker opens the model.
    device = translator.device if config.device == "auto" else config.device  # auto: as this machine's onnxruntime finds it
    config = dataclasses.replace(config, batch_size=resolve_batch_size(config.batch_size, device))
    log_config(logger, "translate-beam", config)
    files = [entry["path"] for entry in resolve_inputs(inputs)]
    handler = KeyedModelHandler(TranslatorModelHandler(model, config))
    with run_pipeline(options, f"the translate-beam pipeline over {', '.join(files)}") as pipeline:
        _ = (
            pipeline
            | "ReadNumberedLines" >> ReadNumberedLines(files)
            | "KeyByLine" >> beam.Map(_keyed_text)
            | "Translate" >> RunInference(handler)
            | "ToTsv" >> beam.Map(_row)
            | "Write" >> beam.io.WriteToText(output_prefix, file_name_suffix=".tsv")
        )
    check_row_count(files, output_prefix)


def check_row_count(files: list[str], output_prefix: str) -> int:
    """Counts the rows of the written shards against the input lines; returns the count.

    Checked after the run, whatever the runner: a runner that loses rows (Beam's Dask runner has written empty
    text files) must not end with exit status 0.

    Raises:
        S2SError: fewer or more rows than input lines.
    """
    from apache_beam.io.filesystems import FileSystems

    from s2s.pipelines.transforms import numbered_lines

    lines_read = 0
    for path in files:
        with FileSystems.open(path) as stream:  # decompresses .gz by its extension, as the pipeline did
            lines_read += sum(1 for _ in numbered_lines(stream))
    rows = 0
    for metadata in FileSystems.match([f"{output_prefix}-*-of-*.tsv"])[0].metadata_list:
        with FileSystems.open(metadata.path) as stream:
            rows += sum(1 for _ in numbered_lines(stream))
    if rows != lines_read:
        raise S2SError(
            f"translate-beam wrote {rows} rows for {lines_read} input lines under {output_prefix}: the runner lost or repeated "
            "rows; the output is incomplete"
        )
    logger.info("wrote %d rows, one per input line", rows)
    return rows
