// The Euler diagram of evidence: one circle per behaviour, areas proportional to the number of
// hosts (laid out by venn.js), each non-empty region of exact membership drawn and filled with
// its hosts. Regions where several behaviours overlap are the core of a botnest and are drawn
// darker.

import {
  circlePath,
  computeTextCentre,
  intersectionAreaPath,
  normalizeSolution,
  scaleSolution,
  venn,
} from '../vendor/venn.js/venn.esm.js';
import { s } from './dom.js';
import { behaviour, behavioursOf, hostKey } from './model.js';
import { hideTooltip, showTooltip } from './tooltip.js';

/**
 * Hosts grouped by behaviour. Behaviours with exactly the same hosts are one set of the diagram
 * (an Euler diagram draws equal sets as one circle): `sets` maps each set id (its behaviours
 * joined by `=`) to its host keys, `groups` maps it to its behaviours, `regions` maps each
 * non-empty exact combination of sets to `{id, sets, behaviours, hosts}`, and `outside` lists
 * hosts with none of the behaviours.
 */
export function evidenceSets(hosts) {
  const byBehaviour = new Map();
  const memberships = [];
  const outside = [];
  for (const host of hosts) {
    const key = hostKey(host.tenant, host.address);
    const member = behavioursOf(host);
    if (member.length === 0) {
      outside.push(host);
      continue;
    }
    memberships.push({ host, member });
    for (const b of member) {
      if (!byBehaviour.has(b)) byBehaviour.set(b, []);
      byBehaviour.get(b).push(key);
    }
  }

  const bySignature = new Map();
  for (const [b, keys] of byBehaviour) {
    const signature = [...keys].sort().join('\n');
    if (!bySignature.has(signature)) bySignature.set(signature, []);
    bySignature.get(signature).push(b);
  }
  const sets = new Map();
  const groups = new Map();
  const groupOf = new Map();
  for (const behaviours of bySignature.values()) {
    const id = behaviours.join('=');
    groups.set(id, behaviours);
    sets.set(id, byBehaviour.get(behaviours[0]));
    for (const b of behaviours) groupOf.set(b, id);
  }

  const regions = new Map();
  for (const { host, member } of memberships) {
    const ids = [...new Set(member.map((b) => groupOf.get(b)))];
    const id = ids.join('+');
    if (!regions.has(id)) regions.set(id, { id, sets: ids, behaviours: member, hosts: [] });
    regions.get(id).hosts.push(host);
  }
  return { sets, groups, regions, outside };
}

/** The label of a set: its behaviours, equal sets joined by `=`. */
function setLabel(groups, id) {
  return groups.get(id).map((b) => behaviour(b).label).join(' = ');
}

/** The areas venn.js lays out: each set's size and each pair's overlap (zero ones left out). */
function areas(sets, regions) {
  const list = [...sets.entries()].map(([b, keys]) => ({ sets: [b], size: keys.length }));
  const names = [...sets.keys()];
  for (let i = 0; i < names.length; i += 1) {
    for (let j = i + 1; j < names.length; j += 1) {
      let size = 0;
      for (const r of regions.values()) {
        if (r.sets.includes(names[i]) && r.sets.includes(names[j])) size += r.hosts.length;
      }
      if (size > 0) list.push({ sets: [names[i], names[j]], size });
    }
  }
  return list;
}

/** Circles for the sets, scaled into width x height. */
function circles(sets, regions, width, height) {
  const names = [...sets.keys()];
  if (names.length === 1) {
    const r = Math.min(width, height) / 2 - 20;
    return { [names[0]]: { x: width / 2, y: height / 2, radius: r, setid: names[0] } };
  }
  const solution = venn(areas(sets, regions));
  return scaleSolution(normalizeSolution(solution, Math.PI / 2), width, height, 28);
}

const inside = (p, c, margin) => Math.hypot(p.x - c.x, p.y - c.y) <= c.radius - margin;
const clear = (p, c, margin) => Math.hypot(p.x - c.x, p.y - c.y) >= c.radius + margin;

/**
 * Points for `n` hosts inside the interior circles and outside the exterior ones, nearest the
 * region's centre first. Shrinks the spacing until they fit; returns fewer when the layout gave
 * the region too little room (the caller places the rest at the centre).
 */
function placeDots(n, interior, exterior, centre) {
  const smallest = interior.reduce((a, b) => (a.radius <= b.radius ? a : b));
  for (let spacing = 12; spacing >= 1.5; spacing *= 0.75) {
    const margin = Math.min(spacing / 2, 4);
    const points = [];
    const r = smallest.radius;
    for (let y = smallest.y - r; y <= smallest.y + r; y += spacing) {
      for (let x = smallest.x - r; x <= smallest.x + r; x += spacing) {
        const p = { x, y };
        if (interior.every((c) => inside(p, c, margin)) && exterior.every((c) => clear(p, c, margin))) {
          points.push(p);
        }
      }
    }
    if (points.length >= n || spacing * 0.75 < 1.5) {
      points.sort(
        (a, b) =>
          Math.hypot(a.x - centre.x, a.y - centre.y) - Math.hypot(b.x - centre.x, b.y - centre.y),
      );
      return { points: points.slice(0, n), radius: Math.max(1, Math.min(5, spacing / 2 - 0.5)) };
    }
  }
  return { points: [], radius: 3 };
}

