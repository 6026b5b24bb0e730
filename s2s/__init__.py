"""s2s: batch sequence-to-sequence translation.

Beam pipelines prepare one-hot TFRecords, a Keras job trains a character-level
LSTM encoder-decoder, an export stage writes self-describing ONNX, and a batch
translator decodes with onnxruntime. This package holds what every stage
shares: text normalisation, the vocabulary, the dataset spec, configuration and
the `s2s` command line. It imports neither TensorFlow nor Beam, so a
translation host needs numpy and onnxruntime only.
"""

__version__ = "0.1.0"
