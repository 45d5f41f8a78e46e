// A person's visit, in headless Chromium: choose ten photos on the upload page, pick
// operations, submit, watch the job page until every photo is done, open a before/after
// view, and download the zip. Usage: node upload.mjs <base-url> <fixtures-dir> <screenshot-dir>
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [base, fixtures, screenshots] = process.argv.slice(2);
const fail = (message) => { console.error(`FAIL: ${message}`); process.exit(1); };

const names = ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg", "coffee.png"];
const files = Array.from({ length: 10 }, (_, i) => {
  const name = names[i % names.length];
  const [stem, ext] = name.split(".");
  return { name: `${stem}-${i + 1}.${ext}`, mimeType: ext === "png" ? "image/png" : "image/jpeg", buffer: readFileSync(join(fixtures, name)) };
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(base + "/");
  await page.setInputFiles("#photos", files.slice(0, 8));
  // Files dropped from a file manager outside the drop zone: on the page's heading and on a
  // recipe card, photos are taken (not opened by the browser in place of the page, not
  // swallowed by the card); on the watermark's label, a logo is the watermark's.
  const drop = (selector, dropped) => page.evaluate(([selector, dropped]) => {
    const transfer = new DataTransfer();
    for (const f of dropped) transfer.items.add(new File([Uint8Array.from(atob(f.base64), (c) => c.charCodeAt(0))], f.name, { type: f.mimeType }));
    const target = document.querySelector(selector);
    for (const type of ["dragenter", "dragover", "drop"]) target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
  }, [selector, dropped.map((f) => ({ name: f.name, mimeType: f.mimeType, base64: f.buffer.toString("base64") }))]);
  await drop("h1", files.slice(8, 9));
  await drop("#recipe-ops li .op-head strong", files.slice(9));
  await page.click("[data-add=watermark]");
  const logo = { name: "logo.png", mimeType: "image/png", buffer: readFileSync(join(fixtures, "coffee.png")) };
  await drop("#recipe-ops li[data-op=watermark] label.param:has(input[type=file]) span", [logo]);
  const logoLabel = await page.textContent("#recipe-ops li[data-op=watermark] label.param:has(input[type=file]) span");
  if (logoLabel !== "Another logo (PNG)") fail(`a logo dropped on the watermark's label was not taken: "${logoLabel}"`);
  const watermark = await page.evaluate(() => window.darkroomBuilder.recipe().ops.find((op) => op.op === "watermark"));
  if (!watermark || watermark.image !== "logo.png") fail(`the watermark after a dropped logo: ${JSON.stringify(watermark)}`);
  await page.click("#recipe-ops li[data-op=watermark] button[aria-label^=Remove]");
  const summary = await page.textContent("#file-summary");
  if (!summary.includes("10 photos")) fail(`file summary says ${summary}`);
  // The recipe builder: the default preset (resize) made 400 px, then sepia added.
  await page.fill("#recipe-ops li[data-op=thumbnail] input", "400");
  await page.click("[data-add=recolor]");
  await page.locator("#recipe-ops li[data-op=recolor] select").selectOption("sepia");
  const recipe = await page.evaluate(() => window.darkroomBuilder.recipe());
  if (JSON.stringify(recipe.ops) !== JSON.stringify([{ op: "thumbnail", size: 400 }, { op: "recolor", mode: "sepia" }])) fail(`recipe ${JSON.stringify(recipe)}`);
  await page.screenshot({ path: join(screenshots, "upload.png") });
  await Promise.all([page.waitForURL(/\/jobs\/[0-9a-z]{26}$/, { timeout: 60000 }), page.click("#submit")]);
  const jobUrl = page.url();

  await page.waitForFunction(() => document.getElementById("job-state").textContent === "done", null, { timeout: 120000 });
  const done = await page.locator("#photos article.state-done").count();
  if (done !== 10) fail(`${done} of 10 photos shown done`);
  // Thumbnails load lazily, as a person scrolls: scroll down, then wait for the last ones.
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  const loaded = () => document.querySelectorAll("#photos article img").length === 10
    && [...document.querySelectorAll("#photos article img")].every((img) => img.complete && img.naturalWidth > 0);
  await page.waitForFunction(loaded, null, { timeout: 30000 }).catch(() => {});
  const thumbs = await page.$$eval("#photos article img", (imgs) => imgs.filter((img) => img.complete && img.naturalWidth > 0).length);
  if (thumbs !== 10) fail(`${thumbs} of 10 thumbnails loaded`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(screenshots, "job.png"), fullPage: true });

  await page.click("#photos article .thumb");
  await page.waitForFunction(() => {
    const [before, after] = ["compare-before", "compare-after"].map((id) => document.getElementById(id));
    return document.getElementById("compare").open && before.complete && before.naturalWidth > 0 && after.complete && after.naturalWidth > 0;
  }, null, { timeout: 30000 });
  const sizes = await page.evaluate(() => ["compare-before", "compare-after"].map((id) => document.getElementById(id).naturalWidth));
  await page.screenshot({ path: join(screenshots, "compare.png") });
  // A drag of the divider that ends outside the dialog leaves it open; a click on the dimmed
  // page around it closes it.
  const comparing = () => page.evaluate(() => document.getElementById("compare").open);
  const pane = await page.locator("#compare-after-pane").boundingBox();
  await page.mouse.move(pane.x + pane.width / 2, pane.y + pane.height / 2);
  await page.mouse.down();
  await page.mouse.move(2, pane.y + pane.height / 2, { steps: 6 });
  await page.mouse.up();
  if (!(await comparing())) fail("a divider drag that ended outside the dialog closed it");
  if (Number(await page.inputValue("#compare-position")) !== 0) fail("the divider did not follow the drag to the dialog's edge");
  await page.mouse.click(2, 2);
  if (await comparing()) fail("a click outside the compare dialog did not close it");

  const archive = await page.request.get(await page.getAttribute("#download-all", "href").then((href) => new URL(href, jobUrl).href));
  if (archive.status() !== 200 || archive.headers()["content-type"] !== "application/zip") fail(`archive: HTTP ${archive.status()}`);
  const zip = await archive.body();
  const entries = zip.toString("latin1").split("PK\x01\x02").length - 1;
  if (entries !== 10) fail(`archive has ${entries} entries`);
  if (errors.length) fail(`script errors on the pages: ${errors.join("; ")}`);
  console.log(JSON.stringify({ job: jobUrl, done, thumbs, before_width: sizes[0], after_width: sizes[1], archive_entries: entries }));
} finally {
  await browser.close();
}
