"""A model folder anywhere Beam's FileSystems reach (gs://, s3://, hdfs://, local), as a local folder onnxruntime can open.

A Dataflow or Flink worker does not share the launcher's disk, so `s2s
translate-beam --model gs://bucket/onnx` cannot hand workers a local path.
Each worker process copies the folder once into a private temporary folder
and keeps it for the life of the process; every bundle after the first reuses
it. The copy is then checked against the model id the launcher saw, so a
model replaced in the bucket mid-job fails the job instead of mixing two
models' translations in one output.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from pathlib import Path

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from s2s.errors import S2SError, first_line

_COPY_CHUNK = 1 << 22
_fetched: dict[str, str] = {}
_lock = threading.Lock()


def is_remote(path: str) -> bool:
    """True for a path with a filesystem scheme (gs://, s3://, ...), which onnxruntime cannot open directly."""
    return FileSystems.get_scheme(path) is not None


def local_model_dir(model: str) -> str:
    """`model` itself when local; else a local copy of its files, made once per process.

    Raises:
        S2SError: the remote folder holds no files or cannot be read.
    """
    if not is_remote(model):
        return model
    with _lock:  # one copy per process, however many threads run bundles
        if model not in _fetched:
            _fetched[model] = _copy_folder(model)
        return _fetched[model]


def _copy_folder(model: str) -> str:
    pattern = FileSystems.join(model.rstrip("/"), "*")
    try:
        files = [metadata.path for metadata in FileSystems.match([pattern])[0].metadata_list if not metadata.path.endswith("/")]
    except Exception as error:  # BeamIOError or ValueError, by filesystem
        raise S2SError(f"cannot list model folder {model}: {first_line(error)}") from None
    if not files:
        raise S2SError(f"model folder {model} holds no files: pass the output of s2s export")
    local = Path(tempfile.mkdtemp(prefix="s2s-model-"))
    atexit.register(shutil.rmtree, local, ignore_errors=True)
    for path in files:
        target = local / path.rstrip("/").rsplit("/", 1)[-1]
        try:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as source, open(target, "wb") as copy:
                shutil.copyfileobj(source, copy, _COPY_CHUNK)
        except Exception as error:
            raise S2SError(f"cannot copy {path} from the model folder: {first_line(error)}") from None
    return str(local)


def check_model_id(model: str, found: str, expected: str) -> None:
    """Raises S2SError when the model a worker loaded is not the one the job started with."""
    if found != expected:
        raise S2SError(
            f"the model at {model} changed during the job (model id {found[:12]}, the job started with {expected[:12]}): "
            "run it again once the model folder is stable"
        )
