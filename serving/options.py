"""`DecodingOptions`: how to decode, checked once against the model before any work.

`s2s translate`, `s2s translate-beam`, the chain and library callers
(`translate_batch`, `translate_iterable`, `translate_file`) all build one
`DecodingOptions` and go through `DecodingOptions.validate`, so a value that
would decode nothing (`max_output_length` 0), run out of memory (a beam of
100,000 hypotheses per sentence) or reward ever longer output (a negative
length penalty) is one clear error, never an empty result with exit status 0.

The names follow CTranslate2's `translate_batch` where it has one
(`max_decoding_length` and `min_decoding_length` are accepted for
`max_output_length` and `min_output_length`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from s2s import output_length
from s2s.config import validate_choice
from s2s.errors import ConfigError
from s2s.serving.long_lines import LONG_LINE_POLICIES, SPLIT

MAX_OUTPUT_LENGTH_CEILING = output_length.CEILING  # whatever a flag or a model's metadata asks
BATCH_TYPES = ("examples", "tokens")
_ALIASES = {"max_decoding_length": "max_output_length", "min_decoding_length": "min_output_length"}


@dataclass(frozen=True)
class DecodingOptions:
    """Decoding settings of one translation run.

    Args:
        max_output_length: most characters per translation; None follows each source (the model's fitted
            `s2s.output_length`), at most 4,096.
        min_output_length: the end token is forbidden before this many characters.
        beam_size: 1 for greedy decoding, K for beam search over K hypotheses, at most the target vocabulary's size.
        length_penalty: beam scores are log-probability / length ** length_penalty; 0 or more.
        long_lines: a source over the model's max_source_length is split (at sentence ends, then spaces; the
            translations are joined), truncated, or an error; see `s2s.serving.long_lines`.
        num_hypotheses: translations per source, at most beam_size (n-best).
        return_scores: results carry each hypothesis's score.
        return_attention: results carry each hypothesis's attention weights, (characters, source characters).
        replace_unknowns: an `<unk>` in the output becomes the source character the decoder attended to most.
        sampling_topk: 1 takes the most likely character (greedy); K > 1 samples among the K most likely; 0 among all.
        sampling_temperature: with sampling, probabilities ** (1 / T): below 1 sharper, above 1 flatter.
        sampling_seed: the random seed of sampling, so a run can be repeated.
    """

    max_output_length: int | None = None
    beam_size: int = 1
    length_penalty: float = 1.0
    long_lines: str = SPLIT
    min_output_length: int = 0
    num_hypotheses: int = 1
    return_scores: bool = False
    return_attention: bool = False
    replace_unknowns: bool = False
    sampling_topk: int = 1
    sampling_temperature: float = 1.0
    sampling_seed: int = 0

    @classmethod
    def from_keywords(cls, **keywords: Any) -> DecodingOptions:
        """The options of keyword arguments, CTranslate2's names included; an unknown name is a TypeError, as in a call.

        Raises:
            TypeError: an unknown option, or an option given under both its names.
        """
        names = {field.name for field in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in keywords.items():
            name = _ALIASES.get(key, key)
            if name not in names:
                raise TypeError(f"unknown decoding option {key!r} (known: {', '.join(sorted(names | set(_ALIASES)))})")
            if name in values:
                raise TypeError(f"{key!r} and {name!r} are the same option: give one")
            values[name] = value
        if values.get("max_output_length") == 0:
            values["max_output_length"] = None  # 0 means "the model's own", as in the flags and config tables
        return cls(**values)

    @property
    def sampling(self) -> bool:
        return self.sampling_topk != 1

    @property
    def method(self) -> str:
        """How each output character is chosen, in a report's words: "greedy", "beam 5" or "sampling (top 10)"."""
        if self.sampling:
            return f"sampling (top {self.sampling_topk})" if self.sampling_topk else "sampling (all characters)"
        return f"beam {self.beam_size}" if self.beam_size > 1 else "greedy"

    @property
    def rich(self) -> bool:
        """Whether results are more than one string per source: n-best, scores, attention or cut flags per hypothesis."""
        return self.num_hypotheses > 1 or self.return_scores or self.return_attention

    @property
    def needs_attention(self) -> bool:
        return self.return_attention or self.replace_unknowns

    def validate(self, target_vocab_size: int, *, has_attention: bool = True) -> None:
        """Raises ConfigError naming the first value out of range for a model with this target vocabulary."""
        if self.max_output_length is not None and self.max_output_length < 1:
            raise ConfigError(f"max_output_length must be at least 1 (or None for the model's own), got {self.max_output_length}")
        if not 1 <= self.beam_size <= target_vocab_size:
            raise ConfigError(
                f"beam_size must be between 1 and the target vocabulary's {target_vocab_size} tokens "
                f"(a wider beam holds nothing more), got {self.beam_size}"
            )
        if self.needs_attention and not has_attention:
            what = "return_attention" if self.return_attention else "replace_unknowns"
            raise ConfigError(
                f"{what} needs the decoder's attention weights, which this model does not export "
                "(an lstm model, or an export made before them: export it again)"
            )
        self.validate_model_free()

    def validate_model_free(self) -> None:
        """The checks that need no model: what `TranslateConfig.validate` can run before one is loaded."""
        if self.max_output_length is not None and self.max_output_length > MAX_OUTPUT_LENGTH_CEILING:
            raise ConfigError(
                f"max_output_length must be at most {MAX_OUTPUT_LENGTH_CEILING} characters, got {self.max_output_length} "
                "(long sources are split at the model's limit, so no piece needs more)"
            )
        validate_choice("long_lines", self.long_lines, LONG_LINE_POLICIES)
        if not self.length_penalty >= 0:  # also refuses NaN
            raise ConfigError(f"length_penalty must be 0 or more (a negative one rewards ever longer output), got {self.length_penalty}")
        if not 0 <= self.min_output_length <= (self.max_output_length or MAX_OUTPUT_LENGTH_CEILING):
            raise ConfigError(f"min_output_length must be between 0 and max_output_length, got {self.min_output_length}")
        if not 1 <= self.num_hypotheses <= self.beam_size:
            raise ConfigError(f"num_hypotheses must be between 1 and beam_size ({self.beam_size}), got {self.num_hypotheses}: raise beam_size")
        if self.sampling_topk < 0:
            raise ConfigError(f"sampling_topk must be 0 (all) or more, got {self.sampling_topk}")
        if not self.sampling_temperature > 0:
            raise ConfigError(f"sampling_temperature must be above 0, got {self.sampling_temperature}")
        if self.sampling and self.beam_size != 1:
            raise ConfigError("sampling (sampling_topk other than 1) draws one character at a time: use it with beam_size 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
