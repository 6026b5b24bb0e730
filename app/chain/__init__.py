"""`s2s run`: the whole chain as one scheduled job (settings, stage definitions, the runner)."""
