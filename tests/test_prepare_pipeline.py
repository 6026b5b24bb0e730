"""The real Beam pipeline on a hostile corpus: every line accounted for, records that decode back."""

import gzip
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from s2s.pipelines import cleaning
from s2s.pipelines.config import PrepareConfig
from s2s.pipelines.prepare import prepare
from s2s.records import DECODER_INPUT, DECODER_TARGET, ENCODER_INPUT, SOURCE_TEXT, TARGET_TEXT, read_examples
from s2s.spec import SPLITS, DatasetSpec
from s2s.vocab import END_ID, START_ID, UNKNOWN_ID
from tests.toy import IN_PROCESS

WORDS = ["go", "run", "stop", "wait", "look", "hide"]
GOOD = [f"{a} {b}.\t{b} {a} !" for a in WORDS for b in WORDS if a != b]  # 30 distinct pairs, common characters

# (line, expected reason or None for kept); the second file is gzipped and ends without a newline
FILE_TWO = [
    *[(line.encode(), None) for line in GOOD[15:]],
    (b"", cleaning.BLANK_LINE),
    (b"  \t ", cleaning.BLANK_LINE),
    (b"go run", cleaning.WRONG_COLUMN_COUNT),
    (b"go\trun\tstop\tlook", cleaning.WRONG_COLUMN_COUNT),
    (b"go\trun\tCC-BY 2.0 (France) Attribution: tatoeba.org #1", None),  # three columns: attribution dropped
    (b"go \xff\trun", cleaning.UNDECODABLE),
    (b"go\x00\trun", cleaning.CONTROL_CHARACTER),
    (b"go\x1b[31m\trun", cleaning.CONTROL_CHARACTER),
    (b"g" * 1_000_000 + b"\trun", cleaning.SOURCE_TOO_LONG),  # a 1 MB line
    (b"go\t" + b"r" * 150, cleaning.TARGET_TOO_LONG),
    (GOOD[0].encode(), cleaning.DUPLICATE),  # first seen in file one
    ("go\u00a0stop.\tstop go\u202f!".encode(), cleaning.DUPLICATE),  # the same as GOOD[1] once cleaned
    (b" \tgo", cleaning.EMPTY_SIDE),
    ("hide\u200b.\tstop\u00ad !".encode(), None),  # invisible characters removed: "hide." / "stop !"
    ("go\u03a9.\trun !".encode(), cleaning.RARE_CHARACTER),  # Greek omega, seen once
    (b"stop stop.\tstop stop !", None),
]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path, Path]:
    root = tmp_path_factory.mktemp("hostile")
    file_one = root / "one.txt"
    file_one.write_bytes(b"\xef\xbb\xbf" + b"".join(line.encode() + b"\r\n" for line in GOOD[:15]))  # BOM, CRLF
    file_two = root / "two.txt.gz"
    file_two.write_bytes(gzip.compress(b"\n".join(line for line, _ in FILE_TWO)))
    output = root / "data"
    config = PrepareConfig(min_char_count=2, rare_characters="reject", validation_fraction=0.2, test_fraction=0.2)
    manifest = prepare([str(root / "*.txt"), str(file_two)], str(output), config, IN_PROCESS)
    return output, manifest, file_one, file_two


def test_every_line_lands_in_exactly_one_bucket(prepared: tuple) -> None:
    _, manifest, _, _ = prepared
    expected = Counter(reason for _, reason in FILE_TWO if reason)
    assert manifest["lines_read"] == 15 + len(FILE_TWO)
    assert manifest["pairs_kept"] == 15 + sum(1 for _, reason in FILE_TWO if reason is None)
    assert {reason: count for reason, count in manifest["rejected"].items() if count} == dict(expected)
    assert manifest["lines_read"] == manifest["pairs_kept"] + sum(manifest["rejected"].values())
    assert sum(manifest["split_sizes"].values()) == manifest["pairs_kept"]


def test_rejects_file_names_file_line_and_reason(prepared: tuple) -> None:
    output, _, file_one, file_two = prepared
    rejects = [json.loads(line) for path in sorted(output.glob("rejects-*.jsonl")) for line in path.read_text().splitlines()]
    found = {(entry["path"], entry["line_number"]): entry["reason"] for entry in rejects}
    expected = {(str(file_two), number): reason for number, (_, reason) in enumerate(FILE_TWO, 1) if reason}
    assert found == expected
    duplicate = next(entry for entry in rejects if entry["line_number"] == 11 + 15)
    assert duplicate["detail"] == f"first seen at {file_one}:1"


def test_manifest_records_inputs_with_checksums(prepared: tuple) -> None:
    import hashlib

    _, manifest, file_one, file_two = prepared
    assert [entry["path"] for entry in manifest["inputs"]] == sorted([str(file_one), str(file_two)])
    for entry in manifest["inputs"]:
        assert entry["sha256"] == hashlib.sha256(Path(entry["path"]).read_bytes()).hexdigest()


