// The API's objects turned into what the views draw: host keys, behaviour sets, channels.

/** The behaviours of the Euler diagram, one set each, in the order of the legend. */
export const BEHAVIOURS = [
  { id: 'beaconing', label: 'beaconing', colour: '#1f77b4' },
  { id: 'shared_c2', label: 'shared C2', colour: '#9467bd' },
  { id: 'peer_to_peer', label: 'P2P', colour: '#17becf' },
  { id: 'scanning', label: 'scanning', colour: '#ff7f0e' },
  { id: 'flooding', label: 'flooding', colour: '#d62728' },
  { id: 'spam', label: 'spam', colour: '#8c564b' },
  { id: 'brute_force', label: 'brute force', colour: '#e377c2' },
  { id: 'blocklisted', label: 'blocklisted', colour: '#2c2c2c' },
];

const BEHAVIOUR_BY_ID = new Map(BEHAVIOURS.map((b) => [b.id, b]));

/** Evidence kinds that count towards a set of another name (a worm spreads by scanning). */
const KIND_TO_SET = { worm_spread: 'scanning' };

export function behaviour(id) {
  return BEHAVIOUR_BY_ID.get(id) || { id, label: String(id ?? '').replaceAll('_', ' '), colour: '#7f7f7f' };
}

/** The set an evidence kind belongs to, or null for a kind the diagram does not show. */
export function setOfKind(kind) {
  const id = KIND_TO_SET[kind] || kind;
  return BEHAVIOUR_BY_ID.has(id) ? id : null;
}

/** The key of a host: tenant and address, as the API names them. */
export function hostKey(tenant, address) {
  return `${tenant ?? '0'}/${address}`;
}

export function splitKey(key) {
  const i = key.indexOf('/');
  return { tenant: key.slice(0, i), address: key.slice(i + 1) };
}

/** The behaviour sets a host belongs to, from its evidence, in legend order. */
export function behavioursOf(host) {
  const found = new Set();
  for (const e of host.evidence || []) {
    const set = setOfKind(e.kind);
    if (set) found.add(set);
  }
  return BEHAVIOURS.map((b) => b.id).filter((id) => found.has(id));
}

/** Roles drawn, strongest first: what a node's colour and shape follow. */
const ROLE_ORDER = ['c2', 'bot', 'flooder', 'scanner', 'bruteforcer', 'spammer', 'peer', 'victim'];

export function mainRole(roles, fallback) {
  const list = roles || [];
  for (const r of ROLE_ORDER) if (list.includes(r)) return r;
  return fallback || list[0] || 'host';
}

function endpoint(value, members) {
  if (value && typeof value === 'object') return hostKey(value.tenant, value.address);
  // A bare address: take the tenant of the member with that address, else the external one.
  const member = (members || []).find((m) => m.address === value);
  return hostKey(member ? member.tenant : '0', value);
}

/** A channel of the API (or a botnest's representative flow) with host keys for its ends. */
export function normaliseChannel(c, members) {
  const flows = c.flows ?? 0;
  return {
    client: endpoint(c.client, members),
    server: endpoint(c.server, members),
    port: c.port,
    proto: c.proto,
    flows,
    failed: c.failed ?? null,
    failedShare: flows > 0 && typeof c.failed === 'number' ? c.failed / flows : null,
    bytesOut: c.bytes_out ?? null,
    bytesIn: c.bytes_in ?? null,
    packetsOut: c.packets_out ?? null,
    packetsIn: c.packets_in ?? null,
    intervalMean: c.interval_mean_s ?? null,
    intervalCv: c.interval_cv ?? null,
    sizeMean: c.size_mean ?? null,
    tcpFlags: c.tcp_flags ?? null,
    firstSeen: c.first_seen ?? null,
    lastSeen: c.last_seen ?? null,
  };
}

const PROTOCOLS = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 47: 'GRE', 58: 'ICMPv6', 132: 'SCTP' };

export function protoName(p) {
  if (typeof p === 'string') return p;
  return PROTOCOLS[p] || String(p ?? '?');
}

/** The time filters as the API wants them: RFC 3339 UTC. */
export function filterParams(filters) {
  const p = {};
  if (filters.tenant) p.tenant = filters.tenant;
  if (filters.since) p.since = filters.since;
  if (filters.until) p.until = filters.until;
  if (filters.min_score !== '' && filters.min_score !== undefined && filters.min_score !== null) {
    p.min_score = filters.min_score;
  }
  return p;
}

/** Whether a time (RFC 3339) lies in the filters' range. */
export function inRange(time, filters) {
  if (!time) return true;
  const t = Date.parse(time);
  if (filters.since && t < Date.parse(filters.since)) return false;
  if (filters.until && t > Date.parse(filters.until)) return false;
  return true;
}
