"""The old home of the file translation code, kept for one release: import from the modules named below instead.

`s2s.serving.files` was split by responsibility: `s2s.serving.inputs`
(reading inputs), `s2s.serving.resume` (the output lock, fingerprint and
checkpoints), `s2s.serving.writer` (the writer loop) and
`s2s.serving.file_job` (`FileJob`, `FileWindow`).
"""

from __future__ import annotations

from s2s.serving.file_job import FileJob, FileWindow
from s2s.serving.inputs import STDIO, check_compressed_inputs, input_files, input_size, is_stream
from s2s.serving.writer import is_special_output, write_translations

__all__ = [
    "STDIO",
    "FileJob",
    "FileWindow",
    "check_compressed_inputs",
    "input_files",
    "input_size",
    "is_special_output",
    "is_stream",
    "write_translations",
]
