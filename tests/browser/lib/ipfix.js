// A small IPFIX (RFC 7011) message builder for the tests: templates, options templates and data
// records, with variable-length fields (section 7).

const SET_TEMPLATE = 2;
const SET_OPTIONS_TEMPLATE = 3;
const VARIABLE = 0xffff;

/** Information elements used by the tests: [id, length] (length 0xffff: variable). */
export const IE = {
  octetDeltaCount: [1, 8],
  packetDeltaCount: [2, 8],
  protocolIdentifier: [4, 1],
  tcpControlBits: [6, 2],
  sourceTransportPort: [7, 2],
  sourceIPv4Address: [8, 4],
  ingressInterface: [10, 4],
  destinationTransportPort: [11, 2],
  destinationIPv4Address: [12, 4],
  egressInterface: [14, 4],
  vlanId: [58, 2],
  interfaceName: [82, VARIABLE],
  interfaceDescription: [83, VARIABLE],
  flowStartMilliseconds: [152, 8],
  flowEndMilliseconds: [153, 8],
};

function u16(n) {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** Encodes one value for a field of `length` bytes (numbers, IPv4 strings, byte strings). */
export function encodeValue(value, length) {
  if (length === VARIABLE) {
    const bytes = Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8');
    const prefix = bytes.length < 255 ? Buffer.from([bytes.length]) : Buffer.concat([Buffer.from([255]), u16(bytes.length)]);
    return Buffer.concat([prefix, bytes]);
  }
  if (typeof value === 'string' && /^\d+\.\d+\.\d+\.\d+$/.test(value)) {
    return Buffer.from(value.split('.').map(Number));
  }
  const b = Buffer.alloc(length);
  let v = BigInt(value);
  for (let i = length - 1; i >= 0; i -= 1) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

/** A template: `{id, fields: [[ieId, length], ...], scope: n}` (scope > 0: options template). */
export function template(id, fields, scope = 0) {
  return { id, fields, scope };
}

function templateRecord(t) {
  const head = t.scope > 0 ? [u16(t.id), u16(t.fields.length), u16(t.scope)] : [u16(t.id), u16(t.fields.length)];
  return Buffer.concat([...head, ...t.fields.map(([id, len]) => Buffer.concat([u16(id), u16(len)]))]);
}

function set(id, body) {
  return Buffer.concat([u16(id), u16(4 + body.length), body]);
}

/** One data record of template `t` from `values` (one per field, in order). */
export function record(t, values) {
  return Buffer.concat(t.fields.map(([, len], i) => encodeValue(values[i], len)));
}

/**
 * One IPFIX message: `templates` first, then a data set per template id in `records`
 * (`[[template, [recordBytes...]], ...]`).
 */
export function message({ exportTime, sequence, domain, templates = [], records = [] }) {
  const sets = [];
  const plain = templates.filter((t) => t.scope === 0);
  const options = templates.filter((t) => t.scope > 0);
  if (plain.length) sets.push(set(SET_TEMPLATE, Buffer.concat(plain.map(templateRecord))));
  if (options.length) sets.push(set(SET_OPTIONS_TEMPLATE, Buffer.concat(options.map(templateRecord))));
  for (const [t, recs] of records) {
    if (recs.length) sets.push(set(t.id, Buffer.concat(recs)));
  }
  const body = Buffer.concat(sets);
  return Buffer.concat([u16(10), u16(16 + body.length), u32(exportTime), u32(sequence), u32(domain), body]);
}
