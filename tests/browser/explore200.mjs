import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { join } from "node:path";
const [base, fixtures, shots] = process.argv.slice(2);
const names = ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg", "coffee.png"];
const files = Array.from({ length: 200 }, (_, i) => { const n = names[i % 5]; const [s, e] = n.split("."); return { name: `${s}-${i}.${e}`, mimeType: e === "png" ? "image/png" : "image/jpeg", buffer: readFileSync(join(fixtures, n)) }; });
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const errors = []; page.on("pageerror", (e) => errors.push(e.message)); page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
await page.goto(base + "/");
let t = Date.now();
await page.setInputFiles("#photos", files);
console.log("chosen", await page.textContent("#file-summary"), Date.now() - t, "ms");
t = Date.now();
await Promise.all([page.waitForURL(/\/jobs\//, { timeout: 300000 }), page.click("#submit")]);
console.log("uploaded in", Date.now() - t, "ms", page.url());
t = Date.now();
const samples = [];
for (;;) {
  const s = await page.textContent("#job-counts");
  samples.push(s);
  if (await page.textContent("#job-state") === "done") break;
  if (Date.now() - t > 300000) { console.log("not done"); break; }
  await page.waitForTimeout(2000);
}
console.log("done in", Date.now() - t, "ms; samples", samples.length, samples.slice(-2));
await page.screenshot({ path: join(shots, "ex-200.png") });
console.log("cards", await page.locator("#photos article").count(), "done cards", await page.locator("#photos article.state-done").count(), "zip label", await page.textContent("#download-all"));
const m = await page.evaluate(() => performance.memory ? performance.memory.usedJSHeapSize : null);
console.log("heap", m, "errors", errors.slice(0, 5));
await browser.close();
