// A recorded scenario, generated deterministically: two tenants (VLANs 100 and 200) whose
// machines reuse the same private addresses; bots in both beacon with jitter to one shared C2
// (which a blocklist names), one bot also scans, one brute-forces SSH, a separate scanner sweeps
// the internal network, and benign machines browse. Written as an IPFIX file (RFC 5655).

import { IE, message, record, template } from './ipfix.js';

export const START_MS = Date.UTC(2026, 2, 2, 10, 0, 0);
export const MINUTES = 40;
export const C2 = '203.0.113.50';
export const C2_PORT = 8443;
export const TENANTS = { 100: 'acme', 200: 'globex' };
export const BOTS = { 100: ['10.1.0.11', '10.1.0.12', '10.1.0.13', '10.1.0.14', '10.1.0.15'], 200: ['10.1.0.11', '10.1.0.12', '10.1.0.13'] };
export const SCANNER = { vlan: 100, address: '10.1.0.99' };
export const CORE_BOT = { vlan: 100, address: '10.1.0.11' };
export const BRUTE_BOT = { vlan: 200, address: '10.1.0.12' };
export const BENIGN = { 100: range('10.1.0.', 50, 59), 200: range('10.1.0.', 50, 54) };

function range(prefix, from, to) {
  const out = [];
  for (let i = from; i <= to; i += 1) out.push(`${prefix}${i}`);
  return out;
}

/** mulberry32: a small seeded generator, so the scenario is the same on every run. */
export function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const FLOW_TEMPLATE = template(256, [
  IE.sourceIPv4Address,
  IE.destinationIPv4Address,
  IE.sourceTransportPort,
  IE.destinationTransportPort,
  IE.protocolIdentifier,
  IE.tcpControlBits,
  IE.octetDeltaCount,
  IE.packetDeltaCount,
  IE.flowStartMilliseconds,
  IE.flowEndMilliseconds,
  IE.vlanId,
  IE.ingressInterface,
]);

const TCP = 6;
const SYN = 0x02;
const ANSWERED = 0x1b; // FIN, SYN, PSH, ACK: a whole short connection

/** One flow record: `{src, dst, sport, dport, flags, octets, packets, start, duration, vlan, ifindex}`. */
export function flow(f) {
  return {
    start: f.start,
    bytes: record(FLOW_TEMPLATE, [
      f.src,
      f.dst,
      f.sport,
      f.dport,
      TCP,
      f.flags,
      f.octets,
      f.packets,
      f.start,
      f.start + (f.duration ?? 200),
      f.vlan,
      f.ifindex ?? 1,
    ]),
  };
}

/** A bot contacting the C2 every `period` seconds with ±10% jitter, from `fromMs` to `toMs`. */
export function beacons(rand, vlan, bot, fromMs, toMs, period = 30) {
  const out = [];
  let t = fromMs + rand() * period * 1000;
  let sport = 40000 + Math.floor(rand() * 1000);
  while (t < toMs) {
    out.push(
      flow({ src: bot, dst: C2, sport: sport++, dport: C2_PORT, flags: ANSWERED, octets: 580 + Math.floor(rand() * 40), packets: 6, start: Math.round(t), vlan }),
    );
    t += period * 1000 * (0.9 + 0.2 * rand());
  }
  return out;
}

function scan(rand, vlan, src, targets, dport, fromMs, spreadMs) {
  return targets.map((dst, i) =>
    flow({ src, dst, sport: 50000 + i, dport, flags: SYN, octets: 44, packets: 1, start: Math.round(fromMs + rand() * spreadMs), vlan }),
  );
}

function browsing(rand, vlan, host, fromMs, toMs) {
  const out = [];
  let t = fromMs + rand() * 120000;
  while (t < toMs) {
    const server = `93.184.216.${1 + Math.floor(rand() * 60)}`;
    out.push(
      flow({ src: host, dst: server, sport: 30000 + Math.floor(rand() * 20000), dport: 443, flags: ANSWERED, octets: 900 + Math.floor(rand() * 40000), packets: 10 + Math.floor(rand() * 40), start: Math.round(t), duration: 2000, vlan }),
    );
    t += -Math.log(1 - rand()) * 90000;
  }
  return out;
}

/** Every flow of the scenario, in time order. */
export function scenarioFlows() {
  const rand = random(20260302);
  const end = START_MS + MINUTES * 60000;
  const flows = [];
  for (const [vlan, bots] of Object.entries(BOTS)) {
    for (const bot of bots) flows.push(...beacons(rand, Number(vlan), bot, START_MS, end));
  }
  const internal = [];
  for (let i = 1; i <= 200; i += 1) internal.push(`10.1.${2 + (i >> 8)}.${i & 255}`);
  flows.push(...scan(rand, SCANNER.vlan, SCANNER.address, internal, 23, START_MS + 10 * 60000, 8 * 60000));
  const external = range('198.51.100.', 1, 120);
  flows.push(...scan(rand, CORE_BOT.vlan, CORE_BOT.address, external, 2323, START_MS + 15 * 60000, 10 * 60000));
  // Login attempts at irregular gaps (a password list is tried as fast as the server answers).
  let t = START_MS + 20 * 60000;
  for (let i = 0; i < 60; i += 1) {
    flows.push(
      flow({ src: BRUTE_BOT.address, dst: '192.0.2.10', sport: 45000 + i, dport: 22, flags: ANSWERED, octets: 2100 + Math.floor(rand() * 300), packets: 14, start: Math.round(t), duration: 1500, vlan: BRUTE_BOT.vlan }),
    );
    t += 1000 + rand() * 15000;
  }
  for (const [vlan, hosts] of Object.entries(BENIGN)) {
    for (const host of hosts) flows.push(...browsing(rand, Number(vlan), host, START_MS, end));
  }
  return flows.sort((a, b) => a.start - b.start);
}

