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
  const box = el("div", { class: "thumb" }, thumb ? el("img", { loading: "lazy", decoding: "async", alt: photo.name, src: thumb.url }) : el("span", { class: "placeholder" }, photo.state));
  const node = el("article", { class: `card state-${photo.state} stage-${photo.stage || "none"}`, "data-photo-id": photo.id }, box,
    el("div", { class: "meta" }, el("span", { class: "name", title: photo.name }, photo.name), el("span", { class: `badge state-${photo.state}` }, label(photo))));
  if (photo.error) node.append(el("p", { class: "error" }, photo.error.message));
  if (result) {
    node.append(el("p", { class: "links" }, el("a", { href: result.url }, "Result"), " · ", el("a", { href: photo.original_url }, "Original"), " · ", el("a", { href: result.url + "?download=1" }, "Download")));
  }
  return node;
}

let comparing = null;
function compare(photo) {
  comparing = photo;
  const dialog = document.getElementById("compare");
  const preview = output(photo, "preview");
  const result = output(photo, "result");
  document.getElementById("compare-name").textContent = photo.name;
  document.getElementById("compare-before").src = preview ? preview.url : photo.original_url;
  document.getElementById("compare-after").src = result.url;
  document.getElementById("compare-download").href = result.url + "?download=1";
  const reprocess = document.getElementById("reprocess");
  if (reprocess) {
    reprocess.hidden = true;
    document.getElementById("reprocess-recipe").value = JSON.stringify(latestView.recipe, null, 1);
    document.getElementById("reprocess-status").textContent = "";
  }
  setSlider(50);
  dialog.showModal();
}

function setSlider(percent) {
  document.getElementById("compare-position").value = String(percent);
  document.getElementById("compare-clip").style.clipPath = `inset(0 0 0 ${percent}%)`;
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
  document.getElementById("job-counts").textContent = `${c.done} done · ${c.processing} processing · ${c.queued} queued · ${c.failed} failed` + (c.cancelled ? ` · ${c.cancelled} cancelled` : "");
  const total = view.photos.length || 1;
  document.getElementById("job-progress").value = (100 * (c.done + c.failed + c.cancelled)) / total;
  const retry = document.getElementById("retry-failed");
  if (retry) retry.hidden = c.failed === 0;
  const cancel = document.getElementById("cancel-job");
  if (cancel) cancel.hidden = c.queued === 0;
  const grid = document.getElementById("photos");
  const previous = new Map([...grid.children].map((n) => [n.getAttribute("data-photo-id"), n.className]));
  const fresh = view.photos.map(card);
  // Replace only cards whose state changed, so images already shown do not flicker.
  if (grid.children.length !== fresh.length) grid.replaceChildren(...fresh);
  else fresh.forEach((node, i) => { if (previous.get(node.getAttribute("data-photo-id")) !== node.className || !grid.children[i].querySelector("img") && node.querySelector("img")) grid.children[i].replaceWith(node); });
  document.title = `Job ${view.state} — darkroom`;
  document.getElementById("filters").hidden = view.photos.length < 2;
  applyFilter();
}

function finished(view) { return !["queued", "processing"].includes(view.state); }

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

async function poll(jobId) {
  try {
    const reply = await fetch(`/api/v1/jobs/${jobId}`, { cache: "no-store" });
    if (reply.status === 404) { document.getElementById("job-counts").textContent = "This job no longer exists."; return; }
    if (reply.ok) {
      const view = await reply.json();
      render(view);
      if (finished(view)) return;
    }
  } catch (_) { /* network hiccup: try again */ }
  setTimeout(() => poll(jobId), POLL_MS);
}

function setup() {
  const root = document.getElementById("job");
  const jobId = root.getAttribute("data-job-id");
  const view = JSON.parse(document.getElementById("job-data").textContent);
  render(view);
  const rejected = sessionStorage.getItem(`darkroom-rejected-${jobId}`);
  if (rejected) {
    const list = JSON.parse(rejected);
    if (list.length) root.append(el("p", { class: "status-line error" }, `${list.length} file${list.length === 1 ? " was" : "s were"} not accepted: ` + list.map((r) => `${r.name} (${r.error.message})`).join("; ")));
    sessionStorage.removeItem(`darkroom-rejected-${jobId}`);
  }
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
  document.getElementById("compare-position").addEventListener("input", (e) => setSlider(Number(e.target.value)));
  const slider = document.getElementById("compare-slider");
  const slide = (event) => { const bounds = slider.getBoundingClientRect(); setSlider(Math.round(Math.min(100, Math.max(0, (100 * (event.clientX - bounds.left)) / bounds.width)))); };
  slider.addEventListener("pointerdown", (event) => { slider.setPointerCapture(event.pointerId); slide(event); });
  slider.addEventListener("pointermove", (event) => { if (event.buttons) slide(event); });
  const reprocessOpen = document.getElementById("reprocess-open");
  if (reprocessOpen) {
    reprocessOpen.addEventListener("click", () => { document.getElementById("reprocess").hidden = false; document.getElementById("reprocess-recipe").focus(); });
    const send = document.getElementById("reprocess-send");
    send.addEventListener("click", async () => {
      const status = document.getElementById("reprocess-status");
      let recipe;
      try { recipe = JSON.parse(document.getElementById("reprocess-recipe").value); } catch (error) { status.className = "status-line error"; status.textContent = `Not JSON: ${error.message}`; return; }
      send.disabled = true;
      let reply;
      try {
        reply = await fetch(`/api/v1/jobs/${jobId}/photos/${comparing.id}/reprocess`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ recipe }) });
      } catch (_) {
        status.className = "status-line error";
        status.textContent = "The request did not reach the server; try again.";
        return;
      } finally {
        send.disabled = false;
      }
      if (reply.status === 202) {
        status.className = "status-line";
        status.textContent = "Sent: this photo is being processed again.";
        setTimeout(() => document.getElementById("compare").close(), 800);
        follow(jobId);
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
  document.getElementById("copy-link").addEventListener("click", async (e) => {
    try { await navigator.clipboard.writeText(window.location.href); e.target.textContent = "Link copied"; } catch (_) { window.prompt("Copy this link", window.location.href); }
  });
  const retry = document.getElementById("retry-failed");
  if (retry) retry.addEventListener("click", async () => {
    retry.disabled = true;
    await fetch(`/api/v1/jobs/${jobId}/retry`, { method: "POST" });
    retry.disabled = false;
    poll(jobId);
  });
  const cancel = document.getElementById("cancel-job");
  if (cancel) cancel.addEventListener("click", async () => {
    if (!window.confirm("Cancel the photos still waiting? Photos already done stay, and the ones in work finish.")) return;
    cancel.disabled = true;
    const reply = await fetch(`/api/v1/jobs/${jobId}/cancel`, { method: "POST" });
    cancel.disabled = false;
    if (!reply.ok) window.alert("The job could not be cancelled; try again.");
    poll(jobId);
  });
  const del = document.getElementById("delete-job");
  if (del) del.addEventListener("click", async () => {
    if (!window.confirm("Delete this job and every photo in it? This cannot be undone.")) return;
    const reply = await fetch(`/api/v1/jobs/${jobId}`, { method: "DELETE" });
    if (reply.status === 204) window.location.href = "/"; else window.alert("The job could not be deleted; try again.");
  });
}

document.addEventListener("DOMContentLoaded", setup);
