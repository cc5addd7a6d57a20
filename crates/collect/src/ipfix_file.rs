//! RFC 5655 IPFIX files: a plain sequence of whole IPFIX messages.
//!
//! [`IpfixFileReader`] frames the messages of a file by their header length.
//! [`IpfixFileWriter`] appends messages to files in a directory, rotating by size or age; each
//! file is written under a `.partial` name and renamed when complete, and every new file starts
//! with the current templates so it can be decoded on its own (RFC 5655 section 8).
//!
//! ```no_run
//! use botnest_collect::ipfix_file::{IpfixFileReader, IpfixFileWriter, RotationPolicy};
//!
//! let policy = RotationPolicy { max_bytes: Some(64 << 20), ..RotationPolicy::default() };
//! let mut writer = IpfixFileWriter::new("/var/lib/botnest", policy)?;
//! # let message = vec![0u8; 16];
//! writer.write_message(&message)?;
//! writer.close()?;
//!
//! for message in IpfixFileReader::open("/var/lib/botnest/botnest-20240101-000000-0000.ipfix")? {
//!     println!("{} bytes", message?.len());
//! }
//! # Ok::<(), botnest_collect::ipfix_file::FileError>(())
//! ```

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// IPFIX message header length (RFC 7011 section 3.1).
const HEADER_LEN: usize = 16;
/// The version number of IPFIX message headers.
const IPFIX_VERSION: u16 = 10;

/// Errors of reading or writing IPFIX files.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened for reading.
    #[error("{}: cannot open: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Reading failed.
    #[error("{}: read error at offset {offset}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Where the message being read starts.
        offset: u64,
        /// The cause.
        source: std::io::Error,
    },
    /// A message header is not a valid IPFIX header.
    #[error("{}: bad message header at offset {offset}: {reason}", path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// Where the header starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The file ends inside a message.
    #[error("{}: truncated message at offset {offset}: {got} of {needed} bytes", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Where the incomplete message starts.
        offset: u64,
        /// Bytes the header (or the header length) calls for.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// Bytes given to the writer are not one whole IPFIX message.
    #[error("not a whole ipfix message: {reason}")]
    InvalidMessage {
        /// What is wrong.
        reason: String,
    },
    /// Creating, writing, syncing or renaming an output file failed.
    #[error("{}: cannot {action}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

/// The header fields the file layer uses (RFC 7011 section 3.1).
#[derive(Debug, Clone, Copy)]
struct Header {
    length: usize,
    export_time: u32,
    domain: u32,
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks the version and length of a 16-byte IPFIX message header.
fn parse_header(h: &[u8; HEADER_LEN]) -> Result<Header, String> {
    let version = u16::from_be_bytes([h[0], h[1]]);
    if version != IPFIX_VERSION {
        return Err(format!("version {version}, expected {IPFIX_VERSION}"));
    }
    let length = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if length < HEADER_LEN {
        return Err(format!(
            "length {length} shorter than the {HEADER_LEN}-byte header"
        ));
    }
    Ok(Header {
        length,
        export_time: be32(h, 4),
        domain: be32(h, 12),
    })
}

/// Checks that `message` is exactly one IPFIX message.
fn parse_message(message: &[u8]) -> Result<Header, FileError> {
    let invalid = |reason| FileError::InvalidMessage { reason };
    let head: &[u8; HEADER_LEN] = message
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| invalid(format!("{} bytes, shorter than a header", message.len())))?;
    let header = parse_header(head).map_err(invalid)?;
    if header.length != message.len() {
        let reason = format!(
            "header length {} but {} bytes given",
            header.length,
            message.len()
        );
        return Err(invalid(reason));
    }
    Ok(header)
}

/// Iterates the IPFIX messages of a file, each as its whole bytes.
#[derive(Debug)]
pub struct IpfixFileReader<R: Read = std::io::BufReader<File>> {
    reader: R,
    path: PathBuf,
    offset: u64,
    done: bool,
}

impl IpfixFileReader {
    /// Opens an IPFIX file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, FileError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| FileError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::from_reader(std::io::BufReader::new(file), path))
    }
}

impl<R: Read> IpfixFileReader<R> {
    /// Reads IPFIX messages from any byte source; `name` is used in error messages.
    pub fn from_reader(reader: R, name: impl Into<PathBuf>) -> Self {
        IpfixFileReader {
            reader,
            path: name.into(),
            offset: 0,
            done: false,
        }
    }

