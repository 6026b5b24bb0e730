"""Brings an export made before the attention output and the fitted output limit up to date, without the Keras model.

    python -m s2s.export.retrofit MODEL_DIR --pairs CORPUS.tsv[.gz] [--reverse]

Exports made by this s2s already have both. An older one (the shipped model
was one) gets, in place and published atomically file by file:

- an `attention` output on every decoder file (see `graphs.add_attention_output`);
- `s2s.output_length` in every file's metadata, fitted to the corpus's pairs
  after the model's own normalisation (`--reverse` when the model translates
  the second column into the first);
- a new `SHA256SUMS`.

The weights and the model id do not change, so translations do not either.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import onnx

from s2s import onnx_contract as contract
from s2s import output_length
from s2s.checksums import file_sha256
from s2s.export.export import OUTPUT_DOCS
from s2s.export.graphs import add_attention_output
from s2s.files import atomic_open
from s2s.text import TextNormalizer


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


def retrofit(model_dir: Path, fitted: dict[str, float]) -> list[str]:
    """Adds the attention output and the fitted limit to every ONNX file of `model_dir`; returns the files rewritten."""
    names = sorted(path.name for path in model_dir.glob("*.onnx"))
    for name in names:
        model = onnx.load(model_dir / name)
        metadata = {entry.key: entry.value for entry in model.metadata_props}
        if metadata.get(contract.META_ROLE) in ("decoder", "decoder_greedy") and contract.ATTENTION not in {o.name for o in model.graph.output}:
            model = add_attention_output(model, half=metadata.get(contract.META_PRECISION) == "float16")
        metadata[contract.META_OUTPUT_LENGTH] = json.dumps(fitted)
        outputs = json.loads(metadata.get(contract.META_OUTPUTS, "{}"))
        if any(output.name == contract.ATTENTION for output in model.graph.output):
            outputs[contract.ATTENTION] = OUTPUT_DOCS[contract.ATTENTION]
            metadata[contract.META_OUTPUTS] = json.dumps(outputs, ensure_ascii=False)
        del model.metadata_props[:]
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(model)
        with atomic_open(model_dir / name, "wb") as stream:
            stream.write(model.SerializeToString())
    with atomic_open(model_dir / contract.CHECKSUMS_FILE) as stream:
        stream.writelines(f"{file_sha256(model_dir / name)}  {name}\n" for name in names)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2s.export.retrofit", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="an s2s export folder")
    parser.add_argument("--pairs", type=Path, required=True, help="the TSV corpus (plain or .gz) the model was trained on")
    parser.add_argument("--reverse", action="store_true", help="the model translates the second column into the first")
    args = parser.parse_args(argv)
    encoder = onnx.load(args.model_dir / contract.ENCODER_FILE, load_external_data=False)
    metadata = {entry.key: entry.value for entry in encoder.metadata_props}
    normalizer = TextNormalizer.from_dict(json.loads(metadata[contract.META_NORMALIZATION]))
    fitted = fit_to_corpus(args.pairs, normalizer, reverse=args.reverse)
    names = retrofit(args.model_dir, fitted)
    print(f"output limit {fitted['slope']} x source characters + {fitted['intercept']}; rewrote {', '.join(names)} and {contract.CHECKSUMS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
