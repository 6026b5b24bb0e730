"""`translate_corpus`: the one call behind `s2s translate` and the chain's translate stage.

Both read a `TranslateConfig`, open the model the same way, log the resolved
settings and report progress the same way, so the command line and `s2s run`
cannot drift apart in how they translate.
"""

from __future__ import annotations

import logging
from pathlib import Path

from s2s.serving.config import TranslateConfig
from s2s.serving.files import input_size
from s2s.serving.progress import Progress
from s2s.serving.stats import TranslationStats
from s2s.serving.translator import Translator

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
        S2SError: a bad setting, a missing or damaged model, or any problem `Translator.translate_file` reports.
    """
    translator = Translator.from_config(model_dir, config)
    progress = Progress(total_bytes=input_size(source_path))
    try:
        return translator.translate_file(
            source_path,
            output_path,
            max_batch_size=config.batch_size,  # 0 (automatic) is resolved by translate_file, as for every caller
            input_format=input_format,
            column=column,
            field=field,
            summary_path=summary_path,
            progress=progress,
            **config.decoding().to_dict(),
        )
    finally:
        progress.close()
