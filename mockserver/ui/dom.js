// Building the page from data: text only (textContent), never markup from an answer.

const SVG = "http://www.w3.org/2000/svg";

/** An element with attributes and children (strings become text). */
export function el(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element with attributes and children. */
export function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

function build(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.setAttribute("class", value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

/** Replace a table body's rows (at most ``limit``), each an array of cells. */
export function rows(tbody, items, cells, limit = 500) {
  const fresh = items.slice(0, limit).map((item) => {
    const row = el("tr");
    for (const cell of cells(item)) row.append(cell instanceof Node ? el("td", {}, cell) : el("td", {}, text(cell)));
    return row;
  });
  tbody.replaceChildren(...fresh);
}

/** A value as a short text: numbers rounded, objects as compact JSON. */
export function text(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(3);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Seconds on the virtual clock, as the page shows them. */
export function seconds(value) {
  return value === null || value === undefined ? "" : Number(value).toFixed(2);
}
