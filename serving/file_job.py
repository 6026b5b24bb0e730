"""`FileJob`: how one file is translated, resolved and checked, and `FileWindow`, a window's bookkeeping on its way to the output."""

from __future__ import annotations

from dataclasses import dataclass

from s2s.config import validate_choice
from s2s.errors import ConfigError
from s2s.serving.formats import FORMATS, TEXT, Records
from s2s.serving.options import DecodingOptions


@dataclass(frozen=True)
class FileJob:
    """How one file is translated, resolved: everything that must match for a killed run to resume."""

    batch_size: int  # resolved, never 0
    window: int  # lines read and sorted together, resolved
    options: DecodingOptions
    input_format: str = TEXT
    column: int = 0
    field: str = "source"
    batch_type: str = "examples"

    def validate(self) -> None:
        """Refuses a job that cannot run, before any work.

        Raises:
            ConfigError: an unknown format, a negative column, an empty window, or rich results asked of plain text.
        """
        validate_choice("format", self.input_format, FORMATS)
        if self.column < 0:
            raise ConfigError(f"--column must be 0 or more, got {self.column}")
        if self.window < 1:
            raise ConfigError(f"the window must be at least 1 line, got {self.window}")
        if self.input_format == TEXT and self.options.rich:
            raise ConfigError("scores, n-best and attention need a format with room for them: use --format tsv or jsonl")


MIN_WINDOW = 16_384  # lines: enough that a batch's sources differ by a character or so, as Marian's maxi-batches


def resolve_window(requested: int, batch_size: int) -> int:
    """Lines read and sorted together: `requested`, or for 0 (automatic) at least 16 batches and `MIN_WINDOW` lines.

    The one place "0 = automatic" is decided for the window, for `s2s translate`, the chain, `translate-beam` and
    library callers.

    Sorting decides how much padding the batches carry, and on the CPU the
    refilled pools' attention memory is as wide as the longest source they
    hold: 1,024 lines (16 batches of 64) left the memory 47 positions wide
    for rows of 35 on average, 16,384 lines 37 (the step reads the memory
    twice, so about a tenth of CPU decoding time). A window is also the unit
    of checkpoints and of output: with 16,384 lines a few seconds of work.
    """
    return requested or max(16 * batch_size, MIN_WINDOW)


@dataclass(frozen=True)
class FileWindow:
    """A file job's bookkeeping for one window, carried through the engine as `SourceWindow.bookkeeping`."""

    lines: int
    size: int  # input bytes, line ends included
    records: Records | None  # what the format keeps of the lines for writing them back
