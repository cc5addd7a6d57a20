//! The decoder: per-exporter sessions, template state, sequence and sampling, normalisation.
//!
//! A [`Decoder`] takes whole export messages with the transport session they came from and the
//! time they arrived, and hands decoded records to a [`Sink`]. It never reads a clock or a
//! socket: live collection and offline files drive it the same way, so both give the same
//! records.

use crate::clock::{ClockConfig, ClockState, ExporterClock};
use crate::ids;
use crate::plan::{HeaderTime, Plan, SamplingFields};
use crate::sequence::SequenceTracker;
use crate::stats::{Counters, ErrorsByReason};
use botnest_flow::{FlowRecord, Timestamp};
use botnest_wire::ie::NETFLOW9_SCOPE_PEN;
use botnest_wire::{ipfix, netflow5, netflow9, FieldSpec, Layout, Record, Template};
use serde::{Deserialize, Serialize};
// Session, domain and template lookups happen for every message and data set; foldhash is
// several times faster than SipHash on these small keys and still seeded per process.
use foldhash::HashMap;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How a message reached the collector; templates are scoped per transport session
/// (RFC 7011 section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A UDP datagram: templates expire unless refreshed (RFC 7011 section 8.4).
    Udp,
    /// A TCP connection: templates live as long as the connection.
    Tcp,
    /// An IPFIX file (RFC 5655): templates live as long as the file.
    File,
}

/// One transport session: the exporter's and the collector's transport addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionKey {
    /// UDP, TCP or file.
    pub transport: Transport,
    /// The exporter's address and port.
    pub exporter: SocketAddr,
    /// The collector's address and port the messages were sent to.
    pub collector: SocketAddr,
}

/// Sessions are looked up for every message. The derived hash feeds every part of both socket
/// addresses to the hasher one by one; an IPv4 address and port fit one word, and an IPv6
/// address is written whole. Equal keys still hash equally (the parts left out, IPv6 flow
/// label and scope, only make more keys share a hash).
impl Hash for SessionKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let transport = self.transport as u64;
        for addr in [&self.exporter, &self.collector] {
            match addr {
                SocketAddr::V4(a) => state.write_u64(
                    transport << 48 | u64::from(a.ip().to_bits()) << 16 | u64::from(a.port()),
                ),
                SocketAddr::V6(a) => {
                    state.write_u128(a.ip().to_bits());
                    state.write_u64(transport << 48 | u64::from(a.port()));
                }
            }
        }
    }
}

impl SessionKey {
    /// A UDP session.
    pub fn udp(exporter: SocketAddr, collector: SocketAddr) -> Self {
        SessionKey {
            transport: Transport::Udp,
            exporter,
            collector,
        }
    }
}

/// Limits and timers of the decoder. Every limit bounds memory under hostile input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecoderConfig {
    /// How long a template received over UDP stays valid without a refresh. RFC 7011 section
    /// 8.4 leaves the value to the collector; exporters commonly refresh every 10 minutes, and
    /// three missed refreshes are allowed before data stops decoding.
    #[serde(with = "secs")]
    pub template_lifetime: Duration,
    /// How long a data set whose template has not arrived yet is held.
    #[serde(with = "secs")]
    pub pending_timeout: Duration,
    /// Bytes of held data sets per session, each counted with its bookkeeping; the oldest are
    /// dropped past this.
    pub max_pending_bytes: usize,
    /// Templates (and options templates) kept per session; new ids past this are refused, once
    /// UDP templates past their lifetime have been dropped.
    pub max_templates_per_session: usize,
    /// Observation domains tracked per session.
    pub max_domains_per_session: usize,
    /// Transport sessions (exporter address and port) tracked at once. When full, a session idle
    /// for longer than the template lifetime makes room; otherwise the new exporter is refused.
    pub max_sessions: usize,
    /// Interface names kept per domain from options data.
    pub max_interfaces_per_domain: usize,
    /// Correction of exporter clocks that disagree with the collector's ([`crate::clock`]).
    pub clock: ClockConfig,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            template_lifetime: Duration::from_secs(1800),
            pending_timeout: Duration::from_secs(30),
            max_pending_bytes: 1 << 20,
            max_templates_per_session: 4096,
            max_domains_per_session: 1024,
            max_sessions: 10_000,
            max_interfaces_per_domain: 65_536,
            clock: ClockConfig::default(),
        }
    }
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Interface names of one observation domain, by interface index.
pub type InterfaceNames = Vec<(u32, Box<str>)>;

/// Where a decoded record came from.
#[derive(Debug, Clone, Copy)]
pub struct RecordMeta<'a> {
    /// Export protocol version: 5, 9 or 10.
    pub version: u16,
    /// The transport session.
    pub session: &'a SessionKey,
    /// Observation domain (IPFIX), source id (v9) or engine type and id (v5).
    pub domain: u32,
    /// Template id (0 for v5).
    pub template_id: u16,
    /// Export time of the message carrying the record.
    pub export_time: Timestamp,
    /// Name of the record's input interface, from the exporter's options data.
    pub input_interface_name: Option<&'a str>,
    /// Name of the record's output interface, from the exporter's options data.
    pub output_interface_name: Option<&'a str>,
}

/// Receives what the decoder decodes.
pub trait Sink {
    /// A flow data record, normalised, with its raw fields.
    fn flow(&mut self, meta: &RecordMeta<'_>, flow: &FlowRecord, raw: &Record<'_>);

    /// An options data record (sampling, interface names, exporter statistics...).
    fn options(&mut self, meta: &RecordMeta<'_>, raw: &Record<'_>) {
        let _ = (meta, raw);
    }

