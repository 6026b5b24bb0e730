"""`s2s export`: a trained MODEL_DIR to self-describing, verified ONNX files.

The files are built, written to a staging folder, loaded back with
onnxruntime as a host would and verified against the Keras models (see
`export.verify`). Only an export that passes takes ONNX_DIR's place, with
its model card and `verification.json`, in one atomic exchange
(`s2s.publish.replace_directory`): a host loading the folder meanwhile
sees the old export or the new one, never a mix. Files in ONNX_DIR that
the export does not write are kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

import s2s
from s2s import onnx_contract as contract
from s2s import output_length
from s2s.checksums import file_sha256
from s2s.config import log_config, validated
from s2s.errors import S2SError
from s2s.export import graphs, verify
from s2s.export.config import ExportConfig
from s2s.export.convert import OPSET, convert_decoder, convert_encoder
from s2s.export.step_graph import build_step
from s2s.files import read_json
from s2s.onehot import encode_ids, one_hot
from s2s.onnx_contract import metadata_props
from s2s.publish import atomic_open, replace_directory, write_json
from s2s.records import load_references
from s2s.serving.sessions import DecoderSession, EncoderSession, model_info, open_session
from s2s.spec import DatasetSpec
from s2s.training.config import ATTENTION, TrainConfig
from s2s.training.model_dir import ModelDir, TrainedModels, TrainedSettings, report_name

VERIFICATION_FILE = "verification.json"
EVALUATION_FILE = report_name("test", "json")

logger = logging.getLogger(__name__)

INPUT_DOCS = {
    contract.SOURCE_IDS: "int32 (batch, time): source vocabulary ids, 0 (padding) after each sentence's end",
    contract.PREVIOUS_TOKEN: "int32 (batch): the previous target id; the start token (1) first",
    contract.MAX_OUTPUT_LENGTH: "int32 scalar, optional: most characters to emit (default max_target_length)",
}
OUTPUT_DOCS = {
    contract.PROBABILITIES: "float32 (batch, target_vocab): softmax over the next target token",
    contract.NEXT_TOKEN: "int32 (batch): argmax of probabilities, to feed back as previous_token",
    contract.TOKEN_IDS: "int32 (batch, steps): greedy target ids, end-token padded after each sentence's end",
    contract.ENCODER_OUTPUTS: "float32 (batch, time, latent): the encoder's outputs, which attention reads; pass to every decoder step",
    contract.SOURCE_MASK: "float32 (batch, time): 1 at real source positions, 0 at padding; pass to every decoder step",
    contract.ATTENTION: "float32 (batch, time): this step's attention weights over the source positions (rows sum to 1)",
}


def export_model(
    model_dir: str | Path,
    output_dir: str | Path,
    config: ExportConfig | None = None,
    *,
    data_dir: str | Path | None = None,
    evaluation: str | Path | None = None,
) -> dict[str, Any]:
    """Exports, verifies and publishes; returns the verification report.

    Args:
        config: verification size and float16 files; default `ExportConfig()`.
        data_dir: prepared data whose validation split drives verification; default the training data.
        evaluation: the `eval-test.json` whose figures go into the model card; default the model directory's.

    Raises:
        S2SError: missing or mismatched model files, an unwritable output, or a failed verification.
    """
    started = time.time()
    config = config or ExportConfig()
    validated(config)
    verify_sources, float16 = config.verify_sources, config.float16
    trained, output_dir = ModelDir(model_dir), Path(output_dir)
    trained_settings, spec = trained.settings(), trained.spec()
    models = trained.load()
    _ensure_writable(output_dir)  # before minutes of conversion, not after
    log_config(logger, "export", config)
    settings = trained_settings.config
    model, keras_encoder, keras_decoder = models.model, models.encoder, models.decoder
    num_layers, latent_dim = settings.num_layers, settings.latent_dim
    sources = _verification_sources(Path(data_dir or trained_settings.data_dir), spec, verify_sources)
    batches = [
        encode_ids(sources[start : start + 256], spec.source_vocabulary, max_length=spec.max_source_length, reverse=settings.reverse_source)
        for start in range(0, len(sources), 256)
    ]
    probe = batches[0][:64]

    logger.info("converting %s model with tf2onnx (opset %d) on the CPU", settings.arch, OPSET)
    encoder = convert_encoder(models, probe)
    encoded = [np.asarray(value) for value in keras_encoder(one_hot(probe, len(spec.source_vocabulary)), training=False)]
    decoder = convert_decoder(keras_decoder, num_layers, latent_dim, encoded[2 * num_layers :], encoded[: 2 * num_layers])
    # The step hosts run, rewritten from the converted weights without shape arithmetic (see step_graph); translator.onnx's
    # loop keeps the converted one.
    stepper = build_step(decoder, num_layers, attention=settings.arch == contract.ARCH_ATTENTION)
    decoders = graphs.decoder_files(stepper, float16=float16, int8=config.int8)
    files = {
        contract.ENCODER_FILE: (encoder, "encoder", "float32"),
        contract.DECODER_FILE: (decoders[contract.DECODER_FILE], "decoder", "float32"),
        contract.DECODER_GREEDY_FILE: (decoders[contract.DECODER_GREEDY_FILE], "decoder_greedy", "float32"),
        contract.TRANSLATOR_FILE: (graphs.build_translator(encoder, decoder, num_layers, spec.max_target_length), "translator", "float32"),
    }
    if config.int8:
        files[contract.ENCODER_INT8_FILE] = (graphs.to_int8(encoder), "encoder", "int8")
        files[contract.DECODER_GREEDY_INT8_FILE] = (decoders[contract.DECODER_GREEDY_INT8_FILE], "decoder_greedy", "int8")
    if float16:
        files[contract.ENCODER_FP16_FILE] = (graphs.to_float16(encoder), "encoder", "float16")
        files[contract.DECODER_GREEDY_FP16_FILE] = (decoders[contract.DECODER_GREEDY_FP16_FILE], "decoder_greedy", "float16")

    shared = _shared_metadata(spec, trained_settings, model)
    shared[contract.META_OUTPUT_LENGTH] = _fit_output_length(Path(data_dir or trained_settings.data_dir), spec)
    target = output_dir.resolve()  # the real folder: "." or a link to a folder is replaced where it really is
    staging = target.with_name(f".{target.name}.staging-{uuid.uuid4().hex[:12]}")
    staging.mkdir()
    try:
        for name, (onnx_model, role, precision) in files.items():
            _attach_metadata(onnx_model, {**shared, contract.META_ROLE: role, contract.META_PRECISION: precision})
            with atomic_open(staging / name, "wb") as stream:
                stream.write(onnx_model.SerializeToString())
        with atomic_open(staging / contract.CHECKSUMS_FILE) as stream:
            stream.writelines(f"{file_sha256(staging / name)}  {name}\n" for name in sorted(files))
        logger.info("verifying against Keras on %d validation sources", len(sources))
        report = _verify(staging, trained, models, batches, sources, float16, config.int8)
        report.update(
            {
                "model_id": shared[contract.META_MODEL_ID],
                "opset": OPSET,
                "seconds": round(time.time() - started, 1),
                "files": {name: (staging / name).stat().st_size for name in files},
            }
        )
        write_json(staging / VERIFICATION_FILE, report)
        with atomic_open(staging / contract.MODEL_CARD_FILE) as stream:
            stream.write(model_card(report, trained, Path(evaluation or trained / EVALUATION_FILE)))
        replace_directory(staging, target, keep_others=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def training_minutes(history: list[dict[str, Any]]) -> float:
    """Minutes of training: each row's `seconds` is the training time so far, across resumes (older runs counted from each
    session's start, and a resume started again: a fall marks a new session)."""
    total, previous = 0.0, 0.0
    for row in history:
        seconds = float(row.get("seconds", 0.0))
        total += seconds - previous if seconds >= previous else seconds
        previous = seconds
    return total / 60