let maskCounter = 0;

/**
 * Draws the diagram into `container` (an element; its content is replaced). `onHost(host)` opens
 * a host. Returns the SVG element, whose regions carry `data-sets` and `data-count` and whose
 * host dots carry `data-host` and `data-sets`.
 */
export function drawEuler(container, hosts, onHost, options = {}) {
  const width = options.width || 640;
  const height = options.height || 420;
  const { sets, groups, regions, outside } = evidenceSets(hosts);
  const svg = s('svg', {
    class: 'euler',
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': 'Euler diagram of hosts by behaviour',
    'data-sets': [...groups.values()].flat().join(' '),
  });
  container.replaceChildren(svg);
  if (sets.size === 0) return { svg, outside };

  const t0 = performance.now();
  const layout = circles(sets, regions, width, height);
  const all = Object.values(layout);
  const defs = s('defs');
  svg.appendChild(defs);

  // The sets' outlines, faint: the regions inside them carry the colour.
  const outlines = s('g', { class: 'euler-sets' });
  for (const [name, c] of Object.entries(layout)) {
    const b = behaviour(groups.get(name)[0]);
    outlines.appendChild(
      s('circle', {
        cx: c.x,
        cy: c.y,
        r: c.radius,
        fill: 'none',
        stroke: b.colour,
        'stroke-width': 2,
        'data-set': name,
        'data-behaviours': groups.get(name).join(' '),
        'data-size': sets.get(name).length,
      }),
    );
  }

  const regionLayer = s('g', { class: 'euler-regions' });
  const dotLayer = s('g', { class: 'euler-hosts' });
  const labelLayer = s('g', { class: 'euler-labels' });
  const most = Math.max(...[...regions.values()].map((r) => r.sets.length));
  for (const region of regions.values()) {
    const interior = region.sets.map((b) => layout[b]);
    const exterior = all.filter((c) => !region.sets.includes(c.setid));
    const centre = computeTextCentre(interior, exterior);

    // The region: the interior circles' intersection, with the exterior circles masked out.
    maskCounter += 1;
    const maskId = `euler-mask-${maskCounter}`;
    const mask = s('mask', { id: maskId, maskUnits: 'userSpaceOnUse', x: 0, y: 0, width, height });
    mask.appendChild(s('rect', { x: 0, y: 0, width, height, fill: 'white' }));
    for (const c of exterior) mask.appendChild(s('circle', { cx: c.x, cy: c.y, r: c.radius, fill: 'black' }));
    defs.appendChild(mask);
    const path =
      interior.length === 1
        ? circlePath(interior[0].x, interior[0].y, interior[0].radius)
        : intersectionAreaPath(interior);
    const depth = region.sets.length / most;
    const fill = region.sets.length === 1 ? behaviour(groups.get(region.sets[0])[0]).colour : '#b71c1c';
    const shape = s('path', {
      d: path,
      fill,
      'fill-opacity': (0.12 + 0.45 * depth).toFixed(2),
      mask: `url(#${maskId})`,
      class: 'euler-region',
      'data-sets': region.behaviours.join(' '),
      'data-count': region.hosts.length,
    });
    const names = region.sets.map((id) => setLabel(groups, id)).join(' ∩ ');
    shape.appendChild(s('title', null, `${names}: ${region.hosts.length} hosts`));
    regionLayer.appendChild(shape);

    const { points, radius } = placeDots(region.hosts.length, interior, exterior, centre);
    region.hosts.forEach((host, i) => {
      const p = points[i] || centre;
      const key = hostKey(host.tenant, host.address);
      const dot = s('circle', {
        cx: p.x.toFixed(1),
        cy: p.y.toFixed(1),
        r: radius,
        class: 'euler-host',
        tabindex: 0,
        'data-host': key,
        'data-sets': region.behaviours.join(' '),
        'data-placed': points[i] ? 'inside' : 'centre',
      });
      const label = `${host.address}${host.tenant && host.tenant !== '0' ? ` (${host.tenant})` : ''}`;
      dot.addEventListener('mouseenter', (ev) =>
        showTooltip(ev, [label, `${names}`, `score ${Number(host.score ?? 0).toFixed(2)}`]),
      );
      dot.addEventListener('mouseleave', hideTooltip);
      dot.addEventListener('click', () => onHost(host));
      dot.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter') onHost(host);
      });
      dotLayer.appendChild(dot);
    });
    if (region.sets.length > 1 || region.hosts.length > 1) {
      labelLayer.appendChild(
        s(
          'text',
          { x: centre.x, y: centre.y - (radius + 6), class: 'euler-count', 'text-anchor': 'middle' },
          String(region.hosts.length),
        ),
      );
    }
  }

  // Set names outside their circle's top, where overlaps rarely hide them.
  for (const [name, c] of Object.entries(layout)) {
    labelLayer.appendChild(
      s(
        'text',
        { x: c.x, y: Math.max(12, c.y - c.radius - 6), class: 'euler-set-label', 'text-anchor': 'middle', fill: behaviour(groups.get(name)[0]).colour },
        `${setLabel(groups, name)} (${sets.get(name).length})`,
      ),
    );
  }
  svg.append(regionLayer, outlines, dotLayer, labelLayer);
  svg.dataset.layoutMs = String(Math.round(performance.now() - t0));
  return { svg, outside, regions, sets };
}
