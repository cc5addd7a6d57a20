//! Blocklist files, read into the detection engine's address sets.
//!
//! Two forms are understood:
//! - plain lists: one address, network or `address:port` per line; `#` and `;` start comments,
//!   and whatever follows the entry on its line is kept as its description (Spamhaus DROP:
//!   `1.2.3.0/24 ; SBL123`);
//! - CSV feeds with a header row naming an address column (`dst_ip`, `ip_address`, `ip`,
//!   `ioc_value`) and optionally a port column (`dst_port`, `port`), the header possibly behind
//!   a `#` as abuse.ch writes it; columns are found by name, so their order does not matter.
//!
//! Lines that are not entries are counted and skipped: a feed with a stray line still loads.

use anyhow::{Context, Result};
use botnest_detect::{Intel, Target};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What loading found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IntelStats {
    /// Files read.
    pub files: usize,
    /// Entries added.
    pub entries: usize,
    /// Entries already listed (by this or an earlier file).
    pub duplicates: usize,
    /// Lines that were neither comments nor entries.
    pub skipped: usize,
}

/// Reads every blocklist file into one set. A file that cannot be read is an error; a bad
/// line is not.
pub fn load(paths: &[PathBuf]) -> Result<(Intel, IntelStats)> {
    let mut intel = Intel::new();
    let mut stats = IntelStats::default();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read blocklist {}", path.display()))?;
        parse(&list_name(path), &text, &mut intel, &mut stats);
        stats.files += 1;
    }
    Ok((intel, stats))
}

/// The name a list is reported under: its file name.
fn list_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Adds the entries of one list's text.
pub fn parse(list: &str, text: &str, intel: &mut Intel, stats: &mut IntelStats) {
    match find_header(text) {
        Some((line, columns)) => parse_csv(list, text, line, columns, intel, stats),
        None => parse_plain(list, text, intel, stats),
    }
}

/// Columns of a CSV feed: where the address is, and the port if there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Columns {
    addr: usize,
    port: Option<usize>,
}

/// A name reduced to lowercase letters and digits, so `dst_ip`, `"DstIP"` and `dst ip` agree.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn header_columns(line: &str) -> Option<Columns> {
    if !line.contains(',') {
        return None;
    }
    let names: Vec<String> = line.split(',').map(normalise).collect();
    let find = |wanted: &[&str]| {
        wanted
            .iter()
            .find_map(|w| names.iter().position(|n| n == w))
    };
    Some(Columns {
        addr: find(&["dstip", "ipaddress", "ip", "iocvalue", "address"])?,
        port: find(&["dstport", "port"]),
    })
}

/// The header of a CSV feed: the index of its line and its columns. Only comment lines may
/// come before it; a plain list's first entry ends the search.
fn find_header(text: &str) -> Option<(usize, Columns)> {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let body = line.trim_start_matches('#').trim();
        if let Some(c) = header_columns(body) {
            return Some((i, c));
        }
        if !line.is_empty() && !line.starts_with('#') && !line.starts_with(';') {
            return None;
        }
    }
    None
}

fn parse_csv(
    list: &str,
    text: &str,
    header: usize,
    columns: Columns,
    intel: &mut Intel,
    stats: &mut IntelStats,
) {
    let data: String = text
        .lines()
        .skip(header + 1)
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .flat_map(|l| [l, "\n"])
        .collect();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data.as_bytes());
    for record in reader.records() {
        let Ok(record) = record else {
            stats.skipped += 1;
            continue;
        };
        let port = columns
            .port
            .and_then(|i| record.get(i))
            .and_then(|p| p.parse::<u16>().ok());
        let target = record
            .get(columns.addr)
            .and_then(|a| a.parse::<Target>().ok())
            .map(|t| with_port(t, port));
        let entry: Vec<&str> = record.iter().collect();
        add(list, target, &entry.join(","), intel, stats);
    }
}

/// A single address with a port column is an endpoint.
fn with_port(t: Target, port: Option<u16>) -> Target {
    match (t, port) {
        (Target::Net(n), Some(p)) if n.prefix_len() == n.max_prefix_len() => {
            Target::Endpoint(n.addr(), p)
        }
        (t, _) => t,
    }
}

fn parse_plain(list: &str, text: &str, intel: &mut Intel, stats: &mut IntelStats) {
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let entry = line
            .split(|c: char| c.is_whitespace() || c == ';' || c == '#')
            .next()
            .unwrap_or_default();
        add(list, entry.parse().ok(), line, intel, stats);
    }
}