def _fit_output_length(data_dir: Path, spec: DatasetSpec) -> dict[str, float]:
    """The per-sentence output limit fitted to the validation pairs (held out from training, the same distribution).

    Without the data, the limit falls back to one that never goes below the longest training target.
    """
    pairs: list[tuple[int, int]] = []
    if (data_dir / "spec.json").exists():
        try:
            sources, references = load_references(data_dir, "validation")
            pairs = [(len(source), len(reference)) for source, targets in zip(sources, references, strict=True) for reference in targets]
        except S2SError:
            pairs = []
    if not pairs:
        logger.warning("no validation pairs to fit the output limit to: using %s", output_length.FALLBACK)
        return {**output_length.FALLBACK, "intercept": float(spec.max_target_length)}
    fitted = output_length.fit([source for source, _ in pairs], [target for _, target in pairs])
    logger.info("output limit: %.2f x source characters + %.1f, fitted to %d validation pairs", fitted["slope"], fitted["intercept"], len(pairs))
    return fitted


def _verification_sources(data_dir: Path, spec: DatasetSpec, count: int) -> list[str]:
    """Validation sources of the training data; random strings of the vocabulary if that data is gone."""
    if (data_dir / "spec.json").exists():
        try:
            sources, _ = load_references(data_dir, "validation", count)
            if sources:
                return sources
        except S2SError:
            pass
    rng = random.Random(0)
    characters = spec.source_vocabulary.characters
    return ["".join(rng.choice(characters) for _ in range(rng.randint(1, spec.max_source_length))) for _ in range(count)]


