"""Thin wrappers over onnxruntime sessions of the exported encoder and decoder, fed and fetched by name.

Names come from `s2s.onnx_contract`, never from positions: tf2onnx's output
order changes with the conversion route, the contract's names do not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from s2s import onnx_contract as contract
from s2s.errors import InputDataError, InputMissingError, first_line
from s2s.serving.external_data import MalformedModel, external_tensor
from s2s.serving.model_info import ModelInfo

CPU = ["CPUExecutionProvider"]


def read_checksums(directory: Path) -> dict[str, str]:
    """The `SHA256SUMS` of an export directory (`sha256sum` format) by file name; empty if there is none."""
    path = directory / contract.CHECKSUMS_FILE
    if not path.exists():
        return {}
    sums = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        if name:
            sums[name.strip()] = digest.strip()
    return sums


def verified_model_bytes(path: Path, *, verify: bool = True) -> bytes:
    """The bytes of one model file, checked before onnxruntime sees them.

    - Against the export's `SHA256SUMS` (a few milliseconds for a 10 MB
      model): flipped bits in a weight load fine in onnxruntime and translate
      to garbage. A folder without the file, or one that does not list this
      model, is refused too: a check that passes when its list is gone
      protects nothing. `verify=False` skips this for a hand-made folder.
    - For external data, always: s2s exports keep every weight inside the
      file, and a reference to another file would be read unchecked.

    Raises:
        InputMissingError: the file is missing.
        InputDataError: the file is damaged, unlisted, not an ONNX file, or refers to external data.
    """
    if not path.exists():
        raise InputMissingError(f"{path} does not exist: is {path.parent} the output of s2s export?")
    content = path.read_bytes()
    if verify:
        sums_file = path.parent / contract.CHECKSUMS_FILE
        expected = read_checksums(path.parent).get(path.name)
        if not sums_file.exists():
            raise InputDataError(
                f"{path.parent} has no {contract.CHECKSUMS_FILE}, so its files cannot be checked: copy the whole output of "
                "s2s export, or pass --no-verify (verify=False) for a folder made by hand"
            )
        if expected is None:
            raise InputDataError(
                f"{path.name} is not listed in {sums_file}, so it cannot be checked: copy the whole output of s2s export, "
                "or pass --no-verify (verify=False) for a folder made by hand"
            )
        if hashlib.sha256(content).hexdigest() != expected:
            raise InputDataError(f"{path} is damaged: its SHA-256 differs from the one in {contract.CHECKSUMS_FILE}; copy or export the model again")
    try:
        external = external_tensor(content)
    except MalformedModel as error:
        raise InputDataError(f"cannot load {path}: it is not an ONNX model ({error})") from None
    if external is not None:
        raise InputDataError(
            f"{path} keeps tensor {external!r} in an external data file; s2s exports never do, and a host does not read "
            "files a model points to: export the model again"
        )
    return content


def open_session(path: str | Path, providers: list[Any] | None = None, options: Any = None, *, verify: bool = True) -> Any:
    """An onnxruntime InferenceSession of verified bytes (`verified_model_bytes`), with problems reported in one line.

    Raises:
        S2SError: the file is missing, damaged, unlisted or refers to external data, or onnxruntime cannot load it.
    """
    import onnxruntime

    path = Path(path)
    content = verified_model_bytes(path, verify=verify)
    if options is None:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: translator.onnx's overridable default input is intended, not a warning
    try:
        return onnxruntime.InferenceSession(content, sess_options=options, providers=providers or CPU)
    except Exception as error:  # onnxruntime raises its own Fail / InvalidGraph / InvalidProtobuf types
        raise InputDataError(f"cannot load {path}: {first_line(error)}") from None


def model_info(session: Any, path: str | Path) -> ModelInfo:
    """The s2s metadata of a loaded session."""
    return ModelInfo.from_metadata(dict(session.get_modelmeta().custom_metadata_map), str(path))


def check_target_vocabulary(decoder_session: Any, info: ModelInfo, path: str | Path) -> None:
    """Raises InputDataError unless the decoder's probabilities have one column per target-vocabulary entry of the metadata.

    A metadata vocabulary of another size than the graph's output maps ids to
    the wrong characters: garbage with exit status 0, or a reshape error deep
    in beam search.
    """
    for output in decoder_session.get_outputs():
        columns = output.shape[-1] if output.name == contract.PROBABILITIES and output.shape else None
        if isinstance(columns, int) and columns != len(info.target_vocabulary):
            raise InputDataError(
                f"{path} scores {columns} target tokens, but its metadata lists a target vocabulary of "
                f"{len(info.target_vocabulary)}: the metadata does not belong to this graph; export the model again"
            )


def check_same_export(sessions: dict[str, Any]) -> None:
    """Raises S2SError unless every session (by file name) carries the same `s2s.model_id`: files of one export."""
    ids = {name: session.get_modelmeta().custom_metadata_map.get(contract.META_MODEL_ID, "") for name, session in sessions.items()}
    (first, first_id), *others = ids.items()
    for name, other_id in others:
        if other_id != first_id:
            raise InputDataError(
                f"{first} and {name} are files from different exports (model ids {first_id[:12]} and {other_id[:12]}): "
                "copy the whole output directory of one s2s export"
            )


class EncoderSession:
    """encoder.onnx: source ids -> the (h, c) states of every layer, then what an attention decoder reads back.

    Args:
        session: an InferenceSession of encoder.onnx.
        info: the model's metadata (layers and architecture).
    """

    def __init__(self, session: Any, info: ModelInfo):
        self.session = session
        self.state_count = 2 * info.num_layers
        self.output_names = contract.state_names(info.num_layers) + contract.memory_names(info.arch)

    def __call__(self, source_ids: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(states `[h_0, c_0, ...]`, each (batch, latent); memory, empty or `[encoder_outputs, source_mask]`) of int32 ids."""
        outputs = self.session.run(self.output_names, {contract.SOURCE_IDS: source_ids})
        return outputs[: self.state_count], outputs[self.state_count :]


