//! TCP byte stream reassembly, one direction of one connection at a time.
//!
//! IPFIX over TCP (RFC 7011 section 10.4) sends a stream of messages; the reader hands the
//! stream on in order as chunks, and the caller frames messages by their header length.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;

use botnest_flow::Timestamp;
use bytes::Bytes;

use super::{CaptureLimits, CaptureStats, Datagram, Transport};

/// The fields of one TCP segment the reassembly uses.
#[derive(Debug, Clone, Copy)]
pub(super) struct Segment<'a> {
    pub time: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
}

type StreamKey = (SocketAddr, SocketAddr);

/// One direction of a connection. Positions are stream offsets (bytes since the first
/// sequence number followed), so they never wrap like 32-bit sequence numbers do.
#[derive(Debug)]
struct Stream {
    /// Sequence number of the next byte to deliver.
    next_seq: u32,
    /// Sequence number of the first data byte, when the SYN was seen.
    syn_start: Option<u32>,
    /// Stream offset of the next byte to deliver.
    delivered: u64,
    /// Segments ahead of `delivered`, by stream offset.
    ahead: BTreeMap<u64, Vec<u8>>,
    ahead_bytes: usize,
    /// Stream offset just past the FIN, once seen.
    fin_at: Option<u64>,
    /// The next chunk follows missing bytes.
    gap: bool,
    last_time: Timestamp,
    /// Recency, for evicting the least recently active stream.
    touched: u64,
}

impl Stream {
    fn new(next_seq: u32, syn: bool, time: Timestamp, touched: u64) -> Self {
        Stream {
            next_seq,
            syn_start: syn.then_some(next_seq),
            delivered: 0,
            ahead: BTreeMap::new(),
            ahead_bytes: 0,
            fin_at: None,
            gap: !syn,
            last_time: time,
            touched,
        }
    }

    /// Stream offset of a sequence number near the current position.
    fn offset_of(&self, seq: u32) -> i64 {
        let diff = i64::from(seq.wrapping_sub(self.next_seq) as i32);
        self.delivered as i64 + diff
    }
}

/// All followed streams, bounded in number and buffered bytes.
#[derive(Debug)]
pub(super) struct TcpReassembler {
    streams: HashMap<StreamKey, Stream>,
    limits: CaptureLimits,
    clock: u64,
}

/// Where chunks go: the output queue plus the stream's addresses.
struct Emit<'o> {
    out: &'o mut VecDeque<Datagram>,
    key: StreamKey,
    stats: &'o mut CaptureStats,
}

impl TcpReassembler {
    pub fn new(limits: CaptureLimits) -> Self {
        TcpReassembler {
            streams: HashMap::new(),
            limits,
            clock: 0,
        }
    }

    /// Takes one segment, emitting every byte it makes contiguous.
    pub fn segment(
        &mut self,
        seg: Segment<'_>,
        stats: &mut CaptureStats,
        out: &mut VecDeque<Datagram>,
    ) {
        let key = (seg.src, seg.dst);
        if seg.rst {
            self.streams.remove(&key);
            return;
        }
        self.clock += 1;
        // The SYN takes one sequence number; data starts after it (RFC 9293 section 3.4).
        let data_seq = if seg.syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let known = self.streams.get(&key);
        if seg.syn && known.is_none_or(|s| s.syn_start != Some(data_seq)) {
            // A new connection (a retransmitted SYN keeps the stream it started).
            self.insert_stream(
                key,
                Stream::new(data_seq, true, seg.time, self.clock),
                stats,
            );
        } else if known.is_none() {
            if seg.payload.is_empty() {
                return;
            }
            // Joined mid-connection: the stream starts at the first segment seen.
            self.insert_stream(
                key,
                Stream::new(data_seq, false, seg.time, self.clock),
                stats,
            );
        }
        let limits = self.limits;
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        stream.touched = self.clock;
        stream.last_time = seg.time;
        let start = stream.offset_of(data_seq);
        if seg.fin {
            stream.fin_at = Some((start + seg.payload.len() as i64).max(0) as u64);
        }
        let mut emit = Emit { out, key, stats };
        accept(stream, start, seg.payload, &limits, &mut emit);
        deliver(stream, seg.time, &mut emit);
        if stream.fin_at.is_some_and(|fin| stream.delivered >= fin) {
            self.streams.remove(&key);
        }
    }