    /// Called after each batch of datagrams (UDP), each chunk of a stream (TCP) and whenever a
    /// socket is idle, so a sink that batches can hand its batch on without waiting for it to
    /// fill.
    fn flush(&mut self) {}
}

/// A decoding problem, with where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes broke the wire format.
    #[error("{0}")]
    Wire(#[from] botnest_wire::Error),
    /// A data record ran past its set (variable-length fields too long).
    #[error("record of template {template_id} overruns its set at offset {offset}")]
    RecordOverrun {
        /// The template.
        template_id: u16,
        /// Offset of the record in its set body.
        offset: usize,
    },
    /// The session already keeps as many templates as allowed.
    #[error("template {template_id} refused: session template limit reached")]
    TemplateLimit {
        /// The refused template.
        template_id: u16,
    },
    /// The collector tracks as many sessions as allowed and none is idle.
    #[error("exporter refused: session limit reached")]
    SessionLimit,
    /// The session tracks as many observation domains as allowed.
    #[error("observation domain refused: domain limit reached")]
    DomainLimit,
    /// The message's first bytes name no known export version.
    #[error("not an export message (version {0})")]
    UnknownVersion(u16),
}

impl DecodeError {
    /// A short fixed label for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Wire(e) => e.reason(),
            DecodeError::RecordOverrun { .. } => "record_overrun",
            DecodeError::TemplateLimit { .. } => "template_limit",
            DecodeError::SessionLimit => "session_limit",
            DecodeError::DomainLimit => "domain_limit",
            DecodeError::UnknownVersion(_) => "unknown_version",
        }
    }
}

/// A template with its compiled plan.
#[derive(Debug)]
pub struct Compiled {
    /// The template as received.
    pub template: Template,
    layout: Layout,
    plan: Plan,
}

impl Compiled {
    fn new(template: Template) -> Compiled {
        Compiled {
            layout: template.layout(),
            plan: Plan::compile(&template),
            template,
        }
    }
}

#[derive(Debug)]
struct TemplateEntry {
    compiled: Arc<Compiled>,
    refreshed: Timestamp,
}

/// A data set held until its template arrives.
#[derive(Debug)]
struct Pending {
    domain: u32,
    template_id: u16,
    version: u16,
    arrival: Timestamp,
    header: HeaderTime,
    body: Vec<u8>,
}

impl Pending {
    /// Memory a held set takes. The entry itself is counted, so that empty or tiny data sets,
    /// which an exporter can send by the thousand in one message, still reach the bound.
    fn cost(&self) -> usize {
        self.body.len() + std::mem::size_of::<Pending>()
    }
}

/// Sampling announced in options data.
#[derive(Debug, Default)]
struct Sampling {
    /// Applies to every record of the domain that names no selector.
    default: Option<u32>,
    by_selector: HashMap<u64, u32>,
}

#[derive(Debug, Default)]
struct Domain {
    sequence: SequenceTracker,
    counters: Counters,
    sampling: Sampling,
    interfaces: HashMap<u32, Box<str>>,
    system_init_ms: Option<u64>,
}

#[derive(Debug, Default)]
struct Session {
    /// Sequence numbers across all domains, for exporters that number per exporter.
    sequence: SequenceTracker,
    last_domain: Option<u32>,
    shared_numbering: bool,
    templates: HashMap<(u32, u16), TemplateEntry>,
    domains: HashMap<u32, Domain>,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    last_seen: Timestamp,
    last_log: HashMap<&'static str, Timestamp>,
    clock: ExporterClock,
}

/// Decodes export messages from many exporters. See the module docs.
#[derive(Debug, Default)]
pub struct Decoder {
    config: DecoderConfig,
    sessions: HashMap<SessionKey, Session>,
    /// Counters of sessions that were closed or evicted, so totals never go backwards.
    retired: Counters,
    tally: Tally,
}

/// The v5 record layout as an IPFIX template of IANA elements, so v5 records are decoded, shown
/// and normalised by the same code as v9 and IPFIX records.
fn netflow5_template() -> &'static Arc<Compiled> {
    use std::sync::OnceLock;
    static T: OnceLock<Arc<Compiled>> = OnceLock::new();
    T.get_or_init(|| {
        let f = FieldSpec::iana;
        let template = Template {
            id: 0,
            scope_field_count: 0,
            fields: vec![
                f(ids::SOURCE_IPV4_ADDRESS, 4),
                f(ids::DESTINATION_IPV4_ADDRESS, 4),
                f(ids::IP_NEXT_HOP_IPV4_ADDRESS, 4),
                f(ids::INGRESS_INTERFACE, 2),
                f(ids::EGRESS_INTERFACE, 2),
                f(ids::PACKET_DELTA_COUNT, 4),
                f(ids::OCTET_DELTA_COUNT, 4),
                f(ids::FLOW_START_SYS_UP_TIME, 4),
                f(ids::FLOW_END_SYS_UP_TIME, 4),
                f(ids::SOURCE_TRANSPORT_PORT, 2),
                f(ids::DESTINATION_TRANSPORT_PORT, 2),
                f(ids::PADDING_OCTETS, 1),
                f(ids::TCP_CONTROL_BITS, 1),
                f(ids::PROTOCOL_IDENTIFIER, 1),
                f(ids::IP_CLASS_OF_SERVICE, 1),
                f(ids::BGP_SOURCE_AS_NUMBER, 2),
                f(ids::BGP_DESTINATION_AS_NUMBER, 2),
                f(ids::SOURCE_IPV4_PREFIX_LENGTH, 1),
                f(ids::DESTINATION_IPV4_PREFIX_LENGTH, 1),
                f(ids::PADDING_OCTETS, 2),
            ],
        };
        Arc::new(Compiled::new(template))
    })
}

