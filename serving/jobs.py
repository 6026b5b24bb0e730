"""`translate_corpus`: the one call behind `s2s translate` and the chain's translate stage.

Both read a `TranslateConfig`, open the model the same way, log the resolved
settings and report progress the same way, so the command line and `s2s run`
cannot drift apart in how they translate. The config's `DecodingOptions`
travel whole, from the config to the engine.
"""

from __future__ import annotations

import logging
from pathlib import Path

from s2s.config import validated
from s2s.serving.config import TranslateConfig
from s2s.serving.engine import Engine
from s2s.serving.file_job import FileJob, resolve_window
from s2s.serving.inputs import input_size
from s2s.serving.progress import Progress
from s2s.serving.stats import TranslationStats
from s2s.serving.writer import write_translations

logger = logging.getLogger(__name__)


def translate_corpus(
    model_dir: str | Path,
    source_path: str,
    output_path: str,
    config: TranslateConfig,
    *,
    input_format: str = "text",
    column: int = 0,
    field: str = "source",
    summary_path: str | None = None,
) -> TranslationStats:
    """Opens the model as `config` says and translates `source_path` into `output_path` with a progress display.

    Raises:
        S2SError: a bad setting, a missing or damaged model, or any problem `write_translations` reports.
    """
    validated(config)
    engine = Engine.open(
        model_dir, config.device, precision=config.precision, inter_threads=config.inter_threads, intra_threads=config.intra_threads, verify=config.verify
    )
    batch_size = engine.batch_size(config.batch_size)  # 0 (automatic) is resolved for the device the model opened on
    job = FileJob(batch_size, resolve_window(config.window, batch_size), config.decoding(), input_format, column, field)
    progress = Progress(total_bytes=input_size(source_path))
    try:
        return write_translations(engine, source_path, output_path, job, summary_path=summary_path, progress=progress)
    finally:
        progress.close()
