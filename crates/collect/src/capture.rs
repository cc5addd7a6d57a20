//! Reading captures (pcap and pcapng) of flow export traffic.
//!
//! [`CaptureReader`] opens a capture file, recognises pcap or pcapng from its magic number,
//! decodes the link, IP and transport layers of every frame and yields the transport payloads
//! as [`Datagram`]s: one per UDP datagram (after IPv4/IPv6 fragment reassembly) and one per
//! in-order chunk of each TCP byte stream (IPFIX over TCP, RFC 7011 section 10.4). Frames that
//! are not UDP or TCP, or cannot be parsed, are counted in [`CaptureStats`] and skipped; no port
//! filter is applied, the caller recognises export payloads by their version field.
//!
//! ```no_run
//! use botnest_collect::capture::CaptureReader;
//!
//! let mut reader = CaptureReader::open("export.pcap")?;
//! for datagram in reader.by_ref() {
//!     let datagram = datagram?;
//!     println!("{} -> {}: {} bytes", datagram.src, datagram.dst, datagram.payload.len());
//! }
//! println!("{:?}", reader.stats());
//! # Ok::<(), botnest_collect::capture::CaptureError>(())
//! ```

mod decode;
mod defrag;
mod source;
mod tcp;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use botnest_flow::Timestamp;
use bytes::Bytes;
use serde::Serialize;

use decode::Decoder;
pub(crate) use decode::Skip as FrameSkip;
use source::Source;

/// The transport protocol a [`Datagram`] was carried by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One UDP datagram: the payload is exactly one export packet.
    Udp,
    /// A chunk of a TCP byte stream, in stream order: messages may span chunks.
    Tcp,
}

/// A transport payload found in a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Capture time of the frame that completed this payload.
    pub time: Timestamp,
    /// Carrying transport.
    pub transport: Transport,
    /// Sender (the exporter for export traffic).
    pub src: SocketAddr,
    /// Receiver (the collector for export traffic).
    pub dst: SocketAddr,
    /// UDP payload, or the next bytes of the TCP stream from `src` to `dst`.
    pub payload: Bytes,
    /// For TCP: bytes of the stream before this chunk are missing from the capture (the
    /// capture joined the connection after its start, or lost segments), so message framing
    /// has to resynchronise here. Always false for UDP.
    pub gap: bool,
}

/// Why frames or bytes were skipped, counted per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CaptureStats {
    /// Frames (packet records) read from the capture.
    pub frames: u64,
    /// UDP datagrams yielded.
    pub udp_datagrams: u64,
    /// TCP stream chunks yielded.
    pub tcp_chunks: u64,
    /// Frames of a link type this reader does not decode.
    pub unsupported_link: u64,
    /// Frames that carry neither IPv4 nor IPv6 (ARP, LLDP, ...).
    pub not_ip: u64,
    /// IP packets that carry neither UDP nor TCP (ICMP, ...).
    pub not_udp_tcp: u64,
    /// Frames shorter than their headers say (cut by the snapshot length, or damaged).
    pub truncated: u64,
    /// Frames whose headers are invalid.
    pub malformed: u64,
    /// IP datagrams rebuilt from fragments.
    pub fragments_reassembled: u64,
    /// Partial IP datagrams dropped because their fragments stopped arriving in time.
    pub fragments_expired: u64,
    /// Partial IP datagrams dropped to stay within the memory limits.
    pub fragments_evicted: u64,
    /// Partial IP datagrams dropped because a fragment contradicted the others.
    pub fragments_invalid: u64,
    /// Partial IP datagrams still incomplete at the end of the capture.
    pub fragments_incomplete: u64,
    /// TCP segments whose bytes had all been delivered already (retransmissions).
    pub tcp_retransmissions: u64,
    /// TCP segments too far ahead of the stream position to be buffered.
    pub tcp_out_of_window: u64,
    /// Places where a TCP stream skipped missing bytes.
    pub tcp_gaps: u64,
    /// TCP streams forgotten to stay within the stream limit.
    pub tcp_streams_evicted: u64,
}

/// Memory bounds of fragment and TCP stream reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureLimits {
    /// Most IP datagrams reassembled at the same time.
    pub max_fragment_datagrams: usize,
    /// Most bytes held by partial IP datagrams.
    pub max_fragment_bytes: usize,
    /// Capture-time nanoseconds after the first fragment at which a partial datagram is dropped.
    pub fragment_timeout_nanos: u64,
    /// Most TCP streams followed at the same time.
    pub max_tcp_streams: usize,
    /// Most out-of-order bytes held per TCP stream; beyond it the stream skips its gap.
    pub max_tcp_stream_buffer: usize,
}

impl Default for CaptureLimits {
    fn default() -> Self {
        CaptureLimits {
            max_fragment_datagrams: 1024,
            max_fragment_bytes: 16 << 20,
            // The reassembly timeout most IP stacks use.
            fragment_timeout_nanos: 30_000_000_000,
            max_tcp_streams: 1024,
            max_tcp_stream_buffer: 1 << 20,
        }
    }
}