/// Everything needed to decode the data sets of one message.
#[derive(Debug, Clone, Copy)]
struct MessageCtx {
    version: u16,
    domain: u32,
    header: HeaderTime,
    arrival: Timestamp,
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            config,
            ..Default::default()
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Decodes one export message (a UDP datagram, or one message framed from a stream or file)
    /// that arrived at `now`. Errors are counted and logged; decoding goes on wherever the
    /// format allows, and the first error that stopped part of the message is returned.
    pub fn decode(
        &mut self,
        key: &SessionKey,
        now: Timestamp,
        bytes: &[u8],
        sink: &mut dyn Sink,
    ) -> Result<(), DecodeError> {
        let version = botnest_wire::version(bytes).unwrap_or(0);
        // Datagrams that are no export message at all (stray or spoofed traffic) must not take
        // a session slot from a real exporter.
        if ![ipfix::VERSION, netflow9::VERSION, netflow5::VERSION].contains(&version) {
            let e = DecodeError::UnknownVersion(version);
            self.count_error(key, 0, now, e);
            return Err(e);
        }
        // One lookup of the session for a known exporter; a new one is admitted first.
        if let Some(s) = self.sessions.get_mut(key) {
            let ctx = Ctx {
                config: &self.config,
                tally: &mut self.tally,
                s,
            };
            return ctx.decode(key, now, version, bytes, sink);
        }
        if let Err(e) = self.admit(key, now) {
            self.tally.unattributed.messages += 1;
            self.tally.unattributed.errors += 1;
            *self.tally.errors_by_reason.entry(e.reason()).or_default() += 1;
            return Err(e);
        }
        let ctx = Ctx {
            config: &self.config,
            tally: &mut self.tally,
            s: self.sessions.get_mut(key).expect("session admitted above"),
        };
        ctx.decode(key, now, version, bytes, sink)
    }

    /// Makes room for a new session, or refuses it.
    fn admit(&mut self, key: &SessionKey, now: Timestamp) -> Result<(), DecodeError> {
        if self.sessions.len() < self.config.max_sessions {
            self.sessions.insert(
                *key,
                Session {
                    last_seen: now,
                    ..Default::default()
                },
            );
            return Ok(());
        }
        let lifetime = self.config.template_lifetime.as_nanos() as u64;
        let idle = self
            .sessions
            .iter()
            .filter(|(_, s)| now.0.saturating_sub(s.last_seen.0) > lifetime)
            .min_by_key(|(_, s)| s.last_seen)
            .map(|(k, _)| *k);
        match idle {
            Some(old) => {
                self.close_session(&old);
                self.sessions.insert(
                    *key,
                    Session {
                        last_seen: now,
                        ..Default::default()
                    },
                );
                Ok(())
            }
            None => Err(DecodeError::SessionLimit),
        }
    }

    /// Counts an error of a message that may have no session.
    fn count_error(&mut self, key: &SessionKey, domain: u32, now: Timestamp, e: DecodeError) {
        match self.sessions.get_mut(key) {
            Some(s) => Ctx {
                config: &self.config,
                tally: &mut self.tally,
                s,
            }
            .count_error(key, domain, now, e),
            None => {
                *self.tally.errors_by_reason.entry(e.reason()).or_default() += 1;
                self.tally.unattributed.errors += 1;
            }
        }
    }

    /// Forgets a session (a TCP connection closed, or an idle exporter evicted), keeping its
    /// counts in the totals.
    pub fn close_session(&mut self, key: &SessionKey) {
        if let Some(s) = self.sessions.remove(key) {
            for d in s.domains.values() {
                self.retired.add(&d.counters);
            }
        }
    }
}

/// Counters kept outside any session: errors by reason, and what could not be attributed.
#[derive(Debug, Default)]
struct Tally {
    errors_by_reason: ErrorsByReason,
    unattributed: Counters,
}

/// One message's view of the decoder: its session, looked up once, and the shared state.
struct Ctx<'a> {
    config: &'a DecoderConfig,
    tally: &'a mut Tally,
    s: &'a mut Session,
}

