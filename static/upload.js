// Upload page: photos chosen or dropped are listed with thumbnails and checked against the
// server's limits; the recipe (builder.js) is previewed on one of them by the server; on
// upload the photos go up in parallel batches through the JSON API (the first batch
// creates the job, the rest are added with an Idempotency-Key), each photo with its own
// progress and state, a failed one with a retry button. Without JavaScript the plain form
// posts to /jobs instead.
"use strict";

const BATCH_FILES = 8;
const BATCH_BYTES = 48 * 1024 * 1024;
const PARALLEL_BATCHES = 3;
const PREVIEW_SIDE = 1024;
const EXTENSIONS = ["jpg", "jpeg", "png", "webp", "gif", "tif", "tiff", "heic", "heif"];

const $ = (id) => document.getElementById(id);
const mib = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`;
// The server's display name (crates/web/src/names.rs): the last path part, no control characters.
const displayName = (name) => (name.split(/[\\/]/).pop().replace(/[\u0000-\u001f\u007f]/g, "").slice(0, 200).trim().replace(/^\.+/, "").trim() || "photo");

// ---- the selection -------------------------------------------------------------------

const chosen = []; // { file, state, reason, loaded, item }
let job = null; // { id, url, owner_token } once the first batch created it
let limits = { maxBytes: Infinity, maxPhotos: 1000 };

function setState(entry, state, reason) {
  entry.state = state;
  entry.reason = reason || "";
  const labels = { waiting: "waiting", uploading: "uploading", uploaded: "uploaded", rejected: "not accepted", failed: "failed" };
  const badge = entry.item.querySelector(".badge");
  badge.textContent = state === "uploading" && entry.file.size ? `${Math.round((100 * entry.loaded) / entry.file.size)}%` : labels[state];
  badge.className = `badge file-${state}`;
  entry.item.className = `file file-${state}`;
  entry.item.querySelector(".reason").textContent = entry.reason;
  entry.item.querySelector(".retry").hidden = state !== "failed";
  entry.item.querySelector(".preview-this").hidden = state === "rejected";
  entry.item.querySelector(".remove").hidden = state === "uploading" || state === "uploaded";
  entry.item.querySelector(".bar").style.width = state === "uploaded" ? "100%" : `${entry.file.size ? (100 * entry.loaded) / entry.file.size : 0}%`;
}

// Thumbnails are made only as they scroll into view: hundreds of photos do not stall the page.
const thumbnails = "IntersectionObserver" in window ? new IntersectionObserver((seen) => {
  for (const item of seen) {
    if (!item.isIntersecting) continue;
    const img = item.target.querySelector("img");
    const entry = chosen.find((e) => e.item === item.target);
    if (entry && !img.src && entry.state !== "rejected") img.src = URL.createObjectURL(entry.file);
    thumbnails.unobserve(item.target);
  }
}, { rootMargin: "200px" }) : null;

// Why a file cannot be sent, as the server's error code and words would say it; null if it can.
function check(file, index) {
  const extension = (file.name.split(".").pop() || "").toLowerCase();
  if (!EXTENSIONS.includes(extension) && !file.type.startsWith("image/")) return { code: "unsupported_format", message: "not a photo this service takes (JPEG, PNG, WebP, GIF, TIFF, HEIC)" };
  if (file.size === 0) return { code: "empty_file", message: "the file is empty" };
  if (file.size > limits.maxBytes) return { code: "file_too_large", message: `larger than ${mib(limits.maxBytes)}` };
  if (index >= limits.maxPhotos) return { code: "too_many_photos", message: `a job holds at most ${limits.maxPhotos} photos` };
  return null;
}

// Files refused here, before any was sent, told to the server with the job's first batch so
// that the job page lists them with the ones the server refused.
function refusedHere() {
  // Kept within 48 KiB as sent (the server leaves out a part over 64 KiB).
  const told = [];
  let bytes = 2;
  for (const e of chosen.filter((e) => e.state === "rejected" && e.refusedHere)) {
    const entry = { name: displayName(e.file.name).slice(0, 120), code: e.refusedHere, message: e.reason.slice(0, 200) };
    bytes += new TextEncoder().encode(JSON.stringify(entry)).length + 1;
    if (bytes > 48 * 1024) break;
    told.push(entry);
  }
  return told;
}

// The same file chosen twice is listed once. Name and size tell it (browsers stamp files
// dropped from some sources with the time they were picked, so that is left out).
const sameFile = (a, b) => a.name === b.name && a.size === b.size;

function addFiles(files) {
  let repeated = 0;
  for (const file of files) {
    if (chosen.some((e) => sameFile(e.file, file))) { repeated++; continue; }
    const reason = check(file, chosen.filter((e) => e.state !== "rejected").length);
    const item = el("li", { class: "file" },
      el("img", { alt: "", width: 56, height: 56, decoding: "async" }),
      el("span", { class: "file-name", title: file.name }, file.name),
      el("span", { class: "file-size" }, mib(file.size)),
      el("span", { class: "badge" }),
      el("span", { class: "progress mini", "aria-hidden": "true" }, el("span", { class: "bar" })),
      el("span", { class: "reason" }),
      el("span", { class: "file-tools" },
        el("button", { type: "button", class: "button small preview-this", "aria-label": `Preview the recipe on ${file.name}` }, "Preview"),
        el("button", { type: "button", class: "button small retry", hidden: true, "aria-label": `Retry ${file.name}` }, "Retry"),
        el("button", { type: "button", class: "button small remove", "aria-label": `Remove ${file.name} from the selection` }, "✕")));
    const entry = { file, state: "waiting", reason: "", loaded: 0, item };
    item.querySelector(".preview-this").addEventListener("click", () => { previewOf(entry); $("preview").scrollIntoView({ block: "nearest", behavior: "smooth" }); });
    item.querySelector(".retry").addEventListener("click", () => retry(entry));
    item.querySelector(".remove").addEventListener("click", () => remove(entry));
    chosen.push(entry);
    $("file-list").append(item);
    if (thumbnails) thumbnails.observe(item); else item.querySelector("img").src = URL.createObjectURL(file);
    if (reason) entry.refusedHere = reason.code;
    setState(entry, reason ? "rejected" : "waiting", reason ? reason.message : "");
    if (!reason) sniff(entry);
  }
  describe();
  scheduleRecipeCheck(300);
  if (repeated) $("file-summary").textContent += ` · ${repeated} already chosen, not added again`;
  if (!preview.entry) { const first = chosen.find((e) => e.state !== "rejected"); if (first) previewOf(first); }
}

// What the server accepts, told by the first bytes (as the server tells it, not by name).
function looksLikePhoto(bytes) {
  const starts = (...b) => b.every((v, i) => bytes[i] === v);
  const ascii = (at, text) => [...text].every((c, i) => bytes[at + i] === c.charCodeAt(0));
  return starts(0xff, 0xd8, 0xff) || starts(0x89, 0x50, 0x4e, 0x47) || ascii(0, "GIF8")
    || (ascii(0, "RIFF") && ascii(8, "WEBP")) || ascii(0, "II*\0") || ascii(0, "MM\0*") || ascii(4, "ftyp");
}

// Flags a file that is no photo at all (a text file named .jpg) before anything is sent.
async function sniff(entry) {
  let bytes;
  try { bytes = new Uint8Array(await entry.file.slice(0, 16).arrayBuffer()); } catch (_) { return; }
  if (bytes.length && !looksLikePhoto(bytes) && entry.state === "waiting") {
    entry.refusedHere = "unsupported_format";
    setState(entry, "rejected", "not a photo: its content is not JPEG, PNG, WebP, GIF, TIFF or HEIC");
    describe();
  }
}

// Takes one photo out of the selection (not once it is uploading or uploaded).
function remove(entry) {
  if (entry.state === "uploading" || entry.state === "uploaded") return;
  const at = chosen.indexOf(entry);
  if (at >= 0) chosen.splice(at, 1);
  const img = entry.item.querySelector("img");
  if (img.src) URL.revokeObjectURL(img.src);
  entry.item.remove();
  scheduleRecipeCheck(300);
  if (preview.entry === entry) {
    preview.entry = null;
    describeRegions();
    const next = chosen.find((e) => e.state !== "rejected");
    if (next) previewOf(next);
  }
  describe();
}

function describe() {
  const usable = chosen.filter((e) => e.state !== "rejected");
  const refused = chosen.length - usable.length;
  $("selection").hidden = chosen.length === 0;
  $("file-summary").textContent = chosen.length
    ? `${usable.length} photo${usable.length === 1 ? "" : "s"} chosen · ${mib(usable.reduce((s, e) => s + e.file.size, 0))}${refused ? ` · ${refused} not accepted` : ""}`
    : $("file-summary").dataset.initial;
}

// ---- the preview ---------------------------------------------------------------------

const preview = { entry: null, copy: null, timer: null, abort: null };

async function reducedCopy(file) {
  // The browser's own decoder, upright (EXIF applied), shrunk to the preview's size.
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, PREVIEW_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
  return { blob, width: bitmap.width, height: bitmap.height };
}

async function previewOf(entry) {
  preview.entry = entry;
  for (const other of chosen) other.item.classList.toggle("previewing", other === entry);
  preview.copy = null;
  $("preview-name").textContent = entry.file.name;
  describeRegions();
  $("preview-status").textContent = "Preparing the preview…";
  const before = $("preview-before");
  let copy = null;
  try { copy = await reducedCopy(entry.file); } catch (_) { copy = null; } // HEIC, TIFF: the server decodes it
  if (preview.entry !== entry) return; // another photo was chosen meanwhile
  preview.copy = copy;
  if (before.src) URL.revokeObjectURL(before.src);
  if (copy) { before.src = URL.createObjectURL(copy.blob); before.hidden = false; } else { before.removeAttribute("src"); before.hidden = true; }
  schedulePreview(0);
}

function schedulePreview(delay) {
  if (!preview.entry || !window.darkroomBuilder) return;
  clearTimeout(preview.timer);
  preview.timer = setTimeout(renderPreview, delay);
}

// ---- regions drawn on one photo -----------------------------------------------------

const REGION_OPS = { redeye: "red-eye", whiten_teeth: "teeth" };
const MAX_OPS = 16; // the server's limit of operations per recipe
let sentRecipe = null; // the recipe the job was created with, once it was

function addRegion(entry, kind, region) {
  entry.regions = entry.regions || { redeye: [], whiten_teeth: [] };
  // At most 16 of a kind per photo (the newest): the photo's recipe stays small.
  entry.regions[kind] = [...entry.regions[kind], region].slice(-16);
  describeRegions();
  schedulePreview(0);
}

const hasRegions = (entry) => Boolean(entry && entry.regions && (entry.regions.redeye.length || entry.regions.whiten_teeth.length));

// The recipe one photo runs: the batch's, with the regions drawn on this photo in its
// red-eye and teeth steps (such a step comes first where the batch's recipe has none).
// Once the job exists its photos run the recipe it was created with, whatever the builder
// shows since, so a later batch's photos with regions start from that one too.
function photoRecipe(entry) {
  const recipe = sentRecipe ? JSON.parse(JSON.stringify(sentRecipe)) : window.darkroomBuilder.recipe();
  if (!hasRegions(entry)) return recipe;
  for (const kind of ["whiten_teeth", "redeye"]) {
    const regions = entry.regions[kind];
    if (!regions.length) continue;
    const op = recipe.ops.find((o) => o.op === kind);
    if (op) op.regions = regions;
    else if (recipe.ops.length < MAX_OPS) recipe.ops.unshift({ op: kind, regions });
  }
  return recipe;
}

// Outlines the previewed photo's regions on its "before" image, wherever the image sits.
function showRegions() {
  const box = $("preview-before-box"), before = $("preview-before"), entry = preview.entry;
  for (const old of box.querySelectorAll(".region-box")) old.remove();
  if (!hasRegions(entry) || before.hidden || !before.naturalWidth || !preview.copy) return;
  const frame = box.getBoundingClientRect(), image = before.getBoundingClientRect();
  const sx = image.width / preview.copy.width, sy = image.height / preview.copy.height;
  for (const [kind, words] of Object.entries(REGION_OPS)) {
    for (const r of entry.regions[kind]) {
      box.append(el("div", { class: `region-box region-${kind}`, title: `${words} region`, style: `left:${image.left - frame.left + r.x * sx}px;top:${image.top - frame.top + r.y * sy}px;width:${r.width * sx}px;height:${r.height * sy}px` }));
    }
  }
}

// Says which regions the previewed photo has, with a way to clear them.
function describeRegions() {
  const line = $("photo-regions"), entry = preview.entry;
  line.hidden = !hasRegions(entry);
  showRegions();
  if (line.hidden) return;
  const parts = Object.entries(REGION_OPS).map(([kind, words]) => [entry.regions[kind].length, words]).filter(([n]) => n)
    .map(([n, words]) => `${n} ${words} region${n === 1 ? "" : "s"}`);
  line.replaceChildren(`This photo: ${parts.join(", ")} (for this photo only). `,
    el("button", { type: "button", class: "link", onclick: () => { entry.regions = { redeye: [], whiten_teeth: [] }; describeRegions(); schedulePreview(0); } }, "Clear them"));
}

function builderAssets() {
  return window.darkroomBuilder && window.darkroomBuilder.assets ? window.darkroomBuilder.assets() : [];
}

async function renderPreview() {
  if (preview.abort) preview.abort.abort();
  const abort = new AbortController();
  preview.abort = abort;
  const entry = preview.entry;
  const recipe = photoRecipe(entry);
  if (!recipe.ops.length) { $("preview-after").hidden = true; $("preview-status").textContent = "Add an operation to see what it does."; return; }
  const body = new FormData();
  body.append("recipe", JSON.stringify(recipe));
  for (const asset of builderAssets()) body.append("assets", asset.file, asset.name);
  if (preview.copy) {
    body.append("photo", preview.copy.blob, "preview.jpg");
    body.append("original_width", String(preview.copy.width));
    body.append("original_height", String(preview.copy.height));
  } else {
    body.append("photo", preview.entry.file, preview.entry.file.name);
  }
  $("preview-status").textContent = "Rendering the preview…";
  try {
    const reply = await fetch("/api/v1/preview", { method: "POST", body, signal: abort.signal });
    if (!reply.ok) {
      let message = `HTTP ${reply.status}`;
      try { message = (await reply.clone().json()).error.message; } catch (_) { /* not JSON */ }
      let part = "";
      try { part = (await reply.clone().json()).part || ""; } catch (_) { /* not JSON */ }
      const fileIsBad = part === "photo";
      if (reply.status === 429) $("preview-status").textContent = "The server is busy; the preview follows in a moment.";
      else if (fileIsBad) {
        // The photo itself will be refused: say so beside it now, not after the upload.
        $("preview-status").textContent = `${entry.file.name} cannot be processed: ${message}`;
        if (entry.state === "waiting") {
          let code = "processing_failed";
          try { code = (await reply.clone().json()).error.code || code; } catch (_) { /* not JSON */ }
          entry.refusedHere = code;
          setState(entry, "rejected", message);
        }
        describe();
      } else $("preview-status").textContent = `The recipe cannot run on this photo: ${message}`;
      if (reply.status === 429) schedulePreview(1500); else $("preview-after").hidden = true;
      return;
    }
    if (preview.entry !== entry) return;
    const after = $("preview-after");
    if (after.src) URL.revokeObjectURL(after.src);
    after.src = URL.createObjectURL(await reply.blob());
    after.hidden = false;
    $("preview-status").textContent = `Preview of ${preview.entry.file.name}, as the recipe stands.`;
  } catch (error) {
    if (error.name !== "AbortError") { $("preview-after").hidden = true; $("preview-status").textContent = "The preview could not be fetched."; }
  }
}

// A crop box drawn on the "before" photo, in the original's pixels.
// Boxes drawn on the "before" photo. A crop box is kept relative to the photo (the same part
// of every photo in the batch, whatever their sizes), replaces any other crop, stays shown,
// and can be moved by dragging inside it or drawn anew; red-eye and teeth regions are in this
// photo's pixels. Positions are taken against the image itself, not its letterboxed frame.
function setupDrawing() {
  const box = $("preview-before-box"), rect = $("draw-box"), before = $("preview-before");
  const clamp = (v) => Math.min(1, Math.max(0, v));
  const round = (v) => Math.round(v * 10000) / 10000;
  let gesture = null;
  const point = (event) => {
    const image = before.getBoundingClientRect();
    return { x: clamp((event.clientX - image.left) / image.width), y: clamp((event.clientY - image.top) / image.height) };
  };
  const spanning = (a, b) => ({ x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), width: Math.abs(b.x - a.x), height: Math.abs(b.y - a.y) });
  const currentCrop = () => {
    const op = window.darkroomBuilder && window.darkroomBuilder.recipe().ops.find((o) => o.op === "crop" && o.relative);
    return op ? op.relative : null;
  };
  // Shows a box (fractions of the image) over the image, wherever the image sits in its frame.
  const show = (fraction) => {
    if (!fraction || before.hidden || !before.naturalWidth) { rect.hidden = true; return; }
    const frame = box.getBoundingClientRect(), image = before.getBoundingClientRect();
    Object.assign(rect.style, {
      left: `${image.left - frame.left + fraction.x * image.width}px`, top: `${image.top - frame.top + fraction.y * image.height}px`,
      width: `${fraction.width * image.width}px`, height: `${fraction.height * image.height}px`,
    });
    rect.hidden = false;
  };
  const refresh = () => { if (!gesture) show(currentCrop()); };
  if (window.darkroomBuilder) window.darkroomBuilder.onChange(refresh);
  before.addEventListener("load", () => { refresh(); showRegions(); });
  window.addEventListener("resize", () => { refresh(); showRegions(); });
  before.draggable = false; // a drag draws a box, it does not pick the image up
  box.addEventListener("dragstart", (event) => event.preventDefault());
  box.addEventListener("pointerdown", (event) => {
    if (before.hidden || !preview.copy || event.button !== 0) return;
    event.preventDefault();
    const at = point(event);
    const crop = currentCrop();
    const inside = crop && at.x >= crop.x && at.x <= crop.x + crop.width && at.y >= crop.y && at.y <= crop.y + crop.height;
    gesture = $("draw-what").value === "crop" && inside ? { kind: "move", start: at, from: crop, now: crop } : { kind: "draw", start: at, now: spanning(at, at) };
    box.setPointerCapture(event.pointerId);
    show(gesture.now);
  });
  box.addEventListener("pointermove", (event) => {
    if (!gesture) return;
    const at = point(event);
    if (gesture.kind === "draw") gesture.now = spanning(gesture.start, at);
    else {
      const { from } = gesture;
      gesture.now = { ...from, x: Math.min(1 - from.width, Math.max(0, from.x + at.x - gesture.start.x)), y: Math.min(1 - from.height, Math.max(0, from.y + at.y - gesture.start.y)) };
    }
    show(gesture.now);
  });
  const finish = () => {
    if (!gesture) return;
    const { kind, now } = gesture;
    gesture = null;
    const what = $("draw-what").value;
    if (kind === "draw" && (now.width < 0.01 || now.height < 0.01)) { refresh(); return; } // a click, not a box
    if (kind === "move" || what === "crop") {
      window.darkroomBuilder.setCropBox({ x: round(now.x), y: round(now.y), width: round(now.width), height: round(now.height) });
      return;
    }
    // A region, in the pixels of this photo's upright original, kept with this photo only:
    // eyes and mouths are somewhere else in every other photo.
    const { width, height } = preview.copy;
    addRegion(preview.entry, what, {
      x: Math.round(now.x * width), y: Math.round(now.y * height),
      width: Math.max(1, Math.round(now.width * width)), height: Math.max(1, Math.round(now.height * height)),
    });
    refresh();
  };
  box.addEventListener("pointerup", finish);
  // A cancelled gesture (the browser took the pointer: a scroll, a system gesture) is dropped.
  box.addEventListener("pointercancel", () => { gesture = null; refresh(); });
}

// ---- the recipe tried on every photo's size -------------------------------------------

// Each photo's upright size, read from the first 256 KiB of the file (the header; never the
// whole file): JPEG (its frame header, and the EXIF orientation that turns it), PNG, GIF and
// WebP. null when the header is not there or the format is another (HEIC, TIFF): the server
// judges those at upload.
const HEAD_BYTES = 256 * 1024;
async function sizeOf(entry) {
  if (entry.size !== undefined) return entry.size;
  let size = null;
  try { size = headerSize(new DataView(await entry.file.slice(0, HEAD_BYTES).arrayBuffer())); } catch (_) { size = null; }
  entry.size = size;
  return size;
}

function headerSize(v) {
  const ascii = (at, text) => at + text.length <= v.byteLength && [...text].every((c, i) => v.getUint8(at + i) === c.charCodeAt(0));
  if (v.byteLength >= 24 && v.getUint32(0) === 0x89504e47) return { width: v.getUint32(16), height: v.getUint32(20) };
  if (ascii(0, "GIF8") && v.byteLength >= 10) return { width: v.getUint16(6, true), height: v.getUint16(8, true) };
  if (ascii(0, "RIFF") && ascii(8, "WEBP") && v.byteLength >= 30) {
    if (ascii(12, "VP8X")) return { width: 1 + (v.getUint32(24, true) & 0xffffff), height: 1 + (v.getUint32(27, true) & 0xffffff) };
    if (ascii(12, "VP8L")) { const b = v.getUint32(21, true); return { width: 1 + (b & 0x3fff), height: 1 + ((b >>> 14) & 0x3fff) }; }
    if (ascii(12, "VP8 ")) return { width: v.getUint16(26, true) & 0x3fff, height: v.getUint16(28, true) & 0x3fff };
    return null;
  }
  if (v.byteLength < 4 || v.getUint16(0) !== 0xffd8) return null;
  // JPEG: walk the segments to the frame header, noting the EXIF orientation on the way.
  let at = 2, turned = false;
  while (at + 9 < v.byteLength) {
    if (v.getUint8(at) !== 0xff) return null;
    const marker = v.getUint8(at + 1);
    if (marker === 0xff) { at++; continue; }
    const length = v.getUint16(at + 2);
    if (marker === 0xe1 && ascii(at + 4, "Exif\0\0")) turned = exifTurns(v, at + 10, Math.min(v.byteLength, at + 2 + length));
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      const height = v.getUint16(at + 5), width = v.getUint16(at + 7);
      return turned ? { width: height, height: width } : { width, height };
    }
    at += 2 + length;
  }
  return null;
}

// Whether a JPEG's EXIF orientation (TIFF header at `start`) turns it by 90° or 270°.
function exifTurns(v, start, end) {
  if (start + 8 > end) return false;
  const little = v.getUint16(start) === 0x4949;
  const ifd = start + v.getUint32(start + 4, little);
  if (ifd + 2 > end) return false;
  const count = v.getUint16(ifd, little);
  for (let i = 0; i < count && ifd + 2 + 12 * (i + 1) <= end; i++) {
    const tag = ifd + 2 + 12 * i;
    if (v.getUint16(tag, little) === 0x0112) return v.getUint16(tag + 8, little) >= 5;
  }
  return false;
}

async function sizesOf(entries) {
  const sizes = new Array(entries.length);
  let next = 0;
  const reader = async () => { while (next < entries.length) { const i = next++; sizes[i] = await sizeOf(entries[i]); } };
  await Promise.all(Array.from({ length: 6 }, reader));
  return sizes;
}

// Asks the server whether the recipe would run on each photo still to be sent (a crop box
// drawn on a large photo may miss a small one) and marks the ones it would fail for.
const recipeCheck = { timer: null, run: 0 };
function scheduleRecipeCheck(delay) {
  clearTimeout(recipeCheck.timer);
  recipeCheck.timer = setTimeout(checkRecipe, delay);
}

async function checkRecipe() {
  const run = ++recipeCheck.run;
  const line = $("recipe-check");
  const entries = chosen.filter((e) => e.state === "waiting" || e.state === "failed");
  const recipe = window.darkroomBuilder ? window.darkroomBuilder.recipe() : null;
  for (const entry of chosen) if (!entries.includes(entry)) markCheck(entry, null);
  if (!recipe || !recipe.ops.length || !entries.length) { line.hidden = true; return; }
  const sizes = await sizesOf(entries);
  if (run !== recipeCheck.run) return; // the recipe or the selection changed meanwhile
  const known = entries.map((entry, i) => ({ entry, size: sizes[i] })).filter((k) => k.size && k.size.width && k.size.height);
  if (!known.length) { line.hidden = true; return; }
  // Sizes only (the answers come back in order), in parts well under the server's body limit.
  const photos = [];
  for (let from = 0; from < known.length; from += 2000) {
    const part = known.slice(from, from + 2000);
    let reply;
    try {
      reply = await fetch("/api/v1/recipes/check", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ recipe, photos: part.map((k) => ({ name: "", width: k.size.width, height: k.size.height })) }),
      });
    } catch (_) { reply = null; }
    if (run !== recipeCheck.run) return;
    if (!reply || !reply.ok) {
      line.hidden = false;
      line.className = "status-line";
      line.textContent = "The recipe could not be tried on the photos' sizes just now; the upload will say if it fails for any.";
      return;
    }
    photos.push(...(await reply.json()).photos);
  }
  const failing = [];
  known.forEach((k, i) => {
    const result = photos[i];
    markCheck(k.entry, result && !result.ok ? result.error.message : null);
    if (result && !result.ok) failing.push(`${k.entry.file.name} (${result.error.message})`);
  });
  line.hidden = false;
  line.className = failing.length ? "status-line error" : "status-line";
  line.textContent = failing.length
    ? `The recipe would fail for ${failing.length} of ${known.length} photo${known.length === 1 ? "" : "s"}: ${failing.slice(0, 3).join("; ")}${failing.length > 3 ? `; and ${failing.length - 3} more (marked in the list)` : ""}. Change the recipe, or remove ${failing.length === 1 ? "that photo" : "those photos"}.`
    : `The recipe fits all ${known.length} photo${known.length === 1 ? "" : "s"} checked.`;
}

// Marks (or unmarks) a photo the recipe would fail for; it can still be sent.
function markCheck(entry, message) {
  entry.item.classList.toggle("would-fail", Boolean(message));
  const reason = entry.item.querySelector(".reason");
  if (message) reason.textContent = `The recipe would fail on this photo: ${message}`;
  else if (reason.textContent.startsWith("The recipe would fail")) reason.textContent = entry.reason;
}

// ---- uploading -----------------------------------------------------------------------

function batches(entries) {
  const out = [];
  let current = [], bytes = 0;
  for (const entry of entries) {
    if (current.length && (current.length >= BATCH_FILES || bytes + entry.file.size > BATCH_BYTES)) { out.push(current); current = []; bytes = 0; }
    current.push(entry); bytes += entry.file.size;
  }
  if (current.length) out.push(current);
  return out;
}

function send(url, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded);
    xhr.onload = () => { let json = null; try { json = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ } resolve({ status: xhr.status, json }); };
    xhr.onerror = () => reject(new Error("network error"));
    xhr.send(body);
  });
}

async function sendWithRetry(url, makeBody, headers, onProgress) {
  let delay = 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      const reply = await send(url, makeBody(), headers, onProgress);
      const retryable = reply.status === 429 || reply.status === 503 || reply.status === 409 || reply.status >= 500;
      if (!retryable || attempt >= 4) return reply;
    } catch (error) {
      if (attempt >= 4) throw error;
    }
    await new Promise((r) => setTimeout(r, delay));
    delay *= 2;
  }
}

const totals = { bytes: 1, started: 0, entries: [] };
function reportTotal() {
  const sent = totals.entries.reduce((s, e) => s + (e.state === "uploaded" ? e.file.size : e.state === "uploading" ? e.loaded : 0), 0);
  $("progress-bar").style.width = `${Math.min(100, (100 * sent) / totals.bytes).toFixed(1)}%`;
  const seconds = (Date.now() - totals.started) / 1000;
  const rate = sent / Math.max(seconds, 0.001);
  const left = rate > 0 ? Math.max(0, (totals.bytes - sent) / rate) : 0;
  $("upload-eta").textContent = `${mib(sent)} of ${mib(totals.bytes)}` + (seconds > 2 && sent < totals.bytes ? ` · about ${left < 90 ? `${Math.ceil(left)} s` : `${Math.ceil(left / 60)} min`} left` : "");
}

// Sends one batch; marks each of its photos uploaded, not accepted (with the server's
// reason) or failed.
async function sendBatch(batch, url, headers, first) {
  const offsets = [];
  let offset = 0;
  for (const entry of batch) { offsets.push(offset); offset += entry.file.size; entry.loaded = 0; setState(entry, "uploading"); }
  const onProgress = (loaded) => {
    batch.forEach((entry, i) => { entry.loaded = Math.min(entry.file.size, Math.max(0, loaded - offsets[i])); setState(entry, "uploading"); });
    reportTotal();
  };
  const makeBody = () => {
    const body = new FormData();
    if (first) {
      sentRecipe = window.darkroomBuilder ? window.darkroomBuilder.recipe() : {};
      body.append("recipe", JSON.stringify(sentRecipe));
      const name = $("job-name").value.trim();
      if (name) body.append("name", name);
      const refused = refusedHere();
      if (refused.length) body.append("rejected", JSON.stringify(refused));
      // The logos the recipe's image watermarks name: stored with the job.
      for (const asset of builderAssets()) body.append("assets", asset.file, asset.name);
    }
    for (const entry of batch) body.append("photos", entry.file, entry.file.name);
    // Photos with regions drawn on them run their own recipe (by their place in this body).
    const own = {};
    batch.forEach((entry, index) => { if (hasRegions(entry)) own[index] = photoRecipe(entry); });
    if (Object.keys(own).length) body.append("photo_recipes", JSON.stringify(own));
    return body;
  };
  let reply;
  try {
    reply = await sendWithRetry(url, makeBody, headers, onProgress);
  } catch (_) {
    for (const entry of batch) setState(entry, "failed", "the connection failed");
    return null;
  }
  if (reply.status === 201 || (reply.status === 400 && reply.json && reply.json.rejected)) {
    const rejected = [...((reply.json && reply.json.rejected) || [])];
    for (const entry of batch) {
      const index = rejected.findIndex((r) => r.name === displayName(entry.file.name));
      if (index >= 0) setState(entry, "rejected", rejected.splice(index, 1)[0].error.message);
      else if (reply.status === 201) setState(entry, "uploaded");
      else setState(entry, "rejected", reply.json.error.message);
    }
    reportTotal();
    return reply.status === 201 ? reply.json : null;
  }
  const message = reply.json && reply.json.error ? reply.json.error.message : `HTTP ${reply.status}`;
  // 409: an earlier send of this batch (same Idempotency-Key) is still being decided; the
  // photos can be sent again later, so they stay retryable rather than "not accepted".
  const retryable = reply.status >= 500 || reply.status === 429 || reply.status === 409;
  for (const entry of batch) setState(entry, retryable ? "failed" : "rejected", message);
  if (first && !retryable) throw new Error(message);
  return null;
}

// A batch's Idempotency-Key: kept by each of its photos, so that sending them again (the
// Retry button, or Upload once more) reuses it. If the first send was stored but its answer
// lost, the server then replays that answer instead of adding the photos a second time.
function newBatchKey() {
  return `${job.id}-${crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`}`;
}

