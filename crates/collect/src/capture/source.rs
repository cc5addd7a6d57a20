//! Frames out of pcap and pcapng files, with their link type and capture time.

use std::io::{Chain, Cursor, ErrorKind, Read};
use std::path::Path;

use botnest_flow::Timestamp;
use byteorder_slice::{BigEndian, LittleEndian};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::{
    Block, ENHANCED_PACKET_BLOCK, INTERFACE_DESCRIPTION_BLOCK, PACKET_BLOCK, SECTION_HEADER_BLOCK,
    SIMPLE_PACKET_BLOCK,
};
use pcap_file::pcapng::PcapNgReader;
use pcap_file::{Endianness, PcapError, TsResolution};

use super::CaptureError;

/// Link-layer header types this reader decodes (tcpdump.org LINKTYPE_ values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinkType {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    Null,
    /// Ethernet II, possibly with 802.1Q / 802.1ad tags.
    Ethernet,
    /// Raw IPv4 or IPv6 (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6).
    RawIp,
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    Loop,
    /// Linux cooked capture v1.
    LinuxSll,
    /// Linux cooked capture v2.
    LinuxSll2,
    /// Anything else, kept for counting.
    Other(u32),
}

impl LinkType {
    fn from_code(code: u32) -> Self {
        // The upper bits of the pcap link type field carry FCS information, not the type.
        match code & 0xffff {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            101 | 228 | 229 => LinkType::RawIp,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }
}

/// One captured frame, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frame<'a> {
    pub time: Timestamp,
    pub link: LinkType,
    pub data: &'a [u8],
}

/// A failure of the capture file, before the path is attached.
#[derive(Debug)]
pub(super) enum SourceError {
    UnknownFormat(Vec<u8>),
    Pcap { offset: u64, error: PcapError },
}

impl SourceError {
    pub fn into_capture_error(self, path: &Path) -> CaptureError {
        let path = path.to_path_buf();
        match self {
            SourceError::UnknownFormat(magic) => CaptureError::UnknownFormat { path, magic },
            SourceError::Pcap { offset, error } => match error {
                PcapError::IncompleteBuffer => CaptureError::Truncated { path, offset },
                PcapError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    CaptureError::Truncated { path, offset }
                }
                PcapError::IoError(source) => CaptureError::Io {
                    path,
                    offset,
                    source,
                },
                other => CaptureError::Invalid {
                    path,
                    offset,
                    reason: other.to_string(),
                },
            },
        }
    }
}

/// The first bytes, read to recognise the format, put back in front of the rest.
type Prefixed<R> = Chain<Cursor<Vec<u8>>, R>;

/// Timestamp resolution and offset of one pcapng interface.
#[derive(Debug, Clone, Copy)]
pub(super) struct Interface {
    link: LinkType,
    /// if_tsresol: bit 7 clear means 10^-n seconds, set means 2^-n seconds.
    tsresol: u8,
    offset_secs: u64,
}

impl Interface {
    fn new(idb: &InterfaceDescriptionBlock<'_>) -> Self {
        // pcapng: without if_tsresol, timestamps count microseconds.
        let mut iface = Interface {
            link: LinkType::from_code(u32::from(idb.linktype)),
            tsresol: 6,
            offset_secs: 0,
        };
        for option in &idb.options {
            match option {
                InterfaceDescriptionOption::IfTsResol(r) => iface.tsresol = *r,
                InterfaceDescriptionOption::IfTsOffset(s) => iface.offset_secs = *s,
                _ => {}
            }
        }
        iface
    }

    fn time(&self, units: u64) -> Timestamp {
        let exp = u32::from(self.tsresol & 0x7f);
        let per_sec: u128 = if self.tsresol & 0x80 == 0 {
            10u128.checked_pow(exp).unwrap_or(u128::MAX)
        } else {
            2u128.checked_pow(exp).unwrap_or(u128::MAX)
        };
        let nanos = u128::from(units) * 1_000_000_000 / per_sec.max(1);
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        Timestamp(nanos.saturating_add(self.offset_secs.saturating_mul(1_000_000_000)))
    }
}

