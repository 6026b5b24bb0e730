"""`s2s translate-beam` on real engines: Beam's Dask runner over a LocalCluster, and a model on a non-local filesystem."""

from pathlib import Path

import pytest
from apache_beam.io.filesystem import CompressionTypes, FileMetadata, MatchResult
from apache_beam.io.localfilesystem import LocalFileSystem

from s2s.errors import S2SError
from s2s.pipelines.translate_pipeline import translate_with_pipeline
from s2s.serving.config import TranslateConfig

IN_PROCESS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
MIRROR = "mirror://"


class MirrorFileSystem(LocalFileSystem):
    """Local files under a `mirror://` scheme: a filesystem Beam reaches by scheme, as gs:// or s3://, runnable offline.

    Only the scheme is new; the bytes come from Beam's own LocalFileSystem, so the
    model-fetching code runs the path a remote model takes (match, open, copy).
    """

    @classmethod
    def scheme(cls) -> str:
        return "mirror"

    def match(self, patterns: list[str], limits: list[int] | None = None) -> list[MatchResult]:
        results = super().match([pattern.removeprefix(MIRROR) for pattern in patterns], limits)
        return [
            MatchResult(MIRROR + result.pattern, [FileMetadata(MIRROR + found.path, found.size_in_bytes) for found in result.metadata_list])
            for result in results
        ]

    def open(self, path: str, mime_type: str = "application/octet-stream", compression_type: str = CompressionTypes.AUTO):
        return super().open(path.removeprefix(MIRROR), mime_type, compression_type)


def _rows(prefix: Path) -> list[str]:
    return sorted(line for path in prefix.parent.glob(f"{prefix.name}-*-of-*.tsv") for line in path.read_text().splitlines())


@pytest.fixture()
def corpus(tmp_path: Path, validation_sources: list[str]) -> str:
    (tmp_path / "a.txt").write_text("\n".join(validation_sources[:120]) + "\n\n")
    (tmp_path / "b.txt").write_text("\n".join(validation_sources[120:200]) + "\n")
    return str(tmp_path / "*.txt")


@pytest.fixture(scope="module")
def validation_sources(toy_model) -> list[str]:
    from s2s.records import load_references

    return load_references(toy_model.data_dir, "validation", 200)[0]


def test_shards_are_complete_sorted_and_counted(toy_onnx, corpus: str, tmp_path: Path, validation_sources) -> None:
    rows = translate_with_pipeline(str(toy_onnx[0]), [corpus], str(tmp_path / "out" / "t"), num_shards=4, pipeline_args=IN_PROCESS)
    shards = sorted((tmp_path / "out").glob("t-*-of-00004.tsv"))
    assert rows == 120 + 1 + 80 and len(shards) == 4
    for shard in shards:
        keys = [(path, int(number)) for path, number, _ in (line.split("\t") for line in shard.read_text().splitlines())]
        assert keys == sorted(keys)
    translations = {
        (Path(path).name, int(number)): text for path, number, text in (row.split("\t") for row in _rows(tmp_path / "out" / "t"))
    }
    assert translations[("a.txt", 121)] == ""  # the empty line keeps its row
    assert translations[("b.txt", 80)] == validation_sources[199][2::-1]


def test_a_model_on_another_filesystem_is_fetched_and_translates_alike(toy_onnx, corpus: str, tmp_path: Path) -> None:
    translate_with_pipeline(str(toy_onnx[0]), [corpus], str(tmp_path / "local" / "t"), num_shards=2, pipeline_args=IN_PROCESS)
    remote = MIRROR + str(toy_onnx[0])
    translate_with_pipeline(remote, [corpus], str(tmp_path / "mirror" / "t"), num_shards=2, pipeline_args=IN_PROCESS)
    assert _rows(tmp_path / "mirror" / "t") == _rows(tmp_path / "local" / "t")


def test_a_worker_refuses_a_model_that_changed_since_the_job_started(toy_onnx) -> None:
    from s2s.pipelines.translate_pipeline import _engine

    with pytest.raises(S2SError, match="changed during the job"):
        _engine(MIRROR + str(toy_onnx[0]), "0" * 64, TranslateConfig(batch_size=3, device="cpu"))


def test_a_missing_remote_model_is_one_clear_error(tmp_path: Path, corpus: str) -> None:
    with pytest.raises(S2SError, match="holds no files"):
        translate_with_pipeline(MIRROR + str(tmp_path / "nothing"), [corpus], str(tmp_path / "t"), pipeline_args=IN_PROCESS)


def test_dask_cluster_writes_the_same_rows_as_the_local_runner(toy_onnx, corpus: str, tmp_path: Path) -> None:
    """A real distributed engine: a LocalCluster of two worker processes, through Beam's DaskRunner."""
    import distributed  # in the dev extra

    translate_with_pipeline(str(toy_onnx[0]), [corpus], str(tmp_path / "local" / "t"), num_shards=3)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask = ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner", f"--dask_client_address={cluster.scheduler_address}"]
        rows = translate_with_pipeline(str(toy_onnx[0]), [corpus], str(tmp_path / "dask" / "t"), num_shards=3, pipeline_args=dask)
    assert rows == 201
    assert _rows(tmp_path / "dask" / "t") == _rows(tmp_path / "local" / "t")
