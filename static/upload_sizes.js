// Upload page, the recipe tried on every photo's size: each photo's upright size read from
// its header in the browser, and the server asked whether the recipe would run on it.
// Loaded before upload.js, whose selection it reads.
"use strict";

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
