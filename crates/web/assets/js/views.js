// The pages: overview, graph of every botnest, one botnest, the accused hosts, one host.
// Each `render*` fills `root` and returns `{refresh, destroy}` for live updates.

import { download, get, post } from './api.js';
import {
  botnestHref,
  fmtBytes,
  fmtDuration,
  fmtNumber,
  fmtPercent,
  fmtScore,
  fmtTime,
  h,
  hostHref,
  hostLabel,
  note,
  replace,
  section,
  table,
} from './dom.js';
import { drawEuler } from './euler.js';
import { ROLES, drawGraph, elements } from './graph.js';
import { behaviour, behavioursOf, filterParams, hostKey, normaliseChannel, protoName, splitKey } from './model.js';
import { behaviourKey, detectionsOf, drawTimeline } from './timeline.js';

const EXPORT_FORMATS = [
  ['graphml', 'GraphML', 'graphml'],
  ['gexf', 'GEXF', 'gexf'],
  ['cypher', 'Cypher', 'cypher'],
  ['csv', 'CSV', 'zip'],
  ['stix', 'STIX 2.1', 'json'],
  ['json', 'JSON', 'json'],
];

function hostLink(tenant, address) {
  return h('a', { href: hostHref(tenant, address), class: 'host' }, hostLabel(tenant, address));
}

function botnestLink(id) {
  if (id === null || id === undefined) return '–';
  return h('a', { href: botnestHref(id) }, `#${id}`);
}

function roleTags(roles) {
  return h('span', { class: 'tags' }, (roles || []).map((r) => h('span', { class: `tag role-${r}` }, r)));
}

function kindTags(host) {
  return h(
    'span',
    { class: 'tags' },
    behavioursOf(host).map((b) => h('span', { class: 'tag kind' }, behaviour(b).label)),
  );
}

function stat(label, value, attrs) {
  return h('div', { class: 'stat', ...attrs }, h('span', { class: 'value' }, value), h('span', { class: 'label' }, label));
}

function exportButtons(id) {
  return h(
    'div',
    { class: 'exports' },
    'Export: ',
    EXPORT_FORMATS.map(([format, label, ext]) =>
      h(
        'button',
        {
          type: 'button',
          'data-format': format,
          onclick: () =>
            download(`/api/export/${format}`, id === undefined ? {} : { botnest: id }, `botnest-${id ?? 'all'}.${ext}`).catch(
              (err) => {
                const box = document.getElementById('export-error');
                if (box) box.textContent = `Export as ${label} failed: ${err.message}`;
              },
            ),
        },
        label,
      ),
    ),
    h('span', { id: 'export-error', class: 'error', role: 'status' }),
  );
}

/**
 * A button for a state-changing request that asks for a second click before it acts (no modal
 * dialog), then shows the outcome in `status`.
 */
function actionButton(label, confirmLabel, act, attrs) {
  const status = h('span', { class: 'action-status', role: 'status' });
  const button = h('button', { type: 'button', ...attrs }, label);
  let armed = false;
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      button.textContent = confirmLabel;
      button.classList.add('armed');
      return;
    }
    button.disabled = true;
    try {
      status.textContent = await act();
    } catch (err) {
      status.textContent = `Failed: ${err.message}`;
      status.classList.add('error');
      button.disabled = false;
    }
    armed = false;
    button.textContent = label;
    button.classList.remove('armed');
  });
  return h('span', { class: 'action' }, button, ' ', status);
}

function failure(root, err) {
  replace(root, note(`Could not load: ${err.message}`, 'error'));
}

function hostsByKey(hosts) {
  return new Map(hosts.map((x) => [hostKey(x.tenant, x.address), x]));
}

// ---------------------------------------------------------------- overview

