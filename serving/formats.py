"""The line formats `s2s translate` reads and writes: text, TSV with every column kept, and JSON lines.

- `text`: the whole line is the source; the output line is its translation.
- `tsv`: column `column` (from 0) is the source; the output line is the
  input line with the translation appended as a new column (then its score,
  with `--scores`; with `--num-hypotheses N`, N translation columns, each
  followed by its score when asked). Ids and other columns survive, so the
  output joins back on them.
- `jsonl`: field `field` of each input object is the source; the output
  object is the input object with `translation` added, `cut` (whether the
  translation reached its length limit without ending), and `score`,
  `hypotheses` (the n-best, each `{"translation", "score"}`) and
  `attention` as asked.

Output line i always belongs to input line i. A line the format cannot read
(a TSV line without the column, a line that is not a JSON object with a
string at `field`) translates as empty and is counted; in JSON lines it is
written as `{"error": why, "input": the line}` in its place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from s2s.serving.stats import TranslationStats

if TYPE_CHECKING:
    from s2s.serving.file_job import FileJob
    from s2s.serving.windows import WindowTranslations

TEXT, TSV, JSONL = "text", "tsv", "jsonl"
FORMATS = (TEXT, TSV, JSONL)


@dataclass(frozen=True)
class Records:
    """What a window's lines hold besides their sources, kept for writing them back: TSV lines, or JSON objects and errors."""

    lines: list[str] | None = None  # tsv: each input line as text
    objects: list[dict[str, Any] | None] | None = None  # jsonl: each line's object, None where it could not be read
    problems: list[str | None] | None = None  # jsonl: why a line could not be read


def sources_of(texts: list[str], job: FileJob, stats: TranslationStats) -> tuple[list[str], Records | None]:
    """The source of each decoded input line, and what the writer needs of the lines; unreadable lines counted."""
    if job.input_format == TEXT:
        return texts, None
    if job.input_format == TSV:
        sources = []
        for text in texts:
            columns = text.split("\t")
            if job.column >= len(columns):
                stats.extra["missing_column_lines"] = stats.extra.get("missing_column_lines", 0) + 1
                sources.append("")
            else:
                sources.append(columns[job.column])
        return sources, Records(lines=texts)
    sources, objects, problems = [], [], []
    for text in texts:
        value, problem = _json_object(text, job.field)
        objects.append(value)
        problems.append(problem)
        sources.append(value[job.field] if value is not None else "")
        if problem is not None:
            stats.extra["malformed_lines"] = stats.extra.get("malformed_lines", 0) + 1
    return sources, Records(lines=texts, objects=objects, problems=problems)


def _json_object(text: str, field: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = json.loads(text)
    except ValueError as error:
        return None, f"not JSON ({error})"
    if not isinstance(value, dict):
        return None, f"a JSON {type(value).__name__}, not an object"
    if not isinstance(value.get(field), str):
        return None, f"no string field {field!r}"
    return value, None


def render(translated: WindowTranslations, records: Records | None, job: FileJob) -> bytes:
    """The output lines of one window, one per input line, as UTF-8 bytes ending in a newline."""
    options = job.options
    if job.input_format == TEXT:
        lines = translated.texts
    elif job.input_format == TSV:
        assert records is not None and records.lines is not None
        lines = [f"{line}\t{_tsv_fields(translated, index, options)}" for index, line in enumerate(records.lines)]
    else:
        assert records is not None and records.objects is not None and records.problems is not None
        lines = [
            json.dumps(_jsonl_object(translated, index, value, options), ensure_ascii=False)
            if value is not None
            else json.dumps({"error": problem, "input": _input_text(records, index)}, ensure_ascii=False)
            for index, (value, problem) in enumerate(zip(records.objects, records.problems, strict=True))
        ]
    if len(lines) != len(translated.texts):  # one output line per input line, or the run must not go on
        raise RuntimeError(f"a window of {len(translated.texts)} lines rendered {len(lines)}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _input_text(records: Records, index: int) -> str:
    return records.lines[index] if records.lines is not None else ""


def _tsv_fields(translated: WindowTranslations, index: int, options: Any) -> str:
    if translated.results is None:
        return _one_line(translated.texts[index])
    result = translated.results[index]
    fields = []
    for rank in range(options.num_hypotheses):
        position = min(rank, len(result) - 1)
        fields.append(_one_line(result.hypotheses[position]))
        if options.return_scores:
            fields.append(f"{result.scores[position]:.6f}")
    return "\t".join(fields)


def _jsonl_object(translated: WindowTranslations, index: int, value: dict[str, Any], options: Any) -> dict[str, Any]:
    output = {**value, "translation": translated.texts[index], "cut": bool(translated.cut[index])}
    if translated.results is None:
        return output
    result = translated.results[index]
    if options.return_scores:
        output["score"] = round(result.scores[0], 6)
    if options.num_hypotheses > 1:
        output["hypotheses"] = [
            {"translation": text, "score": round(score, 6)} for text, score in zip(result.hypotheses, result.scores, strict=True)
        ]
    if options.return_attention:
        output["attention"] = None if result.attention is None else result.attention[0].round(4).tolist()
    return output


def _one_line(text: str) -> str:
    """A translation as one TSV field: a tab or newline in it (never in the shipped vocabularies) becomes a space."""
    return text.replace("\t", " ").replace("\n", " ") if "\t" in text or "\n" in text else text
