"""What `s2s run` prints when the chain ends: each stage's outcome, the evaluation and a few translations."""

from __future__ import annotations

from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from typing import Any

from s2s.app.chain.runner import RUN_MANIFEST
from s2s.app.chain.stages import COMPARED_FILE, SOURCES_FILE, STAGE_FOLDERS, SUMMARY_FILE, TRANSLATIONS_FILE
from s2s.app.summaries import EvaluationSummary, TrainSummary, translation_line
from s2s.files import read_json

SAMPLES = 5


def print_run_report(manifest: dict[str, Any], run_dir: str | Path) -> None:
    run_dir = Path(run_dir)
    for stage, outcome in manifest["this_run"].items():
        record = manifest["stages"][stage]
        when = f"in {record['seconds']:.1f} s" if outcome == "ran" else f"(unchanged since {record['finished_at']})"
        print(f"{stage:<10} {outcome:<8} {STAGE_FOLDERS[stage] + '/':<13} {when}")
    training = manifest["stages"].get("train", {}).get("figures")
    if training:
        print("\n" + "\n".join(TrainSummary.of(training).lines()))
    evaluation = manifest["stages"].get("evaluate", {}).get("figures")
    if evaluation:
        print(f"\n{EvaluationSummary.of(evaluation).line()}")
    translation = run_dir / STAGE_FOLDERS["translate"]
    figures = manifest["stages"].get("translate", {}).get("figures") or {}
    compared = figures.get("compared")
    if compared and figures.get("test_scores"):
        _print_comparison(figures["test_scores"], compared, figures.get("decoding", "greedy"))
    if (translation / SOURCES_FILE).exists() and (translation / TRANSLATIONS_FILE).exists():
        _print_samples(translation, Path(compared["model"]).name if compared else None)
    summary = read_json(translation / SUMMARY_FILE) if (translation / SUMMARY_FILE).exists() else None
    if summary:
        print(f"\n{translation_line(summary)}")
    print(f"\nrun manifest: {run_dir / RUN_MANIFEST}; ONNX model: {run_dir / STAGE_FOLDERS['export']}")


def _print_comparison(ours: dict[str, Any], compared: dict[str, Any], decoding: str) -> None:
    """This run's export beside another model on the same test sources, scored alike, so a short run is seen for what it is."""
    name = Path(compared["model"]).name
    width = max(len(name), len("this run"))
    print(f"\nthe same {ours['sentences']} test sources translated by this run's model and by {compared['model']} ({decoding}):")
    print(f"  {'model':<{width}}  {'chrF':>6}  {'BLEU':>6}  {'exact match':>11}")
    for label, scores in (("this run", ours), (name, compared)):
        print(f"  {label:<{width}}  {scores['chrf']:>6.2f}  {scores['bleu']:>6.2f}  {scores['exact_match']:>11.2%}")


def _print_samples(translation: Path, compared_name: str | None) -> None:
    heading = f"this run's model | {compared_name}" if compared_name else "this run's model"
    print(f"\nsample translations (test sources nobody trained on), {heading}:")
    paths = [translation / SOURCES_FILE, translation / TRANSLATIONS_FILE]
    if compared_name and (translation / COMPARED_FILE).exists():
        paths.append(translation / COMPARED_FILE)
    with ExitStack() as stack:
        streams = [stack.enter_context(open(path, encoding="utf-8")) for path in paths]
        for source, *targets in islice(zip(*streams, strict=False), SAMPLES):
            print(f"  {source.rstrip()}  ->  {' | '.join(target.rstrip() for target in targets)}")
