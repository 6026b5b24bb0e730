"""`DecodingOptions`: how to decode, checked once against the model before any work.

`s2s translate`, `s2s translate-beam`, the chain and library callers all go
through `DecodingOptions.check`, so a value that would decode nothing
(`max_output_length` 0), run out of memory (a beam of 100,000 hypotheses per
sentence) or reward ever longer output (a negative length penalty) is one
clear error, never an empty result with exit status 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from s2s.errors import ConfigError
from s2s.serving.long_lines import LONG_LINE_POLICIES, SPLIT

# The most characters one translation (of one source, or one piece of a split long line) may take, whatever a flag or a
# model's metadata asks: a model that never emits its end token stops here instead of running for hours. Sources are
# split at the model's max_source_length, so a real translation is far shorter.
MAX_OUTPUT_LENGTH_CEILING = 4096


@dataclass(frozen=True)
class DecodingOptions:
    """Decoding settings of one translation run.

    Args:
        max_output_length: most characters per translation; None means the model's max_target_length.
        beam_size: 1 for greedy decoding, K for beam search over K hypotheses, at most the target vocabulary's size.
        length_penalty: beam scores are log-probability / length ** length_penalty; 0 or more.
        long_lines: a source over the model's max_source_length is split (at sentence ends, then spaces; the
            translations are joined), truncated, or an error; see `s2s.serving.long_lines`.
    """

    max_output_length: int | None = None
    beam_size: int = 1
    length_penalty: float = 1.0
    long_lines: str = SPLIT

    def check(self, target_vocab_size: int) -> None:
        """Raises S2SError naming the first value out of range for a model with this target vocabulary."""
        if self.max_output_length is not None and self.max_output_length < 1:
            raise ConfigError(f"max_output_length must be at least 1 (or None for the model's own), got {self.max_output_length}")
        if not 1 <= self.beam_size <= target_vocab_size:
            raise ConfigError(
                f"beam_size must be between 1 and the target vocabulary's {target_vocab_size} tokens "
                f"(a wider beam holds nothing more), got {self.beam_size}"
            )
        self.check_model_free()

    def check_model_free(self) -> None:
        """The checks that need no model: what `TranslateConfig.validate` can run before one is loaded."""
        if self.max_output_length is not None and self.max_output_length > MAX_OUTPUT_LENGTH_CEILING:
            raise ConfigError(
                f"max_output_length must be at most {MAX_OUTPUT_LENGTH_CEILING} characters, got {self.max_output_length} "
                "(long sources are split at the model's limit, so no piece needs more)"
            )
        if self.long_lines not in LONG_LINE_POLICIES:
            raise ConfigError(f"long_lines must be one of {', '.join(LONG_LINE_POLICIES)}, got {self.long_lines!r}")
        if not self.length_penalty >= 0:  # also refuses NaN
            raise ConfigError(f"length_penalty must be 0 or more (a negative one rewards ever longer output), got {self.length_penalty}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