// The failed photos as the batches they were sent in (same photos, same key), and the
// photos never sent as new batches.
function batchesToSend(todo) {
  const again = new Map();
  const fresh = [];
  for (const entry of todo) {
    if (entry.state === "failed" && entry.batchKey) {
      if (!again.has(entry.batchKey)) again.set(entry.batchKey, []);
      again.get(entry.batchKey).push(entry);
    } else fresh.push(entry);
  }
  return [...[...again.entries()].map(([key, batch]) => Object.assign(batch, { key })), ...batches(fresh)];
}

async function sendAdded(batch) {
  const key = batch.key || newBatchKey();
  for (const entry of batch) entry.batchKey = key;
  await sendBatch(batch, `/api/v1/jobs/${job.id}/photos`, { "X-Owner-Token": job.owner_token, "Idempotency-Key": key }, false);
}

async function retry(entry) {
  if (!job) { $("submit").click(); return; }
  // The whole batch it was sent in, with its key: a subset under the same key would be
  // answered with the whole batch's reply.
  const mates = entry.batchKey ? chosen.filter((e) => e.batchKey === entry.batchKey && e.state === "failed") : [entry];
  await Promise.all(batchesToSend(mates).map(sendAdded));
  finish();
}

function finish() {
  const open = chosen.filter((e) => e.state === "failed" || e.state === "waiting");
  const rejected = chosen.filter((e) => e.state === "rejected");
  if (!job || chosen.some((e) => e.state === "uploading")) return; // another send will finish

  $("open-job").href = job.url;
  $("upload-done").hidden = false;
  if (!open.length && !rejected.length) { window.location.href = job.url; return; }
  $("upload-status").className = open.length ? "status-line error" : "status-line";
  $("upload-status").textContent = open.length
    ? `${open.length} photo${open.length === 1 ? "" : "s"} could not be sent: retry ${open.length === 1 ? "it" : "them"}, or open the job page.`
    : `${rejected.length} file${rejected.length === 1 ? " was" : "s were"} not accepted (see the list); the others are being processed.`;
}

