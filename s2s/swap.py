"""The old home of `replace_directory`, kept for one release: import it from `s2s.publish`."""

from s2s.publish import replace_directory

__all__ = ["replace_directory"]
