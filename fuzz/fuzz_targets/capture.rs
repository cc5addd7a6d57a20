//! Capture reader over arbitrary bytes: pcap and pcapng parsing, link layers, IP fragment
//! reassembly and TCP stream following, with small reassembly limits.

#![no_main]

use botnest_collect::capture::{CaptureLimits, CaptureReader, Transport};
use libfuzzer_sys::fuzz_target;

fn limits() -> CaptureLimits {
    CaptureLimits {
        max_fragment_datagrams: 4,
        max_fragment_bytes: 16 * 1024,
        fragment_timeout_nanos: 1_000_000_000,
        max_tcp_streams: 4,
        max_tcp_stream_buffer: 16 * 1024,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = CaptureReader::from_reader(data, "fuzz.pcap") else {
        return;
    };
    let mut reader = reader.with_limits(limits());
    let mut payload_bytes = 0usize;
    for item in reader.by_ref() {
        match item {
            Ok(datagram) => {
                payload_bytes += datagram.payload.len();
                if datagram.transport == Transport::Udp {
                    assert!(!datagram.gap, "a UDP datagram has no stream gap");
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    // Payloads are cut from the input: reassembly may join them but never makes bytes up.
    assert!(
        payload_bytes <= data.len(),
        "{payload_bytes} payload bytes from {} input",
        data.len()
    );
});
