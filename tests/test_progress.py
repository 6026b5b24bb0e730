"""The progress display: a tqdm bar with a share and an ETA on a terminal, timestamped log lines in a job log."""

import io
import logging

import pytest

from s2s.serving.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_the_share_done_when_the_size_is_known() -> None:
    screen = Terminal()
    progress = Progress(total_bytes=1000, stream=screen)
    progress(40, 2.0, 250)
    progress(80, 4.0, 500)
    progress.close()
    text = screen.getvalue()
    assert "50%" in text and "80 lines" in text and "20 sentences/s" in text


def test_a_pipe_gets_lines_and_rate_without_a_share() -> None:
    screen = Terminal()
    progress = Progress(total_bytes=None, stream=screen)
    progress(10, 1.0, 300)
    progress.close()
    assert "10 lines" in screen.getvalue() and "%" not in screen.getvalue()


def test_a_job_log_gets_timestamped_lines_with_share_and_time_left(caplog: pytest.LogCaptureFixture) -> None:
    progress = Progress(total_bytes=1000, interval=0.0, stream=io.StringIO())
    with caplog.at_level(logging.INFO, logger="s2s.serving.progress"):
        progress(100, 10.0, 250)
    assert caplog.messages == ["translated 100 lines, 10 sentences/s, 25.0% done, about 30 s left"]


def test_the_bar_counts_lines_and_log_lines_go_above_it() -> None:
    screen = Terminal()
    handler = logging.StreamHandler(screen)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        progress = Progress(total_bytes=1000, stream=screen)
        progress(4096, 2.0, 500)
        logging.getLogger("s2s.test").warning("a warning while the bar is up")
        progress.close()
    finally:
        root.removeHandler(handler)
    text = screen.getvalue()
    assert "4.10k lines" in text or "4096 lines" in text or "4,096 lines" in text
    assert "B/s" not in text and "KB" not in text  # lines, not bytes
    warning_at = text.index("a warning while the bar is up")
    assert text[warning_at - 1] in "\r\n"  # the bar was cleared first: the line starts a fresh line
    assert handler.stream is screen  # the handler writes straight to its stream again once the bar is gone