def test_records_decode_back_to_the_cleaned_texts(prepared: tuple) -> None:
    output, _, _, _ = prepared
    spec = DatasetSpec.load(output)
    expected = {tuple(line.split("\t")) for line in GOOD} | {("go", "run"), ("hide.", "stop !"), ("stop stop.", "stop stop !")}
    decoded = set()
    for split in SPLITS:
        for example in read_examples(output, split, spec).as_numpy_iterator():
            source, target = example[SOURCE_TEXT].decode(), example[TARGET_TEXT].decode()
            encoder_ids = _ids_of(example[ENCODER_INPUT])
            decoder_ids = _ids_of(example[DECODER_INPUT])
            target_ids = _ids_of(example[DECODER_TARGET])
            assert spec.source_vocabulary.decode(encoder_ids) == source
            assert decoder_ids[0] == START_ID and spec.target_vocabulary.decode(decoder_ids) == target
            assert target_ids[-1] == END_ID and target_ids[:-1] == decoder_ids[1:]
            decoded.add((source, target))
    assert decoded == expected


def test_padding_rows_are_all_zero_and_shapes_follow_the_spec(prepared: tuple) -> None:
    output, _, _, _ = prepared
    spec = DatasetSpec.load(output)
    assert spec.max_source_length == max(len(source) for source, _ in (line.split("\t") for line in GOOD))
    batch = next(iter(read_examples(output, "train", spec).batch(4)))
    encoder_input, decoder_input, decoder_target = batch[ENCODER_INPUT], batch[DECODER_INPUT], batch[DECODER_TARGET]
    assert encoder_input.shape[1:] == (spec.max_source_length, len(spec.source_vocabulary))
    assert decoder_input.shape[1:] == decoder_target.shape[1:] == (spec.decoder_steps, len(spec.target_vocabulary))
    assert encoder_input.dtype.name == "float32"
    row_sums = encoder_input.numpy().sum(axis=-1)
    assert set(np.unique(row_sums)) <= {0.0, 1.0}
    assert np.all(np.diff(row_sums, axis=1) <= 0)  # once padding starts, it does not stop


def test_a_rerun_replaces_the_previous_outputs(prepared: tuple, tmp_path: Path) -> None:
    """Stale shards of an earlier run (here: more of them) must not mix into the new dataset."""
    _, _, file_one, _ = prepared
    rerun = tmp_path / "data"
    prepare([str(file_one)], str(rerun), PrepareConfig(num_shards=3, min_char_count=1), IN_PROCESS)
    prepare([str(file_one)], str(rerun), PrepareConfig(num_shards=1, min_char_count=1), IN_PROCESS)
    assert sorted(path.name for path in rerun.glob("train-*")) == ["train-00000-of-00001.tfrecord.gz"]
    assert not list(rerun.glob(".staging-*"))
    assert json.loads((rerun / "manifest.json").read_text())["pairs_kept"] == 15


def _ids_of(one_hot: np.ndarray) -> list[int]:
    return [int(row.argmax()) for row in one_hot if row.sum() > 0]


def test_all_translations_of_a_source_share_a_split(tmp_path: Path) -> None:
    corpus = tmp_path / "many.tsv"
    corpus.write_text("".join(f"source {index}.\ttranslation {variant} of {index}.\n" for index in range(150) for variant in range(3)))
    output = tmp_path / "data"
    manifest = prepare(
        [str(corpus)], str(output), PrepareConfig(min_char_count=1, validation_fraction=0.25, test_fraction=0.25), IN_PROCESS
    )
    spec = DatasetSpec.load(output)
    split_of_source: dict[str, set[str]] = {}
    for split in SPLITS:
        for example in read_examples(output, split, spec).as_numpy_iterator():
            split_of_source.setdefault(example[SOURCE_TEXT].decode(), set()).add(split)
    assert len(split_of_source) == 150
    assert all(len(splits) == 1 for splits in split_of_source.values())
    assert all(manifest["split_sizes"][split] % 3 == 0 and manifest["split_sizes"][split] > 0 for split in SPLITS)


