// Drives the browser page in a real, headless Chromium (the system's: nothing downloads a browser build):
//
//   node js/test/browser.mjs PAGE_URL SOURCES.txt SCREENSHOT.png  ->  {"translations": [...], "seconds", ...} on stdout
//
// The browser comes from $CHROMIUM, else Debian's /usr/lib/chromium/chromium or /usr/bin/chromium.
import { existsSync, readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [url, sourcesPath, screenshot] = process.argv.slice(2);
const candidates = [process.env.CHROMIUM, "/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"].filter(Boolean);
const executablePath = candidates.find((path) => existsSync(path));
if (!executablePath) {
  process.stderr.write(`no Chromium found (looked at ${candidates.join(", ")}): install Debian's chromium (apt-get install chromium) or set CHROMIUM\n`);
  process.exit(3);
}
const lines = readFileSync(sourcesPath, "utf8").split("\n").filter((line) => line.length > 0);
const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 900 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(url);
  await page.waitForFunction(() => window.s2s !== undefined);
  await page.evaluate(() => window.s2s.ready);
  const result = await page.evaluate((texts) => window.s2s.translate(texts), lines);
  const isolated = await page.evaluate(() => self.crossOriginIsolated);
  // The page as a user sees it: their text typed, the button pressed, the translation and its timing shown.
  await page.fill("#source", lines.slice(0, 5).join("\n"));
  await page.click("#translate");
  await page.waitForFunction(() => document.getElementById("timing").textContent.length > 0);
  await page.screenshot({ path: screenshot, fullPage: true });
  const shown = await page.inputValue("#target");
  process.stdout.write(JSON.stringify({ ...result, isolated, shown: shown.split("\n"), errors }));
} finally {
  await browser.close();
}
