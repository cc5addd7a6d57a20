//! botnest: real-time botnet detection from IPFIX and NetFlow.

mod alerts;
mod analyze;
mod collect;
mod config;
mod decode;
mod demo;
mod evaluate;
mod intel;
mod output;
mod run;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Real-time botnet detection from IPFIX and NetFlow.
#[derive(Debug, Parser)]
#[command(name = "botnest", version, about)]
struct Cli {
    /// Configuration file (TOML); every setting has a default.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// More log output (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode captures of export traffic (pcap, pcapng) and IPFIX files (RFC 5655).
    Decode(decode::DecodeArgs),
    /// Listen for IPFIX and NetFlow exporters and print or store their records.
    Collect(collect::CollectArgs),
    /// Find botnets in recorded data: captures, IPFIX files, Zeek and Argus logs.
    Analyze(analyze::AnalyzeArgs),
    /// Score verdicts against labelled data: per host, per time window (CTU-13), C2 named.
    Evaluate(evaluate::EvaluateArgs),
    /// Collect flows and detect botnets live, sending alerts to JSON, syslog and webhooks.
    Run(run::RunArgs),
    /// Show botnests in the web console within a minute: the live cloud testbed (root, Open
    /// vSwitch) or a recording of it.
    Demo(demo::DemoArgs),
}

fn main() {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if let Err(e) = run(cli) {
        eprintln!("botnest: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let config = match &cli.config {
        Some(path) => config::Config::load(path)?,
        None => config::Config::default(),
    };
    match cli.command {
        Command::Decode(args) => decode::run(&args, config.decoder),
        Command::Collect(args) => collect::run(&args, config),
        Command::Analyze(args) => analyze::run(&args, config.detect, config.decoder),
        Command::Evaluate(args) => evaluate::run(&args, config.detect, config.decoder),
        Command::Run(args) => run::run(&args, config),
        Command::Demo(args) => demo::run(&args),
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Colours only on a terminal: logs sent to a file or a journal stay plain text.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
