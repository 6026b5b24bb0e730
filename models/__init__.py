"""The trained models shipped with s2s, as package data: `fra-eng/` is what `s2s translate` uses without `--model`."""
