// A JavaScript host for an s2s ONNX export: no Python, no TensorFlow, only onnxruntime-node.
//
//   node translate.mjs ONNX_DIR SOURCES.txt  ->  {"step": [...], "translator": [...]} on stdout
//
// Everything it needs comes from the model files: the vocabularies, special tokens, length limits,
// source reversal and the normalisation scheme are read from encoder.onnx's metadata_props.
// onnxruntime's JavaScript API does not expose metadata_props, so readMetadata() reads them from the
// ONNX protobuf directly (ModelProto field 14: repeated StringStringEntryProto {key = 1, value = 2}).
import { readFileSync } from "node:fs";
import ort from "onnxruntime-node";

// Errors only: translator.onnx declares its optional max_output_length input with a default, which onnxruntime warns about.
const SESSION_OPTIONS = { logSeverityLevel: 3 };

function readVarint(bytes, position) {
  let value = 0n;
  let shift = 0n;
  for (;;) {
    const byte = bytes[position++];
    value |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) return [value, position];
    shift += 7n;
  }
}

function readFields(bytes, start, end, onField) {
  let position = start;
  while (position < end) {
    let tag;
    [tag, position] = readVarint(bytes, position);
    const field = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    if (wireType === 0) {
      [, position] = readVarint(bytes, position);
    } else if (wireType === 1) {
      position += 8;
    } else if (wireType === 5) {
      position += 4;
    } else if (wireType === 2) {
      let length;
      [length, position] = readVarint(bytes, position);
      onField(field, position, position + Number(length));
      position += Number(length);
    } else {
      throw new Error(`unsupported protobuf wire type ${wireType}`);
    }
  }
}

