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

from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference

from s2s.errors import S2SError
from s2s.pipelines.options import beam_options, run_pipeline
from s2s.pipelines.prepare import resolve_inputs
from s2s.pipelines.transforms import ReadNumberedLines


class TranslatorModelHandler(ModelHandler):
    """RunInference handler: loads `serving.Translator` once per worker and translates batches of source strings."""

    def __init__(
        self, onnx_dir: str, *, device: str = "cpu", batch_size: int = 256, max_output_length: int | None = None, beam_size: int = 1
    ):
        super().__init__()
        self.onnx_dir, self.device = onnx_dir, device
        self.batch_size, self.max_output_length, self.beam_size = batch_size, max_output_length, beam_size

    def load_model(self) -> Any:
        from s2s.serving.translator import Translator

        return Translator(self.onnx_dir, device=self.device)

    def run_inference(self, batch: Sequence[str], model: Any, inference_args: dict[str, Any] | None = None) -> Iterable[str]:
        return model.translate_batch(
            list(batch), max_batch_size=self.batch_size, max_output_length=self.max_output_length, beam_size=self.beam_size
        )

    def batch_elements_kwargs(self) -> dict[str, int]:
        return {"min_batch_size": 1, "max_batch_size": self.batch_size}


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
    *,
    device: str = "cpu",
    batch_size: int = 0,
    max_output_length: int | None = None,
    beam_size: int = 1,
    pipeline_args: list[str] | None = None,
) -> None:
    """Runs the translation pipeline; returns when it has finished.

    Raises:
        S2SError: an input is missing or empty, an option is unknown or a decoding value is out of range.
    """
    from s2s.serving.options import DecodingOptions
    from s2s.serving.translator import AUTO_BATCH_SIZE, Translator

    if batch_size < 0:
        raise S2SError(f"--batch-size must be 0 (automatic) or more, got {batch_size}")
    batch_size = batch_size or AUTO_BATCH_SIZE[device]
    options = beam_options(list(pipeline_args or []))
    translator = Translator(model, device="cpu")  # fail fast, in one line, on a missing or damaged model
    DecodingOptions(max_output_length, beam_size).check(len(translator.info.target_vocabulary))
    files = [entry["path"] for entry in resolve_inputs(inputs)]
    handler = KeyedModelHandler(
        TranslatorModelHandler(model, device=device, batch_size=batch_size, max_output_length=max_output_length, beam_size=beam_size)
    )
    with run_pipeline(options, f"the translate-beam pipeline over {', '.join(files)}") as pipeline:
        _ = (
            pipeline
            | "ReadNumberedLines" >> ReadNumberedLines(files)
            | "KeyByLine" >> beam.Map(_keyed_text)
            | "Translate" >> RunInference(handler)
            | "ToTsv" >> beam.Map(_row)
            | "Write" >> beam.io.WriteToText(output_prefix, file_name_suffix=".tsv")
        )