def model_id(model: Any) -> str:
    """SHA-256 of every trained weight, in layer order: the same model gives the same id."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight), dtype=np.float32).tobytes())
    return digest.hexdigest()


def _shared_metadata(spec: DatasetSpec, trained: TrainedSettings, model: Any) -> dict[str, Any]:
    spec_values, settings = spec.to_dict(), trained.config
    return {
        contract.META_FORMAT: contract.FORMAT_VERSION,
        contract.META_S2S_VERSION: s2s.__version__,
        contract.META_MODEL_ID: model_id(model),
        contract.META_TRAINING_DATA: trained.data_fingerprint,
        contract.META_SOURCE_VOCABULARY: spec_values["source_vocabulary"],
        contract.META_TARGET_VOCABULARY: spec_values["target_vocabulary"],
        contract.META_SPECIAL_TOKENS: spec_values["special_tokens"],
        contract.META_MAX_SOURCE_LENGTH: spec.max_source_length,
        contract.META_MAX_TARGET_LENGTH: spec.max_target_length,
        contract.META_NORMALIZATION: spec_values["normalization"],
        contract.META_REVERSE_SOURCE: settings.reverse_source,
        contract.META_NUM_LAYERS: settings.num_layers,
        contract.META_LATENT_DIM: settings.latent_dim,
        contract.META_ARCH: settings.arch,
    }


def _attach_metadata(onnx_model: Any, values: dict[str, Any]) -> None:
    graph = onnx_model.graph
    names = {value.name for value in graph.input} | {value.name for value in graph.output}
    values = {
        **values,
        contract.META_INPUTS: {name: _describe(name) for name in (value.name for value in graph.input) if name in names},
        contract.META_OUTPUTS: {name: _describe(name) for name in (value.name for value in graph.output)},
    }
    del onnx_model.metadata_props[:]
    for key, value in metadata_props(values).items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx_model.producer_name, onnx_model.producer_version = "s2s", s2s.__version__


def _describe(name: str) -> str:
    if name in INPUT_DOCS:
        return INPUT_DOCS[name]
    if name in OUTPUT_DOCS:
        return OUTPUT_DOCS[name]
    kind = "hidden" if name.startswith(("h_", "next_h_")) else "cell"
    layer = name.rsplit("_", 1)[-1]
    return f"float32 (batch, latent): LSTM layer {layer} {kind} state" + (" after this step" if name.startswith("next_") else "")


def _ensure_writable(output_dir: Path) -> None:
    """Fails before minutes of conversion, not after: the output folder and its parent (where the export is staged) must be writable."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise S2SError(f"cannot write to output directory {output_dir}: {error.strerror or error}") from None
    for folder, what in ((output_dir, "output directory"), (output_dir.resolve().parent, "the folder the export is staged in,")):
        probe = folder / f".write-probe-{uuid.uuid4().hex[:8]}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise S2SError(f"cannot write to {what} {folder}: {error.strerror or error}") from None


