//! `botnest demo`: botnests in the web console within a minute. As root with Open vSwitch and
//! a checkout of the repository, it brings up the cloud testbed (scripts/testbed.sh), runs
//! `botnest run` in the testbed's management namespace and starts every scenario; otherwise it
//! replays a recording of the testbed's IPFIX export that ships inside the binary through
//! `botnest run --replay`. Either way it prints the console's URL and runs until interrupted.

use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The testbed's IPFIX export (pcap of the UDP messages both hypervisors sent to the
/// collector), recorded with `scripts/testbed.sh record`.
const RECORDING: &[u8] = include_bytes!("../../../testbed/demo.pcap");
/// The detection settings of the testbed: short windows, tenants from VLAN tags.
const TESTBED_CONFIG: &str = include_str!("../../../testbed/botnest.toml");
/// Held while the live testbed is in use: a directory made atomically, with the holder's pid.
const LOCK: &str = "/run/lock/botnest-testbed";
/// The testbed script of the checkout this binary was built from.
const BUILT_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/testbed.sh");

/// Options of `botnest demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Serve the web console here.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub http: SocketAddr,
    /// Replay the shipped recording even where the live testbed could run.
    #[arg(long, conflicts_with = "live")]
    pub replay: bool,
    /// Run the live testbed; fail rather than fall back to the recording.
    #[arg(long)]
    pub live: bool,
    /// The testbed script (default: scripts/testbed.sh of the checkout botnest was built from,
    /// or of the current directory).
    #[arg(long, value_name = "PATH")]
    pub testbed: Option<PathBuf>,
}

