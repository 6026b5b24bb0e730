"""Settings of `s2s prepare`: a `[prepare]` table in a config file, overridden by flags."""

from __future__ import annotations

from dataclasses import dataclass

from s2s.config import setting
from s2s.errors import ConfigError

RARE_POLICIES = ("unk", "reject")
DIRECTIONS = ("forward", "reverse")
# The most output files per split (prepare) or per job (translate-beam): each is a unit of work and a file; more would
# only make empty files (400,001 of them for 5,000 lines, once) and exhaust a folder's or a worker's limits.
MAX_SHARDS = 10_000


@dataclass(frozen=True)
class PrepareConfig:
    """Cleaning limits and split fractions of `s2s prepare`.

    The length defaults come from the bundled fra-eng corpus: the 99.5th
    percentile of cleaned lengths is 79 characters for English and 95 for
    French, so 80 and 100 keep more than 99.5% of its pairs while sparing
    training the padding of a few very long outliers (the longest are 286
    and 349 characters).
    """

    max_source_length: int = setting(80, "characters of a cleaned source; longer pairs are rejected", at_least=1)
    max_target_length: int = setting(100, "characters of a cleaned target; longer pairs are rejected", at_least=1)
    min_char_count: int = setting(10, "a character seen fewer times on its side is rare (see rare_characters); 1 makes none rare", at_least=0)
    rare_characters: str = setting(
        "unk", "unk: rare characters stay out of the vocabulary and read as <unk>, the pair is kept; reject: the pair is rejected", RARE_POLICIES
    )
    direction: str = setting(
        "forward", "forward: the first column is the source; reverse: the second is, so one corpus trains both ways", DIRECTIONS
    )
    validation_fraction: float = setting(0.05, "share of distinct sources held out for validation", at_least=0, below=1)
    test_fraction: float = setting(0.05, "share of distinct sources held out for testing", at_least=0, below=1)
    fold_quotes: bool = setting(True, "typographic apostrophes and quotes become ASCII")
    num_shards: int = setting(
        0, "files per split, and for the rejects; 0 = automatic: 2, or one per 16 MiB of input", at_least=0, at_most=MAX_SHARDS, zero="automatic"
    )

    def validate(self) -> None:
        """The rules between settings (each setting's own range is declared with it and checked by `s2s.config.validated`).

        Raises:
            ConfigError: the first rule broken.
        """
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise ConfigError("validation_fraction + test_fraction must stay below 1 to leave a training split")
