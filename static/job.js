// Job page: follows the job live through the JSON API until every photo is finished,
// shows before/after, and offers the owner's actions (retry failed, delete).
"use strict";

const POLL_MS = 1500;

function output(photo, name) { return (photo.outputs || []).find((o) => o.name === name); }

// Where a photo is, in words: as PhotoView::label says it on the server-rendered page.
const STAGE_WORDS = { quick: "processing", slow: "retouching" };
function label(photo) {
  const stage = photo.stage && (STAGE_WORDS[photo.stage] || photo.stage);
  if (photo.state === "queued" && stage) return `waiting for ${stage}`;
  if (photo.state === "processing" && stage) return stage;
  return photo.state;
}

function card(photo) {
  const thumb = output(photo, "thumb");
  const result = output(photo, "result");
  // A done photo's thumbnail is a button that opens the compare viewer (keyboard too).
  // Until it has a result, a photo shows a small copy of its original under its state.
  const box = thumb && result
    ? el("button", { type: "button", class: "thumb", "aria-label": `Compare ${photo.name} before and after` }, el("img", { loading: "lazy", decoding: "async", alt: "", draggable: "false", src: thumb.url }))
    : el("div", { class: "thumb" }, photo.original_thumb_url && !noCopy.has(photo.id) ? el("img", { class: "original", loading: "lazy", decoding: "async", alt: "", draggable: "false", src: photo.original_thumb_url }) : null, el("span", { class: "placeholder" }, label(photo)));
  const node = el("article", { class: `card state-${photo.state} stage-${photo.stage || "none"}`, "data-photo-id": photo.id, "data-attempt": String(photo.attempt) }, box,
    el("div", { class: "meta" }, el("span", { class: "name", title: photo.name }, photo.name), el("span", { class: `badge state-${photo.state}` }, label(photo))));
  if (photo.work_ms != null) node.append(el("p", { class: "took muted", title: "Time spent processing this photo (not the time it waited)" }, `processed in ${durationWords(photo.work_ms)}`));
  if (photo.error) node.append(el("p", { class: "error" }, photo.error.message));
  if (result) {
    node.append(el("p", { class: "links" }, el("a", { href: result.url }, "Result"), " · ", el("a", { href: photo.original_url }, "Original"), " · ", el("a", { href: result.url + "?download=1" }, "Download")));
  }
  return node;
}

// Photos whose original has no copy (too large to copy here, or the server kept refusing):
// their cards show the state in words without asking again at every update.
const noCopy = new Set();

// A copy that did not load is asked for again twice, a few seconds apart (the server may be
// busy: 429), then given up for this page.
function copyFailed(img) {
  const tries = Number(img.dataset.tries || 0);
  const card = img.closest("article");
  if (tries >= 2) {
    if (card) noCopy.add(card.getAttribute("data-photo-id"));
    img.remove();
    return;
  }
  img.dataset.tries = String(tries + 1);
  const src = img.src.split("?")[0];
  setTimeout(() => { img.src = `${src}?try=${tries + 1}`; }, (2000 + Math.random() * 2000) * (tries + 1));
}

