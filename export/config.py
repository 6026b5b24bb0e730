"""Settings of `s2s export`: the `[export]` table of a config file, overridden by flags."""

from __future__ import annotations

from dataclasses import dataclass

from s2s.config import setting


@dataclass(frozen=True)
class ExportConfig:
    """How much verification the ONNX export gets, and whether float16 and int8 files are written."""

    verify_sources: int = setting(1000, "validation sources translated by Keras and ONNX and compared", at_least=1)
    float16: bool = setting(True, "also write float16 variants for GPUs")
    int8: bool = setting(True, "also write int8 variants for CPUs (dynamic quantization)")