impl Ctx<'_> {
    /// Decodes one message of a known export version in this session.
    fn decode(
        mut self,
        key: &SessionKey,
        now: Timestamp,
        version: u16,
        bytes: &[u8],
        sink: &mut dyn Sink,
    ) -> Result<(), DecodeError> {
        let mut first_error = None;
        let mut report = |e: DecodeError| {
            first_error.get_or_insert(e);
        };
        match version {
            ipfix::VERSION => self.decode_ipfix(key, now, bytes, sink, &mut report),
            netflow9::VERSION => self.decode_v9(key, now, bytes, sink, &mut report),
            _ => self.decode_v5(key, now, bytes, sink, &mut report),
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn count_error(&mut self, key: &SessionKey, domain: u32, now: Timestamp, e: DecodeError) {
        *self.tally.errors_by_reason.entry(e.reason()).or_default() += 1;
        let s = &mut *self.s;
        match s.domains.get_mut(&domain) {
            Some(d) => d.counters.errors += 1,
            None => self.tally.unattributed.errors += 1,
        }
        // At most one log line per session and reason every ten seconds of arrival time.
        let last = s.last_log.entry(e.reason()).or_default();
        if last.is_unset() || now.0.saturating_sub(last.0) >= 10_000_000_000 {
            *last = now;
            tracing::debug!(
                exporter = %key.exporter,
                transport = ?key.transport,
                domain,
                reason = e.reason(),
                error = %e,
                "undecodable export data"
            );
        }
    }

    /// Counts and logs an error, and hands it to the caller's report.
    fn fail(
        &mut self,
        key: &SessionKey,
        domain: u32,
        now: Timestamp,
        e: impl Into<DecodeError>,
        report: &mut dyn FnMut(DecodeError),
    ) {
        let e = e.into();
        self.count_error(key, domain, now, e);
        report(e);
    }

    fn domain_mut(&mut self, domain: u32) -> Result<&mut Domain, DecodeError> {
        let max = self.config.max_domains_per_session;
        let s = &mut *self.s;
        let full = s.domains.len() >= max;
        match s.domains.entry(domain) {
            std::collections::hash_map::Entry::Occupied(d) => Ok(d.into_mut()),
            std::collections::hash_map::Entry::Vacant(_) if full => Err(DecodeError::DomainLimit),
            std::collections::hash_map::Entry::Vacant(v) => Ok(v.insert(Domain::default())),
        }
    }

    fn decode_ipfix(
        &mut self,
        key: &SessionKey,
        now: Timestamp,
        bytes: &[u8],
        sink: &mut dyn Sink,
        report: &mut dyn FnMut(DecodeError),
    ) {
        let msg = match ipfix::Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                return self.fail(key, 0, now, e, report);
            }
        };
        let h = *msg.header();
        let ctx = MessageCtx {
            version: ipfix::VERSION,
            domain: h.domain,
            header: HeaderTime {
                export_millis: u64::from(h.export_time) * 1000,
                sys_uptime_ms: None,
                system_init_ms: None,
            },
            arrival: now,
        };
        if let Err(e) = self.begin_message(key, ctx) {
            return report(e);
        }

        let mut data_records = Some(0u32);
        for set in msg.sets() {
            match set {
                Ok(ipfix::Set::Template(recs)) | Ok(ipfix::Set::OptionsTemplate(recs)) => {
                    let options = recs.is_options();
                    for rec in recs {
                        match rec {
                            Ok(ipfix::TemplateRecord::Define(t)) => {
                                self.define(key, ctx, t, sink, report)
                            }
                            Ok(ipfix::TemplateRecord::Withdraw { template_id }) => {
                                self.withdraw(ctx.domain, Some(template_id), options)
                            }
                            Ok(ipfix::TemplateRecord::WithdrawAll) => {
                                self.withdraw(ctx.domain, None, options)
                            }
                            Err(e) => {
                                self.fail(key, ctx.domain, now, e, report);
                            }
                        }
                    }
                }
                Ok(ipfix::Set::Data { set_id, body, .. }) => {
                    let n = self.data_set(key, ctx, set_id, body, sink, report);
                    data_records = data_records.zip(n).map(|(a, b)| a + b);
                }
                Err(e) => {
                    self.fail(key, ctx.domain, now, e, report);
                }
            }
        }
        self.sequence(key, ctx.domain, h.sequence, data_records, |c, v| {
            c.lost_records += v
        });
    }

    fn decode_v9(
        &mut self,
        key: &SessionKey,
        now: Timestamp,
        bytes: &[u8],
        sink: &mut dyn Sink,
        report: &mut dyn FnMut(DecodeError),
    ) {
        let pkt = match netflow9::Packet::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                return self.fail(key, 0, now, e, report);
            }
        };
        let h = *pkt.header();
        let ctx = MessageCtx {
            version: netflow9::VERSION,
            domain: h.source_id,
            header: HeaderTime {
                export_millis: u64::from(h.unix_secs) * 1000,
                sys_uptime_ms: Some(h.sys_uptime_ms),
                system_init_ms: None,
            },
            arrival: now,
        };
        if let Err(e) = self.begin_message(key, ctx) {
            return report(e);
        }
        for set in pkt.sets() {
            match set {
                Ok(netflow9::Set::Template(recs)) | Ok(netflow9::Set::OptionsTemplate(recs)) => {
                    for rec in recs {
                        match rec {
                            Ok(t) => self.define(key, ctx, t, sink, report),
                            Err(e) => {
                                self.fail(key, ctx.domain, now, e, report);
                            }
                        }
                    }
                }
                Ok(netflow9::Set::Data { set_id, body, .. }) => {
                    self.data_set(key, ctx, set_id, body, sink, report);
                }
                Err(e) => {
                    self.fail(key, ctx.domain, now, e, report);
                }
            }
        }
        // RFC 3954 section 5.1: the v9 sequence number counts export packets.
        self.sequence(key, ctx.domain, h.sequence, Some(1), |c, v| {
            c.lost_packets += v
        });
    }

    fn decode_v5(
        &mut self,
        key: &SessionKey,
        now: Timestamp,
        bytes: &[u8],
        sink: &mut dyn Sink,
        report: &mut dyn FnMut(DecodeError),
    ) {
        let pkt = match netflow5::Packet::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                return self.fail(key, 0, now, e, report);
            }
        };
        let h = *pkt.header();
        let ctx = MessageCtx {
            version: netflow5::VERSION,
            domain: u32::from(h.engine_type) << 8 | u32::from(h.engine_id),
            header: HeaderTime {
                export_millis: u64::from(h.unix_secs) * 1000 + u64::from(h.unix_nsecs / 1_000_000),
                sys_uptime_ms: Some(h.sys_uptime_ms),
                system_init_ms: None,
            },
            arrival: now,
        };
        if let Err(e) = self.begin_message(key, ctx) {
            return report(e);
        }
        let compiled = Arc::clone(netflow5_template());
        let body = &bytes[netflow5::HEADER_LEN..netflow5::HEADER_LEN + pkt.records().len() * 48];
        let fallback = h.sampling_interval();
        let n = self.records(key, ctx, &compiled, body, Some(fallback), sink, report);
        self.sequence(key, ctx.domain, h.flow_sequence, Some(n), |c, v| {
            c.lost_records += v
        });
    }

    /// Counts the message and refreshes the session's clock.
    fn begin_message(&mut self, key: &SessionKey, ctx: MessageCtx) -> Result<(), DecodeError> {
        match self.domain_mut(ctx.domain) {
            Ok(d) => d.counters.messages += 1,
            Err(e) => {
                self.count_error(key, ctx.domain, ctx.arrival, e);
                return Err(e);
            }
        }
        let s = &mut *self.s;
        s.last_seen = s.last_seen.max(ctx.arrival);
        if key.transport != Transport::File {
            let export = Timestamp::from_unix_millis(ctx.header.export_millis);
            s.clock.observe(&self.config.clock, export, ctx.arrival);
        }
        self.expire_pending(ctx.arrival);
        Ok(())
    }

    fn sequence(
        &mut self,
        key: &SessionKey,
        domain: u32,
        seq: u32,
        count: Option<u32>,
        lost: impl FnOnce(&mut Counters, u64),
    ) {
        let s = &mut *self.s;
        let across = s.sequence.observe(seq, count);
        // RFC 7011 section 3.1 numbers records per observation domain, but Open vSwitch numbers
        // them per exporter. A message of one domain that continues exactly where another
        // domain's message ended shows that; from then on the session's numbering is checked.
        if across.continuous() && s.last_domain.is_some_and(|d| d != domain) {
            s.shared_numbering = true;
        }
        s.last_domain = Some(domain);
        let shared = s.shared_numbering;
        let Some(d) = s.domains.get_mut(&domain) else {
            return;
        };
        let own = d.sequence.observe(seq, count);
        let verdict = if shared { across } else { own };
        lost(&mut d.counters, verdict.lost);
        d.counters.out_of_order += u64::from(verdict.out_of_order);
        d.counters.sequence_resets += u64::from(verdict.reset);
        if verdict.lost > 0 {
            tracing::debug!(exporter = %key.exporter, domain, lost = verdict.lost, "sequence gap");
        }
    }

    fn define(
        &mut self,
        key: &SessionKey,
        ctx: MessageCtx,
        template: Template,
        sink: &mut dyn Sink,
        report: &mut dyn FnMut(DecodeError),
    ) {
        let limit = self.config.max_templates_per_session;
        let lifetime = self.config.template_lifetime.as_nanos() as u64;
        let s = &mut *self.s;
        let slot = (ctx.domain, template.id);
        if !s.templates.contains_key(&slot) && s.templates.len() >= limit {
            // UDP templates past their lifetime are gone (RFC 7011 section 8.4); they must not
            // keep the slots an exporter's new templates need.
            if key.transport == Transport::Udp {
                expire_templates(s, ctx.arrival, lifetime);
            }
        }
        if !s.templates.contains_key(&slot) && s.templates.len() >= limit {
            let e = DecodeError::TemplateLimit {
                template_id: template.id,
            };
            self.count_error(key, ctx.domain, ctx.arrival, e);
            return report(e);
        }
        let unchanged = s
            .templates
            .get(&slot)
            .is_some_and(|t| t.compiled.template == template);
        match s.templates.get_mut(&slot) {
            Some(entry) if unchanged => entry.refreshed = entry.refreshed.max(ctx.arrival),
            _ => {
                let compiled = Arc::new(Compiled::new(template));
                s.templates.insert(
                    slot,
                    TemplateEntry {
                        compiled,
                        refreshed: ctx.arrival,
                    },
                );
            }
        }
        if let Some(d) = s.domains.get_mut(&ctx.domain) {
            d.counters.templates += 1;
        }
        self.replay_pending(key, ctx.domain, slot.1, sink, report);
    }

    fn withdraw(&mut self, domain: u32, id: Option<u16>, options: bool) {
        let s = &mut *self.s;
        match id {
            Some(id) => {
                s.templates.remove(&(domain, id));
            }
            // RFC 7011 section 8.1: template id 2 (3) withdraws all (options) templates of the
            // domain.
            None => s
                .templates
                .retain(|&(d, _), t| d != domain || t.compiled.template.is_options() != options),
        }
        if let Some(d) = s.domains.get_mut(&domain) {
            d.counters.template_withdrawals += 1;
        }
    }

    /// Finds a live template. Over UDP a template not refreshed within the lifetime is gone
    /// (RFC 7011 section 8.4).
    fn template(
        &mut self,
        key: &SessionKey,
        domain: u32,
        id: u16,
        now: Timestamp,
    ) -> Option<Arc<Compiled>> {
        let lifetime = self.config.template_lifetime.as_nanos() as u64;
        let s = &mut *self.s;
        let entry = s.templates.get(&(domain, id))?;
        if key.transport == Transport::Udp && now.0.saturating_sub(entry.refreshed.0) > lifetime {
            s.templates.remove(&(domain, id));
            if let Some(d) = s.domains.get_mut(&domain) {
                d.counters.templates_expired += 1;
            }
            return None;
        }
        Some(Arc::clone(&entry.compiled))
    }

    /// Decodes a data set, or holds it until its template arrives. Returns the number of data
    /// records in it, or `None` when that cannot be known yet.
    fn data_set(
        &mut self,
        key: &SessionKey,
        ctx: MessageCtx,
        set_id: u16,
        body: &[u8],
        sink: &mut dyn Sink,
        report: &mut dyn FnMut(DecodeError),
    ) -> Option<u32> {
        // The common case, a live template, borrows it where it is rather than taking a
        // reference count per set.
        let lifetime = self.config.template_lifetime.as_nanos() as u64;
        let Session {
            templates,
            domains,
            clock,
            ..
        } = &mut *self.s;
        if let Some(entry) = templates.get(&(ctx.domain, set_id)) {
            let live = key.transport != Transport::Udp
                || ctx.arrival.0.saturating_sub(entry.refreshed.0) <= lifetime;
            if live {
                let Some(d) = domains.get_mut(&ctx.domain) else {
                    return Some(0);
                };
                let shift = clock.correction_ns();
                let (n, overrun) = decode_records(
                    self.config,
                    d,
                    key,
                    ctx,
                    &entry.compiled,
                    body,
                    None,
                    shift,
                    sink,
                );
                if let Some(e) = overrun {
                    self.count_error(key, ctx.domain, ctx.arrival, e);
                    report(e);
                }
                return Some(n);
            }
        }
        match self.template(key, ctx.domain, set_id, ctx.arrival) {
            Some(c) => Some(self.records(key, ctx, &c, body, None, sink, report)),
            None => {
                self.hold(ctx, set_id, body);
                None
            }
        }
    }

    fn hold(&mut self, ctx: MessageCtx, template_id: u16, body: &[u8]) {
        let max = self.config.max_pending_bytes;
        let s = &mut *self.s;
        if let Some(d) = s.domains.get_mut(&ctx.domain) {
            d.counters.pending_sets += 1;
        }
        let held = Pending {
            domain: ctx.domain,
            template_id,
            version: ctx.version,
            arrival: ctx.arrival,
            header: ctx.header,
            body: body.to_vec(),
        };
        let cost = held.cost();
        if cost > max {
            if let Some(d) = s.domains.get_mut(&ctx.domain) {
                d.counters.pending_dropped += 1;
            }
            return;
        }
        while s.pending_bytes + cost > max {
            let Some(old) = s.pending.pop_front() else {
                break;
            };
            s.pending_bytes -= old.cost();
            if let Some(d) = s.domains.get_mut(&old.domain) {
                d.counters.pending_dropped += 1;
            }
        }
        s.pending_bytes += cost;
        s.pending.push_back(held);
    }

    fn expire_pending(&mut self, now: Timestamp) {
        let timeout = self.config.pending_timeout.as_nanos() as u64;
        let s = &mut *self.s;
        while let Some(p) = s.pending.front() {
            if now.0.saturating_sub(p.arrival.0) <= timeout {
                break;
            }
            let p = s.pending.pop_front().expect("front exists");
            s.pending_bytes -= p.cost();
            if let Some(d) = s.domains.get_mut(&p.domain) {
                d.counters.pending_dropped += 1;
            }
        }
    }

    fn replay_pending(
        &mut self,
        key: &SessionKey,
        domain: u32,
        template_id: u16,
        sink: &mut dyn Sink,
        report: &mut dyn FnMut(DecodeError),
    ) {
        let s = &mut *self.s;
        if !s
            .pending
            .iter()
            .any(|p| p.domain == domain && p.template_id == template_id)
        {
            return;
        }
        let (ready, rest): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut s.pending)
            .into_iter()
            .partition(|p| p.domain == domain && p.template_id == template_id);
        s.pending = rest;
        s.pending_bytes = s.pending.iter().map(Pending::cost).sum();
        for p in ready {
            let ctx = MessageCtx {
                version: p.version,
                domain: p.domain,
                header: p.header,
                arrival: p.arrival,
            };
            if let Some(c) = self.template(key, domain, template_id, p.arrival.max(ctx.arrival)) {
                self.records(key, ctx, &c, &p.body, None, sink, report);
            }
        }
    }

    /// Decodes the records of one data set with a known template.
    #[allow(clippy::too_many_arguments)]
    fn records(
        &mut self,
        key: &SessionKey,
        ctx: MessageCtx,
        compiled: &Compiled,
        body: &[u8],
        header_sampling: Option<u32>,
        sink: &mut dyn Sink,
        report: &mut dyn FnMut(DecodeError),
    ) -> u32 {
        let shift = self.s.clock.correction_ns();
        let Some(d) = self.s.domains.get_mut(&ctx.domain) else {
            return 0;
        };
        let (n, overrun) = decode_records(
            self.config,
            d,
            key,
            ctx,
            compiled,
            body,
            header_sampling,
            shift,
            sink,
        );
        if let Some(e) = overrun {
            self.count_error(key, ctx.domain, ctx.arrival, e);
            report(e);
        }
        n
    }
}

