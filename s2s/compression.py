"""Checks that a compressed file ends where its format says it ends.

Beam's gzip reader (and many others) stops quietly at the end of the bytes
it is given, so a file cut in half reads as a shorter corpus whose last line
is cut mid-word. `GzipIntegrity` is fed the raw bytes as they are read for
the input's checksum, and says whether the stream was whole.
"""

from __future__ import annotations

import zlib

GZIP_SUFFIX = ".gz"  # Beam decompresses by extension, so integrity is checked for the same files
_OUTPUT_STEP = 1 << 16  # decompressed bytes produced per call: memory stays bounded whatever the ratio


def _gzip_decompressor() -> zlib._Decompress:
    return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)


class GzipIntegrity:
    """Runs raw gzip bytes through zlib, every member of a multi-member file, and reports a cut or corrupt stream."""

    def __init__(self) -> None:
        self._decompressor = _gzip_decompressor()
        self._at_member_end = False  # just after a member's end marker, no byte of a next member seen
        self.problem: str | None = None

    def feed(self, chunk: bytes) -> None:
        data = chunk
        while data and self.problem is None:
            if self._at_member_end:
                self._decompressor, self._at_member_end = _gzip_decompressor(), False
            try:
                self._decompressor.decompress(data, _OUTPUT_STEP)
            except zlib.error as error:
                self.problem = f"corrupt gzip data ({error})"
                return
            if self._decompressor.eof:
                data, self._at_member_end = self._decompressor.unused_data, True
            else:
                data = self._decompressor.unconsumed_tail

    def finish(self) -> str | None:
        """None for a whole stream, else what is wrong with it."""
        if self.problem is None and not self._at_member_end:
            self.problem = "it ends before the gzip end-of-stream marker: the file was cut short"
        return self.problem
