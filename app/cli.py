"""The `s2s` command line: parses arguments, calls one library function per subcommand, prints.

Stage libraries return values (manifests, metrics, paths) and raise
`S2SError` for problems the user can fix; only this module prints. Heavy
imports (Beam, TensorFlow) happen inside the subcommand that needs them, so
`s2s --help` is instant and a translation host never loads them.
"""

from __future__ import annotations

import argparse
import importlib.resources
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import s2s
from s2s.app.summaries import EvaluationSummary, ExportSummary, PrepareSummary, TrainSummary, translation_line
from s2s.config import add_config_flags, config_overrides, load_config
from s2s.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    InputMissingError,
    S2SError,
    Terminated,
    first_line,
)
from s2s.stage_log import StageFilter
from s2s.tensorflow_import import quiet_native_logs

quiet_native_logs()  # before any stage loads TensorFlow
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

logger = logging.getLogger("s2s")
# The trained English-to-French model committed with s2s (see its MODEL_CARD.md): what `s2s translate` uses by default.
# Package data (s2s.models), so it is there after a wheel install as in a checkout.
DEFAULT_MODEL_DIR = Path(str(importlib.resources.files("s2s.models") / "fra-eng"))


# The extra that brings each heavy module, for a one-line error on a host installed for another role.
_EXTRA_OF_MODULE = {
    "apache_beam": "pipeline",
    "google": "pipeline",
    "google_crc32c": "pipeline",
    "tensorflow": "train",
    "keras": "train",
    "tf2onnx": "train",
    "onnx": "train",
    "onnxconverter_common": "train",
    "sacrebleu": "train",
    "matplotlib": "train",
    "onnxruntime": "cpu",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one subcommand; returns the process exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_pipeline_options", False):
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    _configure_logging(args.verbose)
    previous_handler = _stop_on_sigterm()
    try:
        return args.handler(args, extra)
    except S2SError as error:
        print(f"s2s: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("s2s: interrupted (SIGINT)", file=sys.stderr)
        _forget_interrupt_at_exit()
        return EXIT_INTERRUPTED
    except Terminated:
        print("s2s: stopped (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except ModuleNotFoundError as error:
        extra = _EXTRA_OF_MODULE.get((error.name or "").split(".")[0])
        if extra is None or os.environ.get("S2S_DEBUG"):
            raise
        print(
            f"s2s: error: this subcommand needs {error.name}, which this install lacks: pip install 's2s-translate[{extra}]' "
            f"(a translation host needs only s2s-translate[cpu] or [gpu])",
            file=sys.stderr,
        )
        return 1
    except Exception as error:  # never a traceback for the user; S2S_DEBUG=1 shows it
        if os.environ.get("S2S_DEBUG"):
            raise
        print(f"s2s: error: {type(error).__name__}: {first_line(error)} (set S2S_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


def _forget_interrupt_at_exit() -> None:
    """Makes a handled Ctrl-C exit with status 130, not as a death by SIGINT (-2 to a parent, which `run.json` contradicts).

    CPython marks a KeyboardInterrupt "unhandled" whenever one ends code run from a string (`exec`/`eval` of source text,
    `PyRun_String`), even if a caller catches it later, and under `python -m` it then kills itself with SIGINT on exit
    whatever status was asked for. A SIGINT landing while TensorFlow imports can end such code: the chain's stop test saw
    "s2s: interrupted (SIGINT)" printed and then the process die by the signal. The mark is cleared at the start of every
    string evaluation, so evaluating an empty one clears it.
    """
    exec("pass", {})  # a constant string: clears the mark


def _stop_on_sigterm() -> Any:
    """Turns SIGTERM into `Terminated` in the main thread, so a stopped run unwinds and records itself; returns the old handler.

    Only from the main thread (where Python delivers signals); None elsewhere, e.g. when a test calls `main` from a thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return None

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated()

    return signal.signal(signal.SIGTERM, terminate)


def _silence_stdout() -> None:
    """After the reader of standard output went away: point it at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout already closed or not a real file: nothing left to flush
        pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2s", description="Batch sequence-to-sequence translation: prepare, train, export, translate.")
    parser.add_argument("--version", action="version", version=f"s2s {s2s.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail, Beam's and TensorFlow's included")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_run(commands)
    _add_prepare(commands)
    _add_train(commands)
    _add_evaluate(commands)
    _add_export(commands)
    _add_translate(commands)
    _add_translate_beam(commands)
    _add_synth(commands)
    return parser


def _add_run(commands: Any) -> None:
    parser = commands.add_parser(
        "run",
        help="run the whole chain (prepare, train, evaluate, export, translate), skipping what has not changed",
        description="Run prepare, train, evaluate, export and translate into one run directory, as configured by a TOML file with "
        "a table per stage ([run], [prepare], [train], [evaluate], [export], [translate]). A stage whose settings and inputs are "
        "unchanged and whose outputs still match their checksums is skipped; a changed one runs again with every stage after it. "
        "A failed stage leaves its last good outputs in place. RUN_DIR/run.json records every stage's settings, input and output "
        "checksums, figures and timings. Any other --option is passed to Apache Beam for the prepare stage.",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="the run's TOML file (paths in it are relative to it)")
    parser.add_argument("--input", "-i", nargs="+", action="extend", metavar="PATH", help="corpus files or globs, replacing [run] input")
    parser.add_argument("--output", "-o", metavar="RUN_DIR", help="the run directory, replacing [run] output")
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="override one setting, e.g. --set train.max_minutes=8 (repeatable; the value is read as TOML)",
    )
    parser.add_argument("--force", metavar="STAGE", help="run this stage and all later ones even if nothing changed")
    parser.set_defaults(handler=_run_chain, accepts_pipeline_options=True)


def _run_chain(args: argparse.Namespace, pipeline_args: list[str]) -> int:
    from s2s.app.chain.report import print_run_report
    from s2s.app.chain.runner import run_chain
    from s2s.app.chain.settings import load_chain_settings

    settings = load_chain_settings(args.config, args.assignments, input_override=args.input, output_override=args.output)
    if pipeline_args:  # checked before any stage runs, not only when prepare does
        from s2s.pipelines.options import beam_options

        beam_options(pipeline_args)
    manifest = run_chain(settings, pipeline_args=pipeline_args, force=args.force)
    print_run_report(manifest, settings.run.output)
    return 0


def _add_prepare(commands: Any) -> None:
    from s2s.pipelines.config import PrepareConfig

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
    _add_config(parser, PrepareConfig, "prepare")
    parser.set_defaults(handler=_run_prepare, accepts_pipeline_options=True)


def _run_prepare(args: argparse.Namespace, pipeline_args: list[str]) -> int:
    from s2s.pipelines.config import PrepareConfig
    from s2s.pipelines.prepare import prepare

    config = _config(args, PrepareConfig, "prepare")
    manifest = prepare(args.input, args.output, config, pipeline_args)
    _print_prepare_summary(manifest, args.output)
    return 0


def _print_prepare_summary(manifest: dict[str, Any], output: str) -> None:
    summary = PrepareSummary.of(manifest)
    print("\n".join(summary.lines()))
    print(f"wrote {output}/spec.json, manifest.json, TFRecords and rejects")
    if summary.pairs_kept == 0:
        print("s2s: warning: no pair survived cleaning; see the rejects file for why", file=sys.stderr)


def _add_train(commands: Any) -> None:
    from s2s.training.config import TrainConfig

    parser = commands.add_parser(
        "train",
        help="fit the teacher-forced LSTM encoder-decoder on prepared TFRecords",
        description="Train the character-level LSTM encoder-decoder on the output of s2s prepare. Writes the best model "
        "(by validation loss), the inference encoder and one-step decoder, spec.json, history.csv, training_curves.png and "
        "TensorBoard logs to --output. Every epoch is checkpointed; --resume continues a killed run.",
    )
    parser.add_argument("--data", required=True, metavar="DIR", help="output directory of s2s prepare")
    parser.add_argument("--output", "-o", required=True, metavar="MODEL_DIR", help="where the model and its files go")
    parser.add_argument("--resume", action="store_true", help="continue the unfinished run in MODEL_DIR from its last checkpoint")
    _add_config(parser, TrainConfig, "train")
    parser.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace, _: list[str]) -> int:
    from s2s.training.config import TrainConfig
    from s2s.training.train import train

    config = _config(args, TrainConfig, "train")
    summary = train(args.data, args.output, config, resume=args.resume)
    print("\n".join(TrainSummary.of(summary).lines()))
    print(f"wrote {summary['model_dir']}")
    return 0


def _add_evaluate(commands: Any) -> None:
    from s2s.training.config import EvaluateConfig

    parser = commands.add_parser(
        "evaluate",
        help="greedy-decode a split with the Keras model; BLEU, chrF, exact match, CER by length",
        description="Translate every distinct source of a split greedily with the trained Keras models and score it "
        "against all its references: corpus BLEU and chrF (sacrebleu), exact match, character error rate, overall and "
        "by source length. Writes eval-SPLIT.json and eval-SPLIT.md into the model directory.",
    )
    parser.add_argument("--model", required=True, metavar="MODEL_DIR", help="output directory of s2s train")
    parser.add_argument("--data", required=True, metavar="DIR", help="output directory of s2s prepare")
    _add_config(parser, EvaluateConfig, "evaluate")
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace, _: list[str]) -> int:
    from s2s.training.config import EvaluateConfig
    from s2s.training.evaluate import evaluate
    from s2s.training.model_dir import report_name

    config = _config(args, EvaluateConfig, "evaluate")
    report = evaluate(args.model, args.data, config)
    print(f"{EvaluationSummary.of(report).line()}, in {report['seconds']} s ({report['sentences_per_second']} sentences/s)")
    for sample in report["samples"][:5]:
        print(f"  {sample['source']}  ->  {sample['translation']}")
    print(f"wrote {Path(args.model) / report_name(report['split'], 'json')} and .md")
    return 0


def _add_export(commands: Any) -> None:
    from s2s.export.config import ExportConfig

    parser = commands.add_parser(
        "export",
        help="convert the inference encoder and decoder to self-describing, verified ONNX",
        description="Convert a trained model to ONNX with tf2onnx (on the CPU): encoder.onnx, decoder.onnx, decoder_greedy.onnx "
        "(argmax and its one-hot inside), translator.onnx (the whole greedy loop in one graph) and float16 variants. Every "
        "file carries the vocabularies, normalisation and limits in its metadata. The export is checked with onnx.checker and "
        "against Keras (numbers and greedy strings) before it is published, with MODEL_CARD.md and verification.json.",
    )
    parser.add_argument("--model", required=True, metavar="MODEL_DIR", help="output directory of s2s train")
    parser.add_argument("--output", "-o", required=True, metavar="ONNX_DIR", help="where the ONNX files go")
    parser.add_argument("--data", metavar="DIR", help="prepared data for verification (default: the data the model was trained on)")
    _add_config(parser, ExportConfig, "export")
    parser.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace, _: list[str]) -> int:
    from s2s.export.config import ExportConfig
    from s2s.export.export import export_model

    config = _config(args, ExportConfig, "export")
    report = export_model(args.model, args.output, config, data_dir=args.data)
    print("\n".join(ExportSummary.of(report).lines(args.output)))
    return 0


