"""Batch translation with onnxruntime. Imports neither TensorFlow nor Beam: numpy and onnxruntime only."""
