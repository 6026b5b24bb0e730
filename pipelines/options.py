"""The Beam options `s2s prepare` passes through to the runner, checked and given local defaults.

The app's own settings are `pipelines.config.PrepareConfig`. Everything else
on the command line is a Beam pipeline option
(`--runner`, `--project`, `--flink_master`, ...), checked here against every
option Beam knows so a misspelt flag fails at once instead of being dropped
with a warning deep in the log.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from s2s.errors import S2SError, first_line, pipeline_failure

logger = logging.getLogger(__name__)

# The runner used when none is given. Beam's DirectRunner first tries to
# download the Prism runner binary, which fails offline and costs a timeout
# before it falls back; FnApiRunner is what it falls back to, so start there.
DEFAULT_RUNNER = "FnApiRunner"


def beam_options(pipeline_args: list[str]) -> PipelineOptions:
    """Beam's options from the arguments `s2s` did not recognise, with local defaults filled in.

    Without `--runner`, the pipeline runs on FnApiRunner with one worker
    process per core (`--direct_num_workers=0`, multi_processing): on two
    cores that halves the wall time of a single in-process worker. Any of
    these can be given explicitly instead.

    Raises:
        S2SError: an argument is not a Beam option either.
    """
    _import_runner(pipeline_args)
    unknown = _unknown_beam_arguments(pipeline_args)
    if unknown:
        raise S2SError(f"unrecognised option {unknown[0]} (neither an s2s nor a Beam pipeline option; see --help)")
    given = PipelineOptions(pipeline_args).get_all_options(drop_default=True)
    defaults = []
    if "runner" not in given:
        defaults.append(f"--runner={DEFAULT_RUNNER}")
        if "direct_num_workers" not in given and "direct_running_mode" not in given:
            defaults += ["--direct_num_workers=0", "--direct_running_mode=multi_processing"]
    if "default_sdk_harness_log_level" not in given:
        # Worker processes log every gRPC channel at INFO, and a failure as pages of tracebacks at ERROR: run_pipeline
        # reports it in one line instead, and S2S_DEBUG=1 brings the tracebacks back.
        defaults.append(f"--default_sdk_harness_log_level={'ERROR' if os.environ.get('S2S_DEBUG') else 'CRITICAL'}")
    return PipelineOptions([*defaults, *pipeline_args])


@contextmanager
def run_pipeline(options: PipelineOptions, what: str) -> Iterator[Any]:
    """A Beam pipeline on the chosen runner, run when the block ends.

    A failure anywhere in it becomes one S2SError line naming the step and
    the original cause (`what` names the job and its inputs); the runner's
    tracebacks appear only with S2S_DEBUG=1. The local runner's gRPC servers
    listen on loopback alone for the run (see `_loopback_only`).
    """
    import apache_beam as beam

    debug = bool(os.environ.get("S2S_DEBUG"))
    beam_logger = logging.getLogger("apache_beam")
    level = beam_logger.level
    if not debug:
        beam_logger.setLevel(logging.CRITICAL)
    pipeline = beam.Pipeline(runner=local_runner(options), options=options)
    try:
        with _loopback_only(), _quiet_workers(not debug), pipeline:
            yield pipeline
    except S2SError:
        raise
    except Exception as error:
        if debug:
            raise
        raise pipeline_failure(error, what) from None
    finally:
        _close_client(pipeline)
        beam_logger.setLevel(level)


def _close_client(pipeline: Any) -> None:
    """Closes the client Beam's Dask runner opened and left open, which otherwise retries its scheduler after the run."""
    client = getattr(getattr(pipeline, "result", None), "client", None)
    if client is not None:
        client.close()


class _LoopbackServer:
    """A grpc server whose ports bind to loopback where Beam asks for every interface ('[::]:0')."""

    def __init__(self, server: Any):
        self._server = server

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)

    def add_insecure_port(self, address: str) -> int:
        return self._server.add_insecure_port(address.replace("[::]", "localhost", 1))


class _LoopbackGrpc:
    """The grpc module as Beam's local runner sees it during a run: servers it creates listen on loopback only."""

    def __init__(self, grpc: Any):
        self._grpc = grpc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grpc, name)

    def server(self, *args: Any, **kwargs: Any) -> _LoopbackServer:
        return _LoopbackServer(self._grpc.server(*args, **kwargs))