impl Decoder {
    /// Totals over every session, including closed ones.
    pub fn totals(&self) -> Counters {
        let mut t = self.retired.clone();
        t.add(&self.tally.unattributed);
        for s in self.sessions.values() {
            for d in s.domains.values() {
                t.add(&d.counters);
            }
        }
        t
    }

    /// Counters per exporter address and observation domain, for the sessions tracked now.
    pub fn per_exporter(&self) -> Vec<(SessionKey, u32, Counters)> {
        let mut out: Vec<_> = self
            .sessions
            .iter()
            .flat_map(|(k, s)| {
                s.domains
                    .iter()
                    .map(move |(d, c)| (*k, *d, c.counters.clone()))
            })
            .collect();
        out.sort_by_key(|(k, d, _)| (*k, *d));
        out
    }

    /// Interface names learnt from options data, per exporter session and observation domain,
    /// sorted by interface index.
    pub fn interface_names(&self) -> Vec<(SessionKey, u32, InterfaceNames)> {
        let mut out: Vec<_> = self
            .sessions
            .iter()
            .flat_map(|(k, s)| {
                s.domains
                    .iter()
                    .filter(|(_, d)| !d.interfaces.is_empty())
                    .map(move |(d, c)| {
                        let mut names: InterfaceNames =
                            c.interfaces.iter().map(|(i, n)| (*i, n.clone())).collect();
                        names.sort_unstable_by_key(|(i, _)| *i);
                        (*k, *d, names)
                    })
            })
            .collect();
        out.sort_by_key(|(k, d, _)| (*k, *d));
        out
    }

