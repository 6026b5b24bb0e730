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
