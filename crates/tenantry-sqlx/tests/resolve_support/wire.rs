//! A PostgreSQL wire-protocol counter: a TCP proxy in front of the test server that records what
//! clients send, so tests can count round trips and statements without any server setting.
//!
//! * A *round trip* is a burst of client bytes sent after the server last spoke on that
//!   connection (the client waits for an answer between two bursts): pipelined messages written
//!   together count once.
//! * A *statement execution* is a simple `Query` ('Q', its text) or an extended-protocol `Bind`
//!   ('B') of a statement whose text was seen in its `Parse` ('P') on the same connection.
//!
//! Connect through it with [`WireCounter::url`] (`sslmode=disable`, so the bytes are readable).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One client burst: the frontend message types in it and the statements they execute.
#[derive(Debug, Clone, Default)]
pub(crate) struct Burst {
    /// Proxy connection number.
    pub conn: u64,
    /// Message type bytes, in order (e.g. `['B', 'E', 'S']`).
    pub messages: Vec<char>,
    /// Statement texts executed by this burst (`Q` texts, `B` of a parsed statement).
    pub statements: Vec<String>,
}

#[derive(Default)]
struct Log {
    bursts: Vec<Burst>,
}

/// The proxy. Dropping it stops accepting (open connections stay up until their peers close).
pub(crate) struct WireCounter {
    addr: std::net::SocketAddr,
    log: Arc<Mutex<Log>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for WireCounter {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl WireCounter {
    /// Starts a proxy to the server of `db_url` (`postgres://user@host:port/db`).
    pub(crate) async fn start(db_url: &str) -> Self {
        let upstream = host_port(db_url);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let next = Arc::new(AtomicU64::new(0));
        let accept = {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        continue;
                    };
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(pipe(id, client, server, Arc::clone(&log)));
                }
            })
        };
        Self { addr, log, accept }
    }

    /// `db_url` rewritten to go through the proxy, without TLS.
    pub(crate) fn url(&self, db_url: &str) -> String {
        let hp = host_port(db_url);
        let url = db_url.replacen(&hp, &self.addr.to_string(), 1);
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}sslmode=disable")
    }

    /// Forgets everything recorded so far.
    pub(crate) fn reset(&self) {
        self.log.lock().unwrap().bursts.clear();
    }

    /// Every burst recorded since the last reset.
    pub(crate) fn bursts(&self) -> Vec<Burst> {
        self.log.lock().unwrap().bursts.clone()
    }

    /// Round trips since the last reset (all connections).
    pub(crate) fn round_trips(&self) -> usize {
        self.log.lock().unwrap().bursts.len()
    }

    /// Statement executions since the last reset whose text contains `needle`.
    pub(crate) fn executions_of(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .bursts
            .iter()
            .flat_map(|b| &b.statements)
            .filter(|s| s.contains(needle))
            .count()
    }
}

fn host_port(db_url: &str) -> String {
    let rest = db_url.split_once("://").map_or(db_url, |(_, r)| r);
    let rest = rest.split_once('@').map_or(rest, |(_, r)| r);
    let hp = rest.split(['/', '?']).next().unwrap();
    if hp.contains(':') {
        hp.to_owned()
    } else {
        format!("{hp}:5432")
    }
}

async fn pipe(id: u64, client: TcpStream, server: TcpStream, log: Arc<Mutex<Log>>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    // True when the server spoke last: the next client bytes start a new round trip.
    let server_spoke = Arc::new(AtomicBool::new(true));
    let up = {
        let server_spoke = Arc::clone(&server_spoke);
        async move {
            let mut parser = Parser::default();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match cr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let (messages, statements) = parser.feed(&buf[..n]);
                {
                    let mut log = log.lock().unwrap();
                    // Continue this connection's last burst unless the server answered since
                    // (bursts of other connections may have interleaved).
                    let continuing = if server_spoke.swap(false, Ordering::SeqCst) {
                        None
                    } else {
                        log.bursts.iter().rposition(|b| b.conn == id)
                    };
                    let i = continuing.unwrap_or_else(|| {
                        log.bursts.push(Burst {
                            conn: id,
                            ..Burst::default()
                        });
                        log.bursts.len() - 1
                    });
                    log.bursts[i].messages.extend(messages);
                    log.bursts[i].statements.extend(statements);
                }
                if sw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = sw.shutdown().await;
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            server_spoke.store(true, Ordering::SeqCst);
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

/// Splits the client's byte stream into frontend messages.
#[derive(Default)]
struct Parser {
    buf: Vec<u8>,
    started: bool,
    /// Prepared statement name -> text, for this connection.
    prepared: HashMap<String, String>,
}

impl Parser {
    fn feed(&mut self, bytes: &[u8]) -> (Vec<char>, Vec<String>) {
        self.buf.extend_from_slice(bytes);
        let mut messages = Vec::new();
        let mut statements = Vec::new();
        loop {
            if !self.started {
                // Startup packet (or SSLRequest): Int32 length, no type byte.
                if self.buf.len() < 8 {
                    break;
                }
                let len = u32::from_be_bytes(self.buf[0..4].try_into().unwrap()) as usize;
                if self.buf.len() < len {
                    break;
                }
                let code = u32::from_be_bytes(self.buf[4..8].try_into().unwrap());
                assert_ne!(
                    code, 80_877_103,
                    "connect through the counter with sslmode=disable"
                );
                self.buf.drain(..len);
                self.started = true;
                continue;
            }
            if self.buf.len() < 5 {
                break;
            }
            let ty = self.buf[0];
            let len = u32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
            if self.buf.len() < 1 + len {
                break;
            }
            let body = &self.buf[5..1 + len];
            match ty {
                b'Q' => statements.push(cstr(body).0),
                b'P' => {
                    let (name, rest) = cstr(body);
                    let (text, _) = cstr(rest);
                    self.prepared.insert(name, text);
                }
                b'B' => {
                    let (_portal, rest) = cstr(body);
                    let (name, _) = cstr(rest);
                    if let Some(text) = self.prepared.get(&name) {
                        statements.push(text.clone());
                    }
                }
                _ => {}
            }
            messages.push(ty as char);
            self.buf.drain(..1 + len);
        }
        (messages, statements)
    }
}

/// A NUL-terminated string and what follows it.
fn cstr(bytes: &[u8]) -> (String, &[u8]) {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    (
        String::from_utf8_lossy(&bytes[..end]).into_owned(),
        &bytes[(end + 1).min(bytes.len())..],
    )
}