function exportersTable(exporters) {
  if (exporters.length === 0) return note('No exporter has sent anything yet.');
  return table(
    ['exporter', 'domains', 'records/s', 'records', 'lost', 'loss', 'errors', 'templates', 'interfaces'],
    exporters.map((e) => {
      const lost = e.lost_records ?? 0;
      const total = (e.records ?? 0) + lost;
      return {
        attrs: { 'data-exporter': e.address },
        cells: [
          e.address,
          (e.domains || []).map((d) => (d && typeof d === 'object' ? d.domain : d)).join(', '),
          e.records_per_second ?? 0,
          e.records ?? 0,
          lost,
          fmtPercent(total > 0 ? lost / total : 0),
          e.errors ?? 0,
          e.templates ?? 0,
          h(
            'ul',
            { class: 'interfaces' },
            (e.interfaces || []).map((i) =>
              h(
                'li',
                { 'data-index': i.index },
                `${i.index}: `,
                h('span', { class: 'ifname' }, i.name ?? ''),
                i.description ? h('span', { class: 'muted' }, ` ${i.description}`) : null,
              ),
            ),
          ),
        ],
      };
    }),
    { class: 'exporters' },
  );
}

function nestsByTenant(nests) {
  const states = ['new', 'active', 'dormant', 'closed'];
  const rows = new Map();
  for (const n of nests) {
    for (const t of n.tenants && n.tenants.length ? n.tenants : ['0']) {
      if (!rows.has(t)) rows.set(t, { nests: Object.fromEntries(states.map((s) => [s, 0])), hosts: 0 });
      const row = rows.get(t);
      row.nests[n.state] = (row.nests[n.state] || 0) + 1;
      row.hosts += (n.members || []).filter((m) => m.tenant === t).length;
    }
  }
  if (rows.size === 0) return note('No botnest found.');
  return table(
    ['tenant', ...states, 'member hosts'],
    [...rows.entries()]
      .sort()
      .map(([t, r]) => ({ attrs: { 'data-tenant': t }, cells: [t, ...states.map((s) => r.nests[s]), r.hosts] })),
    { class: 'by-tenant' },
  );
}

function nestsTable(nests) {
  if (nests.length === 0) return note('No botnest matches the filters.');
  return table(
    ['botnest', 'state', 'score', 'members', 'C2', 'tenants', 'first seen', 'last seen'],
    [...nests]
      .sort((a, b) => (b.score ?? 0) - (a.score ?? 0))
      .map((n) => ({
        attrs: { 'data-botnest': n.id },
        cells: [
          botnestLink(n.id),
          h('span', { class: `state state-${n.state}` }, n.state),
          fmtScore(n.score),
          (n.members || []).length,
          (n.c2 || []).join(', ') || '–',
          (n.tenants || []).join(', '),
          fmtTime(n.first_seen),
          fmtTime(n.last_seen),
        ],
      })),
    { class: 'botnests' },
  );
}

/** Hosts with each behaviour right now, from the status's detector figures. */
function detectorsTable(detectors) {
  const counts = detectors && detectors.behaviours;
  if (!counts) return null;
  return h(
    'div',
    null,
    h('h3', null, 'Hosts by behaviour'),
    table(
      ['behaviour', 'hosts'],
      Object.entries(counts).map(([kind, n]) => ({ attrs: { 'data-kind': kind }, cells: [behaviour(kind).label, n] })),
      { class: 'detectors' },
    ),
  );
}

export function alertFeed(alerts) {
  if (alerts.length === 0) return note('Waiting for detections…');
  return h(
    'ol',
    { class: 'feed' },
    alerts.slice(0, 50).map((a) =>
      h(
        'li',
        { 'data-host': hostKey(a.tenant, a.host), 'data-kind': a.evidence?.kind ?? '' },
        h('time', null, fmtTime(a.time)),
        ' ',
        hostLink(a.tenant, a.host),
        ' ',
        h('span', { class: 'tag kind' }, behaviour(a.evidence?.kind).label),
        ' ',
        fmtScore(a.score),
        a.botnest !== undefined && a.botnest !== null ? [' in ', botnestLink(a.botnest)] : null,
        h('div', { class: 'detail' }, a.evidence?.detail ?? ''),
      ),
    ),
  );
}

