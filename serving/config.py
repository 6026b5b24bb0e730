"""Settings of `s2s translate` and `s2s translate-beam`: the `[translate]` table of a config file, overridden by flags.

numpy-free and onnxruntime-free, so the command line can build its flags
from these fields without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from s2s.config import setting
from s2s.errors import ConfigError
from s2s.serving.long_lines import LONG_LINE_POLICIES, SPLIT
from s2s.serving.options import DecodingOptions

DEVICES = ("auto", "cuda", "cpu")
PRECISIONS = ("float32", "float16", "int8")
# Sentences decoded together when the caller gives no batch size. On the CPU larger batches stop paying off past a few
# hundred; on a GPU the loop is launch-bound and throughput grows to tens of thousands (see benchmarks/bench_gpu.py).
# The CPU: 128 sentences share a step's fixed costs (about 40 us of onnxruntime and the pool's bookkeeping) over twice the
# rows of 64, while the attention memory is read from beyond the 2 MB L2 either way: 4,209-4,311 sentences/s against
# 4,020-4,192 at 64 and 4,152-4,169 at 256 (benchmarks/bench_cpu.py, 60,000 lines, 2 cores, 2026-12-03).
AUTO_BATCH_SIZE = {"cpu": 128, "cuda": 16384}


def resolve_batch_size(requested: int, device: str) -> int:
    """The batch size to decode with on `device` ("cpu" or "cuda"): `requested`, or the device's default for 0 ("automatic").

    The one place "0 = automatic" is decided, for `s2s translate`, the chain, `translate-beam` and library callers.

    Raises:
        S2SError: a negative size.
    """
    if requested < 0:
        raise ConfigError(f"the batch size must be 0 (automatic) or more, got {requested}")
    return requested or AUTO_BATCH_SIZE[device]


@dataclass(frozen=True)
class TranslateConfig:
    """Where and how a corpus is translated. "0" means automatic for the batch size and the model's own limit for the length."""

    device: str = setting("auto", "auto: CUDA if usable, else the CPU; cuda: an error without a GPU", DEVICES)
    precision: str = setting("float32", "float16 uses the *_fp16.onnx files (GPUs), int8 the *_int8.onnx files (CPUs)", PRECISIONS)
    batch_size: int = setting(0, "sentences decoded together; 0 picks for the device: 128 on the CPU, 16384 on a GPU", at_least=0, zero="automatic")
    window: int = setting(
        0,
        "lines read, sorted by length and checkpointed together; 0: 16,384 or 16 batches, whichever is more",
        at_least=0,
        zero="automatic",
    )
    beam_size: int = setting(1, "1 for greedy decoding, K for beam search over K hypotheses", at_least=1)
    max_output_length: int = setting(0, "most characters per translation; 0 uses the model's", at_least=0, zero="the model's")
    length_penalty: float = setting(1.0, "beam score = log-probability / length ** A", at_least=0)
    long_lines: str = setting(
        SPLIT, "a source longer than the model's limit: split at sentence ends and join the translations, truncate, or error", LONG_LINE_POLICIES
    )
    min_output_length: int = setting(0, "the end token is forbidden before this many characters", at_least=0)
    num_hypotheses: int = setting(1, "translations per source (n-best), at most beam_size; needs --format tsv or jsonl", at_least=1)
    scores: bool = setting(False, "write each translation's score (log-probability / length ** length_penalty); tsv or jsonl")
    attention: bool = setting(False, "write the attention weights of each output character (jsonl)")
    replace_unknowns: bool = setting(False, "an <unk> in the output becomes the source character attended to most")
    sampling_topk: int = setting(1, "1: the most likely character (greedy); K > 1: sample among the K most likely; 0: among all", at_least=0, zero="all")
    sampling_temperature: float = setting(1.0, "with sampling: below 1 sharper, above 1 flatter", above=0)
    sampling_seed: int = setting(0, "the random seed of sampling, so a run can be repeated")
    inter_threads: int = setting(
        0, "batches decoded at once, each on its own thread; 0: one per CPU core on the CPU, 1 on a GPU", at_least=0, zero="automatic"
    )
    intra_threads: int = setting(
        0, "threads inside each onnxruntime call; 0: the cores shared among the inter_threads loops (CPU), onnxruntime's choice (GPU)",
        at_least=0,
        zero="automatic",
    )
    verify: bool = setting(True, "check the model's files against its SHA256SUMS; --no-verify loads a hand-made folder, with a warning")

    def validate(self) -> None:
        """The rules between settings that need no model (each setting's own range is declared with it; the rules that
        depend on the model come with it, in `DecodingOptions.validate`).

        Raises:
            ConfigError: the first rule broken.
        """
        self.decoding().validate_model_free()

    def decoding(self) -> DecodingOptions:
        """The frozen decoding options these settings ask for."""
        return DecodingOptions(
            max_output_length=self.max_output_length or None,
            beam_size=self.beam_size,
            length_penalty=self.length_penalty,
            long_lines=self.long_lines,
            min_output_length=self.min_output_length,
            num_hypotheses=self.num_hypotheses,
            return_scores=self.scores,
            return_attention=self.attention,
            replace_unknowns=self.replace_unknowns,
            sampling_topk=self.sampling_topk,
            sampling_temperature=self.sampling_temperature,
            sampling_seed=self.sampling_seed,
        )