/** IPFIX messages of `flows` (the template in each), `perMessage` records each. */
export function messages(flows, { domain = 1, sequence = 0, perMessage = 50 } = {}) {
  const out = [];
  let seq = sequence;
  for (let i = 0; i < flows.length; i += perMessage) {
    const chunk = flows.slice(i, i + perMessage);
    out.push(
      message({
        exportTime: Math.floor(chunk[chunk.length - 1].start / 1000),
        sequence: seq,
        domain,
        templates: [FLOW_TEMPLATE],
        records: [[FLOW_TEMPLATE, chunk.map((f) => f.bytes)]],
      }),
    );
    seq += chunk.length;
  }
  return { messages: out, sequence: seq };
}

/** The configuration of the run: tenants from VLANs, with names, and the blocklist. */
export function config(blocklistPath) {
  return [
    '[detect]',
    `blocklists = ["${blocklistPath}"]`,
    '',
    '[detect.hosts]',
    'tenant_from = "vlan"',
    '',
    '[detect.hosts.tenant_names]',
    ...Object.entries(TENANTS).map(([k, v]) => `"${k}" = "${v}"`),
    '',
    // The flows sent live go on from the recording's (historical) times, with export times to
    // match: that exporter's clock is behind on purpose, so it is not corrected.
    '[decoder.clock]',
    'correct = false',
    '',
  ].join('\n');
}

/**
 * Flows after the recording, sent live: the bots keep beaconing and one more machine of acme
 * joins them, from the end of the recording for `minutes`.
 */
export function liveFlows(newBot, minutes = 12) {
  const rand = random(7);
  const from = START_MS + MINUTES * 60000;
  const to = from + minutes * 60000;
  const flows = [...beacons(rand, 100, newBot, from, to)];
  for (const [vlan, bots] of Object.entries(BOTS)) {
    for (const bot of bots) flows.push(...beacons(rand, Number(vlan), bot, from, to));
  }
  return flows.sort((a, b) => a.start - b.start);
}

/** Options templates naming interfaces (RFC 7011 section 3.4.2.2, scope ingressInterface). */
export const INTERFACE_TEMPLATE = template(300, [IE.ingressInterface, IE.interfaceName, IE.interfaceDescription], 1);
export const DESCRIPTION_TEMPLATE = template(301, [IE.ingressInterface, IE.interfaceDescription], 1);

/**
 * Messages from one exporter: options records naming interface `named.ifindex` (name and
 * description) and describing `described.ifindex` (description only), then flows of `host`
 * (tenant `vlan`) arriving on each of the two.
 */
export function namedInterfaceMessages({ named, described, host, vlan, domain = 7 }) {
  const t = START_MS + MINUTES * 60000;
  const names = message({
    exportTime: Math.floor(t / 1000),
    sequence: 0,
    domain,
    templates: [INTERFACE_TEMPLATE, DESCRIPTION_TEMPLATE, FLOW_TEMPLATE],
    records: [
      [INTERFACE_TEMPLATE, [record(INTERFACE_TEMPLATE, [named.ifindex, named.name, named.description])]],
      [DESCRIPTION_TEMPLATE, [record(DESCRIPTION_TEMPLATE, [described.ifindex, described.description])]],
    ],
  });
  const flows = [];
  for (let i = 0; i < 6; i += 1) {
    const ifindex = i % 2 === 0 ? named.ifindex : described.ifindex;
    flows.push(
      flow({ src: host, dst: '93.184.216.7', sport: 33000 + i, dport: 443, flags: ANSWERED, octets: 1500, packets: 8, start: t + i * 1000, vlan, ifindex }),
    );
  }
  const data = message({
    exportTime: Math.floor(t / 1000) + 6,
    sequence: 2,
    domain,
    templates: [FLOW_TEMPLATE],
    records: [[FLOW_TEMPLATE, flows.map((f) => f.bytes)]],
  });
  return [names, data];
}

/**
 * A large recording for measuring the UI: `nests` botnets of `bots` machines each (tenant 100),
 * each beaconing every minute to its own C2 for 20 minutes.
 */
export function largeFlows(nests, bots) {
  const rand = random(99);
  const flows = [];
  for (let n = 0; n < nests; n += 1) {
    const c2 = `198.18.${n >> 8}.${(n & 255) + 1}`;
    for (let b = 0; b < bots; b += 1) {
      const i = n * bots + b;
      const bot = `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${(i & 255) + 1}`;
      let t = START_MS + rand() * 60000;
      let sport = 40000;
      while (t < START_MS + 20 * 60000) {
        flows.push(
          flow({ src: bot, dst: c2, sport: sport++, dport: 443 + n, flags: ANSWERED, octets: 400 + Math.floor(rand() * 20), packets: 6, start: Math.round(t), vlan: 100 }),
        );
        t += 60000 * (0.92 + 0.16 * rand());
      }
    }
  }
  return flows.sort((a, b) => a.start - b.start);
}
