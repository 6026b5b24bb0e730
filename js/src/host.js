// The host side of an s2s ONNX export (contract format 2), for Node and the browser alike: no Python, no TensorFlow.
//
//   import { Translator } from "s2s-translate";          // or "./src/host.js"
//   const translator = await Translator.create(ort, (name) => bytesOf(name));
//   await translator.translate(["How are you?"]);        // ["Comment vas-tu ?"]
//
// `ort` is onnxruntime-node or onnxruntime-web (the caller imports the one its runtime has); `load(name)` returns the
// bytes of one file of the export folder (a Uint8Array; a Promise of one is fine). Everything else comes from the
// files themselves: vocabularies, special tokens, limits, source reversal and the normalisation scheme are read from
// encoder.onnx's metadata_props. Importing this module has no side effects.

const FORMAT_VERSION = "2";
const OUTPUT_LIMIT_CEILING = 4096; // s2s/output_length.py: no translation runs past it
const FALLBACK_OUTPUT_LENGTH = { slope: 2.5, intercept: 10 }; // exports made before s2s.output_length

function readVarint(bytes, position) {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = bytes[position++];
    value += (byte & 0x7f) * scale; // Numbers, not BigInts: lengths here stay far below 2 ** 53
    if (byte < 0x80) return [value, position];
    scale *= 128;
  }
}

function readFields(bytes, start, end, onField) {
  let position = start;
  while (position < end) {
    let tag;
    [tag, position] = readVarint(bytes, position);
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (wireType === 0) {
      [, position] = readVarint(bytes, position);
    } else if (wireType === 1) {
      position += 8;
    } else if (wireType === 5) {
      position += 4;
    } else if (wireType === 2) {
      let length;
      [length, position] = readVarint(bytes, position);
      onField(field, position, position + length);
      position += length;
    } else {
      throw new Error(`unsupported protobuf wire type ${wireType}`);
    }
  }
}

/**
 * The metadata_props of an ONNX file's bytes, as {key: value} strings (JSON where the contract says so).
 * onnxruntime's JavaScript API does not expose them, so they are read from the protobuf: ModelProto field 14,
 * repeated StringStringEntryProto {key = 1, value = 2}.
 */
export function readMetadata(bytes) {
  const decoder = new TextDecoder();
  const metadata = {};
  readFields(bytes, 0, bytes.length, (field, start, end) => {
    if (field !== 14) return;
    let key = "";
    let value = "";
    readFields(bytes, start, end, (entryField, entryStart, entryEnd) => {
      const text = decoder.decode(bytes.subarray(entryStart, entryEnd));
      if (entryField === 1) key = text;
      if (entryField === 2) value = text;
    });
    metadata[key] = value;
  });
  return metadata;
}

// Python's str.isspace() characters but "\n" (s2s/text.py maps them to a space; "\n" separates lines there).
const WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/g;

/**
 * The normalisation scheme s2s-text v1 (s2s/text.py), as a function of one text: NFC; space separators become a
 * space; format characters (Cf) go; typographic apostrophes and double quotes become ASCII when fold_quotes;
 * whitespace runs collapse to one space and the ends are stripped.
 */
export function normalizer(scheme) {
  if (scheme.name !== "s2s-text" || scheme.version !== 1) throw new Error(`unknown normalisation ${scheme.name} v${scheme.version}`);
  return (text) => {
    let clean = text.normalize("NFC").replace(/\p{Zs}/gu, " ").replace(/\p{Cf}/gu, "");
    if (scheme.fold_quotes) clean = clean.replace(/[\u2018\u2019\u201a\u201b\u2032\u02bc]/g, "'").replace(/[\u201c\u201d\u201e\u201f\u2033]/g, '"');
    return clean.replace(WHITESPACE, " ").replace(/^ | $/g, "");
  };
}

/** What a host needs of an export, from encoder.onnx's metadata. */
export function modelInfo(metadata) {
  if (metadata["s2s.format_version"] !== FORMAT_VERSION) {
    throw new Error(`this is s2s export format ${metadata["s2s.format_version"]}; this host reads format ${FORMAT_VERSION}: re-export the model`);
  }
  const special = JSON.parse(metadata["s2s.special_tokens"]);
  const source = JSON.parse(metadata["s2s.source_vocabulary"]);
  return {
    modelId: metadata["s2s.model_id"],
    source,
    sourceIds: new Map(source.map((token, id) => [token, id])),
    target: JSON.parse(metadata["s2s.target_vocabulary"]),
    startId: special.start.id,
    endId: special.end.id,
    padId: special.pad.id,
    unknownId: special.unknown.id,
    maxSource: Number(metadata["s2s.max_source_length"]),
    maxTarget: Number(metadata["s2s.max_target_length"]),
    outputLength: metadata["s2s.output_length"] ? JSON.parse(metadata["s2s.output_length"]) : null,
    reverse: metadata["s2s.reverse_source"] === "true",
    layers: Number(metadata["s2s.num_layers"]),
    memory: metadata["s2s.arch"] === "attention" ? ["encoder_outputs", "source_mask"] : [],
    normalize: normalizer(JSON.parse(metadata["s2s.normalization"])),
  };
}

/** The output limit of a source of `length` characters (s2s/output_length.py): the fitted line, 4096 at most. */
export function outputLimit(length, info) {
  const line = info.outputLength ?? FALLBACK_OUTPUT_LENGTH;
  let limit = Math.ceil(line.slope * length + line.intercept);
  if (!info.outputLength) limit = Math.max(limit, info.maxTarget); // an export before the fit: never below the old limit
  return Math.min(Math.max(limit, 1), OUTPUT_LIMIT_CEILING);
}

