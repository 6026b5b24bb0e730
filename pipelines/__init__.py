"""Apache Beam pipelines that turn bilingual text into padded one-hot TFRecords."""