    /// File offset of the next message (after the last one yielded).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn read_message(&mut self) -> Result<Option<Vec<u8>>, FileError> {
        let mut head = [0u8; HEADER_LEN];
        let got = self.read_full(&mut head)?;
        if got == 0 {
            return Ok(None);
        }
        if got < HEADER_LEN {
            return Err(self.truncated(HEADER_LEN, got));
        }
        let header = parse_header(&head).map_err(|reason| FileError::BadHeader {
            path: self.path.clone(),
            offset: self.offset,
            reason,
        })?;
        let mut message = vec![0u8; header.length];
        message[..HEADER_LEN].copy_from_slice(&head);
        let got = self.read_full(&mut message[HEADER_LEN..])?;
        if got < header.length - HEADER_LEN {
            return Err(self.truncated(header.length, HEADER_LEN + got));
        }
        self.offset += header.length as u64;
        Ok(Some(message))
    }

    /// Fills `buf` unless the input ends first; returns the bytes read.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, FileError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    let path = self.path.clone();
                    return Err(FileError::Read {
                        path,
                        offset: self.offset,
                        source,
                    });
                }
            }
        }
        Ok(filled)
    }

    fn truncated(&self, needed: usize, got: usize) -> FileError {
        FileError::Truncated {
            path: self.path.clone(),
            offset: self.offset,
            needed,
            got,
        }
    }
}

impl<R: Read> Iterator for IpfixFileReader<R> {
    type Item = Result<Vec<u8>, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.read_message().transpose();
        self.done = !matches!(result, Some(Ok(_)));
        result
    }
}

/// When a file is old enough to be closed and a new one started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationAge {
    /// Seconds of export time (the message headers' exportTime) since the file's first message.
    ExportTime(u32),
    /// Wall-clock time since the file was opened.
    WallTime(Duration),
}

/// How output files are named and when they are rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Start a new file before a message would make the current one larger than this.
    pub max_bytes: Option<u64>,
    /// Start a new file once the current one is this old.
    pub max_age: Option<RotationAge>,
    /// File name prefix: files are `PREFIX-YYYYMMDD-HHMMSS-NNNN.ipfix`, in UTC.
    pub prefix: String,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            max_bytes: None,
            max_age: None,
            prefix: "botnest".to_owned(),
        }
    }
}

/// The file being written.
#[derive(Debug)]
struct OpenFile {
    out: BufWriter<File>,
    partial: PathBuf,
    path: PathBuf,
    bytes: u64,
    /// Messages written by the caller (not counting repeated templates).
    messages: u64,
    first_export_time: u32,
    opened: Instant,
    /// Observation domains whose templates this file already carries.
    domains: HashSet<u32>,
}

/// Writes IPFIX messages to rotated RFC 5655 files in one directory.
#[derive(Debug)]
pub struct IpfixFileWriter {
    dir: PathBuf,
    policy: RotationPolicy,
    templates: Vec<(Header, Vec<u8>)>,
    current: Option<OpenFile>,
    counter: u32,
    finished: Vec<PathBuf>,
}