/** Figures of GET /api/status (and of each `status` event), by where they are in it. */
const STATUS_STATS = [
  ['flows/s', ['flows_per_second'], fmtNumber],
  ['event time', ['watermark'], fmtTime],
  ['hosts tracked', ['engine', 'hosts'], fmtNumber],
  ['channels', ['engine', 'channels'], fmtNumber],
  ['flows too late', ['engine', 'too_late'], fmtNumber],
  ['uptime', ['uptime_s'], fmtDuration],
];

function pick(obj, keys) {
  return keys.reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), obj);
}

function statusStats(status) {
  return STATUS_STATS.map(([label, keys, format]) => stat(label, format(pick(status, keys) ?? 0), { 'data-stat': keys.join('.') }));
}

/** Updates the overview's status figures in place from a `status` event. */
export function updateStatus(status) {
  for (const [, keys, format] of STATUS_STATS) {
    const el = document.querySelector(`[data-stat="${keys.join('.')}"] .value`);
    const value = pick(status, keys);
    if (el && value !== undefined) el.textContent = format(value);
  }
}

export async function renderOverview(root, ctx) {
  async function load() {
    const params = filterParams(ctx.filters);
    const [status, exporters, nests, hosts] = await Promise.all([
      get('/api/status'),
      get('/api/exporters'),
      get('/api/botnests', params),
      get('/api/hosts', params),
    ]);
    ctx.learnTenants(nests.botnests, hosts.hosts);
    const detections = detectionsOf(hosts.hosts);
    for (const a of ctx.alerts) {
      if (a.evidence) detections.push({ time: a.evidence.first_seen || a.time, kind: a.evidence.kind, host: a.host, tenant: a.tenant });
    }
    const lost = exporters.exporters.reduce((n, e) => n + (e.lost_records ?? 0), 0);
    const records = exporters.exporters.reduce((n, e) => n + (e.records ?? 0), 0);
    replace(
      root,
      h(
        'div',
        { class: 'stats', id: 'status' },
        statusStats(status),
        stat('records', fmtNumber(records)),
        stat('lost records', fmtNumber(lost), { 'data-stat': 'lost_records' }),
        stat('exporters', String(exporters.exporters.length)),
        stat('botnests', String(nests.botnests.length), { 'data-stat': 'botnests' }),
        stat('accused hosts', String(hosts.hosts.length), { 'data-stat': 'hosts' }),
      ),
      section('Detections over time', drawTimeline(detections), behaviourKey()),
      h(
        'div',
        { class: 'columns' },
        section('Botnests by tenant and state', nestsByTenant(nests.botnests), detectorsTable(status.detectors)),
        section('Live detections', h('div', { id: 'feed' }, alertFeed(ctx.alerts))),
      ),
      section('Botnests', nestsTable(nests.botnests)),
      section('Exporters', exportersTable(exporters.exporters)),
      h('p', { class: 'muted' }, `botnest ${status.version ?? ''}`),
    );
  }
  await load().catch((err) => failure(root, err));
  return { refresh: () => load().catch((err) => failure(root, err)) };
}

// ---------------------------------------------------------------- graph of everything

function roleKey() {
  return h(
    'ul',
    { class: 'key' },
    ROLES.map((r) => h('li', null, h('span', { class: `swatch role-${r.role}` }), ' ', r.role)),
  );
}

function graphSection(title, extra) {
  const container = h('div', { class: 'graph', id: 'graph' });
  const timing = h('p', { class: 'muted timing', id: 'graph-timing' });
  const result = h('span', { class: 'muted', role: 'status' });
  const search = h('input', { type: 'search', name: 'find', placeholder: 'address or prefix', 'aria-label': 'Find a host in the graph' });
  const g = { container, timing };
  search.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter' || !g.graph) return;
    const n = g.graph.find(search.value);
    result.textContent = search.value.trim() ? `${n} host${n === 1 ? '' : 's'} found` : '';
  });
  const finder = h('p', { class: 'finder' }, h('label', null, 'Find ', search), ' ', result);
  g.node = section(title, extra, roleKey(), finder, container, timing);
  return g;
}

function showTiming(el, t) {
  el.textContent = `${fmtNumber(t.nodes)} nodes, ${fmtNumber(t.edges)} edges: set-up ${fmtNumber(t.init_ms)} ms, layout ${fmtNumber(t.layout_ms)} ms, first frame ${fmtNumber(t.render_ms)} ms, total ${fmtNumber(t.total_ms)} ms`;
}

