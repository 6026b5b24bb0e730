"""What `s2s run` prints when the chain ends: each stage's outcome, the evaluation and a few translations."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

from s2s.app.chain.runner import RUN_MANIFEST
from s2s.app.chain.stages import SOURCES_FILE, STAGE_FOLDERS, SUMMARY_FILE, TRANSLATIONS_FILE
from s2s.files import read_json

SAMPLES = 5


def print_run_report(manifest: dict[str, Any], run_dir: str | Path) -> None:
    run_dir = Path(run_dir)
    for stage, outcome in manifest["this_run"].items():
        record = manifest["stages"][stage]
        when = f"in {record['seconds']:.1f} s" if outcome == "ran" else f"(unchanged since {record['finished_at']})"
        print(f"{stage:<10} {outcome:<8} {STAGE_FOLDERS[stage] + '/':<13} {when}")
    evaluation = manifest["stages"].get("evaluate", {}).get("figures")
    if evaluation:
        print(
            f"\nevaluation on the {evaluation['split']} split ({evaluation['sources']} sources, greedy): BLEU {evaluation['bleu']}, "
            f"chrF {evaluation['chrf']}, exact match {evaluation['exact_match']:.2%}, CER {evaluation['cer']:.4f}"
        )
    translation = run_dir / STAGE_FOLDERS["translate"]
    if (translation / SOURCES_FILE).exists() and (translation / TRANSLATIONS_FILE).exists():
        print("\nsample translations (test sources nobody trained on):")
        with (
            open(translation / SOURCES_FILE, encoding="utf-8") as sources,
            open(translation / TRANSLATIONS_FILE, encoding="utf-8") as targets,
        ):
            for source, target in islice(zip(sources, targets, strict=False), SAMPLES):
                print(f"  {source.rstrip()}  ->  {target.rstrip()}")
    summary = read_json(translation / SUMMARY_FILE) if (translation / SUMMARY_FILE).exists() else None
    if summary:
        print(f"\ntranslated {summary['lines']} lines on {summary['device']} at {summary['sentences_per_second']} sentences/s")
    print(f"\nrun manifest: {run_dir / RUN_MANIFEST}; ONNX model: {run_dir / STAGE_FOLDERS['export']}")
