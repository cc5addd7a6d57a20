//! `botnest collect`: listens for exporters and prints or stores their records.

use crate::config::Config;
use crate::output::{Format, Printer};
use anyhow::{Context, Result};
use botnest_collect::export::FlowEncoder;
use botnest_collect::ipfix_file::{IpfixFileWriter, RotationAge, RotationPolicy};
use botnest_collect::listen::{wall_clock, SinkFactory, SocketStats};
use botnest_collect::{Collector, Decoder, Endpoint, RecordMeta, Sink, TemplateSnapshot};
use botnest_flow::FlowRecord;
use botnest_wire::Record;
use ipnet::IpNet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of `botnest collect`; they override the configuration file.
#[derive(Debug, clap::Args)]
pub struct CollectArgs {
    /// Listen on this socket: udp://ADDR:PORT, tcp://ADDR:PORT, or ADDR:PORT for UDP
    /// (repeatable). Default: UDP and TCP 4739, UDP 2055 on all addresses.
    #[arg(long, value_name = "ENDPOINT")]
    pub listen: Vec<Endpoint>,
    /// Accept exporters only from this network (repeatable); default: all.
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<IpNet>,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write rotated IPFIX files (RFC 5655) into this directory.
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
    /// Start a new IPFIX file after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub rotate_seconds: Option<u64>,
    /// Receive buffer asked for each UDP socket, in bytes.
    #[arg(long, value_name = "BYTES")]
    pub receive_buffer: Option<usize>,
    /// Keep templates across restarts in this directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Write the closing summary (one JSON line) to this file on exit.
    #[arg(long, value_name = "FILE")]
    pub summary_file: Option<PathBuf>,
    /// Shift each exporter's record times by its clock's offset from the arrival times, as
    /// `run` does (`[decoder.clock]`). Without it, records keep the times they were exported
    /// with; offsets are reported either way.
    #[arg(long)]
    pub correct_clocks: bool,
}

/// Records handed from the reader threads to the output thread.
pub(crate) struct Batch {
    /// Normalised flow records.
    pub(crate) flows: Vec<FlowRecord>,
    /// The records printed in the chosen format.
    pub(crate) text: Vec<u8>,
}

/// How many records a reader thread collects before handing them on. Each batch wakes the
/// output thread once, so at moderate rates its size sets how often that thread runs.
const BATCH_RECORDS: usize = 4096;
/// How long a partial batch may wait.
const BATCH_DELAY: Duration = Duration::from_millis(100);
/// Batches waiting for the output thread (about a million records); past this, batches are
/// dropped and counted.
const QUEUE_BATCHES: usize = 256;
/// Emptied batch buffers kept for reuse.
const SPARE_BATCHES: usize = 8;

/// Batch buffers the output thread has emptied, for the reader threads to fill again: warm
/// memory, rather than a fresh allocation whose pages the kernel must fault in for every batch.
pub(crate) type Spare = Arc<Mutex<Vec<Vec<FlowRecord>>>>;

/// The sink of each reader thread: formats records and hands them on in batches, never blocking
/// the socket. A batch that finds the queue full is dropped and its records counted.
struct Forward {
    printer: Printer<Vec<u8>>,
    /// Whether records are printed at all (`--format none` skips the printer).
    text: bool,
    flows: Vec<FlowRecord>,
    records: usize,
    tx: SyncSender<Batch>,
    dropped: Arc<AtomicU64>,
    last_send: Instant,
    spare: Spare,
}

impl Forward {
    fn send(&mut self) {
        self.last_send = Instant::now();
        if self.records == 0 {
            return;
        }
        let fresh = lock(&self.spare)
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BATCH_RECORDS));
        let batch = Batch {
            flows: std::mem::replace(&mut self.flows, fresh),
            text: self.printer.take_output(),
        };
        let n = std::mem::take(&mut self.records) as u64;
        match self.tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(n, Relaxed);
            }
        }
    }
}

impl Drop for Forward {
    /// A reader thread ending (shutdown, a TCP exporter leaving) hands on what it still holds.
    fn drop(&mut self) {
        self.send();
    }
}