    /// Emits the bytes still held behind gaps at the end of the capture.
    pub fn finish(&mut self, stats: &mut CaptureStats, out: &mut VecDeque<Datagram>) {
        let mut keys: Vec<StreamKey> = self.streams.keys().copied().collect();
        keys.sort();
        for key in keys {
            let Some(mut stream) = self.streams.remove(&key) else {
                continue;
            };
            let mut emit = Emit {
                out: &mut *out,
                key,
                stats: &mut *stats,
            };
            while !stream.ahead.is_empty() {
                skip_gap(&mut stream, emit.stats);
                let time = stream.last_time;
                deliver(&mut stream, time, &mut emit);
            }
        }
    }

    fn insert_stream(&mut self, key: StreamKey, stream: Stream, stats: &mut CaptureStats) {
        if !self.streams.contains_key(&key) && self.streams.len() >= self.limits.max_tcp_streams {
            let idle = self
                .streams
                .iter()
                .min_by_key(|(_, s)| s.touched)
                .map(|(k, _)| *k);
            if let Some(idle) = idle {
                self.streams.remove(&idle);
                stats.tcp_streams_evicted += 1;
            }
        }
        self.streams.insert(key, stream);
    }
}

/// Places a segment's bytes: emitted at once when in order, buffered when ahead.
fn accept(
    stream: &mut Stream,
    start: i64,
    payload: &[u8],
    limits: &CaptureLimits,
    emit: &mut Emit,
) {
    if payload.is_empty() {
        return;
    }
    let end = start + payload.len() as i64;
    let delivered = stream.delivered as i64;
    if end <= delivered {
        emit.stats.tcp_retransmissions += 1;
        return;
    }
    if start - delivered > limits.max_tcp_stream_buffer as i64 {
        emit.stats.tcp_out_of_window += 1;
        return;
    }
    // Bytes before the stream position were delivered already (overlapping retransmission).
    let skip = (delivered - start).max(0) as usize;
    let start = start.max(delivered) as u64;
    let bytes = &payload[skip..];
    let slot = stream.ahead.entry(start).or_default();
    if slot.len() < bytes.len() {
        stream.ahead_bytes += bytes.len() - slot.len();
        *slot = bytes.to_vec();
    }
    if stream.ahead_bytes > limits.max_tcp_stream_buffer {
        skip_gap(stream, emit.stats);
    }
}

/// Gives up on missing bytes: the stream resumes at its first buffered segment.
fn skip_gap(stream: &mut Stream, stats: &mut CaptureStats) {
    let Some((&first, _)) = stream.ahead.first_key_value() else {
        return;
    };
    if first > stream.delivered {
        stats.tcp_gaps += 1;
        stream.gap = true;
        advance(stream, first - stream.delivered);
    }
}

fn advance(stream: &mut Stream, by: u64) {
    stream.delivered += by;
    stream.next_seq = stream.next_seq.wrapping_add(by as u32);
}

/// Emits every buffered segment that has become contiguous with the stream position.
fn deliver(stream: &mut Stream, time: Timestamp, emit: &mut Emit) {
    while let Some(entry) = stream.ahead.first_entry() {
        let start = *entry.key();
        if start > stream.delivered {
            break;
        }
        let bytes = entry.remove();
        stream.ahead_bytes -= bytes.len();
        let skip = (stream.delivered - start) as usize;
        if skip >= bytes.len() {
            continue;
        }
        let fresh = Bytes::from(bytes).slice(skip..);
        advance(stream, fresh.len() as u64);
        emit.stats.tcp_chunks += 1;
        emit.out.push_back(Datagram {
            time,
            transport: Transport::Tcp,
            src: emit.key.0,
            dst: emit.key.1,
            payload: fresh,
            gap: std::mem::take(&mut stream.gap),
        });
    }
}