/// Errors of the capture file itself; they end the iteration.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened.
    #[error("{}: cannot open: {source}", path.display())]
    Open {
        /// The capture file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The magic number is neither pcap nor pcapng.
    #[error("{}: not a pcap or pcapng capture (magic {magic:02x?})", path.display())]
    UnknownFormat {
        /// The capture file.
        path: PathBuf,
        /// The first bytes of the file.
        magic: Vec<u8>,
    },
    /// The file ends inside a header or record.
    #[error("{}: truncated record at offset {offset}", path.display())]
    Truncated {
        /// The capture file.
        path: PathBuf,
        /// Where the incomplete header or record starts.
        offset: u64,
    },
    /// A header or record is invalid.
    #[error("{}: invalid record at offset {offset}: {reason}", path.display())]
    Invalid {
        /// The capture file.
        path: PathBuf,
        /// Where the invalid header or record starts.
        offset: u64,
        /// What is wrong, as the pcap parser says it.
        reason: String,
    },
    /// Reading failed.
    #[error("{}: read error at offset {offset}: {source}", path.display())]
    Io {
        /// The capture file.
        path: PathBuf,
        /// Where the record being read starts.
        offset: u64,
        /// The cause.
        source: std::io::Error,
    },
}

/// Iterates the UDP and TCP payloads of a pcap or pcapng capture.
pub struct CaptureReader<R: Read = File> {
    path: PathBuf,
    source: Source<R>,
    decoder: Decoder,
    ready: VecDeque<Datagram>,
    error: Option<CaptureError>,
    done: bool,
}

impl<R: Read> std::fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("path", &self.path)
            .field("stats", &self.decoder.stats)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl CaptureReader<File> {
    /// Opens a capture file with the default [`CaptureLimits`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_reader(file, path)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads a capture from any byte source; `name` is used in error messages.
    pub fn from_reader(reader: R, name: impl Into<PathBuf>) -> Result<Self, CaptureError> {
        let path = name.into();
        let source = Source::new(reader).map_err(|e| e.into_capture_error(&path))?;
        Ok(CaptureReader {
            path,
            source,
            decoder: Decoder::new(CaptureLimits::default()),
            ready: VecDeque::new(),
            error: None,
            done: false,
        })
    }

    /// Replaces the reassembly limits; call before iterating.
    pub fn with_limits(mut self, limits: CaptureLimits) -> Self {
        self.decoder = Decoder::new(limits);
        self
    }

    /// Counters of what was yielded and skipped so far.
    pub fn stats(&self) -> &CaptureStats {
        &self.decoder.stats
    }

    /// The file name given when opening.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads frames until at least one payload is ready or the capture ends.
    fn fill(&mut self) {
        let CaptureReader {
            source,
            decoder,
            ready,
            ..
        } = self;
        match source.read_frame(&mut |frame| decoder.frame(frame, ready)) {
            Ok(true) => {}
            Ok(false) => self.finish(None),
            Err(e) => {
                let error = e.into_capture_error(&self.path);
                self.finish(Some(error));
            }
        }
    }

    /// Ends the capture: payloads still held back are released before the error, if any.
    fn finish(&mut self, error: Option<CaptureError>) {
        self.decoder.finish(&mut self.ready);
        self.error = error;
        self.done = true;
    }
}

impl<R: Read> Iterator for CaptureReader<R> {
    type Item = Result<Datagram, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(datagram) = self.ready.pop_front() {
                return Some(Ok(datagram));
            }
            if self.done {
                return self.error.take().map(Err);
            }
            self.fill();
        }
    }
}

/// Frames of a capture with their link layer parsed leniently, for metering raw traffic.
pub(crate) struct FrameReader<R: Read = File> {
    path: PathBuf,
    source: Source<R>,
}

impl<R: Read> std::fmt::Debug for FrameReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FrameReader<File> {
    /// Opens a pcap or pcapng capture file.
    pub(crate) fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_reader(file, path)
    }
}

impl<R: Read> FrameReader<R> {
    /// Reads a capture from any byte source; `name` is used in error messages.
    pub(crate) fn from_reader(reader: R, name: impl Into<PathBuf>) -> Result<Self, CaptureError> {
        let path = name.into();
        let source = Source::new(reader).map_err(|e| e.into_capture_error(&path))?;
        Ok(FrameReader { path, source })
    }

    /// Hands the next frame's capture time and parsed layers to `sink`; false at the end.
    pub(crate) fn next_frame(
        &mut self,
        sink: &mut dyn FnMut(Timestamp, Result<etherparse::LaxSlicedPacket<'_>, FrameSkip>),
    ) -> Result<bool, CaptureError> {
        self.source
            .read_frame(&mut |frame| {
                sink(frame.time, decode::slice_link_lax(frame.link, frame.data))
            })
            .map_err(|e| e.into_capture_error(&self.path))
    }
}
