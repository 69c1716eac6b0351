// Small formatting helpers shared by the page's modules.

export function fileName(path) {
  return path.split("/").pop() || path;
}

export function clock(seconds) {
  const total = Math.max(0, Math.round(seconds * 10) / 10);
  const minutes = Math.floor(total / 60);
  const rest = total - minutes * 60;
  const secs = rest < 10 ? `0${rest.toFixed(1)}` : rest.toFixed(1);
  return `${minutes}:${secs}`;
}

export function sceneRange(scene) {
  return `${clock(scene.start)}–${clock(scene.end)}`;
}

export function bytes(size) {
  if (!size && size !== 0) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** Create an element: el("li", {class: "x", onclick: f}, child, "text"). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": "\"", "&#x27;": "'", "&#39;": "'" };

/** A line the API marked (HTML-escaped, matches in <mark>) as nodes: text stays text. */
export function markedLine(marked) {
  const unescape = (text) => text.replace(/&(amp|lt|gt|quot|#x27|#39);/g, (m) => ENTITIES[m]);
  return marked.split(/(<mark>.*?<\/mark>)/).filter(Boolean).map((part) =>
    part.startsWith("<mark>")
      ? el("mark", {}, unescape(part.slice(6, -7)))
      : document.createTextNode(unescape(part)));
}

// A document's page a hit is on, with its words (matched, or how the page begins).
export function pageOf(hit) {
  return hit.page || (hit.more_pages && hit.more_pages[0]) || null;
}
