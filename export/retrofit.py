"""Brings an older export up to date without the Keras model: step graph, attention output, fitted output limit.

    python -m s2s.export.retrofit MODEL_DIR [--pairs CORPUS.tsv[.gz]] [--reverse]

Exports made by this s2s already have all three. An older one (the shipped
model was one) gets, in place and published atomically file by file:

- decoder files rebuilt as today's step graph from decoder.onnx's own
  weights (see `step_graph`), when they are still tf2onnx's graph or a step
  graph of an older layout (the same numbers, computed faster);
- encoder.onnx's outputs taken straight from its LSTM node where that gives
  the same numbers (see `encoder_tail`);
- an `attention` output on every decoder file (see `graphs.add_attention_output`);
- with `--pairs`, `s2s.output_length` in every file's metadata, fitted to the
  corpus's pairs after the model's own normalisation (`--reverse` when the
  model translates the second column into the first);
- int8 variants (`graphs.to_int8`) when missing (an existing one is kept:
  quantized again, its translations would change);
- a new `SHA256SUMS`.

The weights and the model id do not change, so translations do not either.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from s2s import onnx_contract as contract
from s2s import output_length
from s2s.checksums import file_sha256
from s2s.export.encoder_tail import direct_encoder_outputs
from s2s.export.export import OUTPUT_DOCS
from s2s.export.graphs import add_attention_output, decoder_files, to_int8
from s2s.export.step_graph import build_step, is_step_graph, rebuild_step
from s2s.publish import atomic_open
from s2s.text import TextNormalizer
from s2s.vocab import UNKNOWN_ID


def fit_to_corpus(corpus: Path, normalizer: TextNormalizer, *, reverse: bool = False) -> dict[str, float]:
    """The output limit fitted to a TSV corpus's pairs (source, target columns; swapped with `reverse`), normalised."""
    opener = gzip.open if corpus.suffix == ".gz" else open
    sources, targets = [], []
    with opener(corpus, "rt", encoding="utf-8") as stream:
        for line in stream:
            columns = line.rstrip("\n").split("\t")
            if len(columns) >= 2:
                sources.append(columns[1 if reverse else 0])
                targets.append(columns[0 if reverse else 1])
    return output_length.fit(list(map(len, normalizer.normalize_lines(sources))), list(map(len, normalizer.normalize_lines(targets))))


def retrofit(model_dir: Path, fitted: dict[str, float] | None) -> list[str]:
    """Brings every ONNX file of `model_dir` up to date (`fitted`: a new output limit, or None to keep); returns the files rewritten."""
    rebuilt = _new_files(model_dir)
    names = sorted({path.name for path in model_dir.glob("*.onnx")} | set(rebuilt))
    int8_siblings = dict(zip(contract.PRECISION_FILES["int8"], contract.PRECISION_FILES["float32"], strict=True))
    for name in names:
        existing = onnx.load(model_dir / name) if (model_dir / name).exists() else None
        model = rebuilt.get(name, existing)
        # A new int8 file takes the metadata of its float32 sibling.
        source = existing if existing is not None else onnx.load(model_dir / int8_siblings[name])
        metadata = {entry.key: entry.value for entry in source.metadata_props}
        if existing is None:
            metadata[contract.META_PRECISION] = "int8"
        if metadata.get(contract.META_ROLE) in ("decoder", "decoder_greedy") and contract.ATTENTION not in {o.name for o in model.graph.output}:
            model = add_attention_output(model, half=metadata.get(contract.META_PRECISION) == "float16")
        if fitted is not None:
            metadata[contract.META_OUTPUT_LENGTH] = json.dumps(fitted)
        outputs = json.loads(metadata.get(contract.META_OUTPUTS, "{}"))
        if any(output.name == contract.ATTENTION for output in model.graph.output):
            outputs[contract.ATTENTION] = OUTPUT_DOCS[contract.ATTENTION]
            metadata[contract.META_OUTPUTS] = json.dumps(outputs, ensure_ascii=False)
        del model.metadata_props[:]
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(model, full_check=True)
        with atomic_open(model_dir / name, "wb") as stream:
            stream.write(model.SerializeToString())
    with atomic_open(model_dir / contract.CHECKSUMS_FILE) as stream:
        stream.writelines(f"{file_sha256(model_dir / name)}  {name}\n" for name in names)
    return names