class _QuietSubprocess:
    """The subprocess module as Beam's local runner sees it: worker processes start with their stderr discarded."""

    def __init__(self, subprocess: Any):
        self._subprocess = subprocess

    def __getattr__(self, name: str) -> Any:
        return getattr(self._subprocess, name)

    def Popen(self, *args: Any, **kwargs: Any) -> Any:  # the name Beam calls
        return self._subprocess.Popen(*args, **{"stderr": self._subprocess.DEVNULL, **kwargs})


@contextmanager
def _quiet_workers(quiet: bool) -> Iterator[None]:
    """Discards the stderr of the local runner's worker processes, unless S2S_DEBUG=1.

    Each worker prints Beam's import warnings ("apitools not found"), a
    "Logging handler created" line and, when a step fails, pages of
    tracebacks straight to stderr, around the log level. `run_pipeline`
    reports a failure in one line instead.
    """
    if not quiet:
        yield
        return
    from apache_beam.runners.portability import local_job_service

    original, original_hook = local_job_service.subprocess, threading.excepthook
    local_job_service.subprocess = _QuietSubprocess(original)
    # A worker process that dies (a full disk can make it abort) ends the runner's `run_worker` thread with an exception,
    # which Python prints as a traceback; the failure reaches the user as run_pipeline's one line instead.
    threading.excepthook = _log_thread_exception
    try:
        yield
    finally:
        local_job_service.subprocess = original
        threading.excepthook = original_hook


def _log_thread_exception(hook: Any) -> None:
    logger.debug("thread %s ended with %s", getattr(hook.thread, "name", "?"), first_line(hook.exc_value) if hook.exc_value else hook.exc_type)


@contextmanager
def _loopback_only() -> Iterator[None]:
    """Makes FnApiRunner's control, data, state and logging servers listen on localhost, not on every address.

    Beam binds them to '[::]:0' unauthenticated, and they carry pickled code
    and data; its workers connect to 'localhost:PORT', so loopback serves them
    all. Other runners start no such servers here and are unaffected.
    """
    from apache_beam.runners.portability import local_job_service
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    modules = (worker_handlers, local_job_service)  # the runner's servers, and one logging server per worker process
    originals = [module.grpc for module in modules]
    for module, original in zip(modules, originals, strict=True):
        module.grpc = _LoopbackGrpc(original)
    try:
        yield
    finally:
        for module, original in zip(modules, originals, strict=True):
            module.grpc = original


def local_runner(options: PipelineOptions) -> object | None:
    """An FnApiRunner that hands the pipeline options to its worker processes, or None for other runners.

    Created by name, FnApiRunner gives its workers no options, so they ignore
    the log level; DirectRunner builds it this way, and so do we.
    """
    if options.get_all_options().get("runner") != DEFAULT_RUNNER:
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return fn_runner.FnApiRunner(provision_info=provision)


def _import_runner(pipeline_args: list[str]) -> None:
    """Imports the module of the runner `--runner` names, so the options it declares (`--dask_client_address`...) are known.

    Beam declares a runner's options in the runner's own module, which nothing
    imports before the pipeline starts; without this they would be refused.

    Raises:
        S2SError: the runner's module cannot be imported (its engine is not installed).
    """
    import argparse
    import importlib

    from apache_beam.runners.runner import _RUNNER_MAP

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--runner")
    name = parser.parse_known_args(pipeline_args)[0].runner
    if not name:
        return
    path = _RUNNER_MAP.get(name.lower(), _RUNNER_MAP.get(name.lower() + "runner", name))
    if "." not in path:
        return  # Beam reports an unknown runner name itself, in one line
    try:
        importlib.import_module(path.rsplit(".", 1)[0])
    except ImportError as error:
        remedy = "pip install 's2s-translate[dask]'" if ".dask." in path else "install the engine it runs on"
        raise S2SError(f"--runner {name} cannot be loaded here: {first_line(error)} ({remedy})") from None


def _unknown_beam_arguments(pipeline_args: list[str]) -> list[str]:
    import argparse

    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    classes = {str(cls): cls for cls in _all_subclasses(PipelineOptions)}
    for cls in classes.values():
        try:
            cls._add_argparse_args(parser)  # Beam's own hook for declaring an option group
        except argparse.ArgumentError:
            continue  # two groups declaring one flag: Beam tolerates it, so do we
    _, unknown = parser.parse_known_args(pipeline_args)
    return [arg for arg in unknown if arg.startswith("-")] or unknown


def _all_subclasses(cls: type) -> list[type]:
    found = []
    for subclass in cls.__subclasses__():
        found.append(subclass)
        found.extend(_all_subclasses(subclass))
    return found
