//! Sockets: UDP and TCP listeners feeding a shared [`Decoder`].
//!
//! Each UDP socket has a reader thread that decodes datagrams as they arrive, so no datagram
//! waits in an internal queue; what the sink does with the records (print them, write files,
//! detect) must not block that thread, and a sink that hands records on through a bounded queue
//! counts what it had to drop. Kernel drops on each socket (its receive buffer overflowing) are
//! read from `/proc/net/udp` and reported with the other counters. TCP connections (RFC 7011
//! section 10.4) each get a thread that frames IPFIX messages from the stream.

use crate::decoder::{Decoder, SessionKey, Sink, Transport};
use botnest_flow::Timestamp;
use ipnet::IpNet;
use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::io::{self, IoSliceMut, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// IANA's port for IPFIX (RFC 7011 section 10.3).
pub const IPFIX_PORT: u16 = 4739;
/// The port NetFlow exporters send to by convention.
pub const NETFLOW_PORT: u16 = 2055;

/// A socket to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Endpoint {
    /// A UDP socket.
    Udp(SocketAddr),
    /// A TCP listening socket.
    Tcp(SocketAddr),
}

impl Endpoint {
    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Endpoint::Udp(a) | Endpoint::Tcp(a) => *a,
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    /// `udp://ADDR:PORT`, `tcp://ADDR:PORT`, or `ADDR:PORT` for UDP. IPv6 addresses go in
    /// brackets: `tcp://[::1]:4739`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, rest) = match s.split_once("://") {
            Some((k, r)) => (k, r),
            None => ("udp", s),
        };
        let addr: SocketAddr = rest
            .parse()
            .map_err(|e| format!("bad listen address {rest:?}: {e}"))?;
        match kind {
            "udp" => Ok(Endpoint::Udp(addr)),
            "tcp" => Ok(Endpoint::Tcp(addr)),
            other => Err(format!(
                "unknown transport {other:?} (use udp:// or tcp://)"
            )),
        }
    }
}

impl TryFrom<String> for Endpoint {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.to_string()
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Udp(a) => write!(f, "udp://{a}"),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// Sockets and their limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// Where to listen. Default: UDP and TCP on port 4739 (IPFIX) and UDP 2055 (NetFlow), on
    /// every IPv4 and IPv6 address.
    pub listen: Vec<Endpoint>,
    /// Exporters allowed to send; empty allows every exporter. Others are dropped and counted.
    pub allow: Vec<IpNet>,
    /// Receive buffer asked for each UDP socket, in bytes. The kernel caps it at
    /// `net.core.rmem_max`; the size granted is logged.
    pub receive_buffer: usize,
    /// TCP connections served at once; more are refused.
    pub max_tcp_connections: usize,
    /// A TCP exporter that sends nothing for this long in the middle of a message is dropped.
    #[serde(with = "secs")]
    pub tcp_stall_timeout: Duration,
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        let any = |port| SocketAddr::new(IpAddr::from([0u16; 8]), port);
        ListenConfig {
            listen: vec![
                Endpoint::Udp(any(IPFIX_PORT)),
                Endpoint::Tcp(any(IPFIX_PORT)),
                Endpoint::Udp(any(NETFLOW_PORT)),
            ],
            allow: Vec::new(),
            receive_buffer: 32 << 20,
            max_tcp_connections: 256,
            tcp_stall_timeout: Duration::from_secs(60),
        }
    }
}

/// Counters of one listening socket.
#[derive(Debug, Default)]
pub struct SocketStats {
    /// Datagrams (UDP) or messages (TCP) received.
    pub messages: AtomicU64,
    /// Bytes received.
    pub bytes: AtomicU64,
    /// Messages from exporters outside the allow-list.
    pub not_allowed: AtomicU64,
    /// Datagrams the kernel dropped because the receive buffer was full.
    pub kernel_drops: AtomicU64,
    /// TCP connections accepted.
    pub connections: AtomicU64,
    /// TCP connections refused because too many were open.
    pub connections_refused: AtomicU64,
    /// TCP connections dropped because the exporter stalled inside a message.
    pub stalled: AtomicU64,
    /// TCP connections that ended inside a message.
    pub truncated: AtomicU64,
    /// TCP connections dropped because the stream was not IPFIX.
    pub bad_streams: AtomicU64,
}

/// Builds one sink per reader thread.
pub type SinkFactory = Arc<dyn Fn() -> Box<dyn Sink + Send> + Send + Sync>;

