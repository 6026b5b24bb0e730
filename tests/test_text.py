"""The shared normalisation scheme, case by case."""

import pytest

from s2s.text import SCHEME_NAME, SCHEME_VERSION, TextNormalizer


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Qu\u2019est-ce que c\u2019est\u00a0?", "Qu'est-ce que c'est ?"),  # typographic apostrophe, no-break space
        ("Va\u202f!", "Va !"),  # narrow no-break space before "!"
        ("Attends\u2009!", "Attends !"),  # thin space
        ("  many   spaces\t and\ttabs  ", "many spaces and tabs"),
        ("zero\u200bwidth\u200d joiner\ufeff", "zerowidth joiner"),
        ("soft\u00adhyphen", "softhyphen"),
        ("\u201cquoted\u201d \u201elow\u201f", '"quoted" "low"'),
        ("\u00abguillemets\u00bb", "\u00abguillemets\u00bb"),  # French punctuation stays
        ("e\u0301te\u0301", "\u00e9t\u00e9"),  # NFC composes e + combining acute
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalizer_cleans(raw: str, clean: str) -> None:
    assert TextNormalizer()(raw) == clean


def test_quote_folding_can_be_turned_off() -> None:
    assert TextNormalizer(fold_quotes=False)("c\u2019est") == "c\u2019est"


def test_scheme_round_trips_through_its_dict() -> None:
    scheme = TextNormalizer(fold_quotes=False)
    assert scheme.to_dict() == {"fold_quotes": False, "name": SCHEME_NAME, "version": SCHEME_VERSION}
    assert TextNormalizer.from_dict(scheme.to_dict()) == scheme


def test_unknown_scheme_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown normalisation scheme"):
        TextNormalizer.from_dict({"fold_quotes": True, "name": SCHEME_NAME, "version": SCHEME_VERSION + 1})


def _per_character_reference(text: str, fold_quotes: bool = True) -> str:
    """Scheme s2s-text v1 written out step by step, one character at a time: what the fast paths must equal."""
    import re
    import unicodedata

    text = unicodedata.normalize("NFC", text)
    mapped = []
    for char in text:
        category = unicodedata.category(char)
        mapped.append(" " if category == "Zs" else "" if category == "Cf" else char)
    text = "".join(mapped)
    if fold_quotes:
        text = text.translate(str.maketrans({**dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u02bc", "'"), **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033", '"')}))
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("fold_quotes", [True, False])
def test_table_and_window_normalisation_equal_the_per_character_scheme(fold_quotes: bool) -> None:
    import random

    alphabet = "aZé e\u0301\u00a0\u202f\u2009\u3000\u200b\u200d\ufeff\u00ad\u2019\u201c\u201d«»\t\x0b\x0c\x1c\x85\u2028\u0301\u0327c?!'\" "
    rng = random.Random(7)
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    normalizer = TextNormalizer(fold_quotes=fold_quotes)
    expected = [_per_character_reference(line, fold_quotes) for line in lines]
    assert [normalizer(line) for line in lines] == expected
    assert normalizer.normalize_lines(lines) == expected
    assert normalizer.normalize_lines(["a\nb", " c "]) == ["a b", "c"]  # a line holding the separator keeps the count
