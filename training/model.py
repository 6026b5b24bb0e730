"""The character-level encoder-decoders of s2s, as functional Keras models.

Three architectures (`TrainConfig.arch`):

- `attention` (the default): a masked bidirectional LSTM encoder, latent_dim / 2
  units each direction, so its outputs and its concatenated final (h, c) are
  latent_dim wide; layer i's final states seed decoder layer i. Each decoder
  output attends (dot product, Luong) over the encoder outputs, padding masked
  out, and concat(context, decoder output) -> Dense(latent_dim, tanh) ->
  Dense(target vocabulary, softmax). Held-out chrF 57 against 35 for `lstm`
  with the same data and parameters: the decoder no longer has to carry the
  whole sentence in one (h, c).
- `lstm`: the source material's lstm_seq2seq. The encoder's final (h, c)
  alone seed the decoder.
- `repeat-vector`: encodes to the last layer's h, repeats it once per output
  step and decodes without teacher forcing; it has no step-by-step inference models.

Training model (teacher forcing):

    encoder_input (batch, time, source_vocab) -> Masking -> [Bidirectional] LSTM x num_layers
    decoder_input (batch, time, target_vocab) -> LSTM x num_layers, seeded with the encoder's final states
        -> [attention over the encoder outputs -> Dense tanh] -> Dense softmax -> (batch, time, target_vocab)

The `Masking` layer makes the encoder skip all-zero (padding) rows, so a
sentence's states do not depend on how much padding follows it in its
batch; attention sees the same mask. Layers are named, and the inference
models below fetch them by name.

Inference models, built from the trained layers:

    encoder: encoder_input -> [h_0, c_0, h_1, c_1, ..., *memory]
    decoder: [decoder_input (batch, 1, target_vocab), h_0, c_0, ..., *memory] -> [probabilities, h_0, c_0, ...]

where `memory` is what the decoder reads at every step without changing it:
`[encoder_outputs (batch, time, latent), source_mask (batch, time)]` for
attention and nothing for `lstm`.
"""

from __future__ import annotations

from typing import Any

from s2s.onnx_contract import ENCODER_OUTPUTS, SOURCE_MASK
from s2s.training.config import ATTENTION, REPEAT_VECTOR, TrainConfig

ENCODER_INPUT = "encoder_input"
DECODER_INPUT = "decoder_input"
ENCODER_MASK = "encoder_mask"
SOFTMAX = "decoder_softmax"
ATTENTION_LAYER = "attention"
ATTENTION_PROJECTION = "attention_projection"


def encoder_lstm_name(layer: int) -> str:
    return f"encoder_lstm_{layer}"


def decoder_lstm_name(layer: int) -> str:
    return f"decoder_lstm_{layer}"


def state_names(num_layers: int) -> list[str]:
    """Names of the inference state tensors, in order: h_0, c_0, h_1, c_1, ..."""
    return [f"{kind}_{layer}" for layer in range(num_layers) for kind in ("h", "c")]


def has_attention(model: Any) -> bool:
    """Whether a trained model (or its inference decoder) holds the attention layers."""
    return any(layer.name == ATTENTION_LAYER for layer in model.layers)


