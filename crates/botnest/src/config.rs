//! The configuration file (TOML). Every setting has a default, so botnest runs without one;
//! command-line flags override the file.
//!
//! ```toml
//! [listen]
//! listen = ["udp://[::]:4739", "tcp://[::]:4739", "udp://[::]:2055"]
//! allow = ["10.0.0.0/8", "2001:db8::/32"]   # exporters allowed to send; empty: all
//! receive_buffer = 33554432                  # bytes per UDP socket
//!
//! [decoder]
//! template_lifetime = 1800   # seconds a UDP template lives without a refresh
//! pending_timeout = 30       # seconds data waits for its template
//! max_sessions = 10000
//!
//! [decoder.clock]            # exporter clocks that disagree with the collector's
//! correct = true             # shift records by the offset (run, analyze; decode and collect
//!                            # only with --correct-clocks)
//! tolerance = 5              # seconds of offset left alone
//! samples = 15               # messages whose arrival - export offsets give the median
//!
//! [output]
//! format = "table"           # table, json or none
//! write = "/var/lib/botnest/ipfix"  # write rotated RFC 5655 files here
//! rotate_seconds = 300
//! rotate_bytes = 268435456
//! state_dir = "/var/lib/botnest"    # templates, verdicts and botnests kept across restarts
//!
//! [alerts]                   # botnest run
//! json = "/var/log/botnest/alerts.json"  # JSON lines, appended; "-" for stdout
//! syslog = "udp://127.0.0.1:514"         # or tcp://HOST:PORT (octet counting)
//! webhook = "http://127.0.0.1:8080/botnest"
//! rate_per_second = 10       # per sink; 0: no limit
//! burst = 100
//! facility = "daemon"        # or local0 ... local7, or the number
//! repeat_seconds = 3600      # an identical alert is not sent again within this time
//!
//! [detect]
//! allow = ["10.1.2.3", "198.51.100.0/24", "203.0.113.5:443"]  # never reported
//! blocklists = ["/etc/botnest/feodo.csv", "/etc/botnest/drop.txt"]
//!
//! [detect.p2p.discovery]     # peer discovery: lone UDP datagrams to many external peers
//! min_peers = 16             # distinct peers probed (no answer) for a verdict
//! min_minutes = 3            # distinct minutes in which a new peer was probed
//! min_unanswered_share = 0.75
//!
//! [web]                      # botnest run: web console, API, live events, /metrics
//! listen = "127.0.0.1:8080"  # another address than loopback needs a token
//! enabled = true             # false: no HTTP at all (or --http none)
//! token = "change-me"        # Authorization: Bearer TOKEN; also BOTNEST_TOKEN
//! recent_flows = 100000      # flow records kept for /api/flows
//! publish_ms = 250           # how often detection publishes a new view at most
//! allowed_hosts = ["botnest.example.net"]  # Host names accepted behind a reverse proxy
//! status_seconds = 5         # live `status` event interval
//! ```

use crate::output::Format;
use anyhow::{Context, Result};
use botnest_collect::{DecoderConfig, ListenConfig};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Sockets and exporters.
    pub listen: ListenConfig,
    /// Decoder limits and timers.
    pub decoder: DecoderConfig,
    /// What to do with records.
    pub output: OutputConfig,
    /// Detection.
    pub detect: botnest_detect::DetectConfig,
    /// Where `botnest run` sends alerts.
    pub alerts: crate::alerts::AlertConfig,
    /// The web console and API of `botnest run`.
    pub web: botnest_web::WebConfig,
}

/// Output settings.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// How records are printed.
    pub format: Format,
    /// Directory for rotated IPFIX files; none writes no files.
    pub write: Option<PathBuf>,
    /// Start a new file after this many seconds.
    pub rotate_seconds: u64,
    /// Start a new file after this many bytes.
    pub rotate_bytes: u64,
    /// Where templates are kept across restarts; none keeps them only in memory.
    pub state_dir: Option<PathBuf>,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            format: Format::Table,
            write: None,
            rotate_seconds: 300,
            rotate_bytes: 256 << 20,
            state_dir: default_state_dir(),
        }
    }
}

/// `$STATE_DIRECTORY` (systemd), `$XDG_STATE_HOME/botnest`, or `~/.local/state/botnest`.
fn default_state_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("STATE_DIRECTORY") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return Some(Path::new(&d).join("botnest"));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state/botnest"))
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("bad config {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("config.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .collect::<Vec<_>>()
            .join("\n");
        let c: Config = toml::from_str(&example).unwrap();
        assert_eq!(c.listen.listen.len(), 3);
        assert_eq!(c.listen.allow.len(), 2);
        assert_eq!(c.decoder.template_lifetime.as_secs(), 1800);
        assert_eq!(c.decoder.clock.tolerance.as_secs(), 5);
        assert_eq!(c.detect.p2p.discovery.min_minutes, 3);
        assert_eq!(c.output.rotate_seconds, 300);
        assert_eq!(c.alerts.syslog.as_deref(), Some("udp://127.0.0.1:514"));
        assert_eq!(c.alerts.facility, crate::alerts::Facility(3));
        assert_eq!(c.detect.allow.len(), 3);
        assert_eq!(c.detect.allow[2].to_string(), "203.0.113.5:443");
        assert_eq!(c.detect.blocklists.len(), 2);
        assert_eq!(c.web.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.web.token.as_deref(), Some("change-me"));
        assert_eq!(c.web.recent_flows, 100_000);
        assert_eq!(c.web.allowed_hosts, ["botnest.example.net"]);
    }

    #[test]
    fn a_bad_allow_entry_is_refused() {
        assert!(toml::from_str::<Config>("[detect]\nallow = [\"example.com\"]").is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("[listen]\nlisten_on = []").is_err());
    }
}
