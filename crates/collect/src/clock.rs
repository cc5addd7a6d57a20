//! Exporter clock correction.
//!
//! Flow records carry times from the exporter's clock, and detection windows follow the newest
//! event time: an exporter whose clock runs ahead would move every window forward, and one that
//! lags would have its records dropped as too late. Each export message also says when it was
//! sent (its header's export time, by the same clock), and the collector knows when it arrived
//! (the socket clock live, the capture timestamp offline, so replays give the same result).
//! Arrival minus export time is the exporter's offset plus the message's transit time; the
//! median of the last few messages (one a second at most) is a robust estimate of
//! the offset (one delayed or misdated message does not move it). Once the estimate exceeds the tolerance, the exporter's
//! record times are shifted by it, so they read in the collector's clock.
//!
//! Files (RFC 5655) have no arrival time, so their sessions are never corrected.

use botnest_flow::{FlowRecord, Timestamp};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Settings of clock correction.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockConfig {
    /// Whether record times are corrected at all.
    pub correct: bool,
    /// Offsets up to this are transit time and ordinary clock error: left alone. IPFIX export
    /// times have a resolution of one second, so this must exceed a second or two.
    #[serde(with = "secs")]
    pub tolerance: Duration,
    /// Messages (one a second of arrival time at most) whose offsets the estimate is the
    /// median of.
    pub samples: usize,
}

