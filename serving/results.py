"""What translation and scoring return, as CTranslate2 returns it: `TranslationResult` and `ScoringResult`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TranslationResult:
    """The best translations of one source, best first, and the score of each.

    A score is the log-probability of the translation's characters and its
    end token, divided by its length (end token included) to the power
    `length_penalty`: higher is better, 0 is certain. An empty source has one
    hypothesis, the empty string, scored 0.

    `attention` (with `return_attention`): per hypothesis, the decoder's
    attention weights, one row per output character over the source's
    characters (as the model saw them: normalised, and reversed for a model
    trained on reversed sources). `cut`: per hypothesis, whether it reached
    the output limit without the end token.
    """

    hypotheses: list[str]
    scores: list[float]
    attention: list[np.ndarray] | None = None
    cut: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.hypotheses)


@dataclass(frozen=True)
class ScoringResult:
    """How likely the model finds one given target: its tokens (characters, then `</s>`), their log-probabilities and the score."""

    tokens: list[str]
    log_probs: list[float]
    score: float


def joined(pieces: list[TranslationResult]) -> TranslationResult:
    """The result of a long line split into pieces: the k-th hypotheses of the pieces joined, scored by their mean.

    A piece with fewer hypotheses (an empty piece has one) lends its last to the ranks it lacks. A hypothesis is cut
    when any of its pieces is; attention, which each piece has over its own source, is not joined.
    """
    ranks = max(len(piece) for piece in pieces)
    hypotheses, scores, cut = [], [], []
    for rank in range(ranks):
        chosen = [min(rank, len(piece) - 1) for piece in pieces]
        hypotheses.append(" ".join(text for piece, index in zip(pieces, chosen, strict=True) if (text := piece.hypotheses[index])))
        scores.append(sum(piece.scores[index] for piece, index in zip(pieces, chosen, strict=True)) / len(pieces))
        cut.append(any(piece.cut[index] for piece, index in zip(pieces, chosen, strict=True) if piece.cut))
    return TranslationResult(hypotheses, scores, None, cut)
