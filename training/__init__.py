"""Training and evaluation of the teacher-forced LSTM encoder-decoder, fed from the prepared TFRecords."""