/// A pcap or pcapng reader and the file position of the next record.
pub(super) enum Source<R: Read> {
    Pcap {
        reader: Box<PcapReader<Prefixed<R>>>,
        link: LinkType,
        nanos: bool,
        offset: u64,
    },
    PcapNg {
        reader: Box<PcapNgReader<Prefixed<R>>>,
        interfaces: Vec<Interface>,
        last_time: Timestamp,
        offset: u64,
    },
}

const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xa1, 0xb2, 0xc3, 0xd4], // microseconds, big endian
    [0xd4, 0xc3, 0xb2, 0xa1], // microseconds, little endian
    [0xa1, 0xb2, 0x3c, 0x4d], // nanoseconds, big endian
    [0x4d, 0x3c, 0xb2, 0xa1], // nanoseconds, little endian
];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const PCAP_HEADER_LEN: u64 = 24;
const PCAP_RECORD_HEADER_LEN: u64 = 16;

impl<R: Read> Source<R> {
    /// Recognises the format from the magic number and reads the file header.
    pub fn new(mut reader: R) -> Result<Self, SourceError> {
        let head = read_head(&mut reader, 12)?;
        let magic: [u8; 4] = match head.get(..4) {
            Some(m) => [m[0], m[1], m[2], m[3]],
            None => return Err(truncated(0)),
        };
        let prefixed = Cursor::new(head.clone()).chain(reader);
        let fail = |error| SourceError::Pcap { offset: 0, error };
        if PCAP_MAGICS.contains(&magic) {
            let reader = PcapReader::new(prefixed).map_err(fail)?;
            let header = reader.header();
            Ok(Source::Pcap {
                link: LinkType::from_code(u32::from(header.datalink)),
                nanos: header.ts_resolution == TsResolution::NanoSecond,
                reader: Box::new(reader),
                offset: PCAP_HEADER_LEN,
            })
        } else if magic == PCAPNG_MAGIC {
            let reader = PcapNgReader::new(prefixed).map_err(fail)?;
            Ok(Source::PcapNg {
                offset: u64::from(section_len(&head)),
                reader: Box::new(reader),
                interfaces: Vec::new(),
                last_time: Timestamp::default(),
            })
        } else {
            Err(SourceError::UnknownFormat(magic.to_vec()))
        }
    }