def build_training_model(source_vocab_size: int, target_vocab_size: int, decoder_steps: int, config: TrainConfig) -> Any:
    """The model `s2s train` fits, for the architecture in `config`."""
    if config.arch == REPEAT_VECTOR:
        return _build_repeat_vector(source_vocab_size, target_vocab_size, decoder_steps, config)
    import keras
    from keras import layers

    attention = config.arch == ATTENTION
    encoder_input = keras.Input(shape=(None, source_vocab_size), name=ENCODER_INPUT)
    sequence = layers.Masking(mask_value=0.0, name=ENCODER_MASK)(encoder_input)
    encoder_states = []
    for layer in range(config.num_layers):
        keep_sequence = attention or layer < config.num_layers - 1
        if attention:
            lstm = layers.LSTM(config.latent_dim // 2, return_sequences=True, return_state=True, dropout=config.dropout)
            sequence, *states = layers.Bidirectional(lstm, merge_mode="concat", name=encoder_lstm_name(layer))(sequence)
            encoder_states.append(_join_directions(states, layer))
        else:
            lstm = layers.LSTM(
                config.latent_dim, return_sequences=keep_sequence, return_state=True, dropout=config.dropout, name=encoder_lstm_name(layer)
            )
            sequence, state_h, state_c = lstm(sequence)
            encoder_states.append([state_h, state_c])
    encoder_outputs = sequence

    decoder_input = keras.Input(shape=(None, target_vocab_size), name=DECODER_INPUT)
    sequence = decoder_input
    for layer in range(config.num_layers):
        lstm = layers.LSTM(
            config.latent_dim, return_sequences=True, return_state=True, dropout=config.dropout, name=decoder_lstm_name(layer)
        )
        sequence, _, _ = lstm(sequence, initial_state=encoder_states[layer])
    if attention:
        sequence = _attend(sequence, encoder_outputs, source_mask(encoder_input), config.latent_dim)
    probabilities = layers.Dense(target_vocab_size, activation="softmax", name=SOFTMAX)(sequence)
    return keras.Model([encoder_input, decoder_input], probabilities, name="s2s_training")


def source_mask(encoder_input: Any) -> Any:
    """1.0 at each real source row of a one-hot input, 0.0 at padding (an all-zero row)."""
    import keras

    return keras.ops.max(encoder_input, axis=-1)


def _join_directions(states: list[Any], layer: int) -> list[Any]:
    """[forward h, forward c, backward h, backward c] -> [h, c], each direction's half side by side."""
    from keras import layers

    forward_h, forward_c, backward_h, backward_c = states
    return [
        layers.Concatenate(name=f"encoder_h_{layer}")([forward_h, backward_h]),
        layers.Concatenate(name=f"encoder_c_{layer}")([forward_c, backward_c]),
    ]


def _attend(decoder_outputs: Any, encoder_outputs: Any, mask: Any, latent_dim: int, trained: Any = None) -> Any:
    """Luong dot-product attention, then concat(context, decoder output) -> Dense(latent_dim, tanh).

    `trained` is the training model whose layers to reuse (inference models);
    None creates the layers.
    """
    import keras
    from keras import layers

    if trained is None:
        attention = layers.Attention(score_mode="dot", use_scale=False, name=ATTENTION_LAYER)
        projection = layers.Dense(latent_dim, activation="tanh", name=ATTENTION_PROJECTION)
    else:
        attention, projection = trained.get_layer(ATTENTION_LAYER), trained.get_layer(ATTENTION_PROJECTION)
    context = attention([decoder_outputs, encoder_outputs], mask=[None, keras.ops.cast(mask, "bool")])
    return projection(layers.Concatenate(name="attention_concat")([context, decoder_outputs]))


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


def trained_encoder_outputs(model: Any, encoder_input: Any, num_layers: int) -> list[Any]:
    """The trained encoder layers applied to `encoder_input`: [h_0, c_0, ...], then (attention) the outputs and source mask.

    Shared by the inference encoder and export's mask-free copy of it, so both
    join the two directions' states in the same order.
    """
    attention = has_attention(model)
    sequence, states = encoder_input, []
    for layer in range(num_layers):
        if attention:
            sequence, forward_h, forward_c, backward_h, backward_c = model.get_layer(encoder_lstm_name(layer))(sequence)
            states += [
                model.get_layer(f"encoder_h_{layer}")([forward_h, backward_h]),
                model.get_layer(f"encoder_c_{layer}")([forward_c, backward_c]),
            ]
        else:
            sequence, state_h, state_c = model.get_layer(encoder_lstm_name(layer))(sequence)
            states += [state_h, state_c]
    return states + ([sequence, source_mask(encoder_input)] if attention else [])  # Masking keeps the rows: the same mask


def build_inference_models(model: Any, num_layers: int) -> tuple[Any, Any]:
    """The encoder and one-step decoder sharing `model`'s trained layers (attention and lstm archs)."""
    import keras

    attention = has_attention(model)
    encoder_input = model.get_layer(ENCODER_INPUT).output
    encoder = keras.Model(
        encoder_input, trained_encoder_outputs(model, model.get_layer(ENCODER_MASK)(encoder_input), num_layers), name="s2s_encoder"
    )

    target_vocab_size = model.get_layer(SOFTMAX).units
    latent_dim = model.get_layer(decoder_lstm_name(0)).units
    token = keras.Input(shape=(None, target_vocab_size), name=DECODER_INPUT)
    state_inputs = [keras.Input(shape=(latent_dim,), name=name) for name in state_names(num_layers)]
    memory_inputs = (
        [keras.Input(shape=(None, latent_dim), name=ENCODER_OUTPUTS), keras.Input(shape=(None,), name=SOURCE_MASK)] if attention else []
    )
    sequence = token
    decoder_outputs = []
    for layer in range(num_layers):
        initial = state_inputs[2 * layer : 2 * layer + 2]
        sequence, state_h, state_c = model.get_layer(decoder_lstm_name(layer))(sequence, initial_state=initial)
        decoder_outputs += [state_h, state_c]
    if attention:
        sequence = _attend(sequence, memory_inputs[0], memory_inputs[1], latent_dim, trained=model)
    probabilities = model.get_layer(SOFTMAX)(sequence)
    decoder = keras.Model([token, *state_inputs, *memory_inputs], [probabilities, *decoder_outputs], name="s2s_decoder")
    return encoder, decoder


def build_maskless_encoder(training_model: Any, num_layers: int, input_name: str) -> Any:
    """The encoder from the trained layers with no Masking layer, its input named `input_name`.

    ONNX export converts this one and gives the ONNX LSTM nodes
    `sequence_lens` instead: tf2onnx turns a Masking layer into a slow Loop.
    """
    import keras

    source_vocab = training_model.get_layer(ENCODER_INPUT).output.shape[-1]
    encoder_input = keras.Input(shape=(None, source_vocab), name=input_name)
    return keras.Model(encoder_input, trained_encoder_outputs(training_model, encoder_input, num_layers), name="s2s_encoder_maskless")