impl Sink for Forward {
    fn flow(&mut self, meta: &RecordMeta<'_>, flow: &FlowRecord, raw: &Record<'_>) {
        if self.text {
            self.printer.flow(meta, flow, raw);
        }
        self.flows.push(*flow);
        self.records += 1;
        if self.records >= BATCH_RECORDS {
            self.send();
        }
    }

    fn options(&mut self, meta: &RecordMeta<'_>, raw: &Record<'_>) {
        if self.text {
            self.printer.options(meta, raw);
        }
        self.records += 1;
    }

    fn flush(&mut self) {
        if self.records >= BATCH_RECORDS || self.last_send.elapsed() >= BATCH_DELAY {
            self.send();
        }
    }
}

/// Reader-thread sinks that hand records on in batches through one bounded queue.
pub(crate) struct Forwarding {
    /// Builds the sink of each reader thread.
    pub(crate) make_sink: SinkFactory,
    /// Where the batches arrive; it disconnects once every sink is gone.
    pub(crate) batches: Receiver<Batch>,
    /// Records dropped because the queue was full.
    pub(crate) dropped: Arc<AtomicU64>,
    /// Where a consumer may return emptied batch buffers (see [`recycle`]).
    pub(crate) spare: Spare,
}

/// Hands an emptied batch buffer back to the reader threads.
pub(crate) fn recycle(spare: &Spare, mut flows: Vec<FlowRecord>) {
    flows.clear();
    let mut pool = lock(spare);
    if pool.len() < SPARE_BATCHES {
        pool.push(flows);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Forwarding {
    /// Sinks printing records in `format` (`Format::None` hands on flows only).
    pub(crate) fn new(format: Format) -> Forwarding {
        let (tx, batches) = sync_channel::<Batch>(QUEUE_BATCHES);
        let dropped = Arc::new(AtomicU64::new(0));
        let spare: Spare = Arc::default();
        let make_sink: SinkFactory = {
            let dropped = Arc::clone(&dropped);
            let spare = Arc::clone(&spare);
            Arc::new(move || {
                Box::new(Forward {
                    printer: Printer::without_header(format, Vec::new()),
                    text: format != Format::None,
                    flows: Vec::with_capacity(BATCH_RECORDS),
                    records: 0,
                    tx: tx.clone(),
                    dropped: Arc::clone(&dropped),
                    last_send: Instant::now(),
                    spare: Arc::clone(&spare),
                }) as Box<dyn Sink + Send>
            })
        };
        Forwarding {
            make_sink,
            batches,
            dropped,
            spare,
        }
    }
}

/// Runs `botnest collect` until SIGINT or SIGTERM.
pub fn run(args: &CollectArgs, mut config: Config) -> Result<()> {
    apply_flags(args, &mut config);
    let format = config.output.format;
    let state_file = config
        .output
        .state_dir
        .as_ref()
        .map(|d| d.join("templates.json"));

    // Collected records are shown and written as exported, unless asked to correct clocks.
    config.decoder.clock.correct &= args.correct_clocks;
    let mut decoder = Decoder::new(config.decoder.clone());
    if let Some(path) = &state_file {
        restore_templates(&mut decoder, path);
    }

    let Forwarding {
        make_sink,
        batches: rx,
        dropped,
        spare,
    } = Forwarding::new(format);

    if format == Format::Table {
        let mut header = Printer::new(Format::Table, std::io::stdout());
        header.flush();
    }
    let collector = Collector::start(&config.listen, decoder, make_sink)
        .context("cannot open the listening sockets")?;
    let files = match &config.output.write {
        Some(dir) => Some(FileOutput::open(
            dir,
            config.output.rotate_seconds,
            config.output.rotate_bytes,
        )?),
        None => None,
    };
    let output = std::thread::spawn(move || output_loop(rx, files, &spare));

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("cannot handle signals")?;
    }
    let mut last_save = Instant::now();
    let mut report = Report::default();
    while !stop.load(Relaxed) {
        // Each wake-up costs the host a context switch; a quarter of a second is soon enough
        // to notice a signal.
        std::thread::sleep(Duration::from_millis(250));
        if last_save.elapsed() >= Duration::from_secs(30) {
            last_save = Instant::now();
            let decoder = collector
                .decoder()
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(path) = &state_file {
                save_templates(&decoder, path);
            }
            report.log(&decoder, collector.sockets(), dropped.load(Relaxed));
        }
    }

    tracing::info!("stopping");
    let sockets: Vec<_> = collector.sockets().to_vec();
    let decoder = collector.stop();
    let flows = output.join().unwrap_or(0);
    let decoder = decoder.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = &state_file {
        save_templates(&decoder, path);
    }
    let sum = |f: fn(&SocketStats) -> &AtomicU64| -> u64 {
        sockets.iter().map(|(_, s)| f(s).load(Relaxed)).sum()
    };
    let kernel_drops = sum(|s| &s.kernel_drops);
    let not_allowed = sum(|s| &s.not_allowed);
    let queue_drops = dropped.load(Relaxed);
    let mut printer = Printer::without_header(format, std::io::stdout());
    printer.summary(
        &decoder.totals(),
        decoder.errors_by_reason(),
        &decoder.clocks(),
    );
    tracing::info!(
        flows,
        kernel_drops,
        queue_drops,
        not_allowed,
        "collector stopped"
    );
    if let Some(path) = &args.summary_file {
        let t = decoder.totals();
        let line = serde_json::json!({ "summary": {
            "messages": t.messages, "records": t.records, "options_records": t.options_records,
            "templates": t.templates, "errors": t.errors, "lost_records": t.lost_records,
            "lost_packets": t.lost_packets, "handed_on": flows, "kernel_drops": kernel_drops,
            "queue_drops": queue_drops, "not_allowed": not_allowed,
            "tcp_connections": sum(|s| &s.connections),
            "tcp_refused": sum(|s| &s.connections_refused),
            "tcp_stalled": sum(|s| &s.stalled),
            "tcp_truncated": sum(|s| &s.truncated),
            "tcp_not_ipfix": sum(|s| &s.bad_streams),
        }});
        std::fs::write(path, format!("{line}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Periodic counters in the log: a summary line at info, one line per exporter and domain at
/// debug, and an error whenever records were lost since the last report.
#[derive(Default)]
pub(crate) struct Report {
    lost: u64,
    dropped: u64,
}

impl Report {
    /// Logs the counters, and an error when records were lost since the last call.
    pub(crate) fn log(
        &mut self,
        decoder: &Decoder,
        sockets: &[(Endpoint, Arc<SocketStats>)],
        queue: u64,
    ) {
        let t = decoder.totals();
        let kernel: u64 = sockets
            .iter()
            .map(|(_, s)| s.kernel_drops.load(Relaxed))
            .sum();
        let (sessions, templates, pending) = decoder.state_size();
        tracing::info!(
            sessions,
            templates,
            pending_bytes = pending,
            messages = t.messages,
            records = t.records,
            errors = t.errors,
            lost_records = t.lost_records,
            lost_packets = t.lost_packets,
            kernel_drops = kernel,
            queue_drops = queue,
            "collector counters"
        );
        for (key, domain, c) in decoder.per_exporter() {
            tracing::debug!(
                exporter = %key.exporter, transport = ?key.transport, domain,
                messages = c.messages, records = c.records, templates = c.templates,
                errors = c.errors, lost_records = c.lost_records, lost_packets = c.lost_packets,
                "exporter counters"
            );
        }
        let lost = t.lost_records + t.lost_packets;
        if lost > self.lost {
            tracing::error!(
                new = lost - self.lost,
                "exporters report records or packets that never arrived"
            );
        }
        if kernel + queue > self.dropped {
            tracing::error!(
                kernel_drops = kernel,
                queue_drops = queue,
                "the collector dropped records: raise the receive buffer or reduce output work"
            );
        }
        (self.lost, self.dropped) = (lost, kernel + queue);
    }
}

fn apply_flags(args: &CollectArgs, config: &mut Config) {
    if !args.listen.is_empty() {
        config.listen.listen = args.listen.clone();
    }
    if !args.allow.is_empty() {
        config.listen.allow = args.allow.clone();
    }
    if let Some(f) = args.format {
        config.output.format = f;
    }
    if let Some(w) = &args.write {
        config.output.write = Some(w.clone());
    }
    if let Some(s) = args.rotate_seconds {
        config.output.rotate_seconds = s;
    }
    if let Some(b) = args.receive_buffer {
        config.listen.receive_buffer = b;
    }
    if let Some(d) = &args.state_dir {
        config.output.state_dir = Some(d.clone());
    }
}

/// Rotated RFC 5655 files of the normalised records.
struct FileOutput {
    writer: IpfixFileWriter,
    encoder: FlowEncoder,
}

impl FileOutput {
    fn open(dir: &Path, rotate_seconds: u64, rotate_bytes: u64) -> Result<FileOutput> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let policy = RotationPolicy {
            max_bytes: (rotate_bytes > 0).then_some(rotate_bytes),
            max_age: (rotate_seconds > 0)
                .then(|| RotationAge::WallTime(Duration::from_secs(rotate_seconds))),
            prefix: "botnest".to_owned(),
        };
        let mut writer = IpfixFileWriter::new(dir, policy)
            .with_context(|| format!("cannot write IPFIX files in {}", dir.display()))?;
        let encoder = FlowEncoder::default();
        writer.set_templates(vec![encoder.template_message(export_time_now())])?;
        tracing::info!(dir = %dir.display(), "writing IPFIX files");
        Ok(FileOutput { writer, encoder })
    }

    fn write(&mut self, flows: &[FlowRecord]) -> Result<()> {
        for msg in self.encoder.encode(flows, export_time_now()) {
            self.writer.write_message(&msg)?;
        }
        Ok(())
    }
}

fn export_time_now() -> u32 {
    (wall_clock().as_unix_nanos() / 1_000_000_000) as u32
}

/// Writes batches to stdout and files; returns the number of flow records handed on.
fn output_loop(rx: Receiver<Batch>, mut files: Option<FileOutput>, spare: &Spare) -> u64 {
    let mut out = std::io::stdout().lock();
    let mut flows = 0u64;
    let mut stdout_ok = true;
    loop {
        let batch = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(b) => b,
            Err(RecvTimeoutError::Timeout) => {
                rotate(&mut files);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        flows += batch.flows.len() as u64;
        if let Some(f) = &mut files {
            if let Err(e) = f.write(&batch.flows) {
                // Losing the files loses stored data: say so loudly, keep collecting.
                tracing::error!(error = %e, "cannot write IPFIX file; records not stored");
            }
        }
        if stdout_ok && !batch.text.is_empty() {
            // A closed stdout stops printing, not collecting.
            stdout_ok = out
                .write_all(&batch.text)
                .and_then(|()| out.flush())
                .is_ok();
        }
        recycle(spare, batch.flows);
    }
    if let Some(f) = &mut files {
        if let Err(e) = f.writer.close() {
            tracing::error!(error = %e, "cannot close IPFIX file");
        }
    }
    flows
}

fn rotate(files: &mut Option<FileOutput>) {
    if let Some(f) = files {
        if let Err(e) = f.writer.rotate_if_due().and_then(|_| f.writer.flush()) {
            tracing::error!(error = %e, "cannot rotate IPFIX file");
        }
    }
}

/// Reads templates saved by an earlier run; an unreadable file is logged and ignored.
pub(crate) fn restore_templates(decoder: &mut Decoder, path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    match serde_json::from_str::<TemplateSnapshot>(&text) {
        Ok(snapshot) => {
            let n = decoder.restore(&snapshot, wall_clock());
            tracing::info!(path = %path.display(), templates = n, "templates restored");
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable template state")
        }
    }
}

/// Saves the decoder's templates; a failure is logged.
pub(crate) fn save_templates(decoder: &Decoder, path: &Path) {
    let snapshot = decoder.snapshot();
    if let Err(e) = save_json(path, &snapshot) {
        tracing::warn!(path = %path.display(), error = %e, "cannot save templates");
    }
}

/// Writes `value` as JSON to a temporary file beside `path` and renames it over `path`, so a
/// crash leaves the old file or the new one, never half of one.
pub(crate) fn save_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    serde_json::to_writer(&mut file, value)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