function eulerSection(hosts, ctx) {
  const container = h('div', { class: 'euler-box', id: 'euler' });
  const caption = h('p', { class: 'muted' });
  const node = section('Evidence (Euler diagram)', container, caption);
  const draw = (list) => {
    const { outside } = drawEuler(container, list, (host) => ctx.openHost(host.tenant, host.address));
    caption.textContent =
      'One circle per behaviour, sized by its hosts; each dot is a host in the region of the behaviours it shows. ' +
      (outside.length ? `Hosts showing none of these behaviours (C2 endpoints, peers): ${outside.length}.` : '');
  };
  draw(hosts);
  return { node, draw };
}

export async function renderGraph(root, ctx) {
  let graph = null;
  let euler = null;
  async function load(first) {
    const params = filterParams(ctx.filters);
    const [nests, hosts] = await Promise.all([get('/api/botnests', params), get('/api/hosts', params)]);
    ctx.learnTenants(nests.botnests, hosts.hosts);
    const byKey = hostsByKey(hosts.hosts);
    const els = elements(nests.botnests, byKey);
    if (first || !graph) {
      const g = graphSection(`Every botnest (${nests.botnests.length})`, exportButtons(undefined));
      euler = eulerSection(hosts.hosts, ctx);
      replace(root, g.node, euler.node);
      if (nests.botnests.length === 0) {
        g.container.replaceWith(note('No botnest matches the filters.'));
        return;
      }
      graph = drawGraph(g.container, els, ctx.openHost);
      g.graph = graph;
      window.botnestGraph = graph.cy;
      graph.ready.then((t) => showTiming(g.timing, t));
    } else {
      if (graph.update(els) > 0) graph.ready.then((t) => showTiming(document.getElementById('graph-timing'), t));
      euler.draw(hosts.hosts);
    }
  }
  await load(true).catch((err) => failure(root, err));
  return {
    refresh: () => load(false).catch((err) => console.warn('refresh failed', err)),
    destroy: () => graph && graph.destroy(),
  };
}

// ---------------------------------------------------------------- one botnest

/** Rows shown before a long table asks to be expanded. */
const SHORT_TABLE = 40;

/** A table of `rows` (built by `build`), the first SHORT_TABLE of them until asked for all. */
function shortened(rows, build) {
  if (rows.length <= SHORT_TABLE) return build(rows);
  const box = h('div', { class: 'shortened' });
  const more = h('button', { type: 'button', class: 'more' }, `Show all ${rows.length}`);
  more.addEventListener('click', () => replace(box, build(rows)));
  replace(box, build(rows.slice(0, SHORT_TABLE)), h('p', null, `${SHORT_TABLE} of ${rows.length} shown. `, more));
  return box;
}

function channelsTable(channels) {
  if (channels.length === 0) return note('No channel.');
  const busiest = [...channels].sort((a, b) => (b.flows ?? 0) - (a.flows ?? 0));
  return shortened(busiest, (rows) => channelRows(rows));
}

function channelRows(channels) {
  return table(
    ['client', 'server', 'port', 'proto', 'flows', 'failed', 'out', 'in', 'interval', 'cv', 'first seen', 'last seen'],
    channels.map((c) => {
      const a = splitKey(c.client);
      const b = splitKey(c.server);
      return [
        hostLink(a.tenant, a.address),
        hostLink(b.tenant, b.address),
        String(c.port ?? '–'),
        protoName(c.proto),
        c.flows,
        fmtPercent(c.failedShare),
        fmtBytes(c.bytesOut),
        fmtBytes(c.bytesIn),
        fmtDuration(c.intervalMean),
        c.intervalCv === null ? '–' : fmtNumber(c.intervalCv),
        fmtTime(c.firstSeen),
        fmtTime(c.lastSeen),
      ];
    }),
    { class: 'channels' },
  );
}