def _verify(
    staging: Path, trained: ModelDir, models: TrainedModels, batches: list[np.ndarray], sources: list[str], float16: bool, int8: bool
) -> dict[str, Any]:
    verify.check_files(sorted(staging.glob("*.onnx")))
    encoder_session = open_session(staging / contract.ENCODER_FILE)
    info = model_info(encoder_session, staging / contract.ENCODER_FILE)
    encoder = EncoderSession(encoder_session, info)
    decoder = DecoderSession(open_session(staging / contract.DECODER_FILE), info)
    parity = verify.numeric_parity(
        models.encoder, models.decoder, encoder, decoder, batches, len(info.source_vocabulary), len(info.target_vocabulary)
    )
    reference = trained.greedy_decoder(models).translate(sources)
    step_loop = verify.agreement(reference, verify.onnx_greedy_strings(encoder, decoder, sources, info), sources)
    translator = verify.agreement(
        reference, verify.translator_strings(open_session(staging / contract.TRANSLATOR_FILE), sources, info), sources
    )
    report = {
        "checker": "passed",
        "parity_max_abs_difference": parity,
        "greedy_step_loop": step_loop,
        "greedy_translator": translator,
        "verification_sources": len(sources),
    }
    report["float16"] = verify.variant_difference(staging, "float16", info, batches[:2], sources[:256], reference[:256]) if float16 else None
    report["int8"] = verify.variant_difference(staging, "int8", info, batches[:2], sources[:256], reference[:256]) if int8 else None
    worst = max(parity.values())
    if worst > verify.PARITY_TOLERANCE:
        raise S2SError(f"export verification failed: ONNX differs from Keras by {worst:.2e} (limit {verify.PARITY_TOLERANCE:g})")
    for name, result in (("step-by-step ONNX loop", step_loop), ("translator.onnx", translator)):
        if result["agreement"] < verify.REQUIRED_AGREEMENT:
            raise S2SError(
                f"export verification failed: the {name} matches Keras greedy strings on {result['agreement']:.2%} of "
                f"{result['compared']} sources (at least {verify.REQUIRED_AGREEMENT:.1%} required)"
            )
    return report


def describe_architecture(settings: TrainConfig) -> str:
    """One phrase for the model card and the logs: what the layers are."""
    layers, latent = settings.num_layers, settings.latent_dim
    if settings.arch == ATTENTION:
        return (
            f"character-level bidirectional LSTM encoder ({layers} layer(s) of 2 x {latent // 2} units) and LSTM decoder "
            f"({layers} layer(s) of {latent} units) with dot-product attention"
        )
    return f"character-level LSTM encoder-decoder (lstm_seq2seq), {layers} layer(s) of {latent} units"


