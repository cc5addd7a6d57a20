//! `botnest decode`: reads captures of export traffic and RFC 5655 IPFIX files.

use crate::output::{Format, Printer};
use anyhow::{Context, Result};
use botnest_collect::capture::{CaptureReader, Transport as CaptureTransport};
use botnest_collect::decoder::UNKNOWN_EXPORTER;
use botnest_collect::framing::Framer;
use botnest_collect::ipfix_file::IpfixFileReader;
use botnest_collect::{Decoder, DecoderConfig, SessionKey, Sink, Transport};
use botnest_flow::Timestamp;
use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Options of `botnest decode`.
#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Shift each exporter's record times by its clock's offset from the arrival times, as
    /// `run` and `analyze` do (`[decoder.clock]`). Without it, times are shown as exported.
    #[arg(long)]
    pub correct_clocks: bool,
    /// Captures (pcap, pcapng) of export traffic, or IPFIX files (RFC 5655).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

/// What kind of file an input is, from its first bytes.
#[derive(Debug, PartialEq, Eq)]
enum InputKind {
    Capture,
    IpfixFile,
}

fn sniff(path: &Path) -> Result<InputKind> {
    let mut magic = [0u8; 4];
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    f.read_exact(&mut magic).with_context(|| {
        format!(
            "{}: too short to be a capture or IPFIX file",
            path.display()
        )
    })?;
    match magic {
        // pcap in both byte orders and both resolutions, and pcapng's section header block
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d]
        | [0x0a, 0x0d, 0x0d, 0x0a] => Ok(InputKind::Capture),
        [0x00, 0x0a, _, _] => Ok(InputKind::IpfixFile),
        _ => anyhow::bail!(
            "{}: not a pcap/pcapng capture or an IPFIX file (starts with {:02x?})",
            path.display(),
            magic
        ),
    }
}

/// Runs `botnest decode`.
pub fn run(args: &DecodeArgs, mut config: DecoderConfig) -> Result<()> {
    // Decoding shows what exporters sent, unless asked to correct their clocks.
    config.clock.correct &= args.correct_clocks;
    let stdout = std::io::stdout().lock();
    let mut printer = Printer::new(args.format, std::io::BufWriter::new(stdout));
    let mut decoder = Decoder::new(config);
    let mut failed = None;
    for path in &args.inputs {
        let result = match sniff(path) {
            Ok(InputKind::Capture) => decode_capture(path, &mut decoder, &mut printer),
            Ok(InputKind::IpfixFile) => decode_ipfix_file(path, &mut decoder, &mut printer),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            // One bad input does not hide the records of the others.
            eprintln!("botnest: {e:#}");
            failed = Some(e);
        }
    }
    printer.summary(
        &decoder.totals(),
        decoder.errors_by_reason(),
        &decoder.clocks(),
    );
    match failed {
        Some(e) if args.inputs.len() == 1 => Err(e),
        Some(_) => anyhow::bail!("some inputs could not be read completely"),
        None => Ok(()),
    }
}

/// Decodes every export message found in a capture: UDP payloads as they are, TCP streams framed
/// by the IPFIX message length. Payloads that are not IPFIX or NetFlow are skipped unseen, since
/// captures often hold other traffic.
pub fn decode_capture(path: &Path, decoder: &mut Decoder, sink: &mut dyn Sink) -> Result<()> {
    let reader =
        CaptureReader::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut streams: HashMap<(SocketAddr, SocketAddr), Framer> = HashMap::new();
    for item in reader {
        let d = item.with_context(|| format!("{}: capture ends early", path.display()))?;
        match d.transport {
            CaptureTransport::Udp => {
                if !looks_like_export(&d.payload) {
                    continue;
                }
                let key = SessionKey::udp(d.src, d.dst);
                let _ = decoder.decode(&key, d.time, &d.payload, sink);
            }
            CaptureTransport::Tcp => {
                let framer = streams.entry((d.src, d.dst)).or_default();
                if d.gap {
                    // Bytes are missing: the partial message before the gap is unusable.
                    *framer = Framer::default();
                }
                framer.push(&d.payload);
                let key = SessionKey {
                    transport: Transport::Tcp,
                    exporter: d.src,
                    collector: d.dst,
                };
                while let Ok(Some(msg)) = framer.next_message() {
                    let _ = decoder.decode(&key, d.time, msg, sink);
                }
            }
        }
    }
    Ok(())
}

/// Whether a UDP payload starts like an export packet of a version botnest decodes.
fn looks_like_export(payload: &[u8]) -> bool {
    matches!(botnest_wire::version(payload), Some(5) | Some(9) | Some(10))
}

/// Decodes an RFC 5655 file: IPFIX messages back to back. Each message's export time stands in
/// for its arrival time, so template lifetimes and held data behave as they did when the
/// messages were collected.
pub fn decode_ipfix_file(path: &Path, decoder: &mut Decoder, sink: &mut dyn Sink) -> Result<()> {
    let key = SessionKey {
        transport: Transport::File,
        exporter: UNKNOWN_EXPORTER,
        collector: UNKNOWN_EXPORTER,
    };
    for msg in IpfixFileReader::open(path)? {
        let msg = msg?;
        let export = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
        let _ = decoder.decode(
            &key,
            Timestamp::from_unix_secs(u64::from(export)),
            &msg,
            sink,
        );
    }
    Ok(())
}
