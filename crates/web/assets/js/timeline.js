// A timeline of detections: evidence first seen per time bucket, stacked by behaviour.

import { fmtTime, h, s } from './dom.js';
import { BEHAVIOURS, behaviour, setOfKind } from './model.js';
import { hideTooltip, showTooltip } from './tooltip.js';

/** Detections of hosts' evidence: `{time, kind, host, tenant}` each. */
export function detectionsOf(hosts) {
  const out = [];
  for (const host of hosts) {
    for (const e of host.evidence || []) {
      out.push({ time: e.first_seen || host.first_seen, kind: e.kind, host: host.address, tenant: host.tenant });
    }
  }
  return out;
}

/** Draws the detections in `buckets` columns; returns the element. */
export function drawTimeline(detections, buckets = 60) {
  const width = 900;
  const height = 150;
  const pad = { left: 34, right: 8, top: 8, bottom: 22 };
  const times = detections.map((d) => Date.parse(d.time)).filter((t) => Number.isFinite(t));
  const svg = s('svg', {
    class: 'timeline',
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': 'Detections over time',
    'data-detections': times.length,
  });
  if (times.length === 0) {
    svg.appendChild(s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'muted' }, 'no detections yet'));
    return svg;
  }
  let lo = Math.min(...times);
  let hi = Math.max(...times);
  if (hi - lo < 60000) {
    lo -= 30000;
    hi += 30000;
  }
  const step = (hi - lo) / buckets;
  const columns = Array.from({ length: buckets }, () => new Map());
  for (const d of detections) {
    const t = Date.parse(d.time);
    if (!Number.isFinite(t)) continue;
    const i = Math.min(buckets - 1, Math.floor((t - lo) / step));
    const kind = setOfKind(d.kind) || d.kind;
    columns[i].set(kind, (columns[i].get(kind) || 0) + 1);
  }
  const tallest = Math.max(1, ...columns.map((c) => [...c.values()].reduce((a, b) => a + b, 0)));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const barW = plotW / buckets;
  const order = [...BEHAVIOURS.map((b) => b.id)];
  columns.forEach((col, i) => {
    let y = pad.top + plotH;
    const kinds = [...col.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b));
    for (const kind of kinds) {
      const n = col.get(kind);
      const barH = (n / tallest) * plotH;
      y -= barH;
      const from = new Date(lo + i * step).toISOString();
      const rect = s('rect', {
        x: (pad.left + i * barW + 0.5).toFixed(1),
        y: y.toFixed(1),
        width: Math.max(1, barW - 1).toFixed(1),
        height: barH.toFixed(1),
        fill: behaviour(kind).colour,
        'data-kind': kind,
        'data-count': n,
      });
      rect.addEventListener('mouseenter', (ev) => showTooltip(ev, [`${behaviour(kind).label}: ${n}`, `from ${fmtTime(from)}`]));
      rect.addEventListener('mouseleave', hideTooltip);
      svg.appendChild(rect);
    }
  });
  svg.appendChild(s('line', { x1: pad.left, x2: width - pad.right, y1: pad.top + plotH, y2: pad.top + plotH, stroke: '#90a4ae' }));
  svg.appendChild(s('text', { x: pad.left, y: height - 6, class: 'axis' }, fmtTime(new Date(lo).toISOString())));
  svg.appendChild(s('text', { x: width - pad.right, y: height - 6, class: 'axis', 'text-anchor': 'end' }, fmtTime(new Date(hi).toISOString())));
  svg.appendChild(s('text', { x: pad.left - 4, y: pad.top + 8, class: 'axis', 'text-anchor': 'end' }, String(tallest)));
  return svg;
}

/** The colour key of the behaviours. */
export function behaviourKey() {
  return h(
    'ul',
    { class: 'key' },
    BEHAVIOURS.map((b) => {
      const swatch = s('svg', { width: 12, height: 12, 'aria-hidden': 'true' }, s('rect', { width: 12, height: 12, fill: b.colour }));
      return h('li', null, swatch, ' ', b.label);
    }),
  );
}
