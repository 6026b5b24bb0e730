"""The old home of the Beam jobs' whole-file writes, kept for one release: import them from `s2s.publish`."""

from s2s.publish import delete_files, fill_missing, publish_lines
from s2s.publish import publish_stream as publish

__all__ = ["delete_files", "fill_missing", "publish", "publish_lines"]