/// A running collector: its sockets, threads and the shared decoder.
#[derive(Debug)]
pub struct Collector {
    shutdown: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    decoder: Arc<Mutex<Decoder>>,
    sockets: Vec<(Endpoint, Arc<SocketStats>)>,
}

/// The current time as a [`Timestamp`]; the only clock read of the collector.
pub fn wall_clock() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(d.as_nanos() as u64)
}

struct Shared {
    decoder: Arc<Mutex<Decoder>>,
    allow: Vec<IpNet>,
    shutdown: Arc<AtomicBool>,
    make_sink: SinkFactory,
}

impl Shared {
    fn allowed(&self, ip: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

impl Collector {
    /// Binds every endpoint and starts the reader threads.
    pub fn start(
        config: &ListenConfig,
        decoder: Decoder,
        make_sink: SinkFactory,
    ) -> io::Result<Collector> {
        let shutdown = Arc::new(AtomicBool::new(false));
        let decoder = Arc::new(Mutex::new(decoder));
        let shared = Arc::new(Shared {
            decoder: Arc::clone(&decoder),
            allow: config.allow.clone(),
            shutdown: Arc::clone(&shutdown),
            make_sink,
        });
        let mut threads = Vec::new();
        let mut sockets = Vec::new();
        for &endpoint in &config.listen {
            let stats = Arc::new(SocketStats::default());
            let handle = match endpoint {
                Endpoint::Udp(addr) => {
                    let sock = bind_udp(addr, config.receive_buffer)?;
                    let (shared, stats) = (Arc::clone(&shared), Arc::clone(&stats));
                    std::thread::Builder::new()
                        .name(format!("udp {addr}"))
                        .spawn(move || udp_loop(sock, &shared, &stats))?
                }
                Endpoint::Tcp(addr) => {
                    let listener = bind_tcp(addr)?;
                    let (shared, stats) = (Arc::clone(&shared), Arc::clone(&stats));
                    let (max, stall) = (config.max_tcp_connections, config.tcp_stall_timeout);
                    std::thread::Builder::new()
                        .name(format!("tcp {addr}"))
                        .spawn(move || accept_loop(listener, shared, stats, max, stall))?
                }
            };
            tracing::info!(%endpoint, "listening");
            threads.push(handle);
            sockets.push((endpoint, stats));
        }
        Ok(Collector {
            shutdown,
            threads,
            decoder,
            sockets,
        })
    }

    /// The shared decoder, for counters and template snapshots.
    pub fn decoder(&self) -> &Arc<Mutex<Decoder>> {
        &self.decoder
    }

    /// Each socket's counters.
    pub fn sockets(&self) -> &[(Endpoint, Arc<SocketStats>)] {
        &self.sockets
    }

    /// The flag that stops every reader thread when set.
    pub fn shutdown_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.shutdown)
    }

    /// Stops the threads and waits for them; returns the decoder.
    pub fn stop(self) -> Arc<Mutex<Decoder>> {
        self.shutdown.store(true, Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        self.decoder
    }
}

/// How often blocked reads wake up to check for shutdown.
const POLL: Duration = Duration::from_millis(200);

fn bind_udp(addr: SocketAddr, rcvbuf: usize) -> io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // One socket for IPv4 and IPv6 exporters.
        sock.set_only_v6(false)?;
    }
    if let Err(e) = sock.set_recv_buffer_size(rcvbuf) {
        tracing::warn!(%addr, error = %e, "could not set the UDP receive buffer");
    }
    let granted = sock.recv_buffer_size().unwrap_or(0);
    // Linux doubles the size asked for (the other half covers its bookkeeping) and reports the
    // doubled size; anything below twice the request means the request was capped by
    // net.core.rmem_max.
    if granted < rcvbuf.saturating_mul(2) {
        tracing::warn!(
            %addr, asked = rcvbuf, granted,
            "UDP receive buffer capped by net.core.rmem_max: bursts may be dropped by the kernel"
        );
    }
    sock.bind(&addr.into())?;
    sock.set_read_timeout(Some(POLL))?;
    Ok(sock.into())
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        sock.set_only_v6(false)?;
    }
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(128)?;
    let listener: TcpListener = sock.into();
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// IPv4 exporters reaching a dual-stack socket appear as `::ffff:a.b.c.d`; they are the same
/// exporters as over an IPv4 socket, so their sessions and allow-list checks use the IPv4 form.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

