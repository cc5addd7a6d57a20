//! `botnest analyze`: offline detection on recorded data.

use crate::decode::{decode_capture, decode_ipfix_file};
use anyhow::{Context, Result};
use botnest_collect::sources::argus::ArgusReader;
use botnest_collect::sources::meter::RawCaptureReader;
use botnest_collect::sources::zeek::ZeekReader;
use botnest_collect::sources::{sniff, InputKind, Label, LineStats};
use botnest_collect::{Decoder, DecoderConfig, RecordMeta, Sink};
use botnest_detect::{DetectConfig, Engine};
use botnest_flow::FlowRecord;
use botnest_wire::Record;
use std::path::{Path, PathBuf};

/// Options of `botnest analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Output: a readable report, or one JSON document.
    #[arg(long, value_enum, default_value = "text")]
    pub format: AnalyzeFormat,
    /// Internal network (repeatable); replaces the default private and unique-local ranges.
    #[arg(long, value_name = "CIDR")]
    pub internal: Vec<ipnet::IpNet>,
    /// Blocklist file (repeatable): a plain list of addresses, networks and address:port
    /// endpoints, or an abuse.ch-style CSV feed. Added to the configuration's `blocklists`.
    #[arg(long, value_name = "FILE")]
    pub blocklist: Vec<PathBuf>,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub quiet: bool,
    /// Export only this botnest (graphml, gexf, cypher, csv, stix); default: every botnest and
    /// accused host.
    #[arg(long, value_name = "ID")]
    pub botnest: Option<u64>,
    /// Write the report to this file instead of stdout; for csv, a directory that receives
    /// nodes.csv and edges.csv.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Captures of export traffic, raw packet captures, IPFIX files, Zeek conn.log (TSV or
    /// JSON) and Argus .binetflow files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Botnests and host verdicts for people.
    Text,
    /// One JSON document (schema in the README).
    Json,
}

/// Output formats of `botnest analyze`: the reports and the exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AnalyzeFormat {
    /// Botnests and host verdicts for people.
    Text,
    /// One JSON document (schema in the README).
    Json,
    /// GraphML of hosts and channels (Gephi, yEd, NetworkX).
    Graphml,
    /// GEXF 1.3 of hosts and channels (Gephi).
    Gexf,
    /// A Cypher script for Neo4j.
    Cypher,
    /// nodes.csv and edges.csv for neo4j-admin database import (needs --out DIR).
    Csv,
    /// A STIX 2.1 bundle: C2 indicators, addresses, observed traffic, relationships.
    Stix,
}

/// Feeds decoded flows to the engine, moving its time along with the records.
pub struct Feeder<'a> {
    engine: &'a mut Engine,
    since_advance: u32,
}

impl<'a> Feeder<'a> {
    /// A feeder into `engine`.
    pub fn new(engine: &'a mut Engine) -> Self {
        Feeder {
            engine,
            since_advance: 0,
        }
    }

    /// Observes one flow; every few thousand flows the engine's windows catch up.
    pub fn feed(&mut self, f: &FlowRecord) {
        self.engine.observe(f);
        self.since_advance += 1;
        if self.since_advance >= 4096 {
            self.since_advance = 0;
            let newest = self.engine.newest();
            self.engine.advance(newest);
        }
    }
}

impl Sink for Feeder<'_> {
    fn flow(&mut self, _meta: &RecordMeta<'_>, flow: &FlowRecord, _raw: &Record<'_>) {
        self.feed(flow);
    }
}

/// Where the flows of an input go: the engine, or an evaluation that also reads the labels.
pub trait Intake: Sink {
    /// One flow, with the dataset's label for it when the input carries labels.
    fn intake(&mut self, flow: &FlowRecord, label: Option<&Label>);
}

impl Intake for Feeder<'_> {
    fn intake(&mut self, flow: &FlowRecord, _label: Option<&Label>) {
        self.feed(flow);
    }
}