export async function renderBotnest(root, ctx, id) {
  let graph = null;
  let euler = null;
  async function load(first) {
    const nest = await get(`/api/botnests/${encodeURIComponent(id)}`);
    const hosts = nest.hosts || [];
    const byKey = hostsByKey(hosts);
    const els = elements([nest], byKey);
    const members = (nest.members || []).map((m) => {
      const host = byKey.get(hostKey(m.tenant, m.address));
      return {
        attrs: { 'data-host': hostKey(m.tenant, m.address) },
        cells: [
          hostLink(m.tenant, m.address),
          m.tenant,
          roleTags(m.roles || [m.role]),
          host ? fmtScore(host.score) : '–',
          host ? kindTags(host) : '–',
          host ? fmtTime(host.last_seen) : '–',
        ],
      };
    });
    const channels = (nest.channels || nest.flows || []).map((c) => normaliseChannel(c, nest.members));
    const header = h(
      'div',
      { class: 'stats' },
      stat('state', nest.state ?? '–'),
      stat('score', fmtScore(nest.score)),
      stat('members', String((nest.members || []).length)),
      stat('C2', (nest.c2 || []).join(', ') || '–'),
      stat('tenants', (nest.tenants || []).join(', ') || '–'),
      stat('first seen', fmtTime(nest.first_seen)),
      stat('last seen', fmtTime(nest.last_seen)),
      stat('acknowledged', nest.acknowledged ? 'yes' : 'no', { 'data-stat': 'acknowledged' }),
    );
    const membersTable = table(['host', 'tenant', 'roles', 'score', 'evidence', 'last seen'], members, { class: 'members' });
    if (first) {
      const g = graphSection('Property graph', null);
      euler = eulerSection(hosts, ctx);
      replace(
        root,
        h('h1', null, `Botnest #${nest.id}`),
        header,
        h(
          'div',
          { class: 'actions' },
          actionButton(
            'Acknowledge',
            'Confirm: mark as seen',
            async () => {
              await post(`/api/botnests/${encodeURIComponent(nest.id)}/acknowledge`);
              load(false);
              return 'acknowledged';
            },
            { id: 'acknowledge' },
          ),
        ),
        exportButtons(nest.id),
        h('div', { class: 'columns' }, g.node, euler.node),
        section('Members', h('div', { id: 'members' }, membersTable)),
        section('Channels', h('div', { id: 'channels' }, channelsTable(channels))),
      );
      graph = drawGraph(g.container, els, ctx.openHost);
      g.graph = graph;
      window.botnestGraph = graph.cy;
      graph.ready.then((t) => showTiming(g.timing, t));
    } else {
      graph.update(els);
      euler.draw(hosts);
      replace(document.getElementById('members'), membersTable);
      replace(document.getElementById('channels'), channelsTable(channels));
      root.querySelector('.stats').replaceWith(header);
    }
  }
  await load(true).catch((err) => failure(root, err));
  return {
    refresh: () => load(false).catch((err) => console.warn('refresh failed', err)),
    destroy: () => graph && graph.destroy(),
  };
}

// ---------------------------------------------------------------- accused hosts

export async function renderHosts(root, ctx) {
  const role = h(
    'select',
    { name: 'role', 'aria-label': 'Role' },
    h('option', { value: '' }, 'every role'),
    ['bot', 'c2', 'scanner', 'spammer', 'flooder', 'bruteforcer'].map((r) => h('option', { value: r }, r)),
  );
  const body = h('div', { id: 'hosts' });
  async function load() {
    const { hosts } = await get('/api/hosts', { ...filterParams(ctx.filters), role: role.value });
    ctx.learnTenants([], hosts);
    const rows = [...hosts]
      .sort((a, b) => (b.score ?? 0) - (a.score ?? 0))
      .map((x) => ({
        attrs: { 'data-host': hostKey(x.tenant, x.address) },
        cells: [hostLink(x.tenant, x.address), x.tenant, roleTags(x.roles), fmtScore(x.score), kindTags(x), botnestLink(x.botnest), fmtTime(x.first_seen), fmtTime(x.last_seen)],
      }));
    replace(
      body,
      rows.length
        ? table(['host', 'tenant', 'roles', 'score', 'evidence', 'botnest', 'first seen', 'last seen'], rows, { class: 'hosts' })
        : note('No accused host matches the filters.'),
    );
  }
  role.addEventListener('change', () => load().catch((err) => failure(body, err)));
  replace(root, section('Accused hosts', h('p', null, role), body));
  await load().catch((err) => failure(body, err));
  return { refresh: () => load().catch((err) => failure(body, err)) };
}

