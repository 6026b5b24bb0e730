"""Settings of `s2s prepare`, and the Beam options passed through to the runner.

The app's own settings form `PrepareConfig` (a TOML `[prepare]` table or
flags). Everything else on the command line is a Beam pipeline option
(`--runner`, `--project`, `--flink_master`, ...), checked here against every
option Beam knows so a misspelt flag fails at once instead of being dropped
with a warning deep in the log.
"""

from __future__ import annotations

from dataclasses import dataclass

from apache_beam.options.pipeline_options import PipelineOptions

from s2s.errors import S2SError

# The runner used when none is given. Beam's DirectRunner first tries to
# download the Prism runner binary, which fails offline and costs a timeout
# before it falls back; FnApiRunner is what it falls back to, so start there.
DEFAULT_RUNNER = "FnApiRunner"


@dataclass(frozen=True)
class PrepareConfig:
    """Cleaning limits and split fractions of `s2s prepare`.

    The length defaults come from the bundled fra-eng corpus: the 99.5th
    percentile of cleaned lengths is 79 characters for English and 95 for
    French, so 80 and 100 keep more than 99.5% of its pairs while sparing
    training the padding of a few very long outliers (the longest are 286
    and 349 characters).
    """

    max_source_length: int = 80  # characters of a cleaned source; longer pairs are rejected
    max_target_length: int = 100  # characters of a cleaned target; longer pairs are rejected
    min_char_count: int = 10  # pairs holding a character seen fewer times on its side are rejected; 1 keeps all
    validation_fraction: float = 0.05  # share of distinct sources held out for validation
    test_fraction: float = 0.05  # share of distinct sources held out for testing
    fold_quotes: bool = True  # typographic apostrophes and quotes become ASCII
    num_shards: int = 0  # TFRecord shards per split; 0 lets the runner decide

    def validate(self) -> None:
        """Raises S2SError naming the first value out of range."""
        if self.max_source_length < 1 or self.max_target_length < 1:
            raise S2SError("max_source_length and max_target_length must be at least 1")
        if self.min_char_count < 0:
            raise S2SError("min_char_count must be 0 or more")
        for name in ("validation_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise S2SError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise S2SError("validation_fraction + test_fraction must stay below 1 to leave a training split")
        if self.num_shards < 0:
            raise S2SError("num_shards must be 0 (runner decides) or more")


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