/// Datagrams read with one system call. A busy socket is drained with a few calls per
/// millisecond instead of one per datagram; the decoder is locked once per batch.
const BATCH: usize = 32;
/// A buffer for any UDP datagram (the IPv4 maximum payload is 65,507 bytes).
const MAX_DATAGRAM: usize = 65_536;

/// The longest pause after a socket was drained, to let datagrams gather.
const MAX_NAP: Duration = Duration::from_millis(20);

/// The longest a reader thread may pause after it drained its socket: the time the kernel's
/// buffer takes to fill at 1 GB/s, and never more than [`MAX_NAP`]. `granted` is the size
/// Linux reports, twice the size asked for; what it counts against that size is each
/// datagram's whole allocation (payload and bookkeeping), so 1 GB/s of it is less than 8 Gbit/s
/// of export traffic. Flow records are seconds old when exported, so such a delay is
/// immaterial.
fn nap_bound(granted: usize) -> Duration {
    Duration::from_nanos(granted as u64).min(MAX_NAP)
}

/// Datagrams a reader thread aims to find queued each time it wakes up, read in batches of
/// [`BATCH`] without blocking in between.
const PER_WAKE: usize = 8 * BATCH;

/// How long to pause after the socket was drained, `n` datagrams having been read over the
/// last `cycle` (since the previous pause began). Every wake-up costs a context switch,
/// which at moderate rates cost more than decoding the few datagrams each wake-up found;
/// pausing about as long as [`PER_WAKE`] datagrams take to arrive at that rate lets the next
/// wake-up read them all at once.
fn nap_after(n: usize, cycle: Duration, bound: Duration) -> Duration {
    let per_datagram = cycle / n.max(1) as u32;
    per_datagram.saturating_mul(PER_WAKE as u32).min(bound)
}

/// Buffers for a batch of datagrams and what `recvmmsg` said about each.
struct Datagrams {
    buf: Vec<u8>,
    lens: [usize; BATCH],
    peers: [Option<SocketAddr>; BATCH],
    headers: MultiHeaders<SockaddrStorage>,
}

impl Datagrams {
    fn new() -> Self {
        Datagrams {
            buf: vec![0; BATCH * MAX_DATAGRAM],
            lens: [0; BATCH],
            peers: [None; BATCH],
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Takes every datagram already queued, up to [`BATCH`]. With `wait`, first waits (up to
    /// the socket's read timeout) for at least one; without, an empty socket is `WouldBlock`.
    /// Returns how many were read.
    fn receive(&mut self, sock: &UdpSocket, wait: bool) -> io::Result<usize> {
        use std::os::unix::io::AsRawFd;
        let mut chunks = self.buf.chunks_exact_mut(MAX_DATAGRAM);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        let received = recvmmsg(
            sock.as_raw_fd(),
            &mut self.headers,
            iovs.iter_mut(),
            if wait {
                MsgFlags::MSG_WAITFORONE
            } else {
                MsgFlags::MSG_DONTWAIT
            },
            None,
        )
        .map_err(io::Error::from)?;
        let mut n = 0;
        for (i, msg) in received.enumerate() {
            self.lens[i] = msg.bytes;
            self.peers[i] = msg.address.as_ref().and_then(socket_addr);
            n = i + 1;
        }
        Ok(n)
    }

    /// The `i`th datagram of the last batch and its sender.
    fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let bytes = self.buf.get(i * MAX_DATAGRAM..)?.get(..self.lens[i])?;
        Some((bytes, self.peers[i]?))
    }
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

fn udp_loop(sock: UdpSocket, shared: &Shared, stats: &SocketStats) {
    let local = sock
        .local_addr()
        .map(canonical)
        .unwrap_or(crate::decoder::UNKNOWN_EXPORTER);
    let inode = socket_inode(&sock);
    let nap_max = nap_bound(SockRef::from(&sock).recv_buffer_size().unwrap_or(0));
    let mut sink = (shared.make_sink)();
    let mut batch = Datagrams::new();
    let mut last_drop_check = Instant::now();
    // Whether the next read may block: not while draining a socket that gave a full batch, so
    // that a drained socket leads to a pause, never to one more wake-up for a few datagrams.
    let mut wait = true;
    // Datagrams read since the last pause began, for the rate the next pause is sized by.
    let (mut cycle_start, mut cycle_datagrams) = (Instant::now(), 0usize);
    while !shared.shutdown.load(Relaxed) {
        if last_drop_check.elapsed() >= Duration::from_secs(1) {
            last_drop_check = Instant::now();
            if let Some(drops) = inode.and_then(udp_kernel_drops) {
                stats.kernel_drops.store(drops, Relaxed);
            }
        }
        let n = match batch.receive(&sock, wait) {
            Ok(n) => n,
            Err(e) if !wait && e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                sink.flush();
                continue;
            }
            Err(e) => {
                tracing::warn!(%local, error = %e, "UDP receive failed");
                continue;
            }
        };
        if n > 0 {
            decode_batch(&batch, n, local, shared, stats, sink.as_mut());
            sink.flush();
            cycle_datagrams += n;
        }
        if n == BATCH {
            wait = false;
            continue;
        }
        let nap = nap_after(cycle_datagrams, cycle_start.elapsed(), nap_max);
        (cycle_start, cycle_datagrams, wait) = (Instant::now(), 0, true);
        if !nap.is_zero() {
            std::thread::sleep(nap);
        }
    }
    sink.flush();
    if let Some(drops) = inode.and_then(udp_kernel_drops) {
        stats.kernel_drops.store(drops, Relaxed);
    }
}

/// Decodes the datagrams of one batch under one lock of the decoder. They arrived within the
/// same system call, so they share one arrival time.
fn decode_batch(
    batch: &Datagrams,
    n: usize,
    local: SocketAddr,
    shared: &Shared,
    stats: &SocketStats,
    sink: &mut dyn Sink,
) {
    let now = wall_clock();
    let mut decoder = shared.decoder.lock().unwrap_or_else(|p| p.into_inner());
    let mut bytes = 0;
    for (datagram, peer) in (0..n).filter_map(|i| batch.get(i)) {
        let peer = canonical(peer);
        bytes += datagram.len() as u64;
        if !shared.allowed(peer.ip()) {
            stats.not_allowed.fetch_add(1, Relaxed);
            continue;
        }
        let key = SessionKey::udp(peer, local);
        let _ = decoder.decode(&key, now, datagram, sink);
    }
    drop(decoder);
    stats.messages.fetch_add(n as u64, Relaxed);
    stats.bytes.fetch_add(bytes, Relaxed);
}

/// The inode number of a socket, which identifies it in `/proc/net/udp`.
fn socket_inode(sock: &UdpSocket) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::io::AsRawFd;
    std::fs::metadata(format!("/proc/self/fd/{}", sock.as_raw_fd()))
        .ok()
        .map(|m| m.ino())
}

/// The kernel's drop counter of the UDP socket with this inode (last column of
/// `/proc/net/udp` and `/proc/net/udp6`).
fn udp_kernel_drops(inode: u64) -> Option<u64> {
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        if let Some(drops) = parse_udp_drops(&text, inode) {
            return Some(drops);
        }
    }
    None
}

