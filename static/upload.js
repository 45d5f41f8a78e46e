// Upload page: photos chosen or dropped are listed with thumbnails and checked against the
// server's limits; the recipe (builder.js) is previewed on one of them by the server; on
// upload the photos go up in parallel batches through the JSON API (the first batch
// creates the job, the rest are added with an Idempotency-Key), each photo with its own
// progress and state, a failed one with a retry button. Without JavaScript the plain form
// posts to /jobs instead. The preview and its drawn boxes are in upload_preview.js, the
// recipe tried on every photo's size in upload_sizes.js (loaded before this file).
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
  // Photos dropped anywhere else on the page are taken too: the browser would otherwise open
  // the file in place of the page, and the selection with it. Another file input (the
  // watermark's image) keeps its drops, on itself or on its label.
  const carriesFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types).includes("Files");
  const otherInput = (e) => {
    const node = e.target instanceof Element ? e.target : e.target && e.target.parentElement;
    if (!node) return null;
    const label = node.closest("label");
    const field = node instanceof HTMLInputElement ? node : label && label.control;
    return field && field.type === "file" && field !== input ? field : null;
  };
  document.addEventListener("dragover", (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    if (!otherInput(e)) zone.classList.add("dragging");
  });
  document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) zone.classList.remove("dragging"); });
  document.addEventListener("drop", (e) => {
    if (e.defaultPrevented || !carriesFiles(e)) return;
    const other = otherInput(e);
    if (other && e.target === other) return; // the input takes it itself
    e.preventDefault();
    zone.classList.remove("dragging");
    if (other) {
      other.files = e.dataTransfer.files;
      other.dispatchEvent(new Event("change", { bubbles: true }));
    } else if (e.dataTransfer.files.length) addFiles(Array.from(e.dataTransfer.files));
  });
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
