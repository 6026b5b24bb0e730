"""Beam pipeline options: any runner's own options pass through, a misspelt one is refused, a missing engine is one line."""

import pytest

from s2s.errors import S2SError
from s2s.pipelines.options import beam_options

DASK = "apache_beam.runners.dask.dask_runner.DaskRunner"


def test_a_runners_own_options_pass_through() -> None:
    options = beam_options([f"--runner={DASK}", "--dask_client_address=tcp://127.0.0.1:8786"]).get_all_options()
    assert options["runner"] == DASK and options["address"] == "tcp://127.0.0.1:8786"


def test_a_misspelt_option_is_still_refused() -> None:
    with pytest.raises(S2SError, match="unrecognised option --dask_client_adress"):
        beam_options([f"--runner={DASK}", "--dask_client_adress=tcp://127.0.0.1:8786"])


def test_a_runner_whose_engine_is_missing_is_one_line() -> None:
    with pytest.raises(S2SError, match=r"--runner apache_beam\.runners\.nowhere\.NoRunner cannot be loaded here: No module named"):
        beam_options(["--runner=apache_beam.runners.nowhere.NoRunner"])
