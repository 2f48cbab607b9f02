//! Servers that misbehave, and a port that refuses connections.

use crate::sync::lock;
use std::io::{self, Read};
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::Duration;

/// How a [`FaultyServer`] misbehaves.
///
/// ```
/// use pottery::testing::{FaultyServer, Misbehaviour};
///
/// let server = FaultyServer::start(Misbehaviour::Http)?;
/// assert_eq!(server.misbehaviour(), Misbehaviour::Http);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// Accepts connections and never answers nor closes them: a hung host behind a live
    /// kernel.
    Silent,
    /// Answers every request with a byte that starts no RESP type (`0xff`) followed by
    /// random bytes, and keeps the connection open.
    Garbage,
    /// Answers the first request as an HTTP server does (`HTTP/1.1 400 Bad Request`, headers
    /// and a body) and closes the connection: a Redis URL pointing at a web server.
    Http,
}

/// A TCP server on a free loopback port that is not Redis and misbehaves as asked: for tests
/// that check what a client does when the server hangs, answers garbage, or is something
/// else. Threads and `std::net` only; stopped, and its connections closed, when dropped.
///
/// ```
/// use std::time::Duration;
/// use pottery::testing::FaultyServer;
///
/// let server = FaultyServer::silent()?;
/// let redis = pottery::Redis::builder(&server.url())
///     .response_timeout(Some(Duration::from_millis(200)))
///     .build()?;
/// assert!(matches!(redis.ping(), Err(pottery::Error::Redis { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FaultyServer {
    pub(super) misbehaviour: Misbehaviour,
    pub(super) port: u16,
    pub(super) shared: std::sync::Arc<FaultyShared>,
    pub(super) acceptor: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
pub(super) struct FaultyShared {
    pub(super) stop: std::sync::atomic::AtomicBool,
    pub(super) accepted: std::sync::atomic::AtomicUsize,
    /// Every connection accepted, so that dropping the server closes them.
    pub(super) streams: Mutex<Vec<std::net::TcpStream>>,
    pub(super) workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// What an HTTP server says to a Redis command.
pub(super) const HTTP_REPLY: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Content-Length: 11\r\nConnection: close\r\n\r\nBad Request";

impl FaultyServer {
    /// Starts a server that misbehaves as `misbehaviour` says.
    ///
    /// ```
    /// use pottery::testing::{FaultyServer, Misbehaviour};
    ///
    /// let server = FaultyServer::start(Misbehaviour::Garbage)?;
    /// assert!(server.port() > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start(misbehaviour: Misbehaviour) -> io::Result<FaultyServer> {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        // Polled, so that dropping the server stops the acceptor whatever state it is in.
        listener.set_nonblocking(true)?;
        let shared = std::sync::Arc::new(FaultyShared::default());
        let s = std::sync::Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("pottery-faulty-server".into())
            .spawn(move || {
                while !s.stop.load(Ordering::SeqCst) {
                    let stream = match listener.accept() {
                        Ok((stream, _)) => stream,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(2));
                            continue;
                        }
                    };
                    let _ = stream.set_nonblocking(false);
                    s.accepted.fetch_add(1, Ordering::SeqCst);
                    if let Ok(kept) = stream.try_clone() {
                        lock(&s.streams).push(kept);
                    }
                    if misbehaviour == Misbehaviour::Silent {
                        continue;
                    }
                    let s2 = std::sync::Arc::clone(&s);
                    let worker = std::thread::Builder::new()
                        .name("pottery-faulty-conn".into())
                        .spawn(move || answer(stream, misbehaviour, &s2));
                    if let Ok(worker) = worker {
                        let mut workers = lock(&s.workers);
                        workers.retain(|w| !w.is_finished());
                        workers.push(worker);
                    }
                }
            })?;
        Ok(FaultyServer {
            misbehaviour,
            port,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// A server that accepts connections and never answers ([`Misbehaviour::Silent`]).
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::silent()?;
    /// # let _ = server;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn silent() -> io::Result<FaultyServer> {
        FaultyServer::start(Misbehaviour::Silent)
    }

    /// A server that answers garbage ([`Misbehaviour::Garbage`]).
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::garbage()?;
    /// let redis = pottery::Redis::from_url(&server.url())?;
    /// assert!(redis.ping().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn garbage() -> io::Result<FaultyServer> {
        FaultyServer::start(Misbehaviour::Garbage)
    }

    /// A server that answers as an HTTP server does ([`Misbehaviour::Http`]).
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::http()?;
    /// let redis = pottery::Redis::from_url(&server.url())?;
    /// assert!(redis.ping().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn http() -> io::Result<FaultyServer> {
        FaultyServer::start(Misbehaviour::Http)
    }

    /// How it misbehaves.
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::silent()?;
    /// assert_eq!(server.misbehaviour(), pottery::testing::Misbehaviour::Silent);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn misbehaviour(&self) -> Misbehaviour {
        self.misbehaviour
    }

    /// The port it listens on (loopback).
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::silent()?;
    /// assert_ne!(server.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A Redis URL for it: `redis://127.0.0.1:<port>/0`.
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::silent()?;
    /// assert_eq!(server.url(), format!("redis://127.0.0.1:{}/0", server.port()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// How many connections it has accepted so far.
    ///
    /// ```
    /// let server = pottery::testing::FaultyServer::http()?;
    /// let _ = pottery::Redis::from_url(&server.url())?.ping();
    /// assert_eq!(server.connections(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connections(&self) -> usize {
        self.shared
            .accepted
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Serves one connection of a [`FaultyServer`] that answers (garbage or HTTP).
pub(super) fn answer(mut stream: std::net::TcpStream, how: Misbehaviour, shared: &FaultyShared) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    // Wake up now and then to notice that the server was dropped.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut seed = u64::from(stream.peer_addr().map_or(0, |a| a.port()))
        ^ u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos(),
        )
        | 1;
    let mut buf = [0u8; 4096];
    while !shared.stop.load(Ordering::SeqCst) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
        match how {
            Misbehaviour::Http => {
                let _ = stream.write_all(HTTP_REPLY);
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return;
            }
            _ => {
                // 0xff starts no RESP2 or RESP3 type; then random bytes (xorshift).
                let mut reply = vec![0xff];
                for _ in 0..63 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    reply.push(seed.to_le_bytes()[0]);
                }
                reply.extend_from_slice(b"\r\n");
                if stream.write_all(&reply).is_err() {
                    return;
                }
            }
        }
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in lock(&self.shared.streams).drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        for worker in lock(&self.shared.workers).drain(..) {
            let _ = worker.join();
        }
    }
}

