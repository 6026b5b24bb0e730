"""Modules renamed or split keep their old names for one release, as aliases of the same objects."""

import importlib

import pytest

ALIASES = {
    "s2s.serving.files": {
        "FileJob": "s2s.serving.file_job",
        "input_files": "s2s.serving.inputs",
        "input_size": "s2s.serving.inputs",
        "is_special_output": "s2s.serving.writer",
        "write_translations": "s2s.serving.writer",
    },
    "s2s.swap": {"replace_directory": "s2s.publish"},
    "s2s.pipelines.atomic_files": {"publish_lines": "s2s.publish", "fill_missing": "s2s.publish", "delete_files": "s2s.publish"},
    "s2s.pipelines.translate_beam": {"translate_with_pipeline": "s2s.pipelines.translate_pipeline", "check_row_count": "s2s.pipelines.translate_pipeline"},
}


@pytest.mark.parametrize("old", sorted(ALIASES))
def test_an_old_module_name_gives_the_new_objects(old: str) -> None:
    module = importlib.import_module(old)
    for name, new in ALIASES[old].items():
        assert getattr(module, name) is getattr(importlib.import_module(new), name), f"{old}.{name}"


def test_the_old_names_of_renamed_functions_are_the_new_functions() -> None:
    from s2s.pipelines import atomic_files, translate_beam
    from s2s.pipelines.translate_pipeline import translate_with_pipeline
    from s2s.publish import publish_stream

    assert translate_beam.translate_beam is translate_with_pipeline
    assert atomic_files.publish is publish_stream