// Milliseconds in words, as the server-rendered page says them (pages.rs duration_words).
function durationWords(ms) {
  if (ms < 1) return "under 1 ms";
  if (ms < 100) return `${ms} ms`;
  if (ms < 9950) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

// The files the job's uploads left out, kept with the job.
function renderRejected(view) {
  const section = document.getElementById("rejected");
  const files = view.rejected || [];
  section.hidden = files.length === 0;
  document.getElementById("rejected-count").textContent = String(files.length);
  document.getElementById("rejected-list").replaceChildren(...files.map((f) => el("li", {}, el("span", { class: "name" }, f.name), `: ${f.error.message}`)));
}

function compare(photo) {
  const reprocess = document.getElementById("reprocess");
  if (reprocess) {
    reprocess.hidden = true;
    document.getElementById("reprocess-status").textContent = "";
    // The builder lives in the compare dialog for one photo, in its own dialog for many.
    document.getElementById("reprocess-open").closest("p").after(reprocess);
  }
  reprocessScope = "photo";
  Compare.open(photo);
}

// What "reprocess" applies to: the photo in the compare view, or the job's photos ("all",
// "failed": retry the failed ones with another recipe).
let reprocessScope = "photo";

function openReprocessMany(scope) {
  reprocessScope = scope;
  const dialog = document.getElementById("reprocess-dialog");
  const c = latestView.counts;
  const count = scope === "failed" ? c.failed : latestView.photos.length;
  document.getElementById("reprocess-dialog-hint").textContent = scope === "failed"
    ? `The ${count} failed photo${count === 1 ? "" : "s"} start again with the recipe below.`
    : `All ${count} photo${count === 1 ? "" : "s"} of this job are processed again with the recipe below; each shows its new result once it is ready.`;
  document.getElementById("reprocess-send").textContent = scope === "failed" ? `Retry ${count} failed photo${count === 1 ? "" : "s"}` : `Reprocess ${count} photo${count === 1 ? "" : "s"}`;
  dialog.append(document.getElementById("reprocess"));
  document.getElementById("reprocess-status").textContent = "";
  dialog.showModal();
  openReprocess();
}

// Reprocessing starts from the job's recipe, in the same builder as the upload page.
function openReprocess() {
  if (reprocessScope === "photo") document.getElementById("reprocess-send").textContent = "Reprocess this photo";
  const recipe = latestView.recipe;
  if (window.darkroomBuilder) window.darkroomBuilder.load(recipe);
  const json = document.getElementById("reprocess-recipe");
  json.value = JSON.stringify(recipe, null, 1);
  json.dataset.original = json.value;
  document.getElementById("reprocess").hidden = false;
  const first = document.querySelector("#reprocess #recipe-palette button") || json;
  first.focus();
}

// The recipe to send: the JSON, if it was edited, else the builder's.
function reprocessRecipe() {
  const json = document.getElementById("reprocess-recipe");
  if (json.value !== json.dataset.original || !window.darkroomBuilder) return JSON.parse(json.value);
  return window.darkroomBuilder.recipe();
}

const FILTERS = { all: () => true, done: (s) => s === "done", failed: (s) => s === "failed", waiting: (s) => s === "queued" || s === "processing" };
let filter = "all";
function applyFilter() {
  for (const card of document.getElementById("photos").children) {
    const state = [...card.classList].find((c) => c.startsWith("state-"));
    card.hidden = !FILTERS[filter]((state || "").slice(6));
  }
}

// The newest view, for the before/after dialog: cards may have been rendered by the
// server or by this script, so clicks are handled once, on the grid.
let latestView = null;

function render(view) {
  latestView = view;
  const c = view.counts;
  document.getElementById("job-state").textContent = view.state;
  document.getElementById("job-state").className = `badge state-${view.state}`;
  document.getElementById("job-counts").textContent = `${c.done} done · ${c.processing} processing · ${c.queued} queued · ${c.failed} failed` + (c.cancelled ? ` · ${c.cancelled} cancelled` : "") + timeLeft(view);
  const recipe = document.getElementById("job-recipe");
  if (recipe && view.recipe) recipe.textContent = describeRecipe(view.recipe);
  if (finished(view)) notifyFinished(view);
  const notify = document.getElementById("notify-done");
  if (notify) notify.hidden = finished(view) || !window.Notification || Notification.permission === "denied";
  const total = view.photos.length || 1;
  // Cancelled photos are not progress: a job cancelled at 3 of 7 shows 3 of 7.
  document.getElementById("job-progress").value = (100 * (c.done + c.failed)) / total;
  // The archive holds the done photos: none yet, nothing to download.
  const download = document.getElementById("download-all");
  download.hidden = c.done === 0;
  download.textContent = c.done === view.photos.length ? "Download all (.zip)" : `Download ${c.done} done photo${c.done === 1 ? "" : "s"} (.zip)`;
  const retry = document.getElementById("retry-failed");
  if (retry) retry.hidden = c.failed === 0;
  const retryRecipe = document.getElementById("retry-failed-recipe");
  if (retryRecipe) retryRecipe.hidden = c.failed === 0;
  renderRejected(view);
  const cancel = document.getElementById("cancel-job");
  if (cancel) cancel.hidden = c.queued === 0;
  const resume = document.getElementById("resume-job");
  if (resume) resume.hidden = !c.cancelled;
  const grid = document.getElementById("photos");
  // What a card shows follows from its photo's state, stage and attempt: a photo reprocessed
  // while the page was not looking goes from done to done, with another attempt's outputs.
  const shows = (n) => `${n.className} ${n.getAttribute("data-attempt")}`;
  const previous = new Map([...grid.children].map((n) => [n.getAttribute("data-photo-id"), shows(n)]));
  const fresh = view.photos.map(card);
  // Replace only cards whose state changed, so images already shown do not flicker.
  if (grid.children.length !== fresh.length) grid.replaceChildren(...fresh);
  else fresh.forEach((node, i) => { if (previous.get(node.getAttribute("data-photo-id")) !== shows(node) || !grid.children[i].querySelector("button.thumb") && node.querySelector("button.thumb")) grid.children[i].replaceWith(node); });
  document.title = `${view.name ? `${view.name} — ` : ""}${view.state} — darkroom`;
  document.getElementById("filters").hidden = view.photos.length < 2;
  applyFilter();
}

function finished(view) { return !["queued", "processing"].includes(view.state); }

// The recipe in words, for the job's head.
const OP_WORDS = {
  thumbnail: (op) => `resize to ${op.size} px`,
  crop: (op) => (op.aspect ? `crop ${op.aspect}${op.smart ? " (faces)" : ""}`
    : op.relative ? `crop ${Math.round(op.relative.width * 100)}% × ${Math.round(op.relative.height * 100)}% of each photo`
    : `crop ${op.width}×${op.height} px`),
  recolor: (op) => (op.mode === "auto_levels" ? "auto levels" : op.mode),
  customize: (op) => Object.keys(op).filter((k) => k !== "op").map((k) => (k === "border" && op.border
    ? `${typeof op.border.width === "number" ? `${op.border.width} px` : op.border.width} border` : k)).join(", ") || "customize",
  redeye: () => "red-eye reduction",
  whiten_teeth: () => "teeth whitening",
  straighten: (op) => `straighten ${op.angle}°`,
  auto_enhance: () => "auto-enhance",
  watermark: (op) => (op.image ? `watermark ${op.image}` : `watermark “${op.text || ""}”`),
};
// Any other operation by its title in the registry the page embeds (darkroom_core::operations).
let registry = null;
function registryTitle(name) {
  if (registry === null) {
    const data = document.getElementById("darkroom-operations");
    try { registry = data ? JSON.parse(data.textContent) : []; } catch (_) { registry = []; }
  }
  const spec = registry.find((entry) => entry.name === name);
  return spec ? spec.title.toLowerCase() : name;
}
function describeRecipe(recipe) {
  if (!recipe || !recipe.ops) return "";
  const steps = recipe.ops.map((op) => (OP_WORDS[op.op] ? OP_WORDS[op.op](op) : registryTitle(op.op)));
  const details = { keep: " · all EXIF kept", strip: " · EXIF removed" }[recipe.metadata] || "";
  return `${steps.join(" → ")} · ${String(recipe.format || "jpeg").toUpperCase()}${details}`;
}

// Time left, from how fast photos finished over the last two minutes.
const pace = [];
function timeLeft(view) {
  const c = view.counts;
  const settled = c.done + c.failed + c.cancelled;
  const now = Date.now();
  pace.push([now, settled]);
  while (pace.length > 2 && now - pace[0][0] > 120000) pace.shift();
  const [then, before] = pace[0];
  const rate = (settled - before) / Math.max(1, (now - then) / 1000);
  const left = c.queued + c.processing;
  if (finished(view) || !left || rate <= 0 || now - then < 5000) return "";
  const seconds = left / rate;
  return seconds < 90 ? ` · about ${Math.ceil(seconds)} s left` : ` · about ${Math.ceil(seconds / 60)} min left`;
}

// A browser notification when the job finishes, if the person asked for one.
let notifyWhenDone = false;
function notifyFinished(view) {
  if (!notifyWhenDone || !window.Notification || Notification.permission !== "granted") return;
  notifyWhenDone = false;
  const c = view.counts;
  new Notification("darkroom: your photos are ready", { body: `${c.done} done${c.failed ? `, ${c.failed} failed` : ""}${c.cancelled ? `, ${c.cancelled} cancelled` : ""}` });
}

// Live updates: one server-sent-events stream (the server reads the job once a second for
// every tab that watches it); polling if the browser or a proxy cannot keep it open.
let source = null; // the one live stream this page holds
function follow(jobId) {
  if (!window.EventSource) { setTimeout(() => poll(jobId), POLL_MS); return; }
  if (source && source.readyState !== EventSource.CLOSED) return;
  source = new EventSource(`/api/v1/jobs/${jobId}/events`);
  let failures = 0;
  source.addEventListener("view", (event) => {
    failures = 0;
    const view = JSON.parse(event.data);
    render(view);
    if (finished(view)) source.close();
  });
  source.addEventListener("gone", () => {
    source.close();
    document.getElementById("job-counts").textContent = "This job no longer exists.";
  });
  source.onerror = () => {
    // EventSource reconnects by itself; after a few failures in a row, poll instead.
    if (++failures >= 3 || source.readyState === EventSource.CLOSED) {
      source.close();
      if (!latestView || !finished(latestView)) setTimeout(() => poll(jobId), POLL_MS);
    }
  };
}

// Reads the job once and shows it; false once there is nothing more to wait for.
async function refresh(jobId) {
  try {
    const reply = await fetch(`/api/v1/jobs/${jobId}`, { cache: "no-store" });
    if (reply.status === 404) { document.getElementById("job-counts").textContent = "This job no longer exists."; return false; }
    if (reply.ok) {
      const view = await reply.json();
      render(view);
      if (finished(view)) return false;
    }
  } catch (_) { /* network hiccup: try again */ }
  return true;
}

let polling = false; // at most one polling loop per page
async function poll(jobId) {
  if (polling) return;
  polling = true;
  try {
    while (await refresh(jobId)) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  } finally {
    polling = false;
  }
}

// After an action: show its effect now, then keep following the job (stream or polling).
async function afterAction(jobId) {
  await refresh(jobId);
  if (!polling) follow(jobId); // a page that fell back to polling keeps polling
}

function setup() {
  const root = document.getElementById("job");
  const jobId = root.getAttribute("data-job-id");
  const view = JSON.parse(document.getElementById("job-data").textContent);
  render(view);
  if (!finished(view)) follow(jobId);
  const created = document.getElementById("created-at");
  const showAge = () => { created.textContent = ago(created.getAttribute("datetime")); };
  showAge();
  setInterval(showAge, 30000);
  for (const button of document.querySelectorAll("#filters button")) {
    button.addEventListener("click", () => {
      filter = button.dataset.filter;
      for (const other of document.querySelectorAll("#filters button")) other.setAttribute("aria-pressed", String(other === button));
      applyFilter();
    });
  }
  // A copy of an original that cannot be made (too large, busy) leaves the state in words.
  const grid = document.getElementById("photos");
  grid.addEventListener("error", (event) => {
    if (event.target.matches && event.target.matches("img.original")) copyFailed(event.target);
  }, true);
  // Copies on the server-rendered page that failed before this script ran.
  for (const img of grid.querySelectorAll("img.original")) if (img.complete && !img.naturalWidth && img.getAttribute("src")) copyFailed(img);
  const reprocessOpen = document.getElementById("reprocess-open");
  if (reprocessOpen) {
    reprocessOpen.addEventListener("click", () => { reprocessScope = "photo"; openReprocess(); });
    document.getElementById("reprocess-all").addEventListener("click", () => openReprocessMany("all"));
    document.getElementById("retry-failed-recipe").addEventListener("click", () => openReprocessMany("failed"));
    const send = document.getElementById("reprocess-send");
    send.addEventListener("click", async () => {
      const status = document.getElementById("reprocess-status");
      let recipe;
      try { recipe = reprocessRecipe(); } catch (error) { status.className = "status-line error"; status.textContent = `Not JSON: ${error.message}`; return; }
      send.disabled = true;
      let reply;
      try {
        reply = reprocessScope === "photo"
          ? await fetch(`/api/v1/jobs/${jobId}/photos/${Compare.current().id}/reprocess`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ recipe }) })
          : await fetch(`/api/v1/jobs/${jobId}/reprocess`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ recipe, photos: reprocessScope }) });
      } catch (_) {
        status.className = "status-line error";
        status.textContent = "The request did not reach the server; try again.";
        return;
      } finally {
        send.disabled = false;
      }
      if (reply.status === 202) {
        status.className = "status-line";
        if (reprocessScope === "photo") status.textContent = "Sent: this photo is being processed again.";
        else {
          const { retried } = await reply.json();
          status.textContent = `Sent: ${retried.length} photo${retried.length === 1 ? " is" : "s are"} being processed again.`;
        }
        const open = reprocessScope === "photo" ? document.getElementById("compare") : document.getElementById("reprocess-dialog");
        setTimeout(() => open.close(), 800);
        afterAction(jobId);
      } else {
        let message = `HTTP ${reply.status}`;
        try { message = (await reply.json()).error.message; } catch (_) { /* not JSON */ }
        status.className = "status-line error";
        status.textContent = message;
      }
    });
  }
  document.getElementById("photos").addEventListener("click", (event) => {
    const card = event.target.closest("article");
    if (!card || !event.target.closest(".thumb")) return;
    const photo = latestView && latestView.photos.find((p) => p.id === card.getAttribute("data-photo-id"));
    if (photo && output(photo, "result")) compare(photo);
  });
  const notify = document.getElementById("notify-done");
  if (notify) notify.addEventListener("click", async () => {
    const permission = await Notification.requestPermission();
    notifyWhenDone = permission === "granted";
    notify.textContent = notifyWhenDone ? "You will be notified" : "Notifications are blocked";
    notify.disabled = true;
  });
  document.getElementById("copy-link").addEventListener("click", async (e) => {
    try { await navigator.clipboard.writeText(window.location.href); e.target.textContent = "Link copied"; } catch (_) { window.prompt("Copy this link", window.location.href); }
  });
  const retry = document.getElementById("retry-failed");
  if (retry) retry.addEventListener("click", async () => {
    retry.disabled = true;
    await fetch(`/api/v1/jobs/${jobId}/retry`, { method: "POST" });
    retry.disabled = false;
    afterAction(jobId);
  });
  const cancel = document.getElementById("cancel-job");
  if (cancel) cancel.addEventListener("click", async () => {
    if (!window.confirm("Cancel the photos still waiting? Photos already done stay, and the ones in work finish.")) return;
    cancel.disabled = true;
    const reply = await fetch(`/api/v1/jobs/${jobId}/cancel`, { method: "POST" });
    cancel.disabled = false;
    if (!reply.ok) window.alert("The job could not be cancelled; try again.");
    afterAction(jobId);
  });
  const resume = document.getElementById("resume-job");
  if (resume) resume.addEventListener("click", async () => {
    resume.disabled = true;
    const reply = await fetch(`/api/v1/jobs/${jobId}/resume`, { method: "POST" });
    resume.disabled = false;
    if (!reply.ok) window.alert("The photos could not be resumed; try again.");
    afterAction(jobId);
  });
  const del = document.getElementById("delete-job");
  if (del) del.addEventListener("click", async () => {
    if (!window.confirm("Delete this job and every photo in it? This cannot be undone.")) return;
    const reply = await fetch(`/api/v1/jobs/${jobId}`, { method: "DELETE" });
    if (reply.status === 204) window.location.href = "/?deleted=1"; else window.alert("The job could not be deleted; try again.");
  });
}

document.addEventListener("DOMContentLoaded", setup);
