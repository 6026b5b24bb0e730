"""The `s2s` command line: parses arguments, calls one library function per subcommand, prints.

Stage libraries return values (manifests, metrics, paths) and raise
`S2SError` for problems the user can fix; only this module prints. Heavy
imports (Beam, TensorFlow) happen inside the subcommand that needs them, so
`s2s --help` is instant and a translation host never loads them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import s2s
from s2s.errors import S2SError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info lines are noise in a job log
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

logger = logging.getLogger("s2s")
_OUR_LOGGERS = ("s2s", "pipelines", "training", "export", "serving")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one subcommand; returns the process exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_pipeline_options", False):
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    _configure_logging(args.verbose)
    try:
        return args.handler(args, extra)
    except S2SError as error:
        print(f"s2s: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("s2s: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # never a traceback for the user; S2S_DEBUG=1 shows it
        if os.environ.get("S2S_DEBUG"):
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(f"s2s: error: {type(error).__name__}: {message} (set S2S_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2s", description="Batch sequence-to-sequence translation: prepare, train, export, translate.")
    parser.add_argument("--version", action="version", version=f"s2s {s2s.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail, Beam's and TensorFlow's included")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_prepare(commands)
    _add_synth(commands)
    return parser


def _add_prepare(commands: Any) -> None:
    parser = commands.add_parser(
        "prepare",
        help="clean and tokenise sentence pairs into padded one-hot TFRecords (Apache Beam)",
        description=(
            "Read tab-separated sentence pairs, clean them, reject bad lines with a reason, build the "
            "vocabularies, split train/validation/test by a hash of the source and write GZIP TFRecords, "
            "spec.json and manifest.json. Any other --option is passed to Apache Beam, so the same command "
            "runs on Dataflow, Flink or Spark (e.g. --runner=DataflowRunner --project=P --region=R "
            "--temp_location=gs://B/tmp). Without --runner it runs locally on FnApiRunner; add "
            "--direct_num_workers=N --direct_running_mode=multi_processing to use N cores."
        ),
    )
    parser.add_argument(
        "--input",
        "-i",
        nargs="+",
        action="extend",
        required=True,
        metavar="PATH",
        help="text files or globs of source<TAB>target[<TAB>attribution] lines, plain or .gz; repeatable",
    )
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="output directory (local or gs://, s3://, ...)")
    parser.add_argument("--config", metavar="FILE", help="TOML file with a [prepare] table; flags override it")
    parser.add_argument("--max-source-length", type=int, metavar="N", help="longest cleaned source kept, in characters (default 80)")
    parser.add_argument("--max-target-length", type=int, metavar="N", help="longest cleaned target kept, in characters (default 100)")
    parser.add_argument(
        "--min-char-count",
        type=int,
        metavar="N",
        help="reject pairs holding a character seen fewer than N times on its side; 1 keeps all (default 10)",
    )
    parser.add_argument("--validation-fraction", type=float, metavar="F", help="share of distinct sources for validation (default 0.05)")
    parser.add_argument("--test-fraction", type=float, metavar="F", help="share of distinct sources for test (default 0.05)")
    parser.add_argument(
        "--fold-quotes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="map typographic apostrophes and quotes to ASCII (default on)",
    )
    parser.add_argument("--num-shards", type=int, metavar="N", help="TFRecord shards per split; 0 lets the runner decide (default 0)")
    parser.set_defaults(handler=_run_prepare, accepts_pipeline_options=True)


def _run_prepare(args: argparse.Namespace, pipeline_args: list[str]) -> int:
    from pipelines.options import PrepareConfig
    from pipelines.prepare import prepare
    from s2s.config import load_config

    overrides = {
        name: getattr(args, name)
        for name in (
            "max_source_length",
            "max_target_length",
            "min_char_count",
            "validation_fraction",
            "test_fraction",
            "fold_quotes",
            "num_shards",
        )
    }
    config = load_config(PrepareConfig, "prepare", args.config, overrides)
    manifest = prepare(args.input, args.output, config, pipeline_args)
    _print_prepare_summary(manifest, args.output)
    return 0


def _print_prepare_summary(manifest: dict[str, Any], output: str) -> None:
    rejected = manifest["rejected"]
    print(f"read {manifest['lines_read']} lines from {len(manifest['inputs'])} file(s) in {manifest['elapsed_seconds']:.1f} s")
    print(f"kept {manifest['pairs_kept']} pairs: " + ", ".join(f"{split} {size}" for split, size in manifest["split_sizes"].items()))
    print(
        f"rejected {sum(rejected.values())} lines: "
        + (", ".join(f"{reason} {count}" for reason, count in rejected.items() if count) or "none")
    )
    print(
        f"vocabularies: source {manifest['source_vocabulary_size']}, target {manifest['target_vocabulary_size']}; "
        f"longest source {manifest['max_source_length']}, target {manifest['max_target_length']} characters"
    )
    print(f"wrote {output}/spec.json, manifest.json, TFRecords and rejects")
    if manifest["pairs_kept"] == 0:
        print("s2s: warning: no pair survived cleaning; see the rejects file for why", file=sys.stderr)


def _add_synth(commands: Any) -> None:
    from pipelines.synth import TASKS

    parser = commands.add_parser(
        "synth",
        help="write a synthetic integer-task corpus (fast end-to-end tests)",
        description="Write the source material's toy tasks as source<TAB>target lines: reverse-first-3 "
        "(6 integers of cardinality 50 -> the first 3 reversed) or reverse-4 (4 integers in 1..9 reversed).",
    )
    parser.add_argument("task", choices=sorted(TASKS), help="the task to generate")
    parser.add_argument("--n", type=int, default=10_000, metavar="N", help="pairs to write (default 10000)")
    parser.add_argument("--output", "-o", required=True, metavar="PATH", help="the TSV file to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.set_defaults(handler=_run_synth)


def _run_synth(args: argparse.Namespace, _: list[str]) -> int:
    from pipelines.synth import write_corpus

    path = write_corpus(args.task, args.n, args.output, args.seed)
    print(f"wrote {args.n} {args.task} pairs to {path}")
    return 0


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.ERROR)  # Beam and TF log plenty at INFO and WARNING
    for name in _OUR_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
