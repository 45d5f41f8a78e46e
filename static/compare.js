// The job page's compare viewer: one photo before and after. The before (the original's
// preview) is framed exactly like the result — the result's `frame` says where the
// original's pixels land in it (crop, turns, resizing, borders) — so faces line up. A
// slider (after on the left, before on the right: the slider's value is how much of the
// result shows) or side by side; fitted, or at 100 % and panned. Mouse, touch and keyboard
// alike: drag the divider or anywhere on the picture, ←/→ (Shift: faster), Home/End;
// when zoomed, drag or the arrow keys pan.
"use strict";

const Compare = (() => {
  const GAP = 12; // px between the two panes side by side
  const view = { photo: null, shown: 50, mode: "slider", zoom: "fit", drag: null };
  const $ = (id) => document.getElementById(id);
  const outputOf = (photo, name) => (photo.outputs || []).find((o) => o.name === name);

  function resultSize() {
    const result = outputOf(view.photo, "result");
    return { width: result.width || 1, height: result.height || 1 };
  }

  // Screen pixels per result pixel.
  function scale() {
    if (view.zoom === "actual") return 1;
    const stage = $("compare-stage");
    const { width, height } = resultSize();
    const columns = view.mode === "side" ? 2 : 1;
    const room = (stage.clientWidth - (columns - 1) * GAP) / columns;
    return Math.max(0.01, Math.min(room / width, stage.clientHeight / height));
  }

  // The before image, mapped into the result's frame (or fitted, without a frame).
  function placeBefore(k) {
    const image = $("compare-before");
    const frame = (outputOf(view.photo, "result") || {}).frame;
    if (!frame || !image.naturalWidth) {
      image.classList.add("fitted");
      // The previous photo's frame set a size inline, which would override the class.
      image.style.width = "";
      image.style.height = "";
      image.style.transform = "";
      return;
    }
    image.classList.remove("fitted");
    const sx = frame.original_width / image.naturalWidth;
    const sy = frame.original_height / image.naturalHeight;
    const [m0, m1, m2, m3, m4, m5] = frame.matrix;
    image.style.width = `${image.naturalWidth}px`;
    image.style.height = `${image.naturalHeight}px`;
    image.style.transform = `matrix(${k * m0 * sx}, ${k * m3 * sx}, ${k * m1 * sy}, ${k * m4 * sy}, ${k * m2}, ${k * m5})`;
  }

  function layout() {
    if (!view.photo) return;
    const { width, height } = resultSize();
    const k = scale();
    const w = Math.max(1, Math.round(width * k));
    const h = Math.max(1, Math.round(height * k));
    const layers = $("compare-layers");
    layers.dataset.mode = view.mode;
    layers.style.width = `${view.mode === "side" ? 2 * w + GAP : w}px`;
    layers.style.height = `${h}px`;
    for (const pane of [$("compare-before-pane"), $("compare-after-pane")]) {
      pane.style.width = `${w}px`;
      pane.style.height = `${h}px`;
    }
    $("compare-stage").classList.toggle("zoomed", view.zoom === "actual");
    $("compare-stage").classList.toggle("side", view.mode === "side");
    $("compare-slider-control").hidden = view.mode === "side";
    placeBefore(k);
    setShown(view.shown);
  }

  function setShown(percent) {
    view.shown = Math.round(Math.min(100, Math.max(0, percent)));
    const slider = view.mode === "slider";
    $("compare-after-pane").style.clipPath = slider ? `inset(0 ${100 - view.shown}% 0 0)` : "";
    $("compare-divider").style.left = `${view.shown}%`;
    const range = $("compare-position");
    range.value = String(view.shown);
    range.setAttribute("aria-valuetext", `${view.shown}% of the result shown`);
  }

  function slideTo(event) {
    const bounds = $("compare-after-pane").getBoundingClientRect();
    setShown((100 * (event.clientX - bounds.left)) / Math.max(1, bounds.width));
  }

  function setMode(mode) {
    view.mode = mode;
    const button = $("compare-mode");
    button.setAttribute("aria-pressed", String(mode === "side"));
    layout();
  }

  function setZoom(zoom) {
    view.zoom = zoom;
    const button = $("compare-zoom");
    button.setAttribute("aria-pressed", String(zoom === "actual"));
    button.textContent = zoom === "actual" ? "Fit to window" : "Actual size (100 %)";
    layout();
  }

  function open(photo) {
    view.photo = photo;
    const preview = outputOf(photo, "preview");
    const result = outputOf(photo, "result");
    $("compare-name").textContent = photo.name;
    const before = $("compare-before");
    before.onload = layout;
    before.src = preview ? preview.url : photo.original_url;
    const after = $("compare-after");
    after.onload = layout;
    after.src = result.url;
    $("compare-download").href = `${result.url}?download=1`;
    $("compare").showModal();
    view.shown = 50;
    setZoom("fit");
    $("compare-stage").focus();
  }

  function setup() {
    const stage = $("compare-stage");
    if (!stage) return;
    $("compare-position").addEventListener("input", (event) => setShown(Number(event.target.value)));
    $("compare-mode").addEventListener("click", () => setMode(view.mode === "side" ? "slider" : "side"));
    $("compare-zoom").addEventListener("click", () => setZoom(view.zoom === "actual" ? "fit" : "actual"));
    // The browser's own image drag would cancel the pointer (dragstart, then pointercancel).
    stage.addEventListener("dragstart", (event) => event.preventDefault());
    stage.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || !view.photo) return;
      const zoomed = view.zoom === "actual";
      if (view.mode === "slider" && (!zoomed || event.target.closest("#compare-divider"))) {
        view.drag = { kind: "slide" };
        slideTo(event);
      } else if (zoomed) {
        view.drag = { kind: "pan", x: event.clientX, y: event.clientY, left: stage.scrollLeft, top: stage.scrollTop };
        stage.classList.add("panning");
      } else {
        return;
      }
      stage.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    stage.addEventListener("pointermove", (event) => {
      if (!view.drag) return;
      if (view.drag.kind === "slide") slideTo(event);
      else {
        stage.scrollLeft = view.drag.left - (event.clientX - view.drag.x);
        stage.scrollTop = view.drag.top - (event.clientY - view.drag.y);
      }
    });
    const end = () => { view.drag = null; stage.classList.remove("panning"); };
    stage.addEventListener("pointerup", end);
    stage.addEventListener("pointercancel", end);
    stage.addEventListener("lostpointercapture", end);
    stage.addEventListener("keydown", (event) => {
      if (view.mode !== "slider" || view.zoom === "actual") return; // arrows pan a zoomed view
      const step = event.shiftKey ? 10 : 2;
      const moves = { ArrowLeft: view.shown - step, ArrowRight: view.shown + step, Home: 0, End: 100 };
      if (!(event.key in moves)) return;
      setShown(moves[event.key]);
      event.preventDefault();
    });
    window.addEventListener("resize", layout);
    const dialog = $("compare");
    dialog.addEventListener("close", () => { view.photo = null; });
    // A click on the dimmed page around the dialog closes it, as Escape does; only one that
    // also began there: a drag of the divider that ends outside must not.
    const outside = (event) => {
      const box = dialog.getBoundingClientRect();
      return event.target === dialog && (event.clientX < box.left || event.clientX > box.right || event.clientY < box.top || event.clientY > box.bottom);
    };
    let pressedOutside = false;
    dialog.addEventListener("pointerdown", (event) => { pressedOutside = outside(event); });
    dialog.addEventListener("click", (event) => {
      if (pressedOutside && outside(event)) dialog.close();
      pressedOutside = false;
    });
  }

  document.addEventListener("DOMContentLoaded", setup);
  return { open, current: () => view.photo };
})();