    /// Clock offsets of the sessions tracked now, and the corrections applied to their records.
    pub fn clocks(&self) -> Vec<(SessionKey, ClockState)> {
        let mut out: Vec<_> = self
            .sessions
            .iter()
            .map(|(k, s)| {
                let state = ClockState {
                    offset_ms: s.clock.estimate(),
                    correction_ms: s.clock.correction_ms(),
                };
                (*k, state)
            })
            .collect();
        out.sort_by_key(|(k, _)| *k);
        out
    }

    /// Errors by reason since the decoder started.
    pub fn errors_by_reason(&self) -> &ErrorsByReason {
        &self.tally.errors_by_reason
    }

    /// Number of sessions and templates held, and bytes of held data sets (with their
    /// bookkeeping): the decoder's state.
    pub fn state_size(&self) -> (usize, usize, usize) {
        let templates = self.sessions.values().map(|s| s.templates.len()).sum();
        let pending = self.sessions.values().map(|s| s.pending_bytes).sum();
        (self.sessions.len(), templates, pending)
    }

    /// The templates held for UDP sessions, to be saved across a restart.
    pub fn snapshot(&self) -> TemplateSnapshot {
        let mut templates = Vec::new();
        for (key, s) in &self.sessions {
            if key.transport != Transport::Udp {
                continue;
            }
            for (&(domain, _), entry) in &s.templates {
                templates.push(SavedTemplate {
                    session: *key,
                    domain,
                    refreshed: entry.refreshed,
                    template: SavedLayout::from(&entry.compiled.template),
                });
            }
        }
        templates.sort_by_key(|t| (t.session, t.domain, t.template.id));
        TemplateSnapshot { templates }
    }

