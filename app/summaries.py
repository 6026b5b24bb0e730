"""What each stage reports to a person, typed: one printer per stage, shared by its subcommand and by `s2s run`'s report.

Each stage returns (and writes) a JSON-ready dict: a manifest, a training
summary, an evaluation or export report, translation counts. These classes
read the figures a person needs from those dicts once, by name, so the
command line and the chain's closing report print the same figures the
same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from s2s.serving.stats import TranslationStats


@dataclass(frozen=True)
class Scores:
    """Corpus scores of translations against every reference: BLEU and chrF (0-100), exact match (0-1), CER."""

    bleu: float
    chrf: float
    exact_match: float
    cer: float

    @classmethod
    def of(cls, figures: dict[str, Any]) -> Scores:
        return cls(figures["bleu"], figures["chrf"], figures["exact_match"], figures["cer"])

    def line(self) -> str:
        return f"BLEU {self.bleu}, chrF {self.chrf}, exact match {self.exact_match:.2%}, CER {self.cer:.4f}"


@dataclass(frozen=True)
class PrepareSummary:
    """`s2s prepare`'s accounting: lines read, pairs kept per split, lines rejected per reason, vocabularies and lengths."""

    lines_read: int
    inputs: int
    seconds: float
    split_sizes: dict[str, int]
    rejected: dict[str, int]
    vocabulary_sizes: tuple[int, int]
    longest: tuple[int, int]

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> PrepareSummary:
        return cls(
            manifest["lines_read"],
            len(manifest["inputs"]),
            manifest["elapsed_seconds"],
            manifest["split_sizes"],
            manifest["rejected"],
            (manifest["source_vocabulary_size"], manifest["target_vocabulary_size"]),
            (manifest["max_source_length"], manifest["max_target_length"]),
        )

    @property
    def pairs_kept(self) -> int:
        return sum(self.split_sizes.values())

    def lines(self) -> list[str]:
        reasons = ", ".join(f"{reason} {count}" for reason, count in self.rejected.items() if count) or "none"
        return [
            f"read {self.lines_read} lines from {self.inputs} file(s) in {self.seconds:.1f} s",
            f"kept {self.pairs_kept} pairs: " + ", ".join(f"{split} {size}" for split, size in self.split_sizes.items()),
            f"rejected {sum(self.rejected.values())} lines: {reasons}",
            f"vocabularies: source {self.vocabulary_sizes[0]}, target {self.vocabulary_sizes[1]}; "
            f"longest source {self.longest[0]}, target {self.longest[1]} characters",
        ]


@dataclass(frozen=True)
class TrainSummary:
    """How training ended: epochs run, why it stopped, and the best epoch's validation figures."""

    epochs: int
    stop_reason: str
    best_epoch: int
    best_val_loss: float
    best_val_accuracy: float
    seconds: float | None = None

    @classmethod
    def of(cls, summary: dict[str, Any]) -> TrainSummary:
        return cls(
            summary["epochs"], summary["stop_reason"], summary["best_epoch"], summary["best_val_loss"], summary["best_val_accuracy"], summary.get("seconds")
        )

    def lines(self) -> list[str]:
        took = f" in {self.seconds:.0f} s" if self.seconds is not None else ""
        return [
            f"trained {self.epochs} epochs{took} ({self.stop_reason})",
            f"best epoch {self.best_epoch}: validation loss {self.best_val_loss:.4f}, accuracy {self.best_val_accuracy:.4f}",
        ]


@dataclass(frozen=True)
class EvaluationSummary:
    """A split scored greedily: how many distinct sources, and their scores."""

    split: str
    sources: int
    scores: Scores

    @classmethod
    def of(cls, figures: dict[str, Any]) -> EvaluationSummary:
        """From an evaluation report (scores under "overall") or the chain's evaluate figures (scores at the top)."""
        return cls(figures["split"], figures["sources"], Scores.of(figures.get("overall", figures)))

    def line(self) -> str:
        return f"evaluation on the {self.split} split ({self.sources} sources, greedy): {self.scores.line()}"


@dataclass(frozen=True)
class ExportSummary:
    """A verified export: its model id, where it went, how closely it matched Keras, and its files."""

    model_id: str
    seconds: float
    opset: int
    verification_sources: int
    max_difference: float
    step_loop: tuple[int, int]  # greedy strings identical, compared
    translator: tuple[int, int]
    files: dict[str, int]

    @classmethod
    def of(cls, report: dict[str, Any]) -> ExportSummary:
        loop, whole = report["greedy_step_loop"], report["greedy_translator"]
        return cls(
            report["model_id"],
            report["seconds"],
            report["opset"],
            report["verification_sources"],
            max(report["parity_max_abs_difference"].values()),
            (loop["identical"], loop["compared"]),
            (whole["identical"], whole["compared"]),
            report["files"],
        )

    def lines(self, output: str) -> list[str]:
        return [
            f"exported model {self.model_id[:16]} to {output} in {self.seconds} s (opset {self.opset})",
            f"verified on {self.verification_sources} sources: max abs difference {self.max_difference:.1e}; greedy strings identical "
            f"{self.step_loop[0]}/{self.step_loop[1]} (step loop), {self.translator[0]}/{self.translator[1]} (translator.onnx)",
            *(f"  {name}  {size:,} bytes" for name, size in sorted(self.files.items())),
        ]


def translation_line(stats: TranslationStats | dict[str, Any]) -> str:
    """One line of a translation run's counts, from its `TranslationStats` or its summary file."""
    summary = stats.to_dict() if isinstance(stats, TranslationStats) else stats
    rate = summary["sentences_per_second"]
    return (
        f"translated {summary['lines']} lines on {summary['device']} in {summary['seconds']:.1f} s ({rate} sentences/s); "
        f"unknown characters {summary['unknown_characters']}, truncated lines {summary['truncated_lines']}, "
        f"cut translations {summary['cut_translations']}, invalid UTF-8 lines {summary['invalid_utf8_lines']}"
    )
