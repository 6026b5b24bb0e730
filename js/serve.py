"""Serves the s2s browser page on this machine only, with the headers that let onnxruntime-web use threads.

    python js/serve.py [--port 8000]      then open http://127.0.0.1:8000/js/web/

It serves the repository (the page, js/node_modules/onnxruntime-web and
models/) from one origin, with Cross-Origin-Opener-Policy: same-origin and
Cross-Origin-Embedder-Policy: require-corp, which make the page
cross-origin isolated: WebAssembly threads need that. Python's standard
library only; it listens on 127.0.0.1, never on every address.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[1]


class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with COOP and COEP, and `.mjs` served as JavaScript."""

    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
    }

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: a page load is dozens of requests


def server(port: int = 8000) -> http.server.ThreadingHTTPServer:
    """The server for `port` (0: any free one), not yet serving."""
    handler = functools.partial(IsolatedHandler, directory=str(ROOT))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    httpd = server(args.port)
    print(f"open http://127.0.0.1:{httpd.server_address[1]}/js/web/ (Ctrl-C stops)")
    with contextlib.suppress(KeyboardInterrupt):
        httpd.serve_forever()


if __name__ == "__main__":
    main()