class DecoderSession:
    """decoder.onnx: one step from the previous token ids, states and memory to probabilities and new states (and attention)."""

    def __init__(self, session: Any, info: ModelInfo):
        self.session = session
        self.state_names = contract.state_names(info.num_layers)
        self.memory_names = contract.memory_names(info.arch)
        self.next_state_names = contract.next_state_names(info.num_layers)
        self.output_names = [contract.PROBABILITIES, *self.next_state_names]
        outputs = {output.name for output in session.get_outputs()}
        # Exports since the attention output have it; older ones and lstm models do not, and never need to.
        self.has_attention = contract.ATTENTION in outputs
        self.has_next_token = contract.NEXT_TOKEN in outputs  # decoder_greedy.onnx: the argmax comes out of the graph
        self.token_names = [contract.NEXT_TOKEN if self.has_next_token else contract.PROBABILITIES, *self.next_state_names]

    def _inputs(self, tokens: np.ndarray, states: list[np.ndarray], memory: list[np.ndarray]) -> dict[str, np.ndarray]:
        """The step's inputs by name."""
        return {
            contract.PREVIOUS_TOKEN: tokens,
            **dict(zip(self.state_names, states, strict=True)),
            **dict(zip(self.memory_names, memory, strict=True)),
        }

    def __call__(
        self, tokens: np.ndarray, states: list[np.ndarray], memory: list[np.ndarray], *, attention: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray | None]:
        """(probabilities (batch, target_vocab), next states, attention (batch, time) or None) for int32 token ids (batch,).

        The attention weights are fetched only when asked for (and the file has them): a plain step computes them anyway,
        but copying them out costs a little.
        """
        names = [*self.output_names, contract.ATTENTION] if attention else self.output_names
        probabilities, *outputs = self.session.run(names, self._inputs(tokens, states, memory))
        if attention:
            return probabilities, outputs[:-1], outputs[-1]
        return probabilities, outputs, None

    def next_tokens(self, tokens: np.ndarray, states: list[np.ndarray], memory: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """(the argmax ids (batch,) int32, next states) of one step: greedy's step, which needs no probabilities on the host."""
        chosen, *next_states = self.session.run(self.token_names, self._inputs(tokens, states, memory))
        if not self.has_next_token:
            chosen = chosen.argmax(axis=-1).astype(np.int32)
        return chosen, next_states

    def bind_step(
        self, tokens: np.ndarray, states: list[np.ndarray], memory: list[np.ndarray], next_tokens: np.ndarray, next_states: list[np.ndarray]
    ) -> Any:
        """An onnxruntime IO binding of one greedy step onto preallocated CPU arrays: inputs read and outputs written in place.

        The step then allocates nothing and copies nothing through Python; the
        binding stays valid as long as the arrays do (a caller rebinds after
        replacing one). Needs the `next_token` output (decoder_greedy.onnx).
        """
        binding = self.session.io_binding()
        outputs = {contract.NEXT_TOKEN: next_tokens, **dict(zip(self.next_state_names, next_states, strict=True))}
        for name, array in self._inputs(tokens, states, memory).items():
            binding.bind_input(name, "cpu", 0, array.dtype, list(array.shape), array.ctypes.data)
        for name, array in outputs.items():
            binding.bind_output(name, "cpu", 0, array.dtype, list(array.shape), array.ctypes.data)
        return binding

    def run_bound(self, binding: Any) -> None:
        """Runs a binding made by `bind_step`: its output arrays now hold the step's results."""
        self.session.run_with_iobinding(binding)