def model_card(report: dict[str, Any], trained: ModelDir, evaluation_path: Path) -> str:
    """MODEL_CARD.md: what the model is, how it was trained and evaluated, and how its export was verified."""
    evaluation = read_json(evaluation_path) if evaluation_path.exists() else None
    state, spec = trained.training_state(), trained.spec()
    trained_settings = trained.settings()
    settings = trained_settings.config
    parity = report["parity_max_abs_difference"]
    lines = [
        "# s2s model card",
        "",
        f"- model id (SHA-256 of the weights): `{report['model_id']}`",
        f"- training data fingerprint: `{trained_settings.data_fingerprint}`",
        f"- architecture: {describe_architecture(settings)}, source reversed: {str(settings.reverse_source).lower()}",
        f"- vocabularies: {len(spec.source_vocabulary)} source and {len(spec.target_vocabulary)} target tokens; "
        f"max lengths {spec.max_source_length} and {spec.max_target_length} characters",
        f"- normalisation: {spec.normalizer.name} v{spec.normalizer.version} (fold_quotes {str(spec.normalizer.fold_quotes).lower()})",
        f"- training: optimizer {settings.optimizer}, learning rate {settings.learning_rate}, batch {settings.batch_size}, "
        f"at most {settings.epochs} epochs, early stopping patience {settings.early_stopping_patience}",
        f"- ONNX opset {report['opset']}; exported by s2s {s2s.__version__}",
    ]
    if state is not None and state.history:
        best = state.history[state.best_epoch] if 0 <= state.best_epoch < len(state.history) else {}
        lines.append(
            f"- training budget: {state.epochs_done} epochs in {training_minutes(state.history):.0f} minutes ({state.stop_reason}); "
            f"best epoch {state.best_epoch + 1}: validation loss {state.best_val_loss:.4f}, accuracy {best.get('val_accuracy', 0):.4f}"
        )
    split = evaluation["split"] if evaluation else "test"
    lines += ["", f"## Evaluation ({split} split, Keras greedy decoding)", ""]
    if evaluation:
        overall = evaluation["overall"]
        lines += [
            "| sources | BLEU | chrF | exact match | CER |",
            "|---|---|---|---|---|",
            f"| {overall['sentences']} | {overall['bleu']} | {overall['chrf']} | {overall['exact_match']:.2%} | {overall['cer']} |",
        ]
    else:
        lines.append("Not evaluated: run `s2s evaluate` before exporting to include the figures.")
    training_settings = dict(sorted(dataclasses.asdict(settings).items()))
    lines += ["", "## Training configuration", "", "```toml", "[train]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in training_settings.items()]
    lines.append("```")
    step, whole = report["greedy_step_loop"], report["greedy_translator"]
    lines += [
        "",
        "## Export verification",
        "",
        f"On {report['verification_sources']} validation sources, Keras against onnxruntime (CPU):",
        "",
        f"- max abs difference: encoder states {parity['encoder_states']:.2e}, decoder probabilities "
        f"{parity['decoder_probabilities']:.2e}, decoder states {parity['decoder_states']:.2e} (limit {verify.PARITY_TOLERANCE:g})",
        f"- greedy strings identical to the Keras reference: step-by-step loop {step['identical']}/{step['compared']}, "
        f"translator.onnx {whole['identical']}/{whole['compared']}",
    ]
    for precision in ("float16", "int8"):
        lines.append(_variant_line(precision, report.get(precision)))
    lines += ["", "## Files", "", "| file | bytes |", "|---|---|"]
    lines += [f"| `{name}` | {size:,} |" for name, size in sorted(report["files"].items())]
    return "\n".join(lines) + "\n"


def _variant_line(precision: str, measured: dict[str, Any] | None) -> str:
    """The model card's line on a float16 or int8 variant against float32."""
    if measured is None:
        return f"- {precision} variants: not exported"
    if not measured["measured"]:
        return f"- {precision} against float32: not measured on this machine ({measured['reason']})"
    strings = measured["greedy_strings"]
    return (
        f"- {precision} against float32: max abs probability difference {measured['max_abs_probability_difference']:.2e}, "
        f"greedy strings identical {strings['identical']}/{strings['compared']}"
    )
