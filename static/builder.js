// The recipe builder of the upload page: operations added from a palette, reordered (drag,
// or the ↑ ↓ buttons and Alt+↑/↓ on a focused card), removed, any of them more than once,
// each with its parameters; presets; the last recipe remembered in this browser. It
// replaces the plain form's fixed fieldsets (kept for browsers without JavaScript).
// Every change can be undone and redone (the buttons, Ctrl+Z and Ctrl+Shift+Z or Ctrl+Y);
// a preset is a button that replaces the recipe and offers to undo that at once.
// window.darkroomBuilder exposes recipe() and onChange(callback) to upload.js.
"use strict";

(function () {
  const STORAGE_KEY = "darkroom-last-recipe";
  // The operations, from the server's registry (darkroom_core::operations, embedded in the
  // page as #darkroom-operations): titles, what is added, plain parameters, editor kind.
  let REGISTRY = [];
  let TITLES = {};
  let DEFAULTS = {};
  function readRegistry() {
    const data = document.getElementById("darkroom-operations");
    try { REGISTRY = data ? JSON.parse(data.textContent) : []; } catch (_) { REGISTRY = []; }
    TITLES = Object.fromEntries(REGISTRY.map((spec) => [spec.name, spec.title]));
    DEFAULTS = Object.fromEntries(REGISTRY.map((spec) => [spec.name, () => JSON.parse(spec.added_as)]));
  }
  const PRESETS = {
    web: { label: "Web gallery, 1600 px", recipe: { ops: [{ op: "thumbnail", size: 1600 }], format: "jpeg", quality: 85 } },
    squares: { label: "Square thumbnails", recipe: { ops: [{ op: "crop", aspect: "1:1", smart: true }, { op: "thumbnail", size: 256 }], format: "jpeg", quality: 85 } },
    portrait: { label: "Portrait retouch", recipe: { ops: [{ op: "redeye" }, { op: "whiten_teeth", strength: 0.5 }, { op: "customize", sharpen: 0.3 }], format: "jpeg", quality: 90 } },
    bw: { label: "Black & white", recipe: { ops: [{ op: "recolor", mode: "grayscale" }, { op: "customize", contrast: 0.15 }], format: "jpeg", quality: 90 } },
  };
  const ASPECTS = [["1:1", "1:1 square"], ["4:3", "4:3"], ["3:2", "3:2"], ["16:9", "16:9"], ["3:4", "3:4 portrait"], ["2:3", "2:3 portrait"], ["9:16", "9:16 portrait"]];

  let state = { ops: [], format: "jpeg", quality: 85, metadata: "no-location" };
  // The upload page remembers the last recipe for next time; the job page's builder (for
  // reprocessing one photo) does not.
  let rememberRecipe = true;
  // True while setup() loads the first recipe.
  let starting = false;
  let nextId = 1;
  const listeners = [];
  const withId = (op) => Object.assign({ _id: nextId++ }, op);

  // One labelled control bound to a parameter of an operation.
  function control(op, key, label, kind, options) {
    const id = `op${op._id}-${key}`;
    const current = op[key];
    let input;
    const set = (value) => {
      if (value === "" || value === null || Number.isNaN(value)) delete op[key]; else op[key] = value;
      changed(false);
    };
    if (kind === "select") {
      input = el("select", { id }, options.map(([value, text]) => el("option", { value, selected: String(current) === value }, text)));
      input.addEventListener("change", () => {
        set(input.value);
        if (key === "mode") {
          // Each mode's own parameters, with their defaults; the others' removed.
          if (input.value === "tint") { op.color = op.color || "#704214"; op.strength = op.strength ?? 0.3; } else { delete op.color; delete op.strength; }
          if (input.value === "hue") op.degrees = op.degrees ?? 30; else delete op.degrees;
          changed(true);
        }
      });
    } else if (kind === "checkbox") {
      input = el("input", { id, type: "checkbox", checked: Boolean(current) });
      input.addEventListener("change", () => set(input.checked || null));
    } else if (kind === "range") {
      input = el("input", { id, type: "range", min: options.min, max: options.max, step: options.step, value: current ?? options.value ?? 0 });
      // The value beside the slider, as a number.
      const shown = el("output", { for: id }, String(input.value));
      input.addEventListener("input", () => { shown.textContent = input.value; set(Number(input.value) || (options.keepZero ? 0 : null)); });
      return el("label", { for: id, class: "param" }, el("span", {}, label), el("span", { class: "range-with-value" }, input, shown));
    } else if (kind === "number") {
      input = el("input", { id, type: "number", min: options.min, max: options.max, step: options.step || 1, value: current ?? "" });
      input.addEventListener("input", () => set(input.value === "" ? null : Number(input.value)));
    } else if (kind === "color") {
      input = el("input", { id, type: "color", value: current || options.value });
      input.addEventListener("input", () => set(input.value));
    } else {
      input = el("input", { id, type: "text", maxlength: 200, value: current ?? "" });
      input.addEventListener("input", () => set(input.value.trim() || null));
    }
    return el("label", { for: id, class: "param" }, el("span", {}, label), input);
  }

  // border / caption while being filled in: every field given so far, kept aside (keys
  // starting with "_" never reach the recipe) until the required one is there too, so a
  // caption's size chosen before its text is not lost.
  function draft(op, key) {
    return Object.assign({}, (op._drafts || {})[key] || op[key] || {});
  }
  function settle(op, key, next) {
    op._drafts = Object.assign({}, op._drafts, { [key]: next });
    const required = key === "border" ? "width" : "text";
    if (next[required] === undefined) delete op[key];
    else op[key] = Object.assign(key === "border" ? { color: "#ffffff" } : { position: "bottom" }, next);
    changed(false);
  }

  function nested(op, key, field, label, kind, options) {
    // border.width / caption.text: a parameter inside an object parameter.
    const holder = { _id: `${op._id}-${key}`, [field]: op[key] ? op[key][field] : undefined };
    const wrapper = control(holder, field, label, kind, options);
    const input = wrapper.querySelector("input, select");
    const update = () => {
      const value = kind === "number" ? (input.value === "" ? null : Number(input.value)) : input.value.trim();
      const next = draft(op, key);
      if (value === null || value === "" || value === 0) delete next[field]; else next[field] = value;
      settle(op, key, next);
    };
    input.addEventListener(kind === "select" ? "change" : "input", update);
    return wrapper;
  }

  // A length on the finished result (a border's width, a caption's text height): a number
  // and its unit, "% of the short side" (the same look on every photo of a batch) or px.
  // Kept in the recipe as "N%" or as a whole number of pixels.
  function length(op, key, field, label, limits) {
    const current = op[key] ? op[key][field] : undefined;
    const inPercent = current === undefined || typeof current === "string";
    const id = `op${op._id}-${key}-${field}`;
    const number = el("input", { id, type: "number", min: 0, max: inPercent ? limits.percent : limits.pixels, step: inPercent ? 0.1 : 1,
      value: current === undefined ? "" : String(current).replace("%", "") });
    const unit = el("select", { id: `${id}-unit`, "aria-label": `${label}: unit` },
      el("option", { value: "%", selected: inPercent }, "%"), el("option", { value: "px", selected: !inPercent }, "px"));
    const update = () => {
      const percent = unit.value === "%";
      number.max = percent ? limits.percent : limits.pixels;
      number.step = percent ? 0.1 : 1;
      const value = Number(number.value);
      const next = draft(op, key);
      if (number.value === "" || Number.isNaN(value) || value <= 0) delete next[field];
      else next[field] = percent ? `${Math.round(value * 10) / 10}%` : Math.round(value);
      settle(op, key, next);
    };
    number.addEventListener("input", update);
    unit.addEventListener("change", update);
    return el("label", { for: id, class: "param" }, el("span", {}, label), el("span", { class: "length-with-unit" }, number, unit));
  }

  function parameters(op) {
    switch (op.op) {
      case "thumbnail":
        return [control(op, "size", "Long side (px)", "number", { min: 1, max: 4096 })];
      case "crop": {
        // A box is kept relative to each photo (the same part of every photo of the batch);
        // a box in pixels, from the API or an older recipe, is still shown and kept.
        const kind = op.relative ? "relative" : op.x !== undefined ? "pixels" : op.cropBy === "relative" ? "relative" : "aspect";
        const mode = { _id: op._id, cropBy: kind };
        const kinds = [["aspect", "aspect ratio"], ["relative", "a box (the same part of every photo)"]];
        if (kind === "pixels") kinds.push(["pixels", "a box in pixels"]);
        const chooser = control(mode, "cropBy", "Crop by", "select", kinds);
        chooser.querySelector("select").addEventListener("change", (e) => {
          for (const k of ["x", "y", "width", "height", "aspect", "smart", "relative"]) delete op[k];
          if (e.target.value === "relative") op.relative = { x: 0.1, y: 0.1, width: 0.8, height: 0.8 };
          else Object.assign(op, { aspect: "4:3", smart: true });
          changed(true);
        });
        if (kind === "pixels") return [chooser, ...["x", "y", "width", "height"].map((k) => control(op, k, k, "number", { min: k === "x" || k === "y" ? 0 : 1, max: 30000 }))];
        if (kind === "relative") {
          const percent = (key, label) => {
            const holder = { _id: `${op._id}-relative-${key}`, [key]: op.relative ? Math.round(op.relative[key] * 1000) / 10 : undefined };
            const wrapper = control(holder, key, label, "number", { min: 0, max: 100, step: 0.1 });
            wrapper.querySelector("input").addEventListener("input", (e) => {
              const value = Number(e.target.value);
              if (e.target.value === "" || Number.isNaN(value)) return;
              op.relative = Object.assign({}, op.relative, { [key]: Math.min(1, Math.max(0, value / 100)) });
              changed(false);
            });
            return wrapper;
          };
          return [chooser, percent("x", "Left (% of width)"), percent("y", "Top (% of height)"), percent("width", "Width (%)"), percent("height", "Height (%)"),
            el("p", { class: "hint" }, "Or draw the box on the preview's “before” photo; drag inside it to move it.")];
        }
        return [chooser, control(op, "aspect", "Aspect ratio", "select", ASPECTS), control(op, "smart", "Centre on faces", "checkbox")];
      }
      case "recolor": {
        const fields = [control(op, "mode", "Mode", "select", [["grayscale", "Black & white"], ["sepia", "Sepia"], ["tint", "Tint"], ["hue", "Hue shift"], ["auto_levels", "Auto levels"]])];
        if (op.mode === "tint") fields.push(control(op, "color", "Tint colour", "color", { value: "#704214" }), control(op, "strength", "Tint strength", "range", { min: 0, max: 1, step: 0.05, value: 0.3 }));
        if (op.mode === "hue") fields.push(control(op, "degrees", "Hue shift (°)", "number", { min: -360, max: 360 }));
        return fields;
      }
      case "customize":
        return [
          control(op, "brightness", "Brightness", "range", { min: -1, max: 1, step: 0.05 }),
          control(op, "contrast", "Contrast", "range", { min: -1, max: 1, step: 0.05 }),
          control(op, "saturation", "Saturation", "range", { min: -1, max: 1, step: 0.05 }),
          control(op, "sharpen", "Sharpen", "range", { min: 0, max: 2, step: 0.1 }),
          control(op, "rotate", "Rotate", "select", [["", "none"], ["90", "90° clockwise"], ["180", "180°"], ["270", "90° counter-clockwise"]]),
          control(op, "flip", "Flip", "select", [["", "none"], ["horizontal", "horizontal"], ["vertical", "vertical"]]),
          length(op, "border", "width", "Border (% of the short side, or px)", { percent: 25, pixels: 2000 }),
          nested(op, "border", "color", "Border colour", "color", { value: "#ffffff" }),
          nested(op, "caption", "text", "Caption", "text"),
          nested(op, "caption", "position", "Caption at", "select", [["bottom", "bottom"], ["top", "top"]]),
          length(op, "caption", "size", "Caption height (blank: 7%)", { percent: 25, pixels: 1000 }),
        ];
      case "whiten_teeth":
        return [control(op, "strength", "Strength", "range", { min: 0, max: 1, step: 0.05, value: 0.5 }), regions(op, "the mouths of the faces in each photo")];
      case "redeye":
        return [regions(op, "faces and their red pupils; nothing else is touched")];
      case "straighten":
        return [control(op, "angle", "Angle (° clockwise)", "range", { min: -45, max: 45, step: 0.1, value: 0, keepZero: true }),
          el("p", { class: "hint" }, "Levels a tilted horizon; the largest upright rectangle is kept, so no corner is left empty.")];
      case "watermark":
        return [op.image
          ? el("p", { class: "hint" }, `Logo: ${op.image}${assetFiles.has(op.image) ? "" : " (as sent with the job)"} `,
            el("button", { type: "button", class: "button small", onclick: () => { delete op.image; op.text = "© "; changed(true); } }, "Use text instead"))
          : control(op, "text", "Text", "text"),
          // A logo is sent with the upload; reprocessing (the job page) uses the job's own.
          document.getElementById("upload-form") ? logoControl(op) : null,
          control(op, "position", "Where", "select", [["bottom-right", "bottom right"], ["bottom-left", "bottom left"], ["top-right", "top right"], ["top-left", "top left"], ["center", "centre"]]),
          control(op, "size", "Size (of the short side)", "range", { min: 0.01, max: 0.5, step: 0.01, value: 0.05 }),
          control(op, "opacity", "Opacity", "range", { min: 0, max: 1, step: 0.05, value: 0.5, keepZero: true }),
          control(op, "color", "Colour", "color", { value: "#ffffff" })];
      case "auto_enhance":
        return [control(op, "strength", "Strength", "range", { min: 0, max: 1, step: 0.05, value: 0.6, keepZero: true }),
          el("p", { class: "hint" }, "White balance, levels and exposure from each photo's own colours; a well-exposed photo is left nearly as it is.")];
      default:
        return generic(op);
    }
  }

  // An operation whose editor is made from its registry entry: a slider per parameter, and
  // what it does.
  function generic(op) {
    const spec = REGISTRY.find((entry) => entry.name === op.op);
    if (!spec) return [];
    const fields = spec.params.filter((param) => param.type === "number").map((param) =>
      control(op, param.name, param.label, "range", { min: param.min, max: param.max, step: param.step, value: param.default, keepZero: true }));
    return [...fields, el("p", { class: "hint" }, spec.summary)];
  }

  // PNGs chosen for image watermarks, by the name the recipe gives them; the upload sends
  // each as an "assets" part of the job (the name is made safe for the server's rules).
  const assetFiles = new Map();
  function assetName(fileName) {
    let name = fileName.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "");
    if (!/\.png$/i.test(name)) name += ".png";
    return name.length > 100 ? name.slice(name.length - 100) : name;
  }
  function logoControl(op) {
    const id = `op${op._id}-image`;
    const input = el("input", { id, type: "file", accept: "image/png" });
    input.addEventListener("change", () => {
      const file = input.files && input.files[0];
      if (!file) return;
      const name = assetName(file.name);
      assetFiles.set(name, file);
      op.image = name;
      delete op.text;
      changed(true);
    });
    return el("label", { for: id, class: "param" }, el("span", {}, op.image ? "Another logo (PNG)" : "Or a logo (PNG)"), input);
  }

  // Where red-eye or teeth work: regions drawn on the preview, or found in every photo.
  function regions(op, found) {
    const count = (op.regions || []).length;
    if (!count) return el("p", { class: "hint" }, `Finds ${found}. Or draw regions on the preview's “before” photo.`);
    return el("p", { class: "hint" }, `Only in ${count} region${count === 1 ? "" : "s"} drawn on the preview. `,
      el("button", { type: "button", class: "button small", onclick: () => { delete op.regions; changed(true); } }, "Clear regions"));
  }

  function move(index, by) {
    const target = index + by;
    if (target < 0 || target >= state.ops.length) return;
    const [op] = state.ops.splice(index, 1);
    state.ops.splice(target, 0, op);
    changed(true);
    const card = document.querySelector(`#recipe-ops li[data-op-id="${op._id}"]`);
    if (card) card.focus();
  }

  let dragged = null;
  function card(op, index) {
    const count = state.ops.length;
    const item = el("li", {
      class: "op-card", tabindex: 0, draggable: "true", "data-op-id": op._id, "data-op": op.op,
      "aria-label": `${index + 1}. ${TITLES[op.op]} (Alt+Up and Alt+Down move it)`,
      // A card is picked up by its head or its edges, never from a control: a slider dragged
      // inside a draggable card would start moving the card after a few pixels and drop the
      // slider's drag (Chromium), leaving the value where the first step put it.
      onpointerdown: (e) => { item.draggable = !e.target.closest("input, select, textarea, button, label, output"); },
      onkeydown: (e) => {
        if (e.target !== item || !e.altKey) return;
        if (e.key === "ArrowUp") { e.preventDefault(); move(index, -1); }
        if (e.key === "ArrowDown") { e.preventDefault(); move(index, 1); }
      },
      ondragstart: (e) => { dragged = index; item.classList.add("dragging"); e.dataTransfer.effectAllowed = "move"; e.dataTransfer.setData("text/plain", String(index)); },
      ondragend: () => { dragged = null; item.classList.remove("dragging"); },
      ondragover: (e) => { if (dragged !== null) { e.preventDefault(); item.classList.add("drop-target"); } },
      ondragleave: () => item.classList.remove("drop-target"),
      // Only a card's drop is this card's: files dropped here go on to the page (photos).
      ondrop: (e) => { item.classList.remove("drop-target"); if (dragged === null) return; e.preventDefault(); if (dragged !== index) move(dragged, index - dragged); },
    },
    el("div", { class: "op-head" },
      el("span", { class: "op-step", "aria-hidden": "true" }, String(index + 1)),
      el("strong", {}, TITLES[op.op]),
      el("span", { class: "op-tools" },
        el("button", { type: "button", class: "icon", "aria-label": `Move ${TITLES[op.op]} up`, disabled: index === 0, onclick: () => move(index, -1) }, "↑"),
        el("button", { type: "button", class: "icon", "aria-label": `Move ${TITLES[op.op]} down`, disabled: index === count - 1, onclick: () => move(index, 1) }, "↓"),
        el("button", { type: "button", class: "icon", "aria-label": `Remove ${TITLES[op.op]}`, onclick: () => { state.ops.splice(index, 1); changed(true); } }, "✕"))),
    el("div", { class: "op-params" }, parameters(op)));
    return item;
  }

  function render() {
    const list = document.getElementById("recipe-ops");
    // Keyboard focus stays on the step it was on, across the rebuild.
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("#recipe-ops li");
    const focusedId = focused ? focused.getAttribute("data-op-id") : null;
    list.replaceChildren(...state.ops.map(card));
    if (focusedId) { const again = list.querySelector(`li[data-op-id="${focusedId}"]`); if (again) again.focus(); }
    document.getElementById("recipe-empty").hidden = state.ops.length > 0;
    document.getElementById("recipe-format").value = state.format;
    document.getElementById("recipe-quality").value = state.quality;
    document.getElementById("recipe-metadata").value = state.metadata;
  }

  function recipe() {
    const ops = state.ops.map((op) => {
      const clean = {};
      for (const [key, value] of Object.entries(op)) if (!key.startsWith("_") && key !== "cropBy") clean[key] = value;
      if (clean.rotate !== undefined) clean.rotate = Number(clean.rotate);
      return clean;
    });
    const made = { ops, format: state.format, quality: Math.round(Number(state.quality) || 85) };
    // The server's default is left out, so recipes read as before.
    if (state.metadata && state.metadata !== "no-location") made.metadata = state.metadata;
    return made;
  }

  // Undo and redo: snapshots of the recipe (with its ids), the newest last. Typing in one
  // field makes one snapshot a second, not one per keystroke.
  const history = { past: [], future: [], last: null, at: 0 };
  const snapshot = () => JSON.stringify(state);
  function remember() {
    const now = Date.now();
    const current = snapshot();
    if (history.last === null) { history.last = current; return; }
    if (current === history.last) return;
    if (now - history.at > 1000 || !history.past.length) history.past.push(history.last);
    history.past = history.past.slice(-100);
    history.future = [];
    history.last = current;
    history.at = now;
    showHistory();
  }
  function travel(from, to) {
    if (!from.length) return;
    to.push(snapshot());
    state = JSON.parse(from.pop());
    nextId = Math.max(nextId, ...state.ops.map((op) => op._id + 1));
    history.last = snapshot();
    history.at = 0;
    changed(true, true);
    showHistory();
  }
  const undo = () => travel(history.past, history.future);
  const redo = () => travel(history.future, history.past);
  function showHistory() {
    const undoButton = document.getElementById("recipe-undo");
    const redoButton = document.getElementById("recipe-redo");
    if (undoButton) undoButton.disabled = !history.past.length;
    if (redoButton) redoButton.disabled = !history.future.length;
  }

  function changed(rerender, travelling) {
    // A preset shows as chosen until the recipe is changed.
    for (const pressed of document.querySelectorAll("#recipe-presets button[aria-pressed=true]")) pressed.setAttribute("aria-pressed", "false");
    if (rerender) render();
    if (!travelling) remember();
    // Remembered without pixel boxes and regions: they were drawn on one photo, not the next
    // ones (a relative crop box is meant for every photo, and is kept).
    const remembered = recipe();
    remembered.ops = remembered.ops
      .filter((op) => !(op.op === "crop" && op.x !== undefined))
      .map((op) => { const copy = Object.assign({}, op); delete copy.regions; return copy; });
    // Not while the page starts: a recipe read back (or a preset) is not a choice the user
    // made, and writing it would lose operations this page could not show.
    if (rememberRecipe && !starting) {
      try { localStorage.setItem(STORAGE_KEY, JSON.stringify(remembered)); } catch (_) { /* private mode */ }
    }
    for (const listener of listeners) listener(recipe());
  }

  function load(saved) {
    history.at = 0; // a whole new recipe is a step of its own
    state = { ops: (saved.ops || []).filter((op) => DEFAULTS[op.op]).map(withId), format: saved.format || "jpeg", quality: saved.quality || 85, metadata: saved.metadata || "no-location" };
    changed(true);
  }

  function setup() {
    const root = document.getElementById("builder");
    if (!root) return;
    readRegistry();
    // Without the server's list of operations (a page and a script of different releases
    // during a deploy), the builder stays hidden and the plain form stays in use.
    if (!REGISTRY.length) return;
    root.hidden = false;
    rememberRecipe = root.dataset.remember !== "false";
    const plain = document.getElementById("plain-ops");
    if (plain) { plain.hidden = true; plain.querySelectorAll("input, select").forEach((input) => { input.disabled = true; }); }
    const palette = document.getElementById("recipe-palette");
    for (const [op, title] of Object.entries(TITLES)) {
      palette.append(el("button", { type: "button", class: "button add-op", "data-add": op, onclick: () => { state.ops.push(withId(DEFAULTS[op]())); changed(true); } }, `+ ${title}`));
    }
    // Presets are buttons (a menu applied them on a mere arrow key); each says it replaced
    // the recipe, with Undo beside it.
    const presets = document.getElementById("recipe-presets");
    const said = document.getElementById("recipe-preset-said");
    for (const [key, preset] of Object.entries(PRESETS)) {
      presets.append(el("button", { type: "button", class: "button small", "data-preset": key, onclick: () => {
        load(JSON.parse(JSON.stringify(preset.recipe)));
        for (const other of presets.querySelectorAll("button")) other.setAttribute("aria-pressed", String(other.dataset.preset === key));
        said.replaceChildren(`Recipe replaced by “${preset.label}”. `, el("button", { type: "button", class: "link", onclick: () => { undo(); said.replaceChildren(); } }, "Undo"));
      } }, preset.label));
    }
    document.getElementById("recipe-undo").addEventListener("click", undo);
    document.getElementById("recipe-redo").addEventListener("click", redo);
    // On the whole page (a rebuilt step may have taken the focus with it), while the
    // builder is shown.
    document.addEventListener("keydown", (event) => {
      if (!(event.ctrlKey || event.metaKey) || event.altKey || !root.offsetParent) return;
      const key = event.key.toLowerCase();
      // Inside a text field the browser's own undo of the typing comes first.
      if (event.target.matches("input[type=text], input[type=number], textarea")) return;
      if (key === "z" && !event.shiftKey) { event.preventDefault(); undo(); }
      else if ((key === "z" && event.shiftKey) || key === "y") { event.preventDefault(); redo(); }
    });
    document.getElementById("recipe-format").addEventListener("change", (e) => { state.format = e.target.value; changed(false); });
    document.getElementById("recipe-quality").addEventListener("input", (e) => { state.quality = Number(e.target.value); changed(false); });
    document.getElementById("recipe-metadata").addEventListener("change", (e) => { state.metadata = e.target.value; changed(false); });
    let saved = null;
    try { saved = rememberRecipe ? JSON.parse(localStorage.getItem(STORAGE_KEY) || "null") : null; } catch (_) { saved = null; }
    starting = true;
    load(saved && Array.isArray(saved.ops) && saved.ops.length ? saved : PRESETS.web.recipe);
    starting = false;
    showHistory();
  }

  window.darkroomBuilder = {
    recipe,
    // The PNGs the recipe's image watermarks name that were chosen here: [{ name, file }].
    assets: () => [...new Set(state.ops.filter((o) => o.op === "watermark" && o.image).map((o) => o.image))]
      .filter((name) => assetFiles.has(name)).map((name) => ({ name, file: assetFiles.get(name) })),
    // Starts from a given recipe (the job page: the job's recipe), as a step that can be undone.
    load: (recipe) => load(JSON.parse(JSON.stringify(recipe))),
    onChange: (callback) => listeners.push(callback),
    // A region drawn on the preview (original pixels) for red-eye or teeth whitening: added
    // to the first such operation, which is created if there is none.
    // A crop box drawn on the preview, as fractions of the photo: it replaces the recipe's
    // first crop (whatever its kind), or comes first.
    setCropBox: (relative) => {
      let op = state.ops.find((o) => o.op === "crop");
      if (!op) { op = withId({ op: "crop" }); state.ops.unshift(op); }
      for (const key of ["aspect", "smart", "x", "y", "width", "height", "cropBy"]) delete op[key];
      op.relative = relative;
      changed(true);
    },
  };
  document.addEventListener("DOMContentLoaded", setup);
})();