impl IpfixFileWriter {
    /// A writer into `dir`, which is created if missing. No file is opened before the first
    /// message.
    pub fn new(dir: impl Into<PathBuf>, policy: RotationPolicy) -> Result<Self, FileError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| FileError::Write {
            path: dir.clone(),
            action: "create directory",
            source,
        })?;
        Ok(IpfixFileWriter {
            dir,
            policy,
            templates: Vec::new(),
            current: None,
            counter: 0,
            finished: Vec::new(),
        })
    }

    /// Sets the messages carrying the templates in use (whole IPFIX messages). Each new file
    /// repeats those of an observation domain just before that domain's first message, with
    /// that message's sequence number and export time, so the file decodes on its own and
    /// without a false sequence gap (template-only messages count no data records).
    pub fn set_templates(&mut self, messages: Vec<Vec<u8>>) -> Result<(), FileError> {
        let parsed = messages
            .into_iter()
            .map(|m| parse_message(&m).map(|h| (h, m)))
            .collect::<Result<Vec<_>, _>>()?;
        self.templates = parsed;
        Ok(())
    }

    /// Appends one whole IPFIX message, rotating first when the policy says so.
    pub fn write_message(&mut self, message: &[u8]) -> Result<(), FileError> {
        let header = parse_message(message)?;
        if self
            .current
            .as_ref()
            .is_some_and(|f| self.is_due(f, &header))
        {
            self.close()?;
        }
        let mut file = match self.current.take() {
            Some(file) => file,
            None => self.open_file(header.export_time)?,
        };
        let written = self.write_into(&mut file, message, &header);
        self.current = Some(file);
        written
    }

    /// Closes the current file if it is older than a wall-clock age limit; true if it did.
    /// Call it now and then when messages may stop arriving.
    pub fn rotate_if_due(&mut self) -> Result<bool, FileError> {
        let due = match (&self.current, self.policy.max_age) {
            (Some(f), Some(RotationAge::WallTime(age))) => f.opened.elapsed() >= age,
            _ => false,
        };
        if due {
            self.close()?;
        }
        Ok(due)
    }

    /// Pushes buffered bytes of the current file to the operating system.
    pub fn flush(&mut self) -> Result<(), FileError> {
        let Some(file) = self.current.as_mut() else {
            return Ok(());
        };
        file.out.flush().map_err(|source| FileError::Write {
            path: file.partial.clone(),
            action: "flush",
            source,
        })
    }

    /// Finishes the current file: flushed, synced and renamed to its final name. The next
    /// message opens a new file.
    pub fn close(&mut self) -> Result<(), FileError> {
        let Some(file) = self.current.take() else {
            return Ok(());
        };
        let fail = |action, source| FileError::Write {
            path: file.partial.clone(),
            action,
            source,
        };
        let inner = file
            .out
            .into_inner()
            .map_err(|e| fail("flush", e.into_error()))?;
        inner.sync_all().map_err(|e| fail("sync", e))?;
        std::fs::rename(&file.partial, &file.path).map_err(|e| fail("rename", e))?;
        self.finished.push(file.path);
        Ok(())
    }

    /// The complete files written so far, oldest first.
    pub fn finished_files(&self) -> &[PathBuf] {
        &self.finished
    }

    fn is_due(&self, file: &OpenFile, next: &Header) -> bool {
        if file.messages == 0 {
            return false;
        }
        let too_big = self
            .policy
            .max_bytes
            .is_some_and(|max| file.bytes + next.length as u64 > max);
        let too_old = match self.policy.max_age {
            Some(RotationAge::ExportTime(secs)) => {
                u64::from(next.export_time) >= u64::from(file.first_export_time) + u64::from(secs)
            }
            Some(RotationAge::WallTime(age)) => file.opened.elapsed() >= age,
            None => false,
        };
        too_big || too_old
    }

    fn write_into(
        &mut self,
        file: &mut OpenFile,
        message: &[u8],
        header: &Header,
    ) -> Result<(), FileError> {
        if file.domains.insert(header.domain) {
            // RFC 5655 section 8: the file must carry the templates its data records use.
            for (_, bytes) in self
                .templates
                .iter()
                .filter(|(t, _)| t.domain == header.domain)
            {
                // Export time and sequence number of the message they now precede.
                let mut repeated = bytes.clone();
                repeated[4..12].copy_from_slice(&message[4..12]);
                append(file, &repeated)?;
            }
        }
        append(file, message)?;
        file.messages += 1;
        Ok(())
    }

    /// Creates the next `.partial` file, skipping names that already exist.
    fn open_file(&mut self, export_time: u32) -> Result<OpenFile, FileError> {
        let stamp = match self.policy.max_age {
            Some(RotationAge::ExportTime(_)) => u64::from(export_time),
            _ => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        loop {
            let name = format!(
                "{}-{}-{:04}.ipfix",
                self.policy.prefix,
                utc_stamp(stamp),
                self.counter
            );
            self.counter = self.counter.wrapping_add(1);
            let path = self.dir.join(&name);
            let partial = self.dir.join(format!("{name}.partial"));
            if path.exists() {
                continue;
            }
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&partial)
            {
                Ok(f) => return Ok(new_open_file(f, partial, path, export_time)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(source) => {
                    return Err(FileError::Write {
                        path: partial,
                        action: "create",
                        source,
                    })
                }
            }
        }
    }
}

impl Drop for IpfixFileWriter {
    fn drop(&mut self) {
        // Best effort: a dropped writer still leaves complete files, never `.partial` ones.
        let _ = self.close();
    }
}

fn new_open_file(f: File, partial: PathBuf, path: PathBuf, export_time: u32) -> OpenFile {
    OpenFile {
        out: BufWriter::new(f),
        partial,
        path,
        bytes: 0,
        messages: 0,
        first_export_time: export_time,
        opened: Instant::now(),
        domains: HashSet::new(),
    }
}

fn append(file: &mut OpenFile, bytes: &[u8]) -> Result<(), FileError> {
    file.out
        .write_all(bytes)
        .map_err(|source| FileError::Write {
            path: file.partial.clone(),
            action: "write",
            source,
        })?;
    file.bytes += bytes.len() as u64;
    Ok(())
}

/// `YYYYMMDD-HHMMSS` in UTC for seconds since the epoch.
fn utc_stamp(secs: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(secs);
    // "YYYY-MM-DDTHH:MM:SSZ"
    let rfc3339 = humantime::format_rfc3339_seconds(time).to_string();
    let digits: String = rfc3339.chars().filter(char::is_ascii_digit).collect();
    match (digits.get(..8), digits.get(8..14)) {
        (Some(date), Some(clock)) => format!("{date}-{clock}"),
        _ => digits,
    }
}

#[cfg(test)]
mod tests;
