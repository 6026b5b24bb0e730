"""`s2s.publish`: outputs appear whole or not at all, never through a planted link, locally and on a filesystem reached by scheme."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from apache_beam.io.filesystem import CompressionTypes, FileMetadata, MatchResult
from apache_beam.io.localfilesystem import LocalFileSystem

from s2s.errors import S2SError
from s2s.publish import (
    atomic_open,
    delete_files,
    exists,
    fill_missing,
    is_local,
    publish_lines,
    publish_stream,
    publish_text,
    replace_directory,
)

SCHEME = "published://"


class SchemeFileSystem(LocalFileSystem):
    """Local files under a `published://` scheme: the path `s2s.publish` takes for gs:// or s3://, run offline on Beam's own code."""

    @classmethod
    def scheme(cls) -> str:
        return "published"

    def create(self, path: str, mime_type: str = "application/octet-stream", compression_type: str = CompressionTypes.AUTO):
        return super().create(path.removeprefix(SCHEME), mime_type, compression_type)

    def open(self, path: str, mime_type: str = "application/octet-stream", compression_type: str = CompressionTypes.AUTO):
        return super().open(path.removeprefix(SCHEME), mime_type, compression_type)

    def rename(self, sources: list[str], destinations: list[str]) -> None:
        super().rename([path.removeprefix(SCHEME) for path in sources], [path.removeprefix(SCHEME) for path in destinations])

    def exists(self, path: str) -> bool:
        return super().exists(path.removeprefix(SCHEME))

    def delete(self, paths: list[str]) -> None:
        for path in paths:
            os.remove(path.removeprefix(SCHEME))

    def match(self, patterns: list[str], limits: list[int] | None = None) -> list[MatchResult]:
        results = super().match([pattern.removeprefix(SCHEME) for pattern in patterns], limits)
        return [
            MatchResult(SCHEME + result.pattern, [FileMetadata(SCHEME + found.path, found.size_in_bytes) for found in result.metadata_list])
            for result in results
        ]


def test_a_local_file_replaces_a_planted_link_and_never_writes_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "out.txt").symlink_to(victim)
    publish_text(tmp_path / "out.txt", "translations\n")
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "out.txt").is_symlink() and (tmp_path / "out.txt").read_text() == "translations\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.txt", "victim.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as stream:
        stream.write("half")
        raise RuntimeError("killed midway")
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["summary.json"]

    def lines():  # a step that fails after its first line: publish_lines writes it straight into the temporary file
        yield "half"
        raise RuntimeError("killed midway")

    with pytest.raises(RuntimeError):
        publish_lines(target, lines())
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["summary.json"]


def test_a_file_on_a_filesystem_reached_by_scheme_is_renamed_into_place(tmp_path: Path) -> None:
    SchemeFileSystem  # registered with Beam by being defined: FileSystems finds it by its scheme  # noqa: B018
    target = f"{SCHEME}{tmp_path}/shard-00000-of-00001.tsv"
    assert not is_local(target) and is_local(tmp_path / "x") and not exists(target)
    assert publish_lines(target, ["a\t1", "b\t2"]) == 2
    assert publish_lines(target, ["c\t3"]) == 1  # a repeated step replaces the file
    assert (tmp_path / "shard-00000-of-00001.tsv").read_text() == "c\t3\n"
    fill_missing([target, f"{SCHEME}{tmp_path}/empty.tsv"], b"")
    assert (tmp_path / "shard-00000-of-00001.tsv").read_text() == "c\t3\n" and (tmp_path / "empty.tsv").read_bytes() == b""
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty.tsv", "shard-00000-of-00001.tsv"]  # no .tmp- left
    delete_files(target, str(tmp_path / "empty.tsv"), str(tmp_path / "absent"))
    assert list(tmp_path.iterdir()) == []


def test_a_failed_remote_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    SchemeFileSystem  # noqa: B018

    class Failing(io.BytesIO):
        def read(self, *args: object) -> bytes:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        publish_stream(f"{SCHEME}{tmp_path}/out.tsv", Failing())
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_swapped_in_whole_keeping_files_it_does_not_write_when_asked(tmp_path: Path) -> None:
    target, new = tmp_path / "onnx", tmp_path / ".onnx.staging"
    target.mkdir()
    (target / "encoder.onnx").write_text("old")
    (target / "NOTES.txt").write_text("the user's")
    new.mkdir()
    (new / "encoder.onnx").write_text("new")
    inode = os.stat(new).st_ino
    replace_directory(new, target, keep_others=True)
    assert os.stat(target).st_ino == inode  # the staged folder itself took the place: one exchange, not a file-by-file copy
    assert (target / "encoder.onnx").read_text() == "new" and (target / "NOTES.txt").read_text() == "the user's"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["onnx"]
    again = tmp_path / ".onnx.again"
    again.mkdir()
    (again / "encoder.onnx").write_text("newer")
    replace_directory(again, target)
    assert sorted(path.name for path in target.iterdir()) == ["encoder.onnx"]


def test_an_unwritable_place_is_one_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(S2SError, match=f"cannot write {tmp_path / 'a-file' / 'out.txt'}"):
        publish_text(tmp_path / "a-file" / "out.txt", "x")
