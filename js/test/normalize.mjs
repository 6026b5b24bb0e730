// The JavaScript normaliser on JSON lines of [scheme, text] from standard input: one JSON string per line out.
import { readFileSync } from "node:fs";
import { normalizer } from "../src/host.js";

for (const line of readFileSync(0, "utf8").split("\n").filter(Boolean)) {
  const [scheme, text] = JSON.parse(line);
  process.stdout.write(`${JSON.stringify(normalizer(scheme)(text))}\n`);
}