export function readMetadata(path) {
  const bytes = readFileSync(path);
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

// Normalisation scheme s2s-text v1 (s2s/text.py): NFC; space separators become a space; format characters go;
// typographic apostrophes and double quotes become ASCII when fold_quotes; whitespace collapses and is stripped.
function normalizer(scheme) {
  if (scheme.name !== "s2s-text" || scheme.version !== 1) throw new Error(`unknown normalisation ${scheme.name} v${scheme.version}`);
  return (text) => {
    let clean = text.normalize("NFC").replace(/\p{Zs}/gu, " ").replace(/\p{Cf}/gu, "");
    if (scheme.fold_quotes) clean = clean.replace(/[\u2018\u2019\u201a\u201b\u2032\u02bc]/g, "'").replace(/[\u201c\u201d\u201e\u201f\u2033]/g, '"');
    return clean.replace(/\s+/gu, " ").trim();
  };
}

function loadInfo(onnxDir) {
  const meta = readMetadata(`${onnxDir}/encoder.onnx`);
  if (meta["s2s.format_version"] !== "2") {
    throw new Error(`${onnxDir} is s2s export format ${meta["s2s.format_version"]}; this host reads format 2: re-export the model`);
  }
  const special = JSON.parse(meta["s2s.special_tokens"]);
  const source = JSON.parse(meta["s2s.source_vocabulary"]);
  return {
    source,
    sourceIds: new Map(source.map((token, id) => [token, id])),
    target: JSON.parse(meta["s2s.target_vocabulary"]),
    startId: special.start.id,
    endId: special.end.id,
    padId: special.pad.id,
    unknownId: special.unknown.id,
    maxSource: Number(meta["s2s.max_source_length"]),
    maxTarget: Number(meta["s2s.max_target_length"]),
    outputLength: meta["s2s.output_length"] ? JSON.parse(meta["s2s.output_length"]) : null,
    reverse: meta["s2s.reverse_source"] === "true",
    layers: Number(meta["s2s.num_layers"]),
    memory: meta["s2s.arch"] === "attention" ? ["encoder_outputs", "source_mask"] : [],
    normalize: normalizer(JSON.parse(meta["s2s.normalization"])),
  };
}

// Contract version 2 takes int32 ids, 0 (padding) after each sentence: no one-hot array on the host.
function sourceIds(texts, info) {
  const rows = texts.map((text) => {
    const ids = Array.from(info.normalize(text)).slice(0, info.maxSource).map((char) => info.sourceIds.get(char) ?? info.unknownId);
    return info.reverse ? ids.reverse() : ids;
  });
  const steps = Math.max(1, ...rows.map((row) => row.length));
  const data = new Int32Array(texts.length * steps).fill(info.padId);
  rows.forEach((row, b) => data.set(row, b * steps));
  return new ort.Tensor("int32", data, [texts.length, steps]);
}

// The output limit of a source of `length` characters (see s2s/output_length.py): the fitted line, at most 4096.
function outputLimit(length, info) {
  const line = info.outputLength ?? { slope: 2.5, intercept: 10 };
  let limit = Math.ceil(line.slope * length + line.intercept);
  if (!info.outputLength) limit = Math.max(limit, info.maxTarget); // an export before the fit: never below the old limit
  return Math.min(Math.max(limit, 1), 4096);
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

async function stepByStep(onnxDir, texts, info) {
  const encoder = await ort.InferenceSession.create(`${onnxDir}/encoder.onnx`, SESSION_OPTIONS);
  const decoder = await ort.InferenceSession.create(`${onnxDir}/decoder.onnx`, SESSION_OPTIONS);
  const stateNames = [];
  for (let layer = 0; layer < info.layers; layer++) stateNames.push(`h_${layer}`, `c_${layer}`);
  const encoded = await encoder.run({ source_ids: sourceIds(texts, info) });
  let states = Object.fromEntries(stateNames.map((name) => [name, encoded[name]]));
  // An attention decoder reads the encoder's outputs and padding mask at every step, unchanged.
  const memory = Object.fromEntries(info.memory.map((name) => [name, encoded[name]]));
  const depth = info.target.length;
  const batch = texts.length;
  let token = new Int32Array(batch).fill(info.startId);
  const ids = texts.map(() => []);
  const finished = new Array(batch).fill(false);
  const limits = texts.map((text) => outputLimit(Math.min(Array.from(info.normalize(text)).length, info.maxSource), info));
  for (let step = 0; step <= Math.max(...limits) && !finished.every(Boolean); step++) {
    const out = await decoder.run({ previous_token: new ort.Tensor("int32", token, [batch]), ...states, ...memory });
    const probabilities = out.probabilities.data;
    token = new Int32Array(batch);
    for (let b = 0; b < batch; b++) {
      let best = 0;
      for (let v = 1; v < depth; v++) if (probabilities[b * depth + v] > probabilities[b * depth + best]) best = v;
      if (step >= limits[b]) best = info.endId; // at most its limit's characters: the limit ends every sentence
      if (!finished[b]) ids[b].push(best);
      if (best === info.endId) finished[b] = true;
      token[b] = best;
    }
    states = Object.fromEntries(stateNames.map((name) => [name, out[`next_${name}`]]));
  }
  return ids.map((row) => decodeIds(row, info));
}

async function wholeLoop(onnxDir, texts, info) {
  const translator = await ort.InferenceSession.create(`${onnxDir}/translator.onnx`, SESSION_OPTIONS);
  const out = await translator.run({ source_ids: sourceIds(texts, info) });
  const [batch, steps] = out.token_ids.dims;
  const ids = Array.from(out.token_ids.data, Number);
  return Array.from({ length: batch }, (_, b) => decodeIds(ids.slice(b * steps, (b + 1) * steps), info));
}

const [onnxDir, sourcesPath] = process.argv.slice(2);
const texts = readFileSync(sourcesPath, "utf8").split("\n").filter((line) => line.length > 0);
const info = loadInfo(onnxDir);
const result = { step: await stepByStep(onnxDir, texts, info), translator: await wholeLoop(onnxDir, texts, info) };
process.stdout.write(JSON.stringify(result));
