"""`TranslationResult`: a source's n-best translations with their scores, as CTranslate2 returns them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TranslationResult:
    """The best translations of one source, best first, and the score of each.

    A score is the log-probability of the translation's characters and its
    end token, divided by its length (end token included) to the power
    `length_penalty`: higher is better, 0 is certain. An empty source has one
    hypothesis, the empty string, scored 0.
    """

    hypotheses: list[str]
    scores: list[float]

    def __len__(self) -> int:
        return len(self.hypotheses)


def joined(pieces: list[TranslationResult]) -> TranslationResult:
    """The result of a long line split into pieces: the k-th hypotheses of the pieces joined, scored by their mean.

    A piece with fewer hypotheses (an empty piece has one) lends its last to the ranks it lacks.
    """
    ranks = max(len(piece) for piece in pieces)
    hypotheses, scores = [], []
    for rank in range(ranks):
        chosen = [(piece.hypotheses[min(rank, len(piece) - 1)], piece.scores[min(rank, len(piece) - 1)]) for piece in pieces]
        hypotheses.append(" ".join(text for text, _ in chosen if text))
        scores.append(sum(score for _, score in chosen) / len(chosen))
    return TranslationResult(hypotheses, scores)