    /// Hands the next frame to `sink`; false at the clean end of the file.
    pub fn read_frame(&mut self, sink: &mut dyn FnMut(Frame<'_>)) -> Result<bool, SourceError> {
        match self {
            Source::Pcap {
                reader,
                link,
                nanos,
                offset,
            } => read_pcap(reader, *link, *nanos, offset, sink),
            Source::PcapNg {
                reader,
                interfaces,
                last_time,
                offset,
            } => read_pcapng(reader, interfaces, last_time, offset, sink),
        }
    }
}

fn truncated(offset: u64) -> SourceError {
    SourceError::Pcap {
        offset,
        error: PcapError::IncompleteBuffer,
    }
}

/// Reads up to `len` bytes, fewer only at the end of the input.
fn read_head(reader: &mut impl Read, len: usize) -> Result<Vec<u8>, SourceError> {
    let mut head = Vec::with_capacity(len);
    reader
        .take(len as u64)
        .read_to_end(&mut head)
        .map_err(|e| SourceError::Pcap {
            offset: 0,
            error: PcapError::IoError(e),
        })?;
    Ok(head)
}

/// Total length of the first section header block; its byte-order magic says how to read it.
fn section_len(head: &[u8]) -> u32 {
    let word =
        |range: std::ops::Range<usize>| -> Option<[u8; 4]> { head.get(range)?.try_into().ok() };
    match (word(4..8), word(8..12)) {
        (Some(len), Some(bom)) if u32::from_be_bytes(bom) == 0x1a2b_3c4d => u32::from_be_bytes(len),
        (Some(len), Some(_)) => u32::from_le_bytes(len),
        _ => 0,
    }
}

fn read_pcap<R: Read>(
    reader: &mut PcapReader<Prefixed<R>>,
    link: LinkType,
    nanos: bool,
    offset: &mut u64,
    sink: &mut dyn FnMut(Frame<'_>),
) -> Result<bool, SourceError> {
    // Raw records: the checked form refuses orig_len > snaplen, which real captures contain.
    let packet = match reader.next_raw_packet() {
        None => return Ok(false),
        Some(Err(error)) => {
            return Err(SourceError::Pcap {
                offset: *offset,
                error,
            })
        }
        Some(Ok(packet)) => packet,
    };
    *offset += PCAP_RECORD_HEADER_LEN + u64::from(packet.incl_len);
    let frac = if nanos {
        u64::from(packet.ts_frac)
    } else {
        u64::from(packet.ts_frac) * 1000
    };
    let time = Timestamp::from_unix_secs(u64::from(packet.ts_sec)).offset_nanos(frac as i64);
    sink(Frame {
        time,
        link,
        data: &packet.data,
    });
    Ok(true)
}

fn read_pcapng<R: Read>(
    reader: &mut PcapNgReader<Prefixed<R>>,
    interfaces: &mut Vec<Interface>,
    last_time: &mut Timestamp,
    offset: &mut u64,
    sink: &mut dyn FnMut(Frame<'_>),
) -> Result<bool, SourceError> {
    loop {
        // Read before the block borrows the reader; a new section re-reads it from its own magic.
        let endianness = reader.section().endianness;
        let at = *offset;
        let fail = |error| SourceError::Pcap { offset: at, error };
        let raw = match reader.next_raw_block() {
            None => return Ok(false),
            Some(Err(error)) => return Err(fail(error)),
            Some(Ok(raw)) => raw,
        };
        *offset += u64::from(raw.initial_len);
        let kind = raw.type_;
        if !matches!(
            kind,
            SECTION_HEADER_BLOCK
                | INTERFACE_DESCRIPTION_BLOCK
                | ENHANCED_PACKET_BLOCK
                | SIMPLE_PACKET_BLOCK
                | PACKET_BLOCK
        ) {
            continue;
        }
        let block = match endianness {
            Endianness::Big => raw.try_into_block::<BigEndian>(),
            Endianness::Little => raw.try_into_block::<LittleEndian>(),
        }
        .map_err(fail)?;
        if pcapng_block(block, interfaces, last_time, sink) {
            return Ok(true);
        }
    }
}

/// Handles one pcapng block; true when it was a frame handed to `sink`.
fn pcapng_block(
    block: Block<'_>,
    interfaces: &mut Vec<Interface>,
    last_time: &mut Timestamp,
    sink: &mut dyn FnMut(Frame<'_>),
) -> bool {
    let (iface, units, data) = match &block {
        Block::SectionHeader(_) => {
            // Interface numbers are local to a section.
            interfaces.clear();
            return false;
        }
        Block::InterfaceDescription(idb) => {
            interfaces.push(Interface::new(idb));
            return false;
        }
        // The pcap-file crate stores the raw timestamp units as nanoseconds; rescale below.
        Block::EnhancedPacket(epb) => (
            epb.interface_id as usize,
            Some(epb.timestamp.as_nanos() as u64),
            &epb.data,
        ),
        Block::Packet(pb) => (usize::from(pb.interface_id), Some(pb.timestamp), &pb.data),
        // Simple packet blocks have no timestamp and always belong to the first interface.
        Block::SimplePacket(spb) => (0, None, &spb.data),
        _ => return false,
    };
    let Some(interface) = interfaces.get(iface) else {
        // A packet of an interface the section never described: its link type is unknown.
        sink(Frame {
            time: *last_time,
            link: LinkType::Other(u32::MAX),
            data,
        });
        return true;
    };
    if let Some(units) = units {
        *last_time = interface.time(units);
    }
    sink(Frame {
        time: *last_time,
        link: interface.link,
        data,
    });
    true
}