def test_rare_characters_become_unknown_by_default_and_the_pair_is_kept(tmp_path: Path) -> None:
    """The default of NMT tools: a character seen too rarely leaves the vocabulary and reads as <unk>; the pair stays."""
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("go\tva\nog\tav\ngog\tava\nZoo\tZoo!\n", encoding="utf-8")
    output = tmp_path / "data"
    manifest = prepare([str(corpus)], str(output), PrepareConfig(min_char_count=2, validation_fraction=0.0, test_fraction=0.0), IN_PROCESS)
    assert manifest["pairs_kept"] == 4 and manifest["rejected"][cleaning.RARE_CHARACTER] == 0
    spec = DatasetSpec.load(output)
    assert "Z" not in spec.source_vocabulary.characters and "o" in spec.source_vocabulary.characters
    assert "Z" not in spec.target_vocabulary.characters and "!" not in spec.target_vocabulary.characters
    assert manifest["unknown_characters"] == {"source": 1, "target": 2}  # "Z"; "Z" and "!"
    decoded = {
        example[SOURCE_TEXT].decode(): example[ENCODER_INPUT].argmax(axis=-1)[:3].tolist()
        for example in read_examples(output, "train", spec).as_numpy_iterator()
    }
    assert decoded["Zoo"][0] == UNKNOWN_ID


def test_direction_reverse_trains_the_other_way_from_the_same_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("go\tva\nrun\tcours\n", encoding="utf-8")
    config = PrepareConfig(min_char_count=1, direction="reverse", validation_fraction=0.0, test_fraction=0.0)
    prepare([str(corpus)], str(tmp_path / "data"), config, IN_PROCESS)
    spec = DatasetSpec.load(tmp_path / "data")
    pairs = {
        (example[SOURCE_TEXT].decode(), example[TARGET_TEXT].decode())
        for example in read_examples(tmp_path / "data", "train", spec).as_numpy_iterator()
    }
    assert pairs == {("va", "go"), ("cours", "run")}
    assert set(spec.source_vocabulary.characters) == set("vacours")


def test_written_files_are_counted_against_the_tallies(prepared: tuple, tmp_path: Path) -> None:
    from s2s.errors import S2SError
    from s2s.pipelines.row_counts import count_lines, count_tfrecords

    output, manifest, _, _ = prepared
    for split in SPLITS:
        assert count_tfrecords(str(output / f"{split}-*-of-*.tfrecord.gz")) == manifest["split_sizes"][split]
    assert count_lines(str(output / "rejects-*-of-*.jsonl")) == sum(manifest["rejected"].values())
    whole = gzip.decompress(next(output.glob("train-*.tfrecord.gz")).read_bytes())
    (tmp_path / "cut.tfrecord.gz").write_bytes(gzip.compress(whole[:-3]))
    with pytest.raises(S2SError, match="cut short"):
        count_tfrecords(str(tmp_path / "cut.tfrecord.gz"))


def test_the_same_corpus_in_another_folder_gives_the_same_dataset(tmp_path: Path) -> None:
    """Lines are sharded by file name and line number, not the whole path: a corpus prepared from another folder (a moved
    checkout, a temporary directory) gives the same records in the same order, so the same seed trains the same model."""
    corpus = "".join(f"source {index}.\ttarget {index} !\n" for index in range(300))
    config = PrepareConfig(num_shards=3, min_char_count=1)
    for folder in ("here", "elsewhere/deeper"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "pairs.tsv").write_text(corpus)
        prepare([str(tmp_path / folder / "pairs.tsv")], str(tmp_path / folder / "data"), config, IN_PROCESS)
    names = sorted(path.name for path in (tmp_path / "here" / "data").iterdir() if path.name != "manifest.json")
    assert len([name for name in names if name.startswith("train-")]) == 3
    for name in names:
        assert (tmp_path / "elsewhere/deeper/data" / name).read_bytes() == (tmp_path / "here" / "data" / name).read_bytes(), name


def test_a_dask_cluster_writes_the_same_dataset_byte_for_byte(tmp_path: Path) -> None:
    """A real distributed engine: Beam's DaskRunner on a LocalCluster of two worker processes, against the local runner."""
    import distributed  # in the dev extra

    corpus = tmp_path / "pairs.tsv"
    corpus.write_bytes(b"\n".join([*(line.encode() for line in GOOD), *(line for line, _ in FILE_TWO[15:30])]) + b"\n")
    config = PrepareConfig(min_char_count=2, rare_characters="reject", validation_fraction=0.2, test_fraction=0.2)
    local = prepare([str(corpus)], str(tmp_path / "local"), config, IN_PROCESS)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask = ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner", f"--dask_client_address={cluster.scheduler_address}"]
        on_dask = prepare([str(corpus)], str(tmp_path / "dask"), config, dask)
    assert on_dask["split_sizes"] == local["split_sizes"] and on_dask["rejected"] == local["rejected"]
    assert sum(local["rejected"].values()) > 5 and min(local["split_sizes"].values()) > 0
    names = sorted(path.name for path in (tmp_path / "local").iterdir() if path.name != "manifest.json")
    assert names == sorted(path.name for path in (tmp_path / "dask").iterdir() if path.name != "manifest.json")
    for name in names:
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