fn parse_udp_drops(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let ino: u64 = cols.get(9)?.parse().ok()?;
        (ino == inode).then(|| cols.last()?.parse().ok()).flatten()
    })
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    stats: Arc<SocketStats>,
    max: usize,
    stall: Duration,
) {
    let open = Arc::new(AtomicU64::new(0));
    let local = listener
        .local_addr()
        .map(canonical)
        .unwrap_or(crate::decoder::UNKNOWN_EXPORTER);
    let mut conns = Vec::new();
    while !shared.shutdown.load(Relaxed) {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                conns.retain(|h: &JoinHandle<()>| !h.is_finished());
                continue;
            }
            Err(e) => {
                tracing::warn!(%local, error = %e, "TCP accept failed");
                std::thread::sleep(POLL);
                continue;
            }
        };
        let peer = canonical(peer);
        if !shared.allowed(peer.ip()) {
            stats.not_allowed.fetch_add(1, Relaxed);
            continue;
        }
        if open.load(Relaxed) as usize >= max {
            stats.connections_refused.fetch_add(1, Relaxed);
            tracing::warn!(exporter = %peer, max, "TCP connection refused: too many open");
            continue;
        }
        stats.connections.fetch_add(1, Relaxed);
        open.fetch_add(1, Relaxed);
        let key = SessionKey {
            transport: Transport::Tcp,
            exporter: peer,
            collector: local,
        };
        let (shared, stats, open) = (Arc::clone(&shared), Arc::clone(&stats), Arc::clone(&open));
        let spawned = std::thread::Builder::new()
            .name(format!("tcp {peer}"))
            .spawn(move || {
                tcp_connection(stream, key, &shared, &stats, stall);
                open.fetch_sub(1, Relaxed);
            });
        match spawned {
            Ok(h) => conns.push(h),
            Err(e) => tracing::error!(error = %e, "could not start a TCP connection thread"),
        }
    }
    for h in conns {
        let _ = h.join();
    }
}