def _add_translate(commands: Any) -> None:
    from s2s.serving.config import TranslateConfig

    parser = commands.add_parser(
        "translate",
        help="translate a corpus with an exported model in onnxruntime (GPU when available)",
        description="Translate every line of the input with an exported model. Output line i is the translation of input line i; "
        "empty lines stay empty. The output file appears only when complete, and a killed run started again with the same "
        "arguments resumes where it stopped. A run summary (JSON) goes beside the output. Needs only numpy and onnxruntime.",
    )
    parser.add_argument(
        "--model",
        metavar="ONNX_DIR",
        help=f"output directory of s2s export (default: $S2S_MODEL, else the shipped English-to-French model {DEFAULT_MODEL_DIR})",
    )
    parser.add_argument("--input", "-i", required=True, metavar="PATH", help="a file, a glob (files in sorted order) or - for stdin")
    parser.add_argument("--output", "-o", required=True, metavar="PATH", help="a file, or - for stdout")
    _add_config(parser, TranslateConfig, "translate")
    parser.add_argument(
        "--format",
        choices=("text", "tsv", "jsonl"),
        default="text",
        help="text: the whole line is the source, the output line its translation; tsv: --column is the source, every column "
        "is kept and the translation (and --scores, n-best) appended; jsonl: --field of each object is the source, the object "
        "is kept and translation, cut (and score, hypotheses, attention) added (default text)",
    )
    parser.add_argument("--column", type=int, default=0, metavar="N", help="with --format tsv, the source column, from 0 (default 0)")
    parser.add_argument("--field", default="source", metavar="NAME", help="with --format jsonl, the source field (default source)")
    parser.add_argument("--summary", metavar="PATH", help="run summary JSON (default OUTPUT.summary.json)")
    parser.set_defaults(handler=_run_translate)