/// Runs `botnest analyze`.
pub fn run(args: &AnalyzeArgs, mut config: DetectConfig, decoder: DecoderConfig) -> Result<()> {
    if !args.internal.is_empty() {
        config.hosts.internal = args.internal.clone();
    }
    let lists: Vec<PathBuf> = config
        .blocklists
        .iter()
        .chain(&args.blocklist)
        .cloned()
        .collect();
    let mut engine = Engine::new(config);
    if !lists.is_empty() {
        let (intel, stats) = crate::intel::load(&lists)?;
        tracing::info!(
            files = stats.files,
            entries = stats.entries,
            duplicates = stats.duplicates,
            skipped_lines = stats.skipped,
            "blocklists loaded"
        );
        engine.set_intel(intel);
    }
    let progress = Progress::new(&args.inputs, args.quiet);
    {
        let mut feeder = Feeder::new(&mut engine);
        let mut decoder = Decoder::new(decoder);
        for path in &args.inputs {
            progress.start(path);
            read_input(path, &mut decoder, &mut feeder)
                .with_context(|| format!("cannot analyze {}", path.display()))?;
            progress.done(path);
        }
    }
    engine.finish();
    progress.finish();
    let export = |format: Format| -> Result<String> {
        let view = View::build(&engine);
        let selection = Selection::of(&view, args.botnest)
            .with_context(|| format!("no botnest {}", args.botnest.unwrap_or(0)))?;
        Ok(selection.render(format))
    };
    let text = match args.format {
        AnalyzeFormat::Json => format!("{}\n", serde_json::to_string_pretty(&report(&engine))?),
        AnalyzeFormat::Text => text_report(&engine),
        AnalyzeFormat::Graphml => export(Format::GraphMl)?,
        AnalyzeFormat::Gexf => export(Format::Gexf)?,
        AnalyzeFormat::Cypher => export(Format::Cypher)?,
        AnalyzeFormat::Stix => export(Format::Stix)?,
        AnalyzeFormat::Csv => {
            let dir = args
                .out
                .as_ref()
                .context("--format csv writes nodes.csv and edges.csv: give --out DIR")?;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, format) in [
                ("nodes.csv", Format::CsvNodes),
                ("edges.csv", Format::CsvEdges),
            ] {
                let path = dir.join(name);
                std::fs::write(&path, export(format)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            return Ok(());
        }
    };
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

/// Reads one input of any kind botnest knows, feeding its flows to the engine. Bad lines of
/// logs are counted by their readers and reported, never fatal.
pub fn read_input<I: Intake>(path: &Path, decoder: &mut Decoder, intake: &mut I) -> Result<()> {
    match sniff(path)? {
        InputKind::ExportCapture => decode_capture(path, decoder, intake),
        InputKind::IpfixFile => decode_ipfix_file(path, decoder, intake),
        InputKind::RawCapture => {
            for flow in RawCaptureReader::open(path)? {
                intake.intake(&flow?, None);
            }
            Ok(())
        }
        InputKind::ZeekTsv | InputKind::ZeekJson => {
            let mut reader = ZeekReader::open(path)?;
            for item in reader.by_ref() {
                let (flow, label) = item?;
                intake.intake(&flow, label.as_ref());
            }
            report_bad_lines(path, reader.stats());
            Ok(())
        }
        InputKind::Argus => {
            let mut reader = ArgusReader::open(path)?;
            for item in reader.by_ref() {
                let (flow, label) = item?;
                intake.intake(&flow, label.as_ref());
            }
            report_bad_lines(path, reader.stats());
            Ok(())
        }
    }
}

fn report_bad_lines(path: &Path, stats: &LineStats) {
    if stats.bad > 0 {
        tracing::warn!(path = %path.display(), bad_lines = stats.bad, "lines skipped");
    }
}

/// A progress bar over the inputs' bytes, shown only on a terminal.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(inputs: &[PathBuf], quiet: bool) -> Progress {
        use std::io::IsTerminal;
        if quiet || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let total: u64 = inputs
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Progress { bar: Some(bar) }
    }

    fn start(&self, path: &Path) {
        if let Some(b) = &self.bar {
            b.set_message(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
    }

    fn done(&self, path: &Path) {
        if let (Some(b), Ok(m)) = (&self.bar, std::fs::metadata(path)) {
            b.inc(m.len());
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

use botnest_web::export::{Format, Selection};
pub use botnest_web::json::{report, rfc3339, role_name};
use botnest_web::View;

fn text_report(engine: &Engine) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let s = engine.stats();
    let _ = writeln!(
        out,
        "{} flows, {} windows evaluated",
        s.flows, s.evaluations
    );
    if engine.botnests().is_empty() {
        let _ = writeln!(out, "no botnests found");
    }
    for b in engine.botnests().iter() {
        let _ = writeln!(
            out,
            "\nbotnest {} ({:?}, score {:.2}), {} .. {}",
            b.id,
            b.state,
            b.score,
            rfc3339(b.first_seen),
            rfc3339(b.last_seen)
        );
        if !b.c2.is_empty() {
            let _ = writeln!(
                out,
                "  c2: {}",
                b.c2.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        for (h, roles) in &b.members {
            let names: Vec<&str> = roles.iter().map(|r| role_name(*r)).collect();
            let _ = writeln!(
                out,
                "  {:<40} tenant {:<8} {}",
                h.addr,
                engine.hosts().tenant_name(h.tenant),
                names.join(",")
            );
        }
    }
    let _ = writeln!(out, "\nhosts:");
    for v in engine
        .verdicts()
        .filter(|v| v.flagged() && v.score >= engine.config().bot_threshold)
    {
        let names: Vec<&str> = v.roles.iter().map(|r| role_name(*r)).collect();
        let _ = writeln!(
            out,
            "{} (tenant {}) score {:.2} roles {}",
            v.host.addr,
            engine.hosts().tenant_name(v.host.tenant),
            v.score,
            names.join(",")
        );
        for e in &v.evidence {
            let peer = e
                .peer
                .map(|p| format!(" [{}]", p.endpoint()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<12} {:.2} {}{}",
                e.kind.name(),
                e.score,
                e.detail,
                peer
            );
        }
    }
    out
}
