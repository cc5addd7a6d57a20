//! The collector's decoder over a sequence of messages from several exporters, with small
//! limits, checking after every message that its state stays within them and that its counters
//! never go backwards.
//!
//! The input is split by `botnest_fuzz::Chunks`; each chunk's control byte picks the session
//! (bits 0-2: one of four exporters, over UDP or TCP, more than the session limit), how far the
//! arrival clock moves (bits 3-5, sometimes backwards), whether the session is closed first
//! (bit 6, a TCP connection ending) and whether the decoder is restarted from a template
//! snapshot first (bit 7).

#![no_main]

use botnest_collect::{Counters, Decoder, DecoderConfig, RecordMeta, SessionKey, Sink, Transport};
use botnest_flow::{FlowRecord, Timestamp};
use botnest_fuzz::{walk_record, Chunks};
use botnest_wire::Record;
use libfuzzer_sys::fuzz_target;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

const SECOND: u64 = 1_000_000_000;

fn config() -> DecoderConfig {
    DecoderConfig {
        template_lifetime: Duration::from_secs(60),
        pending_timeout: Duration::from_secs(5),
        max_pending_bytes: 4096,
        max_templates_per_session: 8,
        max_domains_per_session: 4,
        max_sessions: 3,
        max_interfaces_per_domain: 8,
        ..DecoderConfig::default()
    }
}

fn session(control: u8) -> SessionKey {
    let exporter = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1 + (control & 3)), 40_000));
    let collector = SocketAddr::from((Ipv4Addr::LOCALHOST, 4739));
    let transport = if control & 4 == 0 {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    SessionKey {
        transport,
        exporter,
        collector,
    }
}

/// The arrival clock's step before a message: none, small, past the pending timeout, past the
/// template lifetime, or backwards (a clock that was set back).
fn step(now: Timestamp, control: u8) -> Timestamp {
    match (control >> 3) & 7 {
        0 => now,
        1 => Timestamp(now.0 + 1_000_000),
        2 => Timestamp(now.0 + SECOND),
        3 => Timestamp(now.0 + 6 * SECOND),
        4 => Timestamp(now.0 + 30 * SECOND),
        5 => Timestamp(now.0 + 61 * SECOND),
        6 => Timestamp(now.0 + 3600 * SECOND),
        _ => Timestamp(now.0.saturating_sub(2 * SECOND)),
    }
}

/// Walks every record it is given, as an output would.
struct WalkingSink;

impl Sink for WalkingSink {
    fn flow(&mut self, meta: &RecordMeta<'_>, _flow: &FlowRecord, raw: &Record<'_>) {
        assert!(matches!(meta.version, 5 | 9 | 10));
        walk_record(raw);
    }

    fn options(&mut self, meta: &RecordMeta<'_>, raw: &Record<'_>) {
        assert!(matches!(meta.version, 9 | 10));
        walk_record(raw);
    }
}

fn check_limits(decoder: &Decoder) {
    let limits = config();
    let (sessions, templates, pending) = decoder.state_size();
    assert!(sessions <= limits.max_sessions, "{sessions} sessions");
    assert!(
        templates <= sessions * limits.max_templates_per_session,
        "{templates} templates in {sessions} sessions"
    );
    assert!(
        pending <= sessions * limits.max_pending_bytes,
        "{pending} pending bytes in {sessions} sessions"
    );
}

/// The totals that only ever grow, with their names.
fn growing(c: &Counters) -> [(u64, &'static str); 8] {
    [
        (c.messages, "messages"),
        (c.records, "records"),
        (c.options_records, "options_records"),
        (c.templates, "templates"),
        (c.errors, "errors"),
        (c.lost_records, "lost_records"),
        (c.pending_sets, "pending_sets"),
        (c.pending_dropped, "pending_dropped"),
    ]
}

fn check_monotonic(before: &Counters, after: &Counters) {
    for ((b, name), (a, _)) in growing(before).into_iter().zip(growing(after)) {
        assert!(a >= b, "total {name} went back from {b} to {a}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(config());
    let mut sink = WalkingSink;
    let mut now = Timestamp(1_700_000_000 * SECOND);
    let mut totals = decoder.totals();
    for chunk in Chunks::new(data) {
        let key = session(chunk.control);
        now = step(now, chunk.control);
        if chunk.control & 0x40 != 0 {
            decoder.close_session(&key);
        }
        if chunk.control & 0x80 != 0 {
            let snapshot = decoder.snapshot();
            decoder = Decoder::new(config());
            decoder.restore(&snapshot, now);
            check_limits(&decoder);
            totals = decoder.totals();
        }
        let result = decoder.decode(&key, now, chunk.bytes, &mut sink);
        check_limits(&decoder);
        let after = decoder.totals();
        check_monotonic(&totals, &after);
        if let Err(e) = result {
            let _ = (e.reason(), e.to_string());
            assert!(after.errors > totals.errors, "error {e} not counted");
        }
        totals = after;
    }
});