/// A loopback port that is known to be closed: connecting to it is refused at once. The port
/// is held by a socket that is bound and never listens, so no other process can take it
/// while this value lives; it is freed when dropped.
///
/// ```
/// let closed = pottery::testing::RefusedPort::new()?;
/// let redis = pottery::Redis::from_url(&closed.url())?;
/// assert!(matches!(redis.ping(), Err(pottery::Error::Redis { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RefusedPort {
    pub(super) socket: std::os::fd::OwnedFd,
    pub(super) port: u16,
}

impl RefusedPort {
    /// Binds a fresh loopback port without listening on it.
    ///
    /// ```
    /// let closed = pottery::testing::RefusedPort::new()?;
    /// assert!(std::net::TcpStream::connect(("127.0.0.1", closed.port())).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<RefusedPort> {
        RefusedPort::bind(0)
    }

    /// Binds `port` (0: a fresh one) without listening: what a stopped server leaves, so that
    /// no server started meanwhile (by this or another test process) takes its port.
    pub(super) fn bind(port: u16) -> io::Result<RefusedPort> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: plain socket calls on a descriptor we own; the address structs are
        // initialised before use and their sizes passed exactly.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let socket = std::os::fd::OwnedFd::from_raw_fd(fd);
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            addr.sin_port = port.to_be();
            // A connection of the stopped server may linger in TIME_WAIT on this port.
            let one: libc::c_int = 1;
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                (&raw const one).cast::<libc::c_void>(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::bind(
                socket.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                len,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            let mut bound: libc::sockaddr_in = std::mem::zeroed();
            let mut bound_len = len;
            if libc::getsockname(
                socket.as_raw_fd(),
                (&raw mut bound).cast::<libc::sockaddr>(),
                &mut bound_len,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(RefusedPort {
                socket,
                port: u16::from_be(bound.sin_port),
            })
        }
    }

    /// The closed port.
    ///
    /// ```
    /// let closed = pottery::testing::RefusedPort::new()?;
    /// assert_ne!(closed.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn port(&self) -> u16 {
        let _ = &self.socket;
        self.port
    }

    /// A Redis URL for it: `redis://127.0.0.1:<port>/0`.
    ///
    /// ```
    /// let closed = pottery::testing::RefusedPort::new()?;
    /// assert!(closed.url().ends_with(&format!(":{}/0", closed.port())));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}