    /// Restores saved templates, so data arriving before the exporter's next template refresh
    /// still decodes. Templates past their lifetime at `now` are skipped. Returns how many were
    /// restored.
    pub fn restore(&mut self, snapshot: &TemplateSnapshot, now: Timestamp) -> usize {
        let lifetime = self.config.template_lifetime.as_nanos() as u64;
        let mut n = 0;
        for t in &snapshot.templates {
            if now.0.saturating_sub(t.refreshed.0) > lifetime {
                continue;
            }
            if !self.sessions.contains_key(&t.session)
                && self.admit(&t.session, t.refreshed).is_err()
            {
                continue;
            }
            let Some(template) = t.template.to_template() else {
                continue;
            };
            let s = self.sessions.get_mut(&t.session).expect("admitted above");
            if s.templates.len() >= self.config.max_templates_per_session {
                continue;
            }
            s.domains.entry(t.domain).or_default();
            let compiled = Arc::new(Compiled::new(template));
            s.templates.insert(
                (t.domain, t.template.id),
                TemplateEntry {
                    compiled,
                    refreshed: t.refreshed,
                },
            );
            n += 1;
        }
        n
    }
}

/// Decodes the records of one data set with a known template into the sink. Returns how many
/// records the set held, and the overrun that ended it early, if one did.
#[allow(clippy::too_many_arguments)]
#[inline]
fn decode_records(
    config: &DecoderConfig,
    d: &mut Domain,
    key: &SessionKey,
    ctx: MessageCtx,
    compiled: &Compiled,
    body: &[u8],
    header_sampling: Option<u32>,
    clock_shift: i64,
    sink: &mut dyn Sink,
) -> (u32, Option<DecodeError>) {
    let template = &compiled.template;
    let mut header = ctx.header;
    header.system_init_ms = d.system_init_ms;
    let export_time = Timestamp::from_unix_millis(header.export_millis);
    let mut n = 0u32;
    let mut overrun = None;
    let options = template.is_options();
    // Copied for each record: cheaper than building the defaults again.
    let prototype = FlowRecord {
        exporter: key.exporter.ip(),
        observation_domain: ctx.domain,
        ..FlowRecord::default()
    };
    for rec in template.records_with(&compiled.layout, body) {
        let rec = match rec {
            Ok(r) => r,
            Err(o) => {
                overrun = Some(DecodeError::RecordOverrun {
                    template_id: template.id,
                    offset: o.offset,
                });
                break;
            }
        };
        n += 1;
        if options {
            d.counters.options_records += 1;
            learn_options(d, &rec, &compiled.plan, config.max_interfaces_per_domain);
            let meta = RecordMeta {
                version: ctx.version,
                session: key,
                domain: ctx.domain,
                template_id: template.id,
                export_time,
                input_interface_name: None,
                output_interface_name: None,
            };
            sink.options(&meta, &rec);
            continue;
        }
        d.counters.records += 1;
        let mut flow = prototype;
        let fields = compiled.plan.apply(&rec, header, &mut flow);
        if clock_shift != 0 {
            crate::clock::shift(&mut flow, clock_shift);
            d.counters.clock_corrected += 1;
        }
        flow.sampling_interval = sampling_for(&d.sampling, fields, header_sampling);
        let name = |i: u32| d.interfaces.get(&i).map(|n| &**n);
        let meta = RecordMeta {
            version: ctx.version,
            session: key,
            domain: ctx.domain,
            template_id: template.id,
            export_time,
            input_interface_name: if d.interfaces.is_empty() {
                None
            } else {
                name(flow.input_interface)
            },
            output_interface_name: if d.interfaces.is_empty() {
                None
            } else {
                name(flow.output_interface)
            },
        };
        sink.flow(&meta, &flow, &rec);
    }
    (n, overrun)
}

