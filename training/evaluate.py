"""`s2s evaluate`: greedy-decode a split with the Keras models and score it, as JSON and Markdown.

Every distinct source of the split is translated once and scored against all
of its reference translations in that split. The report is written beside
the model as `eval-<split>.json` and `eval-<split>.md`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from s2s.config import log_config, validated
from s2s.errors import S2SError
from s2s.publish import atomic_open, write_json
from s2s.records import load_references
from s2s.spec import DatasetSpec
from s2s.training.config import EvaluateConfig
from s2s.training.metrics import score, score_by_length
from s2s.training.model_dir import ModelDir, report_name

logger = logging.getLogger(__name__)


def evaluate(
    model_dir: str | Path,
    data_dir: str | Path,
    config: EvaluateConfig | None = None,
    *,
    samples: int = 10,
    output_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Translates the configured split greedily and returns (and writes) the report.

    Args:
        config: split, batch size, limit and output length; default `EvaluateConfig()` (the whole test split).
        samples: sample translations included in the report.
        output_dir: where eval-SPLIT.json and .md go; default the model directory.

    Raises:
        S2SError: an unknown split, missing files, or data normalised with another scheme.
    """
    config = config or EvaluateConfig()
    validated(config)
    split, limit = config.split, config.limit
    model_dir, data_dir = Path(model_dir), Path(data_dir)
    decoder = ModelDir(model_dir).greedy_decoder()
    data_spec = DatasetSpec.load(data_dir)
    if data_spec.normalizer != decoder.spec.normalizer:
        raise S2SError(
            f"{data_dir} was cleaned with {data_spec.normalizer} but the model with {decoder.spec.normalizer}: re-prepare the data"
        )
    sources, references = load_references(data_dir, split, limit)
    if not sources:
        raise S2SError(f"the {split} split of {data_dir} is empty")
    log_config(logger, "evaluate", config)  # once the arguments are known good: a bad one is the only line printed
    logger.info("decoding %d distinct %s sources greedily", len(sources), split)
    started = time.perf_counter()
    hypotheses = decoder.translate(sources, batch_size=config.batch_size, max_output_length=config.max_output_length or None)
    seconds = time.perf_counter() - started
    report = {
        "model_dir": str(model_dir),
        "data_dir": str(data_dir),
        "split": split,
        "decoding": "greedy (Keras)",
        "sources": len(sources),
        "references": sum(len(refs) for refs in references),
        "seconds": round(seconds, 2),
        "sentences_per_second": round(len(sources) / seconds, 1),
        "overall": score(hypotheses, references),
        "by_source_length": score_by_length(sources, hypotheses, references),
        "samples": [
            {"source": source, "translation": hypothesis, "references": refs}
            for source, hypothesis, refs in list(zip(sources, hypotheses, references, strict=True))[:samples]
        ],
    }
    output_dir = Path(output_dir or model_dir)
    write_json(output_dir / report_name(split, "json"), report)
    with atomic_open(output_dir / report_name(split, "md")) as stream:
        stream.write(markdown_report(report))
    return report


def markdown_report(report: dict[str, Any]) -> str:
    """The report as Markdown: overall figures, figures by source length, sample translations."""
    columns = ("sentences", "bleu", "chrf", "exact_match", "cer")
    lines = [
        f"# Evaluation: {report['split']} split",
        "",
        f"Model `{report['model_dir']}`, data `{report['data_dir']}`, {report['decoding']} decoding: "
        f"{report['sources']} distinct sources, {report['references']} references, "
        f"{report['seconds']} s ({report['sentences_per_second']} sentences/s).",
        "",
        "| source length | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
        "| all | " + " | ".join(str(report["overall"][column]) for column in columns) + " |",
    ]
    for bucket, figures in report["by_source_length"].items():
        lines.append(f"| {bucket} | " + " | ".join(str(figures[column]) for column in columns) + " |")
    lines += [
        "",
        "BLEU and chrF: sacrebleu, against every reference of a source. exact_match: equal to any reference. "
        "cer: character edits to the closest reference per reference character.",
        "",
        "## Samples",
        "",
        "| source | translation | references |",
        "|---|---|---|",
    ]
    for sample in report["samples"]:
        cells = [sample["source"], sample["translation"], " / ".join(sample["references"])]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"