def _new_files(model_dir: Path) -> dict[str, Any]:
    """The files to write, by name: today's step graphs and encoder tail where the export has older ones, missing int8 files."""
    rebuilt = _step_graphs(model_dir)
    encoder = onnx.load(model_dir / contract.ENCODER_FILE)
    direct = direct_encoder_outputs(encoder, {contract.SOURCE_IDS: _probe_ids(encoder)})
    if direct is not encoder:  # rewritten (`direct_encoder_outputs` hands back the model itself when it changes nothing)
        rebuilt[contract.ENCODER_FILE] = direct
    if not (model_dir / contract.ENCODER_INT8_FILE).exists():
        rebuilt[contract.ENCODER_INT8_FILE] = to_int8(_without_metadata(copy.deepcopy(direct)))
    if not (model_dir / contract.DECODER_GREEDY_INT8_FILE).exists():
        greedy = rebuilt.get(contract.DECODER_GREEDY_FILE) or onnx.load(model_dir / contract.DECODER_GREEDY_FILE)
        rebuilt[contract.DECODER_GREEDY_INT8_FILE] = to_int8(_without_metadata(greedy))
    return rebuilt


def _probe_ids(encoder: Any) -> np.ndarray:
    """64 random sources of the encoder's vocabulary, of lengths 1 to its limit, padded: what `direct_encoder_outputs` compares on."""
    metadata = {entry.key: entry.value for entry in encoder.metadata_props}
    vocabulary, longest = len(json.loads(metadata[contract.META_SOURCE_VOCABULARY])), int(metadata[contract.META_MAX_SOURCE_LENGTH])
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, longest + 1, size=64)
    ids = rng.integers(UNKNOWN_ID, vocabulary, size=(64, longest)).astype(np.int32)  # the unknown id and every character
    ids[np.arange(longest) >= lengths[:, None]] = 0
    return ids


def _without_metadata(model: Any) -> Any:
    del model.metadata_props[:]
    return model


def _step_graphs(model_dir: Path) -> dict[str, Any]:
    """The decoder files rebuilt as today's step graph from decoder.onnx's weights, by file name; empty when they already are.

    decoder.onnx is either tf2onnx's graph (exports before the step graph) or
    a step graph of some s2s version, whose constants keep the trained weights
    under names every version has kept (`step_graph.step_graph_weights`).
    """
    decoder = onnx.load(model_dir / contract.DECODER_FILE)
    metadata = {entry.key: entry.value for entry in decoder.metadata_props}
    num_layers = int(metadata[contract.META_NUM_LAYERS])
    attention = metadata.get(contract.META_ARCH) == contract.ARCH_ATTENTION
    if any(node.op_type == "LSTM" for node in decoder.graph.node):
        step = build_step(decoder, num_layers, attention=attention)
    elif is_step_graph(decoder):
        step = rebuild_step(decoder, num_layers, attention=attention)
    else:
        return {}
    rebuilt = decoder_files(step, float16=(model_dir / contract.DECODER_GREEDY_FP16_FILE).exists(), int8=False)  # int8 below
    if rebuilt[contract.DECODER_FILE].graph.node == decoder.graph.node:  # today's layout already
        return {}
    return rebuilt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2s.export.retrofit", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="an s2s export folder")
    parser.add_argument("--pairs", type=Path, help="the TSV corpus (plain or .gz) the model was trained on: refits the output limit")
    parser.add_argument("--reverse", action="store_true", help="the model translates the second column into the first")
    args = parser.parse_args(argv)
    encoder = onnx.load(args.model_dir / contract.ENCODER_FILE, load_external_data=False)
    metadata = {entry.key: entry.value for entry in encoder.metadata_props}
    normalizer = TextNormalizer.from_dict(json.loads(metadata[contract.META_NORMALIZATION]))
    fitted = fit_to_corpus(args.pairs, normalizer, reverse=args.reverse) if args.pairs else None
    names = retrofit(args.model_dir, fitted)
    limit = f"output limit {fitted['slope']} x source characters + {fitted['intercept']}; " if fitted else ""
    print(f"{limit}rewrote {', '.join(names)} and {contract.CHECKSUMS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
