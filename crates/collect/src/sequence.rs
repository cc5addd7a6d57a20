//! Sequence tracking: how many records (IPFIX, NetFlow v5) or packets (NetFlow v9) were lost
//! between the exporter and the collector.

/// Forward jumps at least this large are taken as an exporter restart or a counter reset, not as
/// loss: no exporter loses a million records between two messages it delivers in order.
const RESET_JUMP: u32 = 1_000_000;

/// What one message's sequence number said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SequenceVerdict {
    /// Units (records or packets) missing before this message.
    pub lost: u64,
    /// The message came earlier than the last one (reordered or duplicated).
    pub out_of_order: bool,
    /// The sequence jumped so far that tracking started again.
    pub reset: bool,
    /// There was a previous message to compare with.
    pub checked: bool,
}

impl SequenceVerdict {
    /// Whether the message followed the previous one exactly.
    pub fn continuous(&self) -> bool {
        self.checked && self.lost == 0 && !self.out_of_order && !self.reset
    }
}

/// Tracks one exporter/domain's sequence numbers.
///
/// RFC 7011 section 3.1 says an IPFIX message carries the count of data records sent *before*
/// it. softflowd counts the current message's records too; the tracker recognises that offset
/// when the numbers only fit it, and follows it from then on, instead of reporting loss and
/// reordering on every message.
#[derive(Debug, Clone, Default)]
pub struct SequenceTracker {
    /// The previous message's sequence number and unit count.
    prev: Option<(u32, u32)>,
    inclusive: bool,
}

impl SequenceTracker {
    /// Observes a message with sequence number `seq` that carried `count` units. Pass
    /// `count = None` when the message's units could not all be counted (a data set with an
    /// unknown template): the next message then starts tracking afresh.
    pub fn observe(&mut self, seq: u32, count: Option<u32>) -> SequenceVerdict {
        let mut verdict = SequenceVerdict::default();
        if let (Some((prev_seq, prev_count)), Some(count)) = (self.prev, count) {
            verdict.checked = true;
            let standard = prev_seq.wrapping_add(prev_count);
            let inclusive = prev_seq.wrapping_add(count);
            let expected = if self.inclusive { inclusive } else { standard };
            if seq == expected {
            } else if !self.inclusive && seq == inclusive && count != prev_count {
                self.inclusive = true;
            } else {
                let ahead = seq.wrapping_sub(expected);
                if ahead < RESET_JUMP {
                    verdict.lost = u64::from(ahead);
                } else if ahead > u32::MAX - RESET_JUMP {
                    verdict.out_of_order = true;
                    // A late message must not move the expectation backwards.
                    return verdict;
                } else {
                    verdict.reset = true;
                }
            }
        }
        self.prev = count.map(|c| (seq, c));
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_messages_lose_nothing() {
        let mut t = SequenceTracker::default();
        assert_eq!(t.observe(0, Some(10)).lost, 0);
        assert_eq!(t.observe(10, Some(5)).lost, 0);
        assert_eq!(t.observe(15, Some(7)).lost, 0);
    }

    #[test]
    fn a_gap_is_counted_as_lost_units() {
        let mut t = SequenceTracker::default();
        t.observe(100, Some(10));
        assert_eq!(t.observe(130, Some(10)).lost, 20);
        assert_eq!(t.observe(140, Some(10)).lost, 0);
    }

    #[test]
    fn wrapping_sequence_numbers_are_in_order() {
        let mut t = SequenceTracker::default();
        t.observe(u32::MAX - 4, Some(10));
        assert!(t.observe(5, Some(1)).continuous());
    }

    #[test]
    fn late_message_is_out_of_order_and_not_loss() {
        let mut t = SequenceTracker::default();
        t.observe(100, Some(10));
        let v = t.observe(90, Some(10));
        assert!(v.out_of_order);
        assert_eq!(v.lost, 0);
        assert_eq!(t.observe(110, Some(10)).lost, 0);
    }

    #[test]
    fn inclusive_numbering_is_followed_without_loss() {
        // softflowd: message 1 has 18 records and seq 18; message 2 has 1 record and seq 19
        let mut t = SequenceTracker::default();
        t.observe(18, Some(18));
        assert!(t.observe(19, Some(1)).continuous());
        assert!(t.observe(24, Some(5)).continuous());
        // and a real gap is still seen: 3 records missing
        assert_eq!(t.observe(31, Some(4)).lost, 3);
    }

    #[test]
    fn restart_is_a_reset_not_loss() {
        let mut t = SequenceTracker::default();
        t.observe(5_000_000, Some(10));
        let v = t.observe(2_000_000_000, Some(10));
        assert!(v.reset);
        assert_eq!(v.lost, 0);
    }

    #[test]
    fn uncountable_message_restarts_tracking() {
        let mut t = SequenceTracker::default();
        t.observe(0, Some(10));
        t.observe(10, None);
        assert_eq!(t.observe(50, Some(10)).lost, 0);
    }
}
