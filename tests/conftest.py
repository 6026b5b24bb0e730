"""Shared test setup: quiet TensorFlow, no telemetry, and the repository on sys.path."""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tests run on the CPU, as CI does
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