function decodeIds(ids, info) {
  let text = "";
  for (const id of ids) {
    if (id === info.endId) break;
    if (id === info.padId || id === info.startId) continue;
    text += id === info.unknownId ? "\ufffd" : info.target[id];
  }
  return text;
}

/** A loaded export: `translate(texts)` decodes greedily, a batch at a time, as `s2s translate` does on the CPU. */
export class Translator {
  constructor(ort, info, encoder, decoder) {
    this.ort = ort;
    this.info = info;
    this.encoder = encoder;
    this.decoder = decoder;
    this.stateNames = [];
    for (let layer = 0; layer < info.layers; layer++) this.stateNames.push(`h_${layer}`, `c_${layer}`);
  }

  /** Opens encoder.onnx and decoder.onnx of an export; `sessionOptions` go to onnxruntime (threads, providers). */
  static async create(ort, load, sessionOptions = {}) {
    const encoderBytes = await load("encoder.onnx");
    const info = modelInfo(readMetadata(encoderBytes));
    const options = { logSeverityLevel: 3, ...sessionOptions };
    const encoder = await ort.InferenceSession.create(encoderBytes, options);
    const decoder = await ort.InferenceSession.create(await load("decoder.onnx"), options);
    return new Translator(ort, info, encoder, decoder);
  }

  /** Translations of `texts`, in order; an empty text gives an empty translation. */
  async translate(texts, { batchSize = 64 } = {}) {
    const normalized = texts.map((text) => Array.from(this.info.normalize(text)).slice(0, this.info.maxSource));
    const results = new Array(texts.length).fill("");
    // By length, as the Python host batches, so a batch carries little padding; empty sources are not decoded.
    const order = normalized.map((chars, index) => [chars.length, index]).filter(([length]) => length > 0);
    order.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (let start = 0; start < order.length; start += batchSize) {
      const indices = order.slice(start, start + batchSize).map(([, index]) => index);
      const decoded = await this.#decode(indices.map((index) => normalized[index]));
      indices.forEach((index, row) => (results[index] = decoded[row]));
    }
    return results;
  }

  async #decode(sources) {
    const { ort, info } = this;
    const batch = sources.length;
    const steps = Math.max(...sources.map((chars) => chars.length));
    const data = new Int32Array(batch * steps).fill(info.padId);
    sources.forEach((chars, row) => {
      const ids = chars.map((char) => info.sourceIds.get(char) ?? info.unknownId);
      data.set(info.reverse ? ids.reverse() : ids, row * steps);
    });
    const encoded = await this.encoder.run({ source_ids: new ort.Tensor("int32", data, [batch, steps]) });
    let states = Object.fromEntries(this.stateNames.map((name) => [name, encoded[name]]));
    // An attention decoder reads the encoder's outputs and padding mask at every step, unchanged.
    const memory = Object.fromEntries(info.memory.map((name) => [name, encoded[name]]));
    const limits = sources.map((chars) => outputLimit(chars.length, info));
    const depth = info.target.length;
    let token = new Int32Array(batch).fill(info.startId);
    const ids = sources.map(() => []);
    const finished = new Array(batch).fill(false);
    for (let step = 0; step < Math.max(...limits) && !finished.every(Boolean); step++) {
      const out = await this.decoder.run({ previous_token: new ort.Tensor("int32", token, [batch]), ...states, ...memory });
      const probabilities = out.probabilities.data;
      token = new Int32Array(batch);
      for (let row = 0; row < batch; row++) {
        let best = 0;
        for (let v = 1; v < depth; v++) if (probabilities[row * depth + v] > probabilities[row * depth + best]) best = v;
        if (!finished[row]) ids[row].push(best);
        if (best === info.endId || step + 1 >= limits[row]) finished[row] = true; // each row stops at its own limit
        token[row] = best;
      }
      states = Object.fromEntries(this.stateNames.map((name) => [name, out[`next_${name}`]]));
    }
    return ids.map((row) => decodeIds(row, info));
  }
}

/**
 * Translations from translator.onnx, the whole greedy loop in one graph: one call per batch and no decoding code.
 * It stops every sentence at `maxOutputLength` characters (default: the longest source's limit).
 */
export async function translateWithLoopModel(ort, loopBytes, info, texts, sessionOptions = {}) {
  const session = await ort.InferenceSession.create(loopBytes, { logSeverityLevel: 3, ...sessionOptions });
  const sources = texts.map((text) => Array.from(info.normalize(text)).slice(0, info.maxSource));
  const steps = Math.max(1, ...sources.map((chars) => chars.length));
  const data = new Int32Array(texts.length * steps).fill(info.padId);
  sources.forEach((chars, row) => {
    const ids = chars.map((char) => info.sourceIds.get(char) ?? info.unknownId);
    data.set(info.reverse ? ids.reverse() : ids, row * steps);
  });
  const limit = Math.max(...sources.map((chars) => outputLimit(chars.length, info)));
  const out = await session.run({
    source_ids: new ort.Tensor("int32", data, [texts.length, steps]),
    max_output_length: new ort.Tensor("int32", Int32Array.from([limit]), []),
  });
  const [batch, width] = out.token_ids.dims;
  const ids = Array.from(out.token_ids.data, Number);
  return Array.from({ length: batch }, (_, row) => (sources[row].length ? decodeIds(ids.slice(row * width, (row + 1) * width), info) : ""));
}
