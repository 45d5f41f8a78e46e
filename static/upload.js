// Upload page: drag and drop, then the photos go up in parallel batches through the JSON
// API (first batch creates the job, the rest are added to it with an Idempotency-Key so
// a retried batch is added once). Without JavaScript the form posts to /jobs instead.
// buildRecipe() mirrors crates/web/src/form.rs: keep the two in step.
"use strict";

const BATCH_FILES = 8;
const BATCH_BYTES = 48 * 1024 * 1024;
const PARALLEL_BATCHES = 3;
const FORM_ORDER = ["redeye", "whiten_teeth", "crop", "recolor", "thumbnail", "customize"];

function buildRecipe(form) {
  const value = (name) => (form.elements[name] ? String(form.elements[name].value).trim() : "");
  const number = (name) => (value(name) === "" ? null : Number(value(name)));
  const checked = (name) => Boolean(form.elements[name] && form.elements[name].checked);
  const ops = [];
  for (const op of FORM_ORDER) {
    if (!checked("op_" + op)) continue;
    const spec = { op };
    if (op === "whiten_teeth" && number("whiten_strength") !== null) spec.strength = number("whiten_strength");
    if (op === "crop") {
      spec.aspect = value("crop_aspect") || "1:1";
      if (checked("crop_smart")) spec.smart = true;
    }
    if (op === "recolor") {
      spec.mode = value("recolor_mode") || "grayscale";
      if (spec.mode === "tint") {
        spec.color = value("tint_color") || "#704214";
        if (number("tint_strength") !== null) spec.strength = number("tint_strength");
      }
      if (spec.mode === "hue") spec.degrees = number("hue_degrees") ?? 0;
    }
    if (op === "thumbnail") spec.size = Math.round(number("thumbnail_size") ?? 1024);
    if (op === "customize") {
      for (const name of ["brightness", "contrast", "saturation", "sharpen"]) {
        const v = number(name);
        if (v !== null && v !== 0) spec[name] = v;
      }
      const rotate = number("rotate");
      if (rotate) spec.rotate = Math.round(rotate);
      if (value("flip") && value("flip") !== "none") spec.flip = value("flip");
      const border = number("border_width");
      if (border && border > 0) spec.border = { width: Math.round(border), color: value("border_color") || "#ffffff" };
      if (value("caption_text")) spec.caption = { text: value("caption_text"), position: value("caption_position") || "bottom" };
    }
    ops.push(spec);
  }
  const recipe = { ops, format: value("format") || "jpeg" };
  if (number("quality") !== null) recipe.quality = Math.round(number("quality"));
  return recipe;
}

function batches(files) {
  const out = [];
  let current = [], bytes = 0;
  for (const file of files) {
    if (current.length && (current.length >= BATCH_FILES || bytes + file.size > BATCH_BYTES)) {
      out.push(current); current = []; bytes = 0;
    }
    current.push(file); bytes += file.size;
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
    xhr.onload = () => {
      let json = null;
      try { json = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      resolve({ status: xhr.status, json });
    };
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

function setup() {
  const form = document.getElementById("upload-form");
  const input = document.getElementById("photos");
  const zone = document.getElementById("drop-zone");
  const summary = document.getElementById("file-summary");
  const status = document.getElementById("upload-status");
  const progress = document.getElementById("progress");
  const bar = document.getElementById("progress-bar");
  const button = document.getElementById("submit");

  const describe = () => {
    const files = Array.from(input.files);
    if (!files.length) return;
    const mib = files.reduce((s, f) => s + f.size, 0) / 1048576;
    summary.textContent = `${files.length} photo${files.length === 1 ? "" : "s"} chosen · ${mib.toFixed(1)} MiB`;
  };
  input.addEventListener("change", describe);
  for (const name of ["dragenter", "dragover"]) zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.add("dragging"); });
  for (const name of ["dragleave", "drop"]) zone.addEventListener(name, () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; describe(); }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = Array.from(input.files);
    if (!files.length) { status.textContent = "Choose at least one photo."; return; }
    const recipe = buildRecipe(form);
    if (!recipe.ops.length) { status.className = "status-line error"; status.textContent = "Choose at least one operation."; return; }
    button.disabled = true; progress.hidden = false; status.className = "status-line";
    const total = files.reduce((s, f) => s + f.size, 0) || 1;
    const sent = new Map();
    const report = (key, loaded) => { sent.set(key, loaded); const done = [...sent.values()].reduce((a, b) => a + b, 0); bar.style.width = `${Math.min(100, (100 * done) / total).toFixed(1)}%`; };
    const rejected = [];
    const [first, ...rest] = batches(files);
    try {
      status.textContent = `Uploading ${files.length} photo${files.length === 1 ? "" : "s"}…`;
      const makeFirst = () => { const body = new FormData(); body.append("recipe", JSON.stringify(recipe)); for (const f of first) body.append("photos", f, f.name); return body; };
      const created = await sendWithRetry("/api/v1/jobs", makeFirst, {}, (n) => report(0, n));
      if (created.status !== 201) throw new Error(created.json && created.json.error ? created.json.error.message : `upload failed (HTTP ${created.status})`);
      const job = created.json;
      rejected.push(...job.rejected);
      let next = 0;
      const worker = async () => {
        while (next < rest.length) {
          const index = next++;
          const batch = rest[index];
          const key = `${job.id}-${index}-${crypto.randomUUID ? crypto.randomUUID() : Math.random()}`;
          const makeBody = () => { const body = new FormData(); for (const f of batch) body.append("photos", f, f.name); return body; };
          const reply = await sendWithRetry(`/api/v1/jobs/${job.id}/photos`, makeBody, { "X-Owner-Token": job.owner_token, "Idempotency-Key": key }, (n) => report(index + 1, n));
          if (reply.status === 201) rejected.push(...reply.json.rejected);
          else if (reply.json && reply.json.rejected) rejected.push(...reply.json.rejected);
          else rejected.push(...batch.map((f) => ({ name: f.name, error: { message: reply.json && reply.json.error ? reply.json.error.message : `HTTP ${reply.status}` } })));
        }
      };
      await Promise.all(Array.from({ length: PARALLEL_BATCHES }, worker));
      if (rejected.length) sessionStorage.setItem(`darkroom-rejected-${job.id}`, JSON.stringify(rejected));
      window.location.href = job.url;
    } catch (error) {
      status.className = "status-line error";
      status.textContent = error.message;
      button.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", setup);
