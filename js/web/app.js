// The browser page: the s2s host (../src/host.js) over onnxruntime-web, with the model fetched from this same origin.
// `window.s2s` lets a test drive it: `await window.s2s.ready`, then `await window.s2s.translate(lines)`.
import * as ort from "../node_modules/onnxruntime-web/dist/ort.min.mjs";
import { Translator } from "../src/host.js";

const MODEL = new URL("../../models/fra-eng/", import.meta.url);
ort.env.wasm.wasmPaths = new URL("../node_modules/onnxruntime-web/dist/", import.meta.url).href;
// Threads need a cross-origin-isolated page (COOP and COEP headers, as js/serve.py sends); without them, one thread.
ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

const $ = (id) => document.getElementById(id);

async function load(name) {
  const response = await fetch(new URL(name, MODEL));
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function showCard() {
  const card = await (await fetch(new URL("MODEL_CARD.md", MODEL))).text();
  const figures = card.match(/\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+%)\s*\|\s*([\d.]+)\s*\|/);
  const rows = [["architecture", (card.match(/- architecture: ([^\n]+)/) || [])[1] || "?"]];
  if (figures) rows.push(["test split", `${figures[1]} sources: BLEU ${figures[2]}, chrF ${figures[3]}, exact match ${figures[4]}, CER ${figures[5]}`]);
  $("card").replaceChildren(...rows.flatMap(([term, value]) => [Object.assign(document.createElement("dt"), { textContent: term }), Object.assign(document.createElement("dd"), { textContent: value })]));
}

async function start() {
  const translator = await Translator.create(ort, load, { executionProviders: ["wasm"] });
  $("status").textContent = `model ${translator.info.modelId.slice(0, 12)}, onnxruntime-web ${ort.env.versions.web}, ${ort.env.wasm.numThreads} thread(s)`;
  return translator;
}

async function translate(translator, lines) {
  const started = performance.now();
  const translations = await translator.translate(lines);
  const seconds = (performance.now() - started) / 1000;
  return { translations, seconds };
}

const ready = start();
window.s2s = { ready: ready.then(() => true), translate: async (lines) => translate(await ready, lines) };

showCard().catch((error) => ($("card").textContent = `no model card: ${error.message}`));
ready.then(
  (translator) => {
    const button = $("translate");
    button.textContent = "Translate";
    button.disabled = false;
    button.addEventListener("click", async () => {
      const lines = $("source").value.split("\n");
      button.disabled = true;
      const { translations, seconds } = await translate(translator, lines);
      $("target").value = translations.join("\n");
      const count = lines.filter((line) => line.trim()).length;
      $("timing").textContent = `${count} sentence(s) in ${(seconds * 1000).toFixed(0)} ms: ${((seconds * 1000) / Math.max(count, 1)).toFixed(1)} ms per sentence`;
      button.disabled = false;
    });
  },
  (error) => ($("status").textContent = `the model did not load: ${error.message}`),
);
