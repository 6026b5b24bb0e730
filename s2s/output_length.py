"""How long a translation may grow: a limit that follows the source, fitted at export and read by every host.

The longest target seen in training is no limit for a sentence longer than
any in training: a German-to-English model trained on short pairs cut
"Ich bin nicht entlassen worden." at 22 characters. So export fits a line
to the training pairs' lengths instead, and writes it into the ONNX
metadata (`s2s.output_length`):

    limit(source characters) = ceil(slope * characters + intercept), at most CEILING

- `slope`: the 99.5th percentile of target/source length over pairs with a
  source of 10 characters or more (shorter ones swing widely), times 1.1;
- `intercept`: the 99.9th percentile of what the slope leaves unexplained,
  plus 5 characters.

On the bundled English-French corpus that is about 2.3 x characters + 11: a
reference target would be cut in fewer than 1 pair in 1,000 before the
margins, and none after them. A translation that reaches its limit without
the end token is counted as cut, never silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# The most characters one translation (of one source, or one piece of a split long line) may take, whatever a flag or a
# model's metadata asks: a model that never emits its end token stops here instead of running for hours. Sources are
# split at the model's max_source_length, so a real translation is far shorter.
CEILING = 4096
SLOPE_MARGIN = 1.1
INTERCEPT_MARGIN = 5.0
MIN_SOURCE_FOR_SLOPE = 10
# For exports made before the fit: generous, and never below the longest training target (the old limit).
FALLBACK = {"slope": 2.5, "intercept": 10.0}


def fit(source_lengths: Sequence[int] | np.ndarray, target_lengths: Sequence[int] | np.ndarray) -> dict[str, float]:
    """The `{"slope", "intercept"}` of the output limit for pairs of these (cleaned) lengths."""
    sources = np.asarray(source_lengths, dtype=np.float64)
    targets = np.asarray(target_lengths, dtype=np.float64)
    keep = sources > 0
    sources, targets = sources[keep], targets[keep]
    if not len(sources):
        return dict(FALLBACK)
    long_enough = sources >= MIN_SOURCE_FOR_SLOPE
    ratios = targets[long_enough] / sources[long_enough] if long_enough.any() else targets / sources
    slope = float(np.percentile(ratios, 99.5))
    intercept = max(float(np.percentile(targets - slope * sources, 99.9)), 0.0)
    return {"slope": round(slope * SLOPE_MARGIN, 4), "intercept": round(intercept + INTERCEPT_MARGIN, 2)}


def limits(source_lengths: np.ndarray, fitted: dict[str, float] | None, longest_target: int) -> np.ndarray:
    """Each source's output limit in characters (int64), from the fitted line or, for an older export, the fallback."""
    line = fitted or FALLBACK
    lengths = np.asarray(source_lengths, dtype=np.float64)
    values = np.ceil(line["slope"] * lengths + line["intercept"]).astype(np.int64)
    if fitted is None:
        values = np.maximum(values, longest_target)
    return np.clip(values, 1, CEILING)


def problem(fitted: dict[str, float]) -> str | None:
    """What is wrong with a fitted line read from metadata, or None."""
    slope, intercept = fitted.get("slope"), fitted.get("intercept")
    for name, value in (("slope", slope), ("intercept", intercept)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            return f"output_length {name} = {value!r}"
    return None
