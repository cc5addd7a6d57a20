//! What the live exporter tests share: when to run or skip, a `botnest collect` process whose
//! output is gathered while it runs, `botnest decode`, and the records and summary of its JSON.

use botnest_flow::FlowRecord;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_botnest");

/// How long a test waits for the collector to listen or for expected records to arrive.
pub const WAIT: Duration = Duration::from_secs(20);

/// Whether the test can run here: root and every tool in `tools`. A missing prerequisite skips
/// the test with a message, except under CI (`CI=true`), where it fails instead so a broken
/// runner cannot pass silently.
pub fn prerequisites(test: &str, tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root".to_string());
    }
    for tool in tools {
        if which(tool).is_none() {
            missing.push(format!("the `{tool}` program"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("{test} needs {}", missing.join(", "));
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why} (CI=true: failing instead of skipping)");
    }
    eprintln!("skipping: {why}");
    false
}

/// Effective uid 0, read from /proc so the test needs no unsafe FFI.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// The path of `tool` in PATH or the sbin directories (which a non-login PATH may lack).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"])
        .map(|dir| Path::new(dir).join(tool))
        .find(|p| p.is_file());
    found
}

/// A temporary directory for one test run, removed at the end unless `BOTNEST_LIVE_KEEP` is
/// set, in which case its path is printed so the captures can be examined.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temporary directory");
    if std::env::var_os("BOTNEST_LIVE_KEEP").is_some() {
        eprintln!("keeping {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    dir
}

/// Sends `signal` (e.g. "INT") to a process through kill(1).
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Waits for `child` up to `limit`; kills it when it takes longer. Returns whether it exited
/// by itself with success.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// A running `botnest collect`, its stdout lines gathered by a thread.
#[derive(Debug)]
pub struct Collector {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    /// Starts `botnest collect --format json` with `args`, run through `wrapper` (for example
    /// `ip netns exec NS`, which execs in place so the pid stays botnest's), and waits until
    /// each `--listen` endpoint logged that it listens.
    pub fn start(wrapper: &[&str], args: &[&str]) -> Collector {
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = cmd
            .args(["collect", "--format", "json"])
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("botnest collect starts");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let endpoints = args.iter().filter(|a| **a == "--listen").count();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let log_w = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut listening = 0;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening") {
                    listening += 1;
                    if listening == endpoints {
                        let _ = ready_tx.send(());
                    }
                }
                log_w.lock().unwrap().push(line);
            }
        });
        let mut collector = Collector {
            child: Some(child),
            lines,
            seen: Vec::new(),
            log,
        };
        if ready.recv_timeout(WAIT).is_err() {
            let log = collector.log();
            collector.kill();
            panic!("botnest collect did not listen within {WAIT:?}; its log:\n{log}");
        }
        collector
    }

    /// Gathers output until `done` holds for the flow records seen so far, or [`WAIT`] passed.
    /// Returns the records either way; the caller's assertions say what was missing.
    pub fn wait_for(&mut self, done: impl Fn(&[FlowRecord]) -> bool) -> Vec<FlowRecord> {
        self.wait_until(|lines| done(&flows(lines)));
        flows(&self.seen)
    }

    /// Gathers output until a printed object satisfies `found`, or [`WAIT`] passed.
    pub fn wait_for_object(&mut self, found: impl Fn(&Value) -> bool) {
        self.wait_until(|lines| json(lines).iter().any(&found));
    }

    fn wait_until(&mut self, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.seen) && Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                self.seen.push(line);
                // Take whatever else is already there before checking again.
                while let Ok(line) = self.lines.try_recv() {
                    self.seen.push(line);
                }
            }
        }
    }

    /// Stops the collector with SIGINT and returns every stdout line it printed; the last one
    /// is the summary.
    pub fn stop(mut self) -> Vec<String> {
        let mut child = self.child.take().expect("collector running");
        signal(child.id(), "INT");
        let clean = wait_bounded(&mut child, WAIT);
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        assert!(
            clean,
            "botnest collect exits cleanly on SIGINT; log:\n{}",
            self.log()
        );
        std::mem::take(&mut self.seen)
    }

    /// What the collector logged on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `botnest decode --format json FILE`; its stdout lines when it succeeds.
pub fn try_decode(file: &Path) -> Option<Vec<String>> {
    let out = Command::new(BIN)
        .args(["decode", "--format", "json"])
        .arg(file)
        .env("NO_COLOR", "1")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    })
}

/// Runs `botnest decode --format json FILE` and returns its stdout lines.
pub fn decode(file: &Path) -> Vec<String> {
    let out = Command::new(BIN)
        .args(["decode", "--format", "json"])
        .arg(file)
        .env("NO_COLOR", "1")
        .output()
        .expect("botnest decode runs");
    assert!(
        out.status.success(),
        "botnest decode {} fails: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The parsed JSON objects among `lines`.
pub fn json(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The normalised records ("flow" objects) of the data records among `lines`.
pub fn flows(lines: &[String]) -> Vec<FlowRecord> {
    json(lines)
        .into_iter()
        .filter_map(|v| v.get("flow").cloned())
        .map(|f| serde_json::from_value(f).expect("\"flow\" is a FlowRecord"))
        .collect()
}

/// The data records (with their metadata and elements) among `lines`.
pub fn data_records(lines: &[String]) -> Vec<Value> {
    json(lines)
        .into_iter()
        .filter(|v| v.get("flow").is_some())
        .collect()
}

/// The closing summary object.
pub fn summary(lines: &[String]) -> Value {
    json(lines)
        .into_iter()
        .rev()
        .find_map(|v| v.get("summary").cloned())
        .expect("a summary line at the end of the output")
}

/// Starts `botnest run ARGS`, forwarding its log to the test's stderr, and waits up to `wait`
/// for its startup line ("botnest: listening on ..."), which it returns with the process.
pub fn start_run(args: &[&str], wait: Duration) -> (Child, String) {
    let mut child = Command::new(BIN)
        .arg("run")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("botnest starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, ready) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("botnest: {line}");
            if line.starts_with("botnest: listening on") {
                let _ = tx.send(line);
            }
        }
    });
    let line = ready.recv_timeout(wait).expect("botnest run starts");
    (child, line)
}
