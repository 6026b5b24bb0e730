"""Deterministic train / validation / test assignment by a hash of the cleaned source.

Hashing the source, not the pair, sends every translation of one sentence to
the same split: a model evaluated on "Go." must not have trained on "Go."
with another translation. The hash is SHA-256, not Python's `hash()`, so the
split is the same on every machine, runner and Python version.
"""

from __future__ import annotations

import hashlib

from s2s.spec import TEST, TRAIN, VALIDATION


def split_of(source: str, validation_fraction: float, test_fraction: float) -> str:
    """The split of a cleaned source sentence.

    Args:
        source: the cleaned source text.
        validation_fraction: share of sources sent to validation, in [0, 1).
        test_fraction: share of sources sent to test, in [0, 1); the two sum below 1.
    """
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    if position < test_fraction:
        return TEST
    if position < test_fraction + validation_fraction:
        return VALIDATION
    return TRAIN
