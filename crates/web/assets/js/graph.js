// The property graph: hosts as nodes styled by role, channels as edges, each botnest a compound
// node around its members. Drawn by cytoscape on a canvas, laid out by fCoSE.

import cytoscape from '../vendor/cytoscape/cytoscape.esm.min.mjs';
import { fmtBytes, fmtDuration, fmtNumber, fmtPercent, fmtScore, fmtTime, hostLabel } from './dom.js';
import { hostKey, mainRole, normaliseChannel, protoName, splitKey } from './model.js';
import { hideTooltip, showTooltip } from './tooltip.js';

if (typeof window.cytoscapeFcose === 'function') {
  cytoscape.use(window.cytoscapeFcose);
}

const ROLE_STYLE = {
  c2: { colour: '#7b1fa2', shape: 'diamond', size: 26 },
  bot: { colour: '#c62828', shape: 'ellipse', size: 18 },
  scanner: { colour: '#ef6c00', shape: 'triangle', size: 20 },
  flooder: { colour: '#ad1457', shape: 'vee', size: 20 },
  bruteforcer: { colour: '#6a1b9a', shape: 'pentagon', size: 18 },
  spammer: { colour: '#5d4037', shape: 'hexagon', size: 18 },
  peer: { colour: '#f9a825', shape: 'round-rectangle', size: 16 },
  victim: { colour: '#546e7a', shape: 'round-triangle', size: 16 },
  targets: { colour: '#cfd8dc', shape: 'round-rectangle', size: 24 },
  host: { colour: '#90a4ae', shape: 'ellipse', size: 12 },
};

/** Roles in the legend, with how they are drawn. */
export const ROLES = Object.entries(ROLE_STYLE).map(([role, st]) => ({ role, ...st }));

/** Above this many elements edges are hidden while panning and the layout iterates less. */
const LARGE = 1500;


function stylesheet() {
  const roleRules = Object.entries(ROLE_STYLE).map(([role, st]) => ({
    selector: `node[role = "${role}"]`,
    style: { 'background-color': st.colour, shape: st.shape, width: st.size, height: st.size },
  }));
  return [
    {
      selector: 'node',
      style: {
        label: 'data(label)',
        'font-size': 9,
        color: '#263238',
        'text-valign': 'bottom',
        'text-margin-y': 3,
        'min-zoomed-font-size': 7,
        'border-width': 0,
      },
    },
    ...roleRules,
    {
      selector: 'node[?accused]',
      style: { 'border-width': 2, 'border-color': '#212121' },
    },
    {
      selector: ':parent',
      style: {
        'background-color': '#eceff1',
        'background-opacity': 0.55,
        'border-width': 1.5,
        'border-color': '#78909c',
        'border-style': 'dashed',
        shape: 'round-rectangle',
        label: 'data(label)',
        'text-valign': 'top',
        'text-halign': 'center',
        'font-size': 12,
        'font-weight': 'bold',
        color: '#37474f',
        padding: 14,
      },
    },
    {
      selector: 'edge',
      style: {
        width: 'mapData(flows, 1, 1000, 1, 5)',
        'line-color': '#b0bec5',
        'target-arrow-color': '#b0bec5',
        'target-arrow-shape': 'triangle',
        'arrow-scale': 0.7,
        'curve-style': 'haystack',
        opacity: 0.8,
      },
    },
    { selector: 'edge[failedShare >= 0.5]', style: { 'line-color': '#e57373', 'line-style': 'dashed' } },
    { selector: 'node:selected', style: { 'overlay-color': '#1565c0', 'overlay-opacity': 0.25 } },
    { selector: '.faded', style: { opacity: 0.15 } },
  ];
}

/** More channels than this from one client on one port to plain hosts are drawn as one node. */
const FAN_OUT = 8;

function isAccused(host) {
  if (!host) return false;
  return typeof host.accused === 'boolean' ? host.accused : (host.roles || []).length > 0;
}

/** One node standing for the targets of a fan-out, and one edge summing its channels. */
function addFan(nodes, edges, fanKey, channels) {
  const [first] = channels;
  const id = `f:${fanKey}`;
  const targets = channels.map((c) => splitKey(c.server).address);
  nodes.set(id, {
    data: {
      id,
      kind: 'fan',
      role: 'targets',
      label: `${targets.length} hosts on ${first.port}/${protoName(first.proto)}`,
      targets: targets.slice(0, 12).join(', ') + (targets.length > 12 ? ', …' : ''),
      count: targets.length,
    },
  });
  const sum = (f) => channels.reduce((n, c) => n + (c[f] ?? 0), 0);
  const times = (f) => channels.map((c) => c[f]).filter(Boolean).sort();
  const flows = sum('flows');
  const failed = sum('failed');
  edges.set(`e:${fanKey}`, {
    data: {
      id: `e:${fanKey}`,
      source: `h:${first.client}`,
      target: id,
      client: first.client,
      serverLabel: `${targets.length} hosts`,
      port: first.port,
      proto: first.proto,
      flows,
      failed,
      failedShare: flows > 0 ? failed / flows : null,
      bytesOut: sum('bytesOut'),
      bytesIn: sum('bytesIn'),
      intervalMean: null,
      intervalCv: null,
      firstSeen: times('firstSeen')[0] ?? null,
      lastSeen: times('lastSeen').at(-1) ?? null,
    },
  });
}

