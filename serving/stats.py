"""`TranslationStats`: what a translation run counted, returned to callers and written as its summary and resume checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COUNTERS = (
    "lines",
    "empty_lines",
    "characters",
    "unknown_characters",
    "long_lines",
    "truncated_lines",
    "invalid_utf8_lines",
    "cut_translations",
)


@dataclass
class TranslationStats:
    """What one call translated; `translate_file` returns it and writes it as the run summary."""

    lines: int = 0
    empty_lines: int = 0
    characters: int = 0
    unknown_characters: int = 0
    long_lines: int = 0  # over the model's max_source_length: split, truncated (also counted below) or refused
    truncated_lines: int = 0
    invalid_utf8_lines: int = 0
    cut_translations: int = 0  # reached the output limit without the end token: maybe cut short, so counted and warned about
    seconds: float = 0.0
    device: str = ""
    model_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def counters(self) -> dict[str, int]:
        """The counts, by name, as saved in a resume checkpoint."""
        return {name: getattr(self, name) for name in COUNTERS}

    def add(self, other: TranslationStats) -> None:
        """Adds another's counts (one window's, say) to these."""
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, value in other.extra.items():
            self.extra[key] = self.extra.get(key, 0) + value

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {**self.counters(), "device": self.device, "model_id": self.model_id}
        values["seconds"] = round(self.seconds, 3)
        translated = self.lines - self.extra.get("resumed_at_line", 0)  # a resumed run's rate counts the lines it translated
        values["sentences_per_second"] = round(translated / self.seconds, 1) if self.seconds else None
        return {**values, **self.extra}