def _add_config(parser: argparse.ArgumentParser, cls: type, table: str) -> None:
    """`--config FILE` and a flag per field of the stage's config class: every subcommand's settings, one way."""
    parser.add_argument("--config", metavar="FILE", help=f"TOML file with a [{table}] table; flags override it")
    add_config_flags(parser, cls)


def _config(args: argparse.Namespace, cls: type, table: str, other_keys: tuple[str, ...] = ()) -> Any:
    """The stage's config: its defaults, then the file's table, then the flags given."""
    return load_config(cls, table, args.config, config_overrides(args, cls), other_keys=other_keys)


def default_model() -> str:
    """The model `s2s translate` and `translate-beam` use without --model: $S2S_MODEL, else the shipped fra-eng model."""
    path = os.environ.get("S2S_MODEL") or str(DEFAULT_MODEL_DIR)
    if "://" not in path and not os.path.isdir(path):  # a remote folder (translate-beam) is checked when it is read
        raise InputMissingError(f"no --model given and no default model at {path}: pass --model ONNX_DIR (the output of s2s export)")
    return path


def _run_translate(args: argparse.Namespace, _: list[str]) -> int:
    from s2s.serving.config import TranslateConfig
    from s2s.serving.jobs import translate_corpus
    from s2s.serving.writer import is_special_output

    config = _config(args, TranslateConfig, "translate", other_keys=("input",))
    interactive = args.input == "-" and not args.verbose  # `echo ... | s2s translate -i - -o -`: the translation alone
    if interactive:
        logging.getLogger("s2s").setLevel(logging.WARNING)
    stats = translate_corpus(
        args.model or default_model(),
        args.input,
        args.output,
        config,
        input_format=args.format,
        column=args.column,
        field=args.field,
        summary_path=args.summary,
    )
    if interactive:
        return 0
    print(
        translation_line(stats),
        file=sys.stderr if args.output == "-" or is_special_output(args.output) else sys.stdout,  # keep a streamed output clean
    )
    return 0


