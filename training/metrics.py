"""Translation quality: BLEU and chrF (sacrebleu), exact match and character error rate.

A source may have several reference translations (Tatoeba has many); every
metric here scores a hypothesis against all of them: sacrebleu's multi-
reference BLEU and chrF, exact match with any reference, and the character
error rate against the closest reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LENGTH_BUCKETS = ((1, 10), (11, 20), (21, 40), (41, 80), (81, None))  # source characters, inclusive


def edit_distance(first: str, second: str) -> int:
    """Levenshtein distance in characters (insertions, deletions, substitutions)."""
    if len(first) < len(second):
        first, second = second, first
    previous = list(range(len(second) + 1))
    for row, char in enumerate(first, 1):
        current = [row]
        for column, other in enumerate(second, 1):
            current.append(min(previous[column] + 1, current[column - 1] + 1, previous[column - 1] + (char != other)))
        previous = current
    return previous[-1]


def score(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Corpus metrics of `hypotheses[i]` against the references `references[i]` (one or more each).

    Returns:
        {"sentences", "bleu", "chrf", "exact_match" (fraction), "cer" (edits / reference characters)}.
    """
    import sacrebleu

    if not hypotheses:
        return {"sentences": 0, "bleu": None, "chrf": None, "exact_match": None, "cer": None}
    most = max(len(refs) for refs in references)
    streams = [[refs[index] if index < len(refs) else None for refs in references] for index in range(most)]
    exact = sum(hypothesis in refs for hypothesis, refs in zip(hypotheses, references, strict=True))
    edits = characters = 0
    for hypothesis, refs in zip(hypotheses, references, strict=True):
        distance, reference = min((edit_distance(hypothesis, ref), ref) for ref in refs)
        edits += distance
        characters += max(len(reference), 1)
    return {
        "sentences": len(hypotheses),
        "bleu": round(sacrebleu.corpus_bleu(list(hypotheses), streams).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(list(hypotheses), streams).score, 2),
        "exact_match": round(exact / len(hypotheses), 4),
        "cer": round(edits / characters, 4),
    }


def bucket_name(low: int, high: int | None) -> str:
    return f"{low}-{high}" if high is not None else f"{low}+"


def score_by_length(sources: Sequence[str], hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, dict[str, Any]]:
    """`score` for each source length bucket (characters), empty buckets left out."""
    buckets = {}
    for low, high in LENGTH_BUCKETS:
        members = [index for index, source in enumerate(sources) if len(source) >= low and (high is None or len(source) <= high)]
        if members:
            buckets[bucket_name(low, high)] = score([hypotheses[i] for i in members], [references[i] for i in members])
    return buckets