/**
 * Elements for botnests. Each botnest is `{id, members, channels | flows}`; `hosts` maps host
 * keys to the accused hosts' objects (for scores and roles). A host in several botnests is drawn
 * in the first.
 */
export function elements(nests, hosts) {
  const nodes = new Map();
  const edges = new Map();
  for (const nest of nests) {
    const group = `b:${nest.id}`;
    const members = nest.members || [];
    nodes.set(group, {
      data: {
        id: group,
        kind: 'botnest',
        botnest: nest.id,
        label: `botnest ${nest.id} · ${members.length} hosts · ${nest.state ?? ''}`,
      },
    });
    for (const m of members) {
      const key = hostKey(m.tenant, m.address);
      if (nodes.has(`h:${key}`)) continue;
      const host = hosts.get(key);
      const roles = host ? host.roles : m.roles || [m.role];
      nodes.set(`h:${key}`, {
        data: {
          id: `h:${key}`,
          kind: 'host',
          parent: group,
          key,
          tenant: m.tenant,
          address: m.address,
          label: hostLabel(m.tenant, m.address),
          role: mainRole(roles, m.role),
          roles: (roles || []).join(', '),
          score: host ? host.score : null,
          accused: isAccused(host),
          botnest: nest.id,
        },
      });
    }
    const channels = (nest.channels || nest.flows || []).map((raw) => normaliseChannel(raw, members));
    // A client's many channels on one port to hosts that are neither members nor accused (the
    // targets of a scan, a flood, a spam run) become one node, so the graph stays readable.
    const plain = (k) => !nodes.has(`h:${k}`) && !hosts.has(k);
    const fans = new Map();
    for (const c of channels) {
      if (!plain(c.server)) continue;
      const k = `${c.client}>${c.port}/${c.proto}`;
      if (!fans.has(k)) fans.set(k, []);
      fans.get(k).push(c);
    }
    for (const c of channels) {
      const fanKey = `${c.client}>${c.port}/${c.proto}`;
      const fan = fans.get(fanKey);
      if (fan && fan.length > FAN_OUT && fan.includes(c)) {
        if (fan[0] === c) addFan(nodes, edges, fanKey, fan);
        continue;
      }
      for (const end of [c.client, c.server]) {
        if (!nodes.has(`h:${end}`)) {
          const { tenant, address } = splitKey(end);
          const host = hosts.get(end);
          nodes.set(`h:${end}`, {
            data: {
              id: `h:${end}`,
              kind: 'host',
              key: end,
              tenant,
              address,
              label: hostLabel(tenant, address),
              role: host ? mainRole(host.roles) : 'host',
              roles: host ? (host.roles || []).join(', ') : '',
              score: host ? host.score : null,
              accused: isAccused(host),
            },
          });
        }
      }
      const id = `e:${c.client}>${c.server}:${c.port}/${c.proto}`;
      if (!edges.has(id)) {
        edges.set(id, { data: { id, source: `h:${c.client}`, target: `h:${c.server}`, ...c } });
      }
    }
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}

function keyLabel(key) {
  const { tenant, address } = splitKey(key);
  return hostLabel(tenant, address);
}

function edgeLines(d) {
  return [
    `${keyLabel(d.client)} → ${d.serverLabel ?? keyLabel(d.server)}`,
    `port ${d.port ?? '–'} / ${protoName(d.proto)}`,
    `flows ${fmtNumber(d.flows)}, failed ${fmtPercent(d.failedShare)}`,
    `bytes out ${fmtBytes(d.bytesOut)}, in ${fmtBytes(d.bytesIn)}`,
    d.intervalMean !== null
      ? `interval ${fmtDuration(d.intervalMean)} (cv ${fmtNumber(d.intervalCv)})`
      : 'interval –',
    d.tcpFlags ? `TCP flags ${d.tcpFlags}` : null,
    `first seen ${fmtTime(d.firstSeen)}`,
    `last seen ${fmtTime(d.lastSeen)}`,
  ].filter(Boolean);
}

function nodeLines(d) {
  if (d.kind === 'botnest') return [d.label];
  if (d.kind === 'fan') return [d.label, d.targets];
  return [
    d.label,
    d.roles ? `roles ${d.roles}` : 'not accused',
    d.score !== null && d.score !== undefined ? `score ${fmtScore(d.score)}` : null,
    d.botnest !== undefined ? `botnest ${d.botnest}` : null,
  ].filter(Boolean);
}

function layoutOptions(count, incremental) {
  return {
    name: typeof window.cytoscapeFcose === 'function' ? 'fcose' : 'cose',
    quality: 'default',
    randomize: !incremental,
    animate: false,
    fit: true,
    padding: 20,
    nodeDimensionsIncludeLabels: false,
    packComponents: true,
    nodeRepulsion: 6000,
    idealEdgeLength: 60,
    nestingFactor: 0.3,
    gravityCompound: 1.2,
    numIter: count > LARGE ? 1200 : 2500,
    tile: true,
  };
}

/**
 * Draws the graph in `container`. `onHost(tenant, address)` opens a host. Returns a handle with
 * `update(elements)` (adds what is new and lays out again), `timings` and `cy`.
 */
export function drawGraph(container, els, onHost) {
  const t0 = performance.now();
  const count = els.nodes.length + els.edges.length;
  const cy = cytoscape({
    container,
    style: stylesheet(),
    minZoom: 0.05,
    maxZoom: 4,
    pixelRatio: count > LARGE ? 1 : 'auto',
    hideEdgesOnViewport: count > LARGE,
    textureOnViewport: count > LARGE,
  });
  cy.batch(() => cy.add([...els.nodes, ...els.edges]));
  const handle = { cy, timings: {} };
  const created = performance.now();

  function runLayout(incremental) {
    return new Promise((resolve) => {
      const start = performance.now();
      const layout = cy.layout(layoutOptions(cy.elements().length, incremental));
      layout.one('layoutstop', () => {
        const laidOut = performance.now();
        requestAnimationFrame(() => {
          const drawn = performance.now();
          handle.timings = {
            nodes: cy.nodes().length,
            edges: cy.edges().length,
            init_ms: incremental ? 0 : Math.round(created - t0),
            layout_ms: Math.round(laidOut - start),
            render_ms: Math.round(drawn - laidOut),
            total_ms: Math.round(drawn - (incremental ? start : t0)),
          };
          container.dataset.nodes = String(cy.nodes('[kind = "host"]').length);
          container.dataset.layoutMs = String(handle.timings.layout_ms);
          container.dataset.totalMs = String(handle.timings.total_ms);
          container.dataset.ready = 'true';
          resolve(handle.timings);
        });
      });
      layout.run();
    });
  }

  cy.on('mouseover', 'edge', (ev) => showTooltip(ev.originalEvent, edgeLines(ev.target.data())));
  cy.on('mouseover', 'node', (ev) => showTooltip(ev.originalEvent, nodeLines(ev.target.data())));
  cy.on('mouseout', 'node, edge', hideTooltip);
  cy.on('viewport', hideTooltip);
  cy.on('tap', 'node[kind = "host"]', (ev) => {
    const d = ev.target.data();
    onHost(d.tenant, d.address);
  });
  cy.on('tap', 'node[kind = "botnest"]', (ev) => {
    location.hash = `#/botnest/${encodeURIComponent(ev.target.data('botnest'))}`;
  });

  handle.ready = runLayout(false);

  /** Adds new nodes and edges (and refreshes the data of known ones), then lays out again. */
  handle.update = (next) => {
    let added = 0;
    cy.batch(() => {
      for (const n of next.nodes) {
        const have = cy.getElementById(n.data.id);
        if (have.nonempty()) {
          have.data(n.data);
        } else {
          cy.add(n);
          added += 1;
        }
      }
      for (const e of next.edges) {
        const have = cy.getElementById(e.data.id);
        if (have.nonempty()) {
          have.data(e.data);
        } else {
          cy.add(e);
          added += 1;
        }
      }
    });
    if (added > 0) handle.ready = runLayout(true);
    return added;
  };

  /** Highlights the hosts whose address starts with `text` and their neighbours; returns how many. */
  handle.find = (text) => {
    cy.elements().removeClass('faded');
    const query = text.trim();
    if (!query) {
      cy.fit(undefined, 20);
      return 0;
    }
    const found = cy.nodes('[kind = "host"]').filter((n) => String(n.data('address')).startsWith(query));
    if (found.empty()) return 0;
    const shown = found.closedNeighborhood().union(found.ancestors());
    cy.elements().difference(shown).addClass('faded');
    cy.fit(shown, 40);
    return found.length;
  };
  handle.destroy = () => cy.destroy();
  return handle;
}
