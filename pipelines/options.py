"""The Beam options `s2s prepare` passes through to the runner, checked and given local defaults.

The app's own settings are `pipelines.config.PrepareConfig`. Everything else
on the command line is a Beam pipeline option
(`--runner`, `--project`, `--flink_master`, ...), checked here against every
option Beam knows so a misspelt flag fails at once instead of being dropped
with a warning deep in the log.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from s2s.errors import S2SError

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
        defaults.append("--default_sdk_harness_log_level=ERROR")  # worker processes log every gRPC channel at INFO
    return PipelineOptions([*defaults, *pipeline_args])


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
