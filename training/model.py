"""The character-level LSTM encoder-decoder of lstm_seq2seq, as functional Keras models.

Training model (teacher forcing):

    encoder_input (batch, time, source_vocab) -> Masking -> LSTM x num_layers -> final (h, c) of each layer
    decoder_input (batch, time, target_vocab) -> LSTM x num_layers, layer i seeded with encoder layer i's (h, c)
        -> Dense softmax -> (batch, time, target_vocab)

The `Masking` layer makes the encoder skip all-zero (padding) rows, so a
sentence's states do not depend on how much padding follows it in its
batch. Layers are named, and the inference models below fetch them by name.

Inference models, built from the trained layers:

    encoder: encoder_input -> [h_0, c_0, h_1, c_1, ...]
    decoder: [decoder_input (batch, 1, target_vocab), h_0, c_0, ...] -> [probabilities, h_0, c_0, ...]

The RepeatVector variant (`arch = "repeat-vector"`) encodes to the last
layer's h, repeats it once per output step and decodes without teacher
forcing; it has no separate inference models.
"""

from __future__ import annotations

from typing import Any

from training.config import REPEAT_VECTOR, TrainConfig

ENCODER_INPUT = "encoder_input"
DECODER_INPUT = "decoder_input"
ENCODER_MASK = "encoder_mask"
SOFTMAX = "decoder_softmax"


def encoder_lstm_name(layer: int) -> str:
    return f"encoder_lstm_{layer}"


def decoder_lstm_name(layer: int) -> str:
    return f"decoder_lstm_{layer}"


def state_names(num_layers: int) -> list[str]:
    """Names of the inference state tensors, in order: h_0, c_0, h_1, c_1, ..."""
    return [f"{kind}_{layer}" for layer in range(num_layers) for kind in ("h", "c")]


def build_training_model(source_vocab_size: int, target_vocab_size: int, decoder_steps: int, config: TrainConfig) -> Any:
    """The model `s2s train` fits, for the architecture in `config`."""
    if config.arch == REPEAT_VECTOR:
        return _build_repeat_vector(source_vocab_size, target_vocab_size, decoder_steps, config)
    import keras
    from keras import layers

    encoder_input = keras.Input(shape=(None, source_vocab_size), name=ENCODER_INPUT)
    sequence = layers.Masking(mask_value=0.0, name=ENCODER_MASK)(encoder_input)
    encoder_states = []
    for layer in range(config.num_layers):
        last = layer == config.num_layers - 1
        lstm = layers.LSTM(
            config.latent_dim, return_sequences=not last, return_state=True, dropout=config.dropout, name=encoder_lstm_name(layer)
        )
        sequence, state_h, state_c = lstm(sequence)
        encoder_states.append([state_h, state_c])  # only the final states matter; the outputs feed the next layer

    decoder_input = keras.Input(shape=(None, target_vocab_size), name=DECODER_INPUT)
    sequence = decoder_input
    for layer in range(config.num_layers):
        lstm = layers.LSTM(
            config.latent_dim, return_sequences=True, return_state=True, dropout=config.dropout, name=decoder_lstm_name(layer)
        )
        sequence, _, _ = lstm(sequence, initial_state=encoder_states[layer])
    probabilities = layers.Dense(target_vocab_size, activation="softmax", name=SOFTMAX)(sequence)
    return keras.Model([encoder_input, decoder_input], probabilities, name="s2s_training")


def _build_repeat_vector(source_vocab_size: int, target_vocab_size: int, decoder_steps: int, config: TrainConfig) -> Any:
    import keras
    from keras import layers

    encoder_input = keras.Input(shape=(None, source_vocab_size), name=ENCODER_INPUT)
    sequence = layers.Masking(mask_value=0.0, name=ENCODER_MASK)(encoder_input)
    for layer in range(config.num_layers):
        last = layer == config.num_layers - 1
        sequence = layers.LSTM(config.latent_dim, return_sequences=not last, dropout=config.dropout, name=encoder_lstm_name(layer))(
            sequence
        )
    sequence = layers.RepeatVector(decoder_steps, name="repeat_encoding")(sequence)
    for layer in range(config.num_layers):
        sequence = layers.LSTM(config.latent_dim, return_sequences=True, dropout=config.dropout, name=decoder_lstm_name(layer))(sequence)
    probabilities = layers.TimeDistributed(layers.Dense(target_vocab_size, activation="softmax"), name=SOFTMAX)(sequence)
    return keras.Model(encoder_input, probabilities, name="s2s_repeat_vector")


def build_inference_models(model: Any, num_layers: int) -> tuple[Any, Any]:
    """The encoder and one-step decoder sharing `model`'s trained layers (encoder-decoder arch only)."""
    import keras

    encoder_input = model.get_layer(ENCODER_INPUT).output
    sequence = model.get_layer(ENCODER_MASK)(encoder_input)
    encoder_outputs = []
    for layer in range(num_layers):
        sequence, state_h, state_c = model.get_layer(encoder_lstm_name(layer))(sequence)
        encoder_outputs += [state_h, state_c]
    encoder = keras.Model(encoder_input, encoder_outputs, name="s2s_encoder")

    target_vocab_size = model.get_layer(SOFTMAX).units
    latent_dim = model.get_layer(decoder_lstm_name(0)).units
    token = keras.Input(shape=(None, target_vocab_size), name=DECODER_INPUT)
    state_inputs = [keras.Input(shape=(latent_dim,), name=name) for name in state_names(num_layers)]
    sequence = token
    decoder_outputs = []
    for layer in range(num_layers):
        initial = state_inputs[2 * layer : 2 * layer + 2]
        sequence, state_h, state_c = model.get_layer(decoder_lstm_name(layer))(sequence, initial_state=initial)
        decoder_outputs += [state_h, state_c]
    probabilities = model.get_layer(SOFTMAX)(sequence)
    decoder = keras.Model([token, *state_inputs], [probabilities, *decoder_outputs], name="s2s_decoder")
    return encoder, decoder