impl Default for ClockConfig {
    fn default() -> Self {
        ClockConfig {
            correct: true,
            tolerance: Duration::from_secs(5),
            samples: 15,
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

/// Most samples kept per exporter, whatever the configuration says: bounds memory.
const MAX_SAMPLES: usize = 255;

/// One exporter's clock, as seen from the collector.
#[derive(Debug, Clone, Default)]
pub struct ExporterClock {
    /// Arrival minus export time of recent messages, in milliseconds, oldest first.
    samples: std::collections::VecDeque<i64>,
    /// The samples sorted, reused for every median so that no message allocates.
    sorted: Vec<i64>,
    /// The median of the samples, in milliseconds.
    offset_ms: i64,
    /// The offset applied to record times now, in milliseconds (0: none).
    correction_ms: i64,
    /// Arrival time (ns) from which the next message is sampled: one a second, so a busy
    /// exporter costs one comparison per message.
    next_sample: u64,
}

impl ExporterClock {
    /// Takes one message's export time (by the exporter's clock) and arrival time (by the
    /// collector's). Unset times (an export time of 0, a file without arrival) say nothing.
    /// The offset is estimated even when correction is off, so it can be reported.
    pub fn observe(&mut self, cfg: &ClockConfig, export: Timestamp, arrival: Timestamp) {
        if export.is_unset() || arrival.is_unset() {
            return;
        }
        if !self.samples.is_empty() && arrival.as_unix_nanos() < self.next_sample {
            return;
        }
        self.next_sample = arrival.as_unix_nanos().saturating_add(1_000_000_000);
        let ms = |t: Timestamp| (t.as_unix_nanos() / 1_000_000) as i64;
        let keep = cfg.samples.clamp(1, MAX_SAMPLES);
        self.samples.push_back(ms(arrival) - ms(export));
        while self.samples.len() > keep {
            self.samples.pop_front();
        }
        self.sorted.clear();
        self.sorted.extend(self.samples.iter().copied());
        self.sorted.sort_unstable();
        let n = self.sorted.len();
        self.offset_ms = if n % 2 == 1 {
            self.sorted[n / 2]
        } else {
            (self.sorted[n / 2 - 1] + self.sorted[n / 2]) / 2
        };
        let offset = self.offset_ms;
        let tolerance = cfg.tolerance.as_millis().min(i64::MAX as u128) as i64;
        self.correction_ms = if cfg.correct && offset.abs() > tolerance {
            offset
        } else {
            0
        };
    }

    /// The median of the recent offsets (arrival minus export time), in milliseconds; 0 before
    /// any message.
    pub fn estimate(&self) -> i64 {
        self.offset_ms
    }

    /// The shift applied to record times, in milliseconds; 0 while the clock is within the
    /// tolerance.
    pub fn correction_ms(&self) -> i64 {
        self.correction_ms
    }

    /// The shift applied to record times, in nanoseconds (0: none).
    pub fn correction_ns(&self) -> i64 {
        self.correction_ms.saturating_mul(1_000_000)
    }

    /// Shifts a record's times into the collector's clock. Returns whether it did.
    pub fn correct(&self, flow: &mut FlowRecord) -> bool {
        let ns = self.correction_ns();
        if ns != 0 {
            shift(flow, ns);
        }
        ns != 0
    }
}

/// Shifts a record's set times by `ns` nanoseconds.
pub fn shift(flow: &mut FlowRecord, ns: i64) {
    for t in [&mut flow.start, &mut flow.end] {
        if !t.is_unset() {
            let shifted = t.offset_nanos(ns);
            // A time shifted before the epoch would read as unset; keep the earliest.
            *t = if shifted.is_unset() {
                Timestamp(1)
            } else {
                shifted
            };
        }
    }
}

/// What clock correction did for one exporter, for statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockState {
    /// The estimated offset (arrival minus export time), in milliseconds.
    pub offset_ms: i64,
    /// The shift applied to its record times, in milliseconds (0: within the tolerance).
    pub correction_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> Timestamp {
        Timestamp::from_unix_secs(secs)
    }

    #[test]
    fn a_clock_within_the_tolerance_is_left_alone() {
        let cfg = ClockConfig::default();
        let mut c = ExporterClock::default();
        for i in 0..20 {
            c.observe(&cfg, t(1_000 + i), t(1_002 + i));
        }
        assert_eq!(c.estimate(), 2000);
        assert_eq!(c.correction_ms(), 0);
        let mut f = FlowRecord {
            start: t(990),
            end: t(995),
            ..FlowRecord::default()
        };
        assert!(!c.correct(&mut f));
        assert_eq!(f.start, t(990));
    }

    #[test]
    fn a_clock_ahead_is_corrected_and_one_misdated_message_does_not_move_it() {
        let cfg = ClockConfig::default();
        let mut c = ExporterClock::default();
        // Five minutes ahead: export times 300 s after arrival.
        for i in 0..10 {
            c.observe(&cfg, t(1_300 + i), t(1_000 + i));
        }
        // One message delayed in a queue for a minute.
        c.observe(&cfg, t(1_310), t(1_070));
        assert_eq!(c.correction_ms(), -300_000);
        let mut f = FlowRecord {
            start: t(1_290),
            end: t(1_295),
            ..FlowRecord::default()
        };
        assert!(c.correct(&mut f));
        assert_eq!((f.start, f.end), (t(990), t(995)));
    }

    #[test]
    fn one_message_a_second_is_sampled() {
        let cfg = ClockConfig::default();
        let mut c = ExporterClock::default();
        // A burst within one second: only its first message counts.
        c.observe(&cfg, t(700), t(1_000));
        for _ in 0..100 {
            c.observe(&cfg, t(1_000), t(1_000));
        }
        assert_eq!(c.samples.len(), 1);
        assert_eq!(c.correction_ms(), 300_000);
        // Later seconds are sampled, and the median follows the clock once most samples agree.
        for i in 1..=8 {
            c.observe(&cfg, t(1_000 + i), t(1_000 + i));
        }
        assert_eq!(c.samples.len(), 9);
        assert_eq!(c.correction_ms(), 0);
    }

    #[test]
    fn unset_times_say_nothing_and_stay_unset() {
        let cfg = ClockConfig::default();
        let mut c = ExporterClock::default();
        c.observe(&cfg, Timestamp::default(), t(1_000));
        assert_eq!(c.estimate(), 0);
        c.observe(&cfg, t(100), t(1_000));
        let mut f = FlowRecord::default();
        assert!(c.correct(&mut f));
        assert!(f.start.is_unset() && f.end.is_unset());
    }

    #[test]
    fn correction_can_be_turned_off() {
        let cfg = ClockConfig {
            correct: false,
            ..ClockConfig::default()
        };
        let mut c = ExporterClock::default();
        c.observe(&cfg, t(100), t(1_000));
        assert_eq!(c.estimate(), 900_000);
        assert_eq!(c.correction_ms(), 0);
    }
}
