"""The old name of `s2s.pipelines.translate_pipeline`, kept for one release ("beam" there meant Apache Beam, not beam search)."""

from s2s.pipelines.translate_pipeline import SHARD_SUFFIX, check_row_count, manifest_path, shard_path, translate_with_pipeline

translate_beam = translate_with_pipeline

__all__ = ["SHARD_SUFFIX", "check_row_count", "manifest_path", "shard_path", "translate_beam", "translate_with_pipeline"]
