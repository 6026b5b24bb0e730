"""Character vocabularies with reserved ids shared by every stage.

Ids 0-3 are reserved, in the same place in the source and target vocabularies:

| id | token   | role                                                          |
|----|---------|---------------------------------------------------------------|
| 0  | `<pad>` | padding; its one-hot row is all zeros, so never "hot"           |
| 1  | `\\t`    | start token: the decoder's first input                         |
| 2  | `\\n`    | end token: the decoder's last target; decoding stops on it     |
| 3  | `<unk>` | a character the vocabulary lacks (serving only)               |

The characters seen in the data follow from id 4, ordered by code point, so
the same corpus always gives the same ids whatever order a runner processed
it in. Normalised text never holds a tab or newline, so the start and end
tokens cannot collide with a real character.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PAD = "<pad>"
START = "\t"
END = "\n"
UNKNOWN = "<unk>"
RESERVED_TOKENS = (PAD, START, END, UNKNOWN)
PAD_ID, START_ID, END_ID, UNKNOWN_ID = range(len(RESERVED_TOKENS))


@dataclass(frozen=True)
class Vocabulary:
    """An ordered list of tokens: the reserved four, then characters.

    >>> vocab = Vocabulary.from_characters("cab")
    >>> vocab.encode("cab!"), vocab.decode([6, 4, 5, END_ID, 4])
    ([6, 4, 5, 3], 'cab')
    """

    tokens: tuple[str, ...]
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if tuple(self.tokens[: len(RESERVED_TOKENS)]) != RESERVED_TOKENS:
            raise ValueError(f"a vocabulary must start with the reserved tokens {RESERVED_TOKENS!r}")
        characters = self.tokens[len(RESERVED_TOKENS) :]
        if any(len(char) != 1 for char in characters) or len(set(characters)) != len(characters):
            raise ValueError("vocabulary characters must be distinct single characters")
        object.__setattr__(self, "_ids", {token: index for index, token in enumerate(self.tokens)})

    @classmethod
    def from_characters(cls, characters: Iterable[str]) -> Vocabulary:
        """Builds the vocabulary of a set of characters, in code point order."""
        unique = set(characters) - set(RESERVED_TOKENS)
        return cls(RESERVED_TOKENS + tuple(sorted(unique)))

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def characters(self) -> tuple[str, ...]:
        """The characters after the reserved tokens."""
        return self.tokens[len(RESERVED_TOKENS) :]

    def id_of(self, char: str) -> int:
        """The id of one character, or UNKNOWN_ID."""
        return self._ids.get(char, UNKNOWN_ID)

    def encode(self, text: str) -> list[int]:
        """Character ids of `text`; characters outside the vocabulary become UNKNOWN_ID."""
        ids = self._ids
        return [ids.get(char, UNKNOWN_ID) for char in text]

    def decode(self, ids: Sequence[int] | Iterable[int]) -> str:
        """The text of a decoded id sequence: stops at the end token, skips pad and start."""
        chars = []
        for token_id in ids:
            token_id = int(token_id)
            if token_id == END_ID:
                break
            if token_id in (PAD_ID, START_ID):
                continue
            chars.append(self.tokens[token_id] if token_id != UNKNOWN_ID else "\ufffd")
        return "".join(chars)

    def to_list(self) -> list[str]:
        """The tokens, in id order, as written into spec.json and ONNX metadata."""
        return list(self.tokens)

    @classmethod
    def from_list(cls, tokens: Sequence[str]) -> Vocabulary:
        """Rebuilds a vocabulary from `to_list()` output."""
        return cls(tuple(tokens))