/// Why a TCP stream ended.
#[derive(Debug, PartialEq, Eq)]
enum StreamEnd {
    Closed,
    Truncated,
    Stalled,
    NotIpfix,
    Shutdown,
}

fn tcp_connection(
    mut stream: TcpStream,
    key: SessionKey,
    shared: &Shared,
    stats: &SocketStats,
    stall: Duration,
) {
    tracing::info!(exporter = %key.exporter, "TCP exporter connected");
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(POLL));
    let mut sink = (shared.make_sink)();
    let mut framer = crate::framing::Framer::default();
    let mut chunk = vec![0u8; 65_536];
    let mut last_data = Instant::now();
    let end = loop {
        if shared.shutdown.load(Relaxed) {
            break StreamEnd::Shutdown;
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) => {
                break if framer.is_empty() {
                    StreamEnd::Closed
                } else {
                    StreamEnd::Truncated
                }
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                sink.flush();
                if !framer.is_empty() && last_data.elapsed() >= stall {
                    break StreamEnd::Stalled;
                }
                continue;
            }
            Err(_) => break StreamEnd::Truncated,
        };
        last_data = Instant::now();
        stats.bytes.fetch_add(n as u64, Relaxed);
        framer.push(&chunk[..n]);
        let mut decoder = shared.decoder.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match framer.next_message() {
                Ok(Some(msg)) => {
                    stats.messages.fetch_add(1, Relaxed);
                    let _ = decoder.decode(&key, wall_clock(), msg, sink.as_mut());
                }
                Ok(None) => break,
                Err(_) => break,
            }
        }
        drop(decoder);
        sink.flush();
        if framer.is_broken() {
            break StreamEnd::NotIpfix;
        }
    };
    sink.flush();
    match end {
        StreamEnd::Truncated => stats.truncated.fetch_add(1, Relaxed),
        StreamEnd::Stalled => stats.stalled.fetch_add(1, Relaxed),
        StreamEnd::NotIpfix => stats.bad_streams.fetch_add(1, Relaxed),
        StreamEnd::Closed | StreamEnd::Shutdown => 0,
    };
    if end != StreamEnd::Closed && end != StreamEnd::Shutdown {
        tracing::warn!(exporter = %key.exporter, reason = ?end, "TCP exporter dropped");
    } else {
        tracing::info!(exporter = %key.exporter, "TCP exporter disconnected");
    }
    // RFC 7011 section 8: templates end with their transport session.
    shared
        .decoder
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .close_session(&key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_and_without_scheme() {
        assert_eq!(
            "127.0.0.1:4739".parse(),
            Ok(Endpoint::Udp("127.0.0.1:4739".parse().unwrap()))
        );
        assert_eq!(
            "tcp://[::1]:9".parse(),
            Ok(Endpoint::Tcp("[::1]:9".parse().unwrap()))
        );
        assert!("sctp://1.2.3.4:1".parse::<Endpoint>().is_err());
        assert!("nonsense".parse::<Endpoint>().is_err());
    }

    #[test]
    fn kernel_drops_are_read_from_the_udp_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                     1: 0100007F:1283 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n";
        assert_eq!(parse_udp_drops(table, 4242), Some(17));
        assert_eq!(parse_udp_drops(table, 1), None);
    }

    #[test]
    fn naps_are_bounded_by_the_receive_buffer() {
        // The kernel's default buffer (212,992 bytes, reported as 425,984) fills in 426 us at
        // 1 GB/s.
        assert_eq!(nap_bound(425_984), Duration::from_nanos(425_984));
        assert_eq!(nap_bound(64 << 20), MAX_NAP);
        assert_eq!(nap_bound(0), Duration::ZERO);
    }

    #[test]
    fn naps_last_about_as_long_as_a_wake_ups_datagrams_take_to_arrive() {
        let us = Duration::from_micros;
        // 64 datagrams in 2 ms: the 256 of a wake-up take 8 ms, within a 10 ms bound.
        assert_eq!(nap_after(64, us(2000), us(10_000)), us(8000));
        assert_eq!(nap_after(64, us(2000), us(5000)), us(5000));
        assert_eq!(nap_after(0, us(2), us(100_000)), us(512));
    }

    #[test]
    fn mapped_ipv4_peers_are_canonical() {
        let a: SocketAddr = "[::ffff:10.0.0.1]:5".parse().unwrap();
        assert_eq!(canonical(a), "10.0.0.1:5".parse().unwrap());
    }
}
