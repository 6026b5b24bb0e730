"""Imports TensorFlow without its native start-up chatter on stderr.

TensorFlow's C++ runtime prints lines such as "Could not find cuda drivers
on your machine" and "failed call to cuInit" straight to file descriptor 2 before Python's logging or
TF_CPP_MIN_LOG_LEVEL can stop it. In a scheduled job's log they read like
errors. This module silences descriptor 2 for the import and device discovery alone; Python
exceptions from the import still propagate with their messages.

After the import, TensorFlow's C++ log is kept to fatal lines
(TF_CPP_MIN_LOG_LEVEL=3, unless the environment sets it): on CPUs without
AVX-512, oneDNN logs "E0000 ... oneDNN supports DT_BOOL only on platforms
with AVX-512" when training starts, an ERROR line about a harmless fallback.
Turning oneDNN off instead (TF_ENABLE_ONEDNN_OPTS=0) silences it too but
halves training speed on the 2-core CI machine. Failures that matter reach
Python as exceptions; S2S_DEBUG=1 brings back every C++ line.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType


def quiet_native_logs() -> None:
    """Keeps TensorFlow's C++ log to fatal lines unless S2S_DEBUG=1 or the environment says otherwise; call before TF loads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("S2S_DEBUG") else "3")


def import_tensorflow() -> ModuleType:
    """Returns the `tensorflow` module, importing it quietly the first time."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    quiet_native_logs()
    if os.environ.get("S2S_DEBUG"):
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow

            tensorflow.config.list_physical_devices()  # device discovery prints "failed call to cuInit" on GPU-less hosts
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return tensorflow
