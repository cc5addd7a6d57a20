//! NetFlow v5 packet view: the header and every fixed-layout record.

#![no_main]

use botnest_wire::netflow5::{self, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::parse(data) else {
        return;
    };
    let header = packet.header();
    let _ = header.sampling_interval();
    let records = packet.records();
    assert_eq!(records.len(), usize::from(header.count));
    assert!(netflow5::HEADER_LEN + records.len() * netflow5::RECORD_LEN <= data.len());
    for record in records {
        let _ = format!("{record:?}");
    }
});
