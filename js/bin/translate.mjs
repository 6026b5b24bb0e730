#!/usr/bin/env node
// Translate a text file with an s2s export in Node, one translation per input line:
//
//   node js/bin/translate.mjs ONNX_DIR [INPUT.txt|-] [--batch-size N] [--loop-model]
//
// --loop-model decodes with translator.onnx (the whole loop in one graph) instead of the encoder and decoder steps.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ort from "onnxruntime-node";
import { Translator, modelInfo, readMetadata, translateWithLoopModel } from "../src/host.js";

function usage(message) {
  process.stderr.write(`s2s-translate-js: error: ${message}\nusage: node js/bin/translate.mjs ONNX_DIR [INPUT.txt|-] [--batch-size N] [--loop-model]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const loopModel = args.includes("--loop-model");
const sizeAt = args.indexOf("--batch-size");
const batchSize = sizeAt >= 0 ? Number(args[sizeAt + 1]) : 64;
const positional = args.filter((arg, index) => !arg.startsWith("--") && (sizeAt < 0 || index !== sizeAt + 1));
if (positional.length < 1 || !(batchSize >= 1)) usage("name the export folder (and a batch size of 1 or more)");
const [onnxDir, input = "-"] = positional;
const load = (name) => {
  try {
    return readFileSync(join(onnxDir, name));
  } catch (error) {
    usage(`cannot read ${join(onnxDir, name)}: ${error.code ?? error.message}`);
  }
};
const text = readFileSync(input === "-" ? 0 : input, "utf8");
const lines = text.split(/\r?\n/);
if (lines.at(-1) === "") lines.pop();
let translations;
if (loopModel) {
  const info = modelInfo(readMetadata(load("encoder.onnx")));
  translations = await translateWithLoopModel(ort, load("translator.onnx"), info, lines);
} else {
  const translator = await Translator.create(ort, load);
  translations = await translator.translate(lines, { batchSize });
}
process.stdout.write(translations.map((line) => `${line}\n`).join(""));
