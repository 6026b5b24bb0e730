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


def default_window(batch_size: int) -> int:
    """Lines read and sorted together when the caller does not say: 16 batches, so sorted batches carry little padding."""
    return 16 * batch_size


@dataclass(frozen=True)
class FileWindow:
    """A file job's bookkeeping for one window, carried through the engine as `SourceWindow.bookkeeping`."""

    lines: int
    size: int  # input bytes, line ends included
    records: Records | None  # what the format keeps of the lines for writing them back