// ---------------------------------------------------------------- one host

function evidenceTable(evidence) {
  if (!evidence || evidence.length === 0) return note('No evidence against this host.');
  return table(
    ['behaviour', 'score', 'peer', 'detail', 'first seen', 'last seen'],
    evidence.map((e) => ({
      attrs: { 'data-kind': e.kind },
      cells: [
        h('span', { class: 'tag kind' }, behaviour(e.kind).label),
        fmtScore(e.score),
        e.peer ?? '–',
        h('span', { class: 'detail' }, e.detail ?? ''),
        fmtTime(e.first_seen),
        fmtTime(e.last_seen),
      ],
    })),
    { class: 'evidence' },
  );
}

function endpointText(addr, port) {
  if (port === undefined || port === null) return String(addr ?? '?');
  return String(addr ?? '?').includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

function flowsTable(flows) {
  if (!flows || flows.length === 0) return note('No recent flow kept for this host.');
  return shortened(flows, flowRows);
}

function flowRows(flows) {
  return table(
    ['start', 'end', 'source', 'destination', 'proto', 'flags', 'bytes', 'packets', 'in interface', 'out interface', 'exporter'],
    flows.map((f) => [
      fmtTime(f.start),
      fmtTime(f.end),
      endpointText(f.src, f.src_port),
      endpointText(f.dst, f.dst_port),
      protoName(f.protocol),
      f.tcp_flags ?? '–',
      typeof f.octets === 'number' ? f.octets : '–',
      typeof f.packets === 'number' ? f.packets : '–',
      h('span', { class: 'ifname' }, f.input_interface_name ?? (f.input_interface ?? '–')),
      h('span', { class: 'ifname' }, f.output_interface_name ?? (f.output_interface ?? '–')),
      f.exporter ?? '–',
    ]),
    { class: 'flows' },
  );
}

export async function renderHost(root, ctx, tenant, address) {
  async function load() {
    const host = await get(`/api/hosts/${encodeURIComponent(tenant)}/${encodeURIComponent(address)}`);
    const roles = host.roles || [];
    const accused = typeof host.accused === 'boolean' ? host.accused : roles.length > 0;
    const channels = (host.channels || []).map((c) => normaliseChannel(c, [{ tenant, address }]));
    replace(
      root,
      h('h1', null, `Host ${hostLabel(host.tenant ?? tenant, host.address ?? address)}`),
      h(
        'div',
        { class: 'stats', id: 'verdict', 'data-accused': String(accused) },
        stat('verdict', accused ? roles.join(', ') : 'not accused', { class: accused ? 'stat bad' : 'stat' }),
        stat('score', fmtScore(host.score)),
        stat('tenant', String(host.tenant ?? tenant)),
        stat('botnest', host.botnest !== undefined && host.botnest !== null ? botnestLink(host.botnest) : '–'),
        stat('first seen', fmtTime(host.first_seen)),
        stat('last seen', fmtTime(host.last_seen)),
      ),
      accused ? h('p', null, 'Roles: ', roleTags(roles)) : null,
      h(
        'div',
        { class: 'actions' },
        actionButton(
          'Allow this host',
          'Confirm: never report it again',
          async () => {
            await post(`/api/hosts/${encodeURIComponent(tenant)}/${encodeURIComponent(address)}/allow`);
            return 'allowed: no more findings about it';
          },
          { id: 'allow' },
        ),
      ),
      section('Evidence', evidenceTable(host.evidence)),
      section('Channels', channelsTable(channels)),
      section('Recent flows', flowsTable(host.flows)),
    );
  }
  await load().catch((err) => failure(root, err));
  return { refresh: () => load().catch((err) => console.warn('refresh failed', err)) };
}