/// Runs the demo until SIGINT or SIGTERM.
pub fn run(args: &DemoArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("cannot handle signals")?;
    }
    let dir = TempDir::new()?;
    let config = dir.path().join("botnest.toml");
    std::fs::write(&config, TESTBED_CONFIG).context("cannot write the demo's configuration")?;
    let script = args.testbed.clone().or_else(find_script);
    let live = match (&script, args.replay) {
        (_, true) => Err("--replay was given".to_owned()),
        (None, _) => Err("no scripts/testbed.sh found (give --testbed PATH)".to_owned()),
        (Some(s), false) => live_possible(s),
    };
    match (live, args.live) {
        (Ok(()), _) => live_demo(args, script.as_deref().unwrap(), &config, dir.path(), &stop),
        (Err(why), true) => bail!("cannot run the live testbed: {why}"),
        (Err(why), false) => {
            eprintln!(
                "botnest demo: replaying the recorded testbed, not starting the live one: {why}"
            );
            replay_demo(args, &config, dir.path(), &stop)
        }
    }
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let path = std::env::temp_dir().join(format!("botnest-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn find_script() -> Option<PathBuf> {
    [
        PathBuf::from(BUILT_SCRIPT),
        PathBuf::from("scripts/testbed.sh"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Why the live testbed cannot run here, if it cannot.
fn live_possible(script: &Path) -> std::result::Result<(), String> {
    if !is_root() {
        return Err("not root".to_owned());
    }
    let sbin = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];
    if !sbin
        .iter()
        .any(|d| Path::new(d).join("ovs-vswitchd").is_file())
    {
        return Err("Open vSwitch is not installed".to_owned());
    }
    if !script.is_file() {
        return Err(format!("{} is missing", script.display()));
    }
    Ok(())
}

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

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}

/// `botnest run` with the demo's settings; `wrapper` runs it elsewhere (`ip netns exec NS`).
fn botnest_run(wrapper: &[&str], config: &Path, dir: &Path, extra: &[String]) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot find the botnest binary")?;
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.arg("--config")
        .arg(config)
        .arg("run")
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--alerts-json")
        .arg(dir.join("alerts.json"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("botnest.log"))?)
        // A process group of its own: Ctrl-C reaches the demo, which stops it in order.
        .process_group(0);
    cmd.spawn().context("cannot start botnest run")
}

/// Waits until `stop` is set or `child` exits; then stops the child (SIGINT, then SIGKILL).
fn supervise(child: &mut Child, stop: &AtomicBool, log: &Path) -> Result<()> {
    while !stop.load(Relaxed) {
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            bail!("botnest run exited ({status}); its log:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    interrupt(child);
    Ok(())
}

fn interrupt(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn replay_demo(args: &DemoArgs, config: &Path, dir: &Path, stop: &AtomicBool) -> Result<()> {
    let recording = dir.join("testbed.pcap");
    std::fs::write(&recording, RECORDING).context("cannot write the recording")?;
    let extra = [
        "--listen".to_owned(),
        "none".to_owned(),
        "--http".to_owned(),
        args.http.to_string(),
        "--replay".to_owned(),
        recording.display().to_string(),
    ];
    let mut child = botnest_run(&[], config, dir, &extra)?;
    println!(
        "botnest demo: the recorded testbed (three tenants, an HTTP botnet, a P2P botnet, a worm, \
         brute force, spam) is in the web console at {}\nPress Ctrl-C to stop.",
        url(args.http)
    );
    supervise(&mut child, stop, &dir.join("botnest.log"))
}

/// The testbed script, run to completion; its output shown.
fn testbed(script: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("bash")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !status.success() {
        bail!("{} {} failed", script.display(), args.join(" "));
    }
    Ok(())
}

/// The testbed's lock, released when dropped.
struct Lock(PathBuf);

impl Lock {
    fn take() -> Result<Lock> {
        let _ = std::fs::create_dir_all("/run/lock");
        let path = PathBuf::from(LOCK);
        for _ in 0..2 {
            if std::fs::create_dir(&path).is_ok() {
                std::fs::write(path.join("pid"), std::process::id().to_string())?;
                return Ok(Lock(path));
            }
            let holder = std::fs::read_to_string(path.join("pid")).unwrap_or_default();
            let alive = holder
                .trim()
                .parse::<u32>()
                .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if alive || holder.is_empty() {
                bail!(
                    "another run (pid {}) is using the testbed ({LOCK})",
                    holder.trim()
                );
            }
            // Its holder died: take it over.
            let _ = std::fs::remove_dir_all(&path);
        }
        bail!("cannot take the testbed's lock {LOCK}")
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The live testbed, torn down when dropped.
struct Testbed<'a>(&'a Path);

impl Drop for Testbed<'_> {
    fn drop(&mut self) {
        eprintln!("botnest demo: tearing the testbed down");
        let _ = testbed(self.0, &["down"]);
    }
}

fn live_demo(
    args: &DemoArgs,
    script: &Path,
    config: &Path,
    dir: &Path,
    stop: &AtomicBool,
) -> Result<()> {
    // The testbed's names are fixed: one run at a time per machine (the end-to-end test takes
    // the same lock).
    let lock = Lock::take()?;
    testbed(script, &["down"])?;
    eprintln!("botnest demo: bringing the testbed up");
    testbed(script, &["up"])?;
    let bed = Testbed(script);
    // botnest serves on the management namespace's loopback; socat carries the console to
    // this namespace's address.
    let inner = "127.0.0.1:8080";
    let extra = ["--http".to_owned(), inner.to_owned()];
    let mut child = botnest_run(&["ip", "netns", "exec", "bnt-mgmt"], config, dir, &extra)?;
    let log = dir.join("botnest.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("listening on")
    {
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            interrupt(&mut child);
            bail!(
                "botnest run did not start; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut forward = Command::new("socat")
        .arg(format!(
            "TCP-LISTEN:{},bind={},reuseaddr,fork",
            args.http.port(),
            args.http.ip()
        ))
        .arg(format!(
            "EXEC:ip netns exec bnt-mgmt socat STDIO TCP\\:{}",
            inner.replace(':', "\\:")
        ))
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start socat to forward the console")?;
    testbed(script, &["export"])?;
    testbed(
        script,
        &[
            "start",
            "http-botnet",
            "p2p-botnet",
            "worm",
            "bruteforce",
            "irc-botnet",
        ],
    )?;
    println!(
        "botnest demo: the live testbed is up; botnests appear in the web console at {} within \
         a minute or two\n(scripts/testbed.sh status shows what runs). Press Ctrl-C to stop.",
        url(args.http)
    );
    // The operators order spam and a flood once their bots have settled in.
    let orders_at = Instant::now() + Duration::from_secs(30);
    let mut ordered = false;
    let result = loop {
        if stop.load(Relaxed) {
            break Ok(());
        }
        if let Some(status) = child.try_wait()? {
            break Err(anyhow::anyhow!(
                "botnest run exited ({status}); its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        if !ordered && Instant::now() >= orders_at {
            ordered = true;
            testbed(script, &["start", "spam", "flood"])?;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    interrupt(&mut child);
    let _ = forward.kill();
    let _ = forward.wait();
    drop(bed);
    drop(lock);
    result
}
