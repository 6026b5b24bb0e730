"""serving stage of s2s (see the issue tracker for what lands here)."""