fn add(list: &str, target: Option<Target>, entry: &str, intel: &mut Intel, stats: &mut IntelStats) {
    match target {
        Some(t) if intel.insert(t, list, entry) => stats.entries += 1,
        Some(_) => stats.duplicates += 1,
        None => stats.skipped += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn read(list: &str, text: &str) -> (Intel, IntelStats) {
        let mut intel = Intel::new();
        let mut stats = IntelStats::default();
        parse(list, text, &mut intel, &mut stats);
        (intel, stats)
    }

    #[test]
    fn a_drop_style_list_keeps_its_comments_as_descriptions() {
        let text = "; Spamhaus DROP List 2024/01/01 - (c) 2024 The Spamhaus Project\n\
                    ; Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\n\
                    1.10.16.0/20 ; SBL256894\n\
                    2.56.192.0/22;SBL459831\n\
                    \n\
                    # a hand-written addition\n\
                    198.51.100.7    # seen in an incident\n\
                    203.0.113.5:8443\n\
                    not-an-address ; SBL1\n";
        let (intel, stats) = read("drop.txt", text);
        assert_eq!(stats.entries, 4);
        assert_eq!(stats.skipped, 1);
        let l = intel.lookup(ip("1.10.17.3"), None).unwrap();
        assert_eq!(
            (l.list(), l.entry()),
            ("drop.txt", "1.10.16.0/20 ; SBL256894")
        );
        assert!(intel.contains(ip("2.56.195.255"), None));
        assert!(intel.contains(ip("198.51.100.7"), Some(80)));
        assert!(intel.contains(ip("203.0.113.5"), Some(8443)));
        assert!(!intel.contains(ip("203.0.113.5"), Some(443)));
    }

    #[test]
    fn an_abuse_ch_csv_with_a_commented_header_gives_endpoints() {
        let text = "################################################################\n\
                    # abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)          #\n\
                    ################################################################\n\
                    #\n\
                    # \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\
                    \"2023-01-17 07:44:46\",\"192.0.2.44\",\"443\",\"online\",\"2024-01-01\",\"QakBot\"\n\
                    \"2023-02-01 10:00:00\",\"198.51.100.9\",\"8080\",\"offline\",\"2023-06-01\",\"Emotet\"\n\
                    \"2023-02-01 10:00:00\",\"bad\",\"8080\",\"offline\",\"2023-06-01\",\"Emotet\"\n\
                    # end of list\n";
        let (intel, stats) = read("feodo.csv", text);
        assert_eq!((stats.entries, stats.skipped), (2, 1));
        let l = intel.lookup(ip("192.0.2.44"), Some(443)).unwrap();
        assert!(l.is_endpoint());
        assert!(l.entry().contains("QakBot"), "{}", l.entry());
        assert!(!intel.contains(ip("192.0.2.44"), Some(80)));
        assert!(intel.contains(ip("198.51.100.9"), Some(8080)));
    }

    #[test]
    fn csv_columns_are_found_by_name_in_any_order() {
        let text = "port,comment,ip_address\n8443,first,192.0.2.1\n,no port,192.0.2.16/28\n";
        let (intel, stats) = read("feed.csv", text);
        assert_eq!(stats.entries, 2);
        assert!(intel.contains(ip("192.0.2.1"), Some(8443)));
        assert!(!intel.contains(ip("192.0.2.1"), Some(443)));
        assert!(intel.contains(ip("192.0.2.20"), None));
    }

    #[test]
    fn threatfox_style_address_and_port_values_are_endpoints() {
        let text = "# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\"\n\
                    \"2024-01-01 00:00:00\",\"1\",\"192.0.2.8:4444\",\"ip:port\"\n";
        let (intel, _) = read("threatfox.csv", text);
        assert!(intel.contains(ip("192.0.2.8"), Some(4444)));
        assert!(!intel.contains(ip("192.0.2.8"), None));
    }

    #[test]
    fn several_files_load_into_one_set_and_a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.txt");
        std::fs::write(&a, "192.0.2.0/24\n").unwrap();
        std::fs::write(&b, "192.0.2.0/24\n198.51.100.1\n").unwrap();
        let (intel, stats) = load(&[a.clone(), b]).unwrap();
        assert_eq!(
            stats,
            IntelStats {
                files: 2,
                entries: 2,
                duplicates: 1,
                skipped: 0
            }
        );
        assert_eq!(intel.lookup(ip("192.0.2.3"), None).unwrap().list(), "a.txt");
        assert!(load(&[a, dir.path().join("missing")]).is_err());
    }
}

/// Blocklist files watched for changes, reloaded without a restart.
#[derive(Debug)]
pub struct Watched {
    paths: Vec<PathBuf>,
    stamps: Vec<Option<std::time::SystemTime>>,
}

impl Watched {
    /// Watches these files; nothing is loaded until [`Watched::reload_if_changed`].
    pub fn new(paths: Vec<PathBuf>) -> Watched {
        let stamps = vec![None; paths.len()];
        Watched { paths, stamps }
    }

    fn current(&self) -> Vec<Option<std::time::SystemTime>> {
        self.paths
            .iter()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }

    /// Loads the lists again when any file changed (or on the first call); `None` when nothing
    /// changed. A list that fails to load keeps the previous lists in force and is logged.
    pub fn reload_if_changed(&mut self) -> Option<Intel> {
        if self.paths.is_empty() {
            return None;
        }
        let now = self.current();
        if now == self.stamps {
            return None;
        }
        self.stamps = now;
        match load(&self.paths) {
            Ok((intel, stats)) => {
                tracing::info!(
                    files = stats.files,
                    entries = stats.entries,
                    skipped_lines = stats.skipped,
                    "blocklists loaded"
                );
                Some(intel)
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "blocklists not reloaded; the previous lists stay in force");
                None
            }
        }
    }
}

#[cfg(test)]
mod watch_tests {
    use super::*;

    #[test]
    fn blocklists_reload_when_a_file_changes_and_not_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.txt");
        std::fs::write(&path, "198.51.100.7\n").unwrap();
        let mut w = Watched::new(vec![path.clone()]);
        let first = w.reload_if_changed().expect("first load");
        assert!(first.contains("198.51.100.7".parse().unwrap(), None));
        assert!(w.reload_if_changed().is_none());

        std::fs::write(&path, "203.0.113.9\n").unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let second = w.reload_if_changed().expect("reloaded");
        assert!(second.contains("203.0.113.9".parse().unwrap(), None));
        assert!(!second.contains("198.51.100.7".parse().unwrap(), None));
    }
}