def _add_translate_beam(commands: Any) -> None:
    from s2s.serving.config import TranslateConfig

    parser = commands.add_parser(
        "translate-beam",
        help="bulk translation as an Apache Beam pipeline, for Dataflow, Flink, Spark or Dask",
        description="Translate text files with an exported model in an Apache Beam pipeline: each worker translates whole shards "
        "with the s2s Translator and writes PREFIX-SSSSS-of-NNNNN.tsv files of path<TAB>line_number<TAB>translation, one row per "
        "input line, sorted within each shard. The rows written are counted against the lines read. Any other --option is a Beam "
        "pipeline option (e.g. --runner=DataflowRunner ...); without --runner it runs locally with one worker process per core.",
    )
    parser.add_argument(
        "--model",
        metavar="ONNX_DIR",
        help="output directory of s2s export, local or gs://, s3://... (copied once per worker; "
        "default: $S2S_MODEL, else the shipped English-to-French model)",
    )
    parser.add_argument(
        "--input", "-i", nargs="+", action="extend", required=True, metavar="PATH", help="text files or globs, plain or .gz"
    )
    parser.add_argument("--output", "-o", required=True, metavar="PREFIX", help="output path prefix (local or gs://, s3://, ...)")
    parser.add_argument(
        "--num-shards", type=int, default=0, metavar="N", help="output files, each one unit of work; 0 = one per 4 MiB of input (default 0)"
    )
    _add_config(parser, TranslateConfig, "translate")
    parser.set_defaults(handler=_run_translate_beam, accepts_pipeline_options=True)


def _run_translate_beam(args: argparse.Namespace, pipeline_args: list[str]) -> int:
    from s2s.pipelines.translate_pipeline import SHARD_SUFFIX, translate_with_pipeline
    from s2s.serving.config import TranslateConfig

    config = _config(args, TranslateConfig, "translate", other_keys=("input",))
    rows = translate_with_pipeline(
        args.model or default_model(), args.input, args.output, config, num_shards=args.num_shards, pipeline_args=pipeline_args
    )
    print(f"wrote {rows} rows, one per input line, to {args.output}-*{SHARD_SUFFIX}")
    return 0


def _add_synth(commands: Any) -> None:
    from s2s.pipelines.synth import TASKS

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
    from s2s.pipelines.synth import write_corpus

    path = write_corpus(args.task, args.n, args.output, args.seed)
    print(f"wrote {args.n} {args.task} pairs to {path}")
    return 0


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(StageFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(stage)s%(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.ERROR)  # Beam and TF log plenty at INFO and WARNING
    logging.getLogger("s2s").setLevel(logging.DEBUG if verbose else logging.INFO)  # every s2s module logs under "s2s."


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
