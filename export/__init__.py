"""Export of the inference encoder and one-step decoder to self-describing ONNX."""
