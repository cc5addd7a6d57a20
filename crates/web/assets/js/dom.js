// DOM construction without markup parsing: every string becomes a text node or an attribute
// value, so nothing that came from the network (interface names, details) can turn into markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) {
      append(node, child);
    } else if (child instanceof Node) {
      node.appendChild(child);
    } else {
      node.appendChild(document.createTextNode(String(child)));
    }
  }
}

function setAttributes(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) {
      // Handlers are functions, never text that the browser would compile.
      if (typeof value !== 'function') throw new TypeError(`${key} must be a function`);
      node.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
    } else {
      node.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

/** An HTML element: `h('td', {class: 'num'}, 'text', child, ...)`. */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

/** An SVG element, built the same way. */
export function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

/** Replaces the children of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A table with a header row; `rows` are arrays of cells (strings, numbers or nodes). */
export function table(headers, rows, attrs) {
  return h(
    'table',
    attrs,
    h('thead', null, h('tr', null, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h(
      'tbody',
      null,
      rows.map((row) => {
        const cells = Array.isArray(row) ? row : row.cells;
        const tr = h('tr', Array.isArray(row) ? null : row.attrs);
        for (const cell of cells) {
          const numeric = typeof cell === 'number';
          tr.appendChild(h('td', numeric ? { class: 'num' } : null, numeric ? fmtNumber(cell) : cell));
        }
        return tr;
      }),
    ),
  );
}

/** A section with a heading. */
export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', null, title), children);
}

/** Numbers with thousands separators; fractions to three significant digits. */
export function fmtNumber(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (Number.isInteger(x)) return x.toLocaleString('en-US');
  return Number(x.toPrecision(3)).toLocaleString('en-US', { maximumFractionDigits: 3 });
}

export function fmtBytes(x) {
  if (x === null || x === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = x;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function fmtScore(x) {
  return typeof x === 'number' ? x.toFixed(2) : '–';
}

export function fmtPercent(x) {
  return typeof x === 'number' && Number.isFinite(x) ? `${Math.round(x * 100)}%` : '–';
}

/** An RFC 3339 time as `YYYY-MM-DD HH:MM:SS` UTC, or a dash. */
export function fmtTime(t) {
  if (!t) return '–';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/Z$/, '');
}

export function fmtDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '–';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

/** The hash route of a host. */
export function hostHref(tenant, address) {
  return `#/host/${encodeURIComponent(tenant)}/${encodeURIComponent(address)}`;
}

export function botnestHref(id) {
  return `#/botnest/${encodeURIComponent(id)}`;
}

/** A short label for a host: its address, with the tenant when it is not the default one. */
export function hostLabel(tenant, address) {
  return tenant && tenant !== '0' ? `${address} (${tenant})` : address;
}

/** A message line, e.g. for errors and empty results. */
export function note(text, kind) {
  return h('p', { class: kind ? `note ${kind}` : 'note' }, text);
}