async function upload(event) {
  event.preventDefault();
  const status = $("upload-status"), button = $("submit");
  const todo = chosen.filter((e) => e.state === "waiting" || e.state === "failed");
  if (!todo.length) { status.className = "status-line error"; status.textContent = chosen.length ? "No photo left to send." : "Choose at least one photo."; return; }
  if (window.darkroomBuilder && !window.darkroomBuilder.recipe().ops.length) { status.className = "status-line error"; status.textContent = "Add at least one operation to the recipe."; return; }
  button.disabled = true; $("progress").hidden = false; status.className = "status-line";
  totals.bytes = todo.reduce((s, e) => s + e.file.size, 0) || 1;
  totals.entries = todo;
  totals.started = Date.now();
  status.textContent = `Uploading ${todo.length} photo${todo.length === 1 ? "" : "s"}…`;
  try {
    let rest = job ? batchesToSend(todo) : batches(todo);
    while (!job && rest.length) {
      const [first, ...others] = rest;
      rest = others;
      job = await sendBatch(first, "/api/v1/jobs", {}, true);
      if (!job) sentRecipe = null; // no job was made with it
      if (!job && first.every((e) => e.state === "rejected")) continue; // nothing acceptable: try the next batch
      if (!job) throw new Error("the upload failed; retry it");
    }
    let next = 0;
    const worker = async () => {
      while (next < rest.length) {
        await sendAdded(rest[next++]);
      }
    };
    if (job) await Promise.all(Array.from({ length: PARALLEL_BATCHES }, worker));
    if (!job) throw new Error("none of the photos was accepted; see the list");
    finish();
  } catch (error) {
    status.className = "status-line error";
    status.textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

// ---- this browser's jobs -------------------------------------------------------------

async function showMyJobs() {
  let reply;
  try { reply = await fetch("/api/v1/jobs", { headers: { Accept: "application/json" } }); } catch (_) { return; }
  if (!reply.ok) return;
  const { jobs } = await reply.json();
  const list = $("my-jobs-list");
  const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  list.replaceChildren(...jobs.map((j) => el("li", { class: "my-job" },
    j.thumbnail_url ? el("img", { src: j.thumbnail_url, alt: "", loading: "lazy", width: 48, height: 48, onerror: (e) => e.target.replaceWith(el("span", { class: "my-job-blank", "aria-hidden": "true" })) }) : el("span", { class: "my-job-blank", "aria-hidden": "true" }),
    el("a", { href: j.url }, `${j.name ? `${j.name} · ` : ""}${j.photos} photo${j.photos === 1 ? "" : "s"} · ${when(j.created_at)}`),
    el("span", { class: `badge state-${j.state}` }, j.state),
    el("span", { class: "muted" }, `${j.counts.done} done${j.counts.failed ? ` · ${j.counts.failed} failed` : ""} · ${ago(j.created_at)}`))));
  $("my-jobs").hidden = jobs.length === 0;
  $("my-jobs").dataset.loaded = "1";
}

function setup() {
  const form = $("upload-form"), input = $("photos"), zone = $("drop-zone");
  // Leaving mid-upload loses the photos not sent yet: the browser asks first.
  window.addEventListener("beforeunload", (event) => {
    if (chosen.some((e) => e.state === "uploading")) { event.preventDefault(); event.returnValue = ""; }
  });
  limits = { maxBytes: Number(form.dataset.maxFileBytes) || Infinity, maxPhotos: Number(form.dataset.maxPhotos) || 1000 };
  $("file-summary").dataset.initial = $("file-summary").textContent;
  zone.classList.add("enhanced");
  input.addEventListener("change", () => { addFiles(Array.from(input.files)); input.value = ""; });
  for (const name of ["dragenter", "dragover"]) zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.add("dragging"); });
  for (const name of ["dragleave", "drop"]) zone.addEventListener(name, () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer && e.dataTransfer.files.length) addFiles(Array.from(e.dataTransfer.files)); });
  $("clear-selection").addEventListener("click", () => {
    chosen.splice(0).forEach((e) => { const img = e.item.querySelector("img"); if (img.src) URL.revokeObjectURL(img.src); });
    $("file-list").replaceChildren();
    preview.entry = null;
    describeRegions();
    describe();
  });
  input.required = false; // the list is what is sent
  form.addEventListener("submit", upload);
  if (window.darkroomBuilder) window.darkroomBuilder.onChange(() => { schedulePreview(400); scheduleRecipeCheck(600); });
  setupDrawing();
  const enlarge = $("preview-enlarge"), pane = document.querySelector(".preview-pane");
  const setLarge = (large) => {
    pane.classList.toggle("large", large);
    enlarge.setAttribute("aria-pressed", String(large));
    enlarge.textContent = large ? "Back" : "Enlarge";
    window.dispatchEvent(new Event("resize")); // boxes drawn on the photo follow its new size
  };
  enlarge.addEventListener("click", () => setLarge(!pane.classList.contains("large")));
  document.addEventListener("keydown", (event) => { if (event.key === "Escape" && pane.classList.contains("large")) setLarge(false); });
  showMyJobs();
  if (new URLSearchParams(window.location.search).has("deleted")) {
    $("notice").textContent = "The job was deleted, with every photo in it.";
    $("notice").hidden = false;
    history.replaceState(null, "", "/");
  }
}

document.addEventListener("DOMContentLoaded", setup);