/// Drops a session's templates not refreshed within `lifetime` of `now`, counting them.
fn expire_templates(s: &mut Session, now: Timestamp, lifetime: u64) {
    let Session {
        templates, domains, ..
    } = s;
    templates.retain(|&(domain, _), t| {
        let live = now.0.saturating_sub(t.refreshed.0) <= lifetime;
        if !live {
            if let Some(d) = domains.get_mut(&domain) {
                d.counters.templates_expired += 1;
            }
        }
        live
    });
}

/// The 1-in-N sampling that applies to a record: its own field, then the options data for its
/// selector, then the domain's options data, then the packet header (v5).
fn sampling_for(s: &Sampling, f: SamplingFields, header: Option<u32>) -> u32 {
    f.interval
        .or_else(|| f.selector.and_then(|id| s.by_selector.get(&id).copied()))
        .or(s.default)
        .or(header)
        .unwrap_or(1)
        .max(1)
}

/// Reads what an options record says about sampling, interface names and system init time.
fn learn_options(d: &mut Domain, rec: &Record<'_>, plan: &Plan, max_interfaces: usize) {
    let mut flow = FlowRecord::default();
    let fields = plan.apply(rec, HeaderTime::default(), &mut flow);
    if let Some(interval) = fields.interval {
        match fields.selector {
            Some(id) => {
                d.sampling.by_selector.insert(id, interval);
            }
            None => d.sampling.default = Some(interval),
        }
    }

    let mut ifindex = None;
    let mut name = None;
    let mut description = None;
    for (spec, v) in rec.fields() {
        let e = spec.element;
        let uint = || v.iter().take(8).fold(0u64, |a, &b| (a << 8) | u64::from(b));
        match (e.enterprise, e.id) {
            (0, ids::INGRESS_INTERFACE) | (0, ids::EGRESS_INTERFACE) => {
                ifindex = Some(uint() as u32)
            }
            (NETFLOW9_SCOPE_PEN, netflow9::scope::INTERFACE) => ifindex = Some(uint() as u32),
            (0, ids::INTERFACE_NAME) => name = Some(v),
            (0, ids::INTERFACE_DESCRIPTION) => description = Some(v),
            (0, ids::SYSTEM_INIT_TIME_MILLISECONDS) => d.system_init_ms = Some(uint()),
            _ => {}
        }
    }
    if let (Some(i), Some(text)) = (ifindex, name.or(description)) {
        if d.interfaces.len() < max_interfaces || d.interfaces.contains_key(&i) {
            let mut text = String::from_utf8_lossy(text)
                .trim_end_matches('\0')
                .to_owned();
            truncate_at_char(&mut text, MAX_INTERFACE_NAME);
            d.interfaces.insert(i, text.into_boxed_str());
        }
    }
}

/// Longest interface name kept, in bytes: ifName and ifDescr are DisplayStrings of at most 255
/// characters (RFC 2863), while a variable-length field can carry 65535 bytes per interface.
const MAX_INTERFACE_NAME: usize = 255;

/// Shortens `text` to at most `max` bytes without splitting a character.
fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// Templates saved across a collector restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSnapshot {
    /// Every saved template.
    pub templates: Vec<SavedTemplate>,
}

/// One saved template with its session and refresh time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedTemplate {
    /// The transport session it belongs to.
    pub session: SessionKey,
    /// Observation domain.
    pub domain: u32,
    /// When it was last received.
    pub refreshed: Timestamp,
    /// Its layout.
    pub template: SavedLayout,
}

/// A template's layout in a form that serialises plainly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedLayout {
    /// Template id.
    pub id: u16,
    /// Scope field count.
    pub scope_field_count: u16,
    /// Fields as `[enterprise, element id, length]`.
    pub fields: Vec<(u32, u16, u16)>,
}

impl From<&Template> for SavedLayout {
    fn from(t: &Template) -> Self {
        SavedLayout {
            id: t.id,
            scope_field_count: t.scope_field_count,
            fields: t
                .fields
                .iter()
                .map(|f| (f.element.enterprise, f.element.id, f.length))
                .collect(),
        }
    }
}

impl SavedLayout {
    fn to_template(&self) -> Option<Template> {
        let fields: Vec<_> = self
            .fields
            .iter()
            .map(|&(enterprise, id, length)| FieldSpec {
                element: botnest_wire::ElementId { enterprise, id },
                length,
            })
            .collect();
        if fields.is_empty() || usize::from(self.scope_field_count) > fields.len() {
            return None;
        }
        Some(Template {
            id: self.id,
            scope_field_count: self.scope_field_count,
            fields,
        })
    }
}

/// The address used for sessions whose exporter is not known (records read from a file).
pub const UNKNOWN_EXPORTER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
