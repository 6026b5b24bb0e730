"""The exported model where Python is not: the js/ package in Node and in a real headless Chromium, against the Python host.

Both translate the shipped model's test-split samples (Node all 300, the
browser every third) and must give the same strings as `Translator` on the
CPU; the JavaScript normaliser must agree with `s2s/text.py` on tricky text.
The browser is Debian's `chromium` (`make test` installs it with apt);
without one the test fails with a one-line reason, never skips.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from s2s.serving.translator import Translator
from s2s.text import TextNormalizer

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "fra-eng"
SCREENSHOT = REPO / "out" / "browser-page.png"


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The 300 test-split sources shipped beside the model, as a file, and their Python translations."""
    sources = [line.split("\t")[0] for line in (MODEL / "test-samples.tsv").read_text(encoding="utf-8").splitlines()]
    assert len(sources) >= 300
    path = tmp_path_factory.mktemp("js") / "sources.txt"
    path.write_text("\n".join(sources) + "\n", encoding="utf-8")
    return path, Translator.from_dir(MODEL, device="cpu").translate_batch(sources)


def node(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    assert (REPO / "js" / "node_modules" / "onnxruntime-node").exists(), "run `make test`: it installs the js/ package (npm ci in js/)"
    return subprocess.run(["node", *args], input=stdin, capture_output=True, text=True, cwd=REPO, timeout=600)


def test_the_node_package_translates_as_the_python_host_does(samples) -> None:
    path, expected = samples
    started = time.perf_counter()
    result = node("js/bin/translate.mjs", str(MODEL), str(path))
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:-1] == expected
    print(f"node: {len(expected)} sentences in {seconds:.2f} s, start-up included")


def test_the_package_imports_without_side_effects() -> None:
    script = 'import("./js/src/host.js").then((host) => console.log(Object.keys(host).sort().join(",")))'
    result = node("-e", script)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.strip() == "Translator,modelInfo,normalizer,outputLimit,readMetadata,translateWithLoopModel"


TRICKY = [
    "  Qu\u2019est-ce\u202fque c\u2019est\u00a0?  ",  # typographic apostrophes, narrow and plain no-break spaces
    "\u201cQuoted\u201d and \u00abguillemets\u00bb",
    "Cafe\u0301 vs caf\u00e9",  # a combining accent composes (NFC)
    "emoji \U0001f642\U0001f1eb\U0001f1f7 and \U0001f468\u200d\U0001f469\u200d\U0001f467",  # a ZWJ family loses its joiners
    "line one\r\nline two\rthree",  # CRLF and a lone CR
    "zero\u200bwidth\u2060joiner\ufeffbom\u00adsoft",  # format characters go
    "tabs\tand\x0bvertical\x0cfeeds\x1cseparators\x85next\u2028line\u2029para",
    "\u3000ideographic space\u2003em space\u205f",
    "",
    "   ",
]


@pytest.mark.parametrize("fold_quotes", [True, False])
def test_the_javascript_normaliser_equals_the_python_one(fold_quotes: bool) -> None:
    python = TextNormalizer(fold_quotes=fold_quotes)
    scheme = python.to_dict()
    stdin = "".join(json.dumps([scheme, text]) + "\n" for text in TRICKY)
    result = node("js/test/normalize.mjs", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [python(text) for text in TRICKY]


@pytest.fixture
def page_server() -> Iterator[str]:
    """js/serve.py's server on a free loopback port, with COOP and COEP: the page's URL."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("s2s_page_server", REPO / "js" / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.server(0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/js/web/"
    finally:
        server.shutdown()
        server.server_close()


def test_the_browser_page_translates_offline_as_the_python_host_does(samples, page_server: str, capsys) -> None:
    # Every third sample, the whole range of lengths: the page's WebAssembly runs about 40 sentences/s on 2 cores here.
    sources, translations = samples
    path = sources.with_name("browser-sources.txt")
    path.write_text("".join(line + "\n" for line in sources.read_text(encoding="utf-8").splitlines()[::3]), encoding="utf-8")
    expected = translations[::3]
    SCREENSHOT.parent.mkdir(exist_ok=True)
    result = node("js/test/browser.mjs", page_server, str(path), str(SCREENSHOT))
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "the browser test failed"
    page = json.loads(result.stdout)
    assert page["errors"] == [] and page["isolated"] is True  # COOP and COEP: WebAssembly threads are available
    assert page["translations"] == expected
    assert page["shown"] == expected[:5]  # typed into the page and translated by its button, as a user would
    assert SCREENSHOT.stat().st_size > 10_000
    with capsys.disabled():
        print(f"\nbrowser: {len(expected)} sentences in {page['seconds']:.2f} s ({len(expected) / page['seconds']:.0f} sentences/s); page screenshot {SCREENSHOT}")
