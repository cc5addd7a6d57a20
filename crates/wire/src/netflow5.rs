//! NetFlow version 5 export packets: a fixed header and fixed 48-byte IPv4 flow records.

use crate::error::{need, Error};
use crate::ipfix::{be16, be32};
use std::net::Ipv4Addr;

/// The version number of NetFlow v5 packets.
pub const VERSION: u16 = 5;
/// Length of the packet header.
pub const HEADER_LEN: usize = 24;
/// Length of one flow record.
pub const RECORD_LEN: usize = 48;
/// Largest record count a v5 packet may carry.
pub const MAX_COUNT: u16 = 30;

/// The fixed header of a v5 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Always [`VERSION`].
    pub version: u16,
    /// Flow records in the packet.
    pub count: u16,
    /// Milliseconds since the exporting device booted.
    pub sys_uptime_ms: u32,
    /// Seconds since the UNIX epoch when the packet was sent.
    pub unix_secs: u32,
    /// Residual nanoseconds of the export time.
    pub unix_nsecs: u32,
    /// Flows sent by this exporter before this packet (mod 2^32).
    pub flow_sequence: u32,
    /// Type of the flow-switching engine.
    pub engine_type: u8,
    /// Slot number of the flow-switching engine.
    pub engine_id: u8,
    /// Two bits of sampling mode and 14 bits of sampling interval.
    pub sampling: u16,
}

impl Header {
    /// Appends the header's 24 bytes, every field as given.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.sys_uptime_ms.to_be_bytes());
        out.extend_from_slice(&self.unix_secs.to_be_bytes());
        out.extend_from_slice(&self.unix_nsecs.to_be_bytes());
        out.extend_from_slice(&self.flow_sequence.to_be_bytes());
        out.push(self.engine_type);
        out.push(self.engine_id);
        out.extend_from_slice(&self.sampling.to_be_bytes());
    }

    /// Sampling interval (1 in N packets), or 1 when the exporter does not sample.
    pub fn sampling_interval(&self) -> u32 {
        u32::from(self.sampling & 0x3fff).max(1)
    }
}

/// One v5 flow record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Next hop router.
    pub next_hop: Ipv4Addr,
    /// SNMP index of the input interface.
    pub input: u16,
    /// SNMP index of the output interface.
    pub output: u16,
    /// Packets in the flow.
    pub packets: u32,
    /// Layer 3 bytes in the flow.
    pub octets: u32,
    /// sysUptime (ms) at the start of the flow.
    pub first: u32,
    /// sysUptime (ms) at the last packet of the flow.
    pub last: u32,
    /// Source port (or 0).
    pub src_port: u16,
    /// Destination port (or ICMP type and code).
    pub dst_port: u16,
    /// Cumulative OR of TCP flags.
    pub tcp_flags: u8,
    /// IP protocol.
    pub protocol: u8,
    /// IP type of service.
    pub tos: u8,
    /// Source autonomous system.
    pub src_as: u16,
    /// Destination autonomous system.
    pub dst_as: u16,
    /// Source prefix length.
    pub src_mask: u8,
    /// Destination prefix length.
    pub dst_mask: u8,
}

impl Record {
    /// Appends the record's 48 bytes; the two pad fields are written as zeros.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.src_addr.octets());
        out.extend_from_slice(&self.dst_addr.octets());
        out.extend_from_slice(&self.next_hop.octets());
        out.extend_from_slice(&self.input.to_be_bytes());
        out.extend_from_slice(&self.output.to_be_bytes());
        out.extend_from_slice(&self.packets.to_be_bytes());
        out.extend_from_slice(&self.octets.to_be_bytes());
        out.extend_from_slice(&self.first.to_be_bytes());
        out.extend_from_slice(&self.last.to_be_bytes());
        out.extend_from_slice(&self.src_port.to_be_bytes());
        out.extend_from_slice(&self.dst_port.to_be_bytes());
        out.extend_from_slice(&[0, self.tcp_flags, self.protocol, self.tos]);
        out.extend_from_slice(&self.src_as.to_be_bytes());
        out.extend_from_slice(&self.dst_as.to_be_bytes());
        out.extend_from_slice(&[self.src_mask, self.dst_mask, 0, 0]);
    }

    fn parse(b: &[u8]) -> Record {
        let ip = |at: usize| Ipv4Addr::from(be32(b, at));
        Record {
            src_addr: ip(0),
            dst_addr: ip(4),
            next_hop: ip(8),
            input: be16(b, 12),
            output: be16(b, 14),
            packets: be32(b, 16),
            octets: be32(b, 20),
            first: be32(b, 24),
            last: be32(b, 28),
            src_port: be16(b, 32),
            dst_port: be16(b, 34),
            tcp_flags: b[37],
            protocol: b[38],
            tos: b[39],
            src_as: be16(b, 40),
            dst_as: be16(b, 42),
            src_mask: b[44],
            dst_mask: b[45],
        }
    }
}

