"""Batches decoded side by side (`inter_threads`) and pools that run on from one window into the next: the same output."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2s.serving import parallel
from s2s.serving.parallel import map_in_parallel, resolve_threads
from s2s.serving.translator import Translator
from tests.cli import run_cli


@pytest.fixture(scope="module")
def loops(toy_onnx) -> dict[int, Translator]:
    return {count: Translator(toy_onnx[0], device="cpu", inter_threads=count) for count in (1, 3)}


def test_several_loops_write_the_file_one_loop_writes(loops, validation_sources, tmp_path: Path) -> None:
    """Small batches and windows, so the pools take batches of several windows at once and windows finish out of order
    inside; empty lines and a cut limit among them."""
    sources = [*validation_sources[:300], "", "0123456789" * 3, "  "] * 2
    source = tmp_path / "in.txt"
    source.write_text("".join(line + "\n" for line in sources))
    outputs = {}
    for count, translator in loops.items():
        outputs[count] = tmp_path / f"out-{count}.txt"
        stats = translator.translate_file(str(source), str(outputs[count]), max_batch_size=8, max_output_length=2)
        assert stats.lines == len(sources) and stats.cut_translations > 0
    assert outputs[1].read_bytes() == outputs[3].read_bytes()
    assert len(outputs[3].read_text().splitlines()) == len(sources)


def test_several_loops_give_one_loops_strings_for_every_entry_point(loops, validation_sources) -> None:
    """translate_batch (one window), translate_iterable (a window per batch), target prefixes (a window decoded on its own
    among plain ones) and beam search (batches mapped in parallel, in order)."""
    sources = validation_sources[:200]
    one, three = loops[1], loops[3]
    assert three.translate_batch(sources, max_batch_size=16) == one.translate_batch(sources, max_batch_size=16)
    streamed = list(three.translate_iterable(iter(sources), max_batch_size=4))
    assert streamed == one.translate_batch(sources) == [source[2::-1] for source in sources]
    prefixes = [source[2] if index % 3 == 0 else None for index, source in enumerate(sources)]
    assert list(three.translate_iterable(iter(sources), iter(prefixes), max_batch_size=4)) == one.translate_batch(sources, prefixes)
    beams = [result.hypotheses for result in three.translate_batch(sources, beam_size=3, num_hypotheses=2, max_batch_size=8)]
    assert beams == [result.hypotheses for result in one.translate_batch(sources, beam_size=3, num_hypotheses=2, max_batch_size=8)]


def test_a_read_failure_comes_after_the_windows_before_it(loops, validation_sources) -> None:
    """A source that fails while the pools run ahead: every window before it still comes out, then the failure."""
    sources = validation_sources[:100]

    def failing():
        yield from sources
        raise OSError("the disk went away")

    translations = loops[3].translate_iterable(failing(), max_batch_size=4)
    received = []
    with pytest.raises(OSError, match="the disk went away"):
        for translation in translations:
            received.append(translation)
    assert received == [source[2::-1] for source in sources]


def test_threads_are_resolved_per_device(monkeypatch) -> None:
    monkeypatch.setattr(parallel, "available_cores", lambda: 8)
    assert resolve_threads(0, 0, "cpu") == (8, 1)  # one single-threaded loop per core
    assert resolve_threads(0, 4, "cpu") == (2, 4)
    assert resolve_threads(2, 0, "cpu") == (2, 4)
    assert resolve_threads(1, 0, "cpu") == (1, 0)  # one loop: onnxruntime's own choice of threads
    assert resolve_threads(0, 0, "cuda") == (1, 0)
    assert map_in_parallel(lambda value: value * value, range(50), 4) == [value * value for value in range(50)]
    with pytest.raises(ZeroDivisionError):
        map_in_parallel(lambda value: 1 // (value - 25), range(50), 4)


def test_the_command_line_takes_the_thread_settings(toy_onnx, validation_sources, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("".join(line + "\n" for line in validation_sources[:50]))
    result = run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(source), "-o", str(tmp_path / "out.txt"), "--inter-threads", "2", "--intra-threads", "1")
    assert result.returncode == 0, result.stderr
    assert "inter_threads=2" in result.stderr and "intra_threads=1" in result.stderr  # the settings line, as resolved
    assert (tmp_path / "out.txt").read_text().splitlines() == [line[2::-1] for line in validation_sources[:50]]
    refused = run_cli("translate", "--model", str(toy_onnx[0]), "-i", str(source), "-o", str(tmp_path / "out2.txt"), "--inter-threads", "-1")
    assert refused.returncode == 2 and "inter_threads" in refused.stderr and "Traceback" not in refused.stderr
