"""s2s: batch sequence-to-sequence translation.

Beam pipelines prepare one-hot TFRecords, a Keras job trains a character-level
LSTM encoder-decoder, an export stage writes self-describing ONNX, and a batch
translator decodes with onnxruntime. The modules of this folder are the
ground every stage shares: text normalisation, the vocabulary, the dataset
spec, the TFRecord schema, the ONNX contract, configuration, checksums and
atomic files. They import no stage, and neither TensorFlow nor Beam at import
time, so a translation host needs numpy and onnxruntime only.

The stages install beneath this name from their own top-level folders:
`s2s.pipelines`, `s2s.training`, `s2s.export`, `s2s.serving`, and `s2s.app`
(the command line and the chain), the only one that imports them all.
"""

__version__ = "0.1.0"