/// A checked view of one v5 packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    header: Header,
    records: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks the header and that the packet holds `count` records.
    pub fn parse(buf: &'a [u8]) -> Result<Packet<'a>, Error> {
        need(buf, HEADER_LEN, "netflow5 header", 0)?;
        let version = be16(buf, 0);
        if version != VERSION {
            return Err(Error::Version(version));
        }
        let header = Header {
            version,
            count: be16(buf, 2),
            sys_uptime_ms: be32(buf, 4),
            unix_secs: be32(buf, 8),
            unix_nsecs: be32(buf, 12),
            flow_sequence: be32(buf, 16),
            engine_type: buf[20],
            engine_id: buf[21],
            sampling: be16(buf, 22),
        };
        if header.count == 0 || header.count > MAX_COUNT {
            return Err(Error::BadLength {
                what: "netflow5 count",
                offset: 2,
                length: usize::from(header.count),
            });
        }
        let len = usize::from(header.count) * RECORD_LEN;
        need(&buf[HEADER_LEN..], len, "netflow5 records", HEADER_LEN)?;
        Ok(Packet {
            header,
            records: &buf[HEADER_LEN..HEADER_LEN + len],
        })
    }

    /// The packet header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The flow records.
    pub fn records(&self) -> impl ExactSizeIterator<Item = Record> + 'a {
        self.records.chunks_exact(RECORD_LEN).map(Record::parse)
    }
}

/// Builds a v5 packet. The header is written as given, so its `count` should be
/// `records.len()` unless the packet is meant to be malformed.
pub fn encode(header: &Header, records: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + records.len() * RECORD_LEN);
    header.encode(&mut out);
    for record in records {
        record.encode(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_packet() {
        let mut p = vec![
            0, 5, 0, 1, 0, 0, 0x27, 0x10, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 1, 2,
        ];
        p.extend_from_slice(&[0x40, 0x64]); // mode 1, 1 in 100
        let mut r = [0u8; 48];
        r[0..4].copy_from_slice(&[10, 0, 0, 1]);
        r[4..8].copy_from_slice(&[192, 0, 2, 9]);
        r[16..20].copy_from_slice(&3u32.to_be_bytes());
        r[20..24].copy_from_slice(&180u32.to_be_bytes());
        r[34..36].copy_from_slice(&443u16.to_be_bytes());
        r[37] = 0x12;
        r[38] = 6;
        p.extend_from_slice(&r);
        let pk = Packet::parse(&p).unwrap();
        assert_eq!(pk.header().sampling_interval(), 100);
        assert_eq!(pk.header().flow_sequence, 7);
        let rec = pk.records().next().unwrap();
        assert_eq!(rec.src_addr, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            (rec.packets, rec.octets, rec.dst_port, rec.protocol),
            (3, 180, 443, 6)
        );
        assert_eq!(rec.tcp_flags, 0x12);
    }

    #[test]
    fn count_must_match_the_bytes() {
        let mut p = vec![0u8; HEADER_LEN + RECORD_LEN];
        p[1] = 5;
        p[3] = 2;
        assert!(matches!(Packet::parse(&p), Err(Error::Truncated { .. })));
        p[3] = 0;
        assert!(matches!(Packet::parse(&p), Err(Error::BadLength { .. })));
    }
}
