// Upload page, the preview: the recipe run by the server on a reduced copy of one chosen
// photo, and the boxes drawn on its "before" image (a crop for every photo, red-eye and
// teeth regions for this one). Loaded before upload.js, whose selection it reads.
"use strict";

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
