//! A small HTTP/1.1 server for pull tests that serves a directory like nginx does, but
//! misbehaves on chosen paths: wrong bytes, truncated or oversized bodies, stalls,
//! redirects, error statuses. It records every request path so tests can count fetches.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the server answers a path matching a rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Misbehave {
    /// The file's bytes with the last one flipped.
    WrongBytes,
    /// A Content-Length of the full file, half the bytes, then the connection closes.
    Truncate,
    /// The file followed by this many zero bytes (Content-Length says so).
    Pad(usize),
    /// Accepts the request and never answers (the connection stays open).
    Stall,
    /// `302 Found` to the path with the rule's needle replaced by this.
    Redirect(String),
    /// This HTTP status with an empty body.
    Status(u16),
    /// Answers normally after this many milliseconds.
    Delay(u64),
    /// Serves this file's bytes instead.
    Replace(PathBuf),
}

/// A running server; it lives as long as the test process (threads are detached).
pub struct HostileServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    rules: Arc<Mutex<Vec<(String, Misbehave)>>>,
    log: Arc<Mutex<Vec<String>>>,
    counts: Arc<Counts>,
}

/// Connections and concurrency seen by the server.
#[derive(Default)]
struct Counts {
    connections: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl HostileServer {
    /// Serves `root` on a free loopback port.
    pub fn serve(root: &Path) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let rules: Arc<Mutex<Vec<(String, Misbehave)>>> = Arc::default();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let counts: Arc<Counts> = Arc::default();
        let (root, r, l, c) = (
            root.to_path_buf(),
            rules.clone(),
            log.clone(),
            counts.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                c.connections.fetch_add(1, Ordering::SeqCst);
                let (root, r, l, c) = (root.clone(), r.clone(), l.clone(), c.clone());
                std::thread::spawn(move || {
                    let _ = serve_connection(stream, &root, &r, &l, &c);
                });
            }
        });
        HostileServer {
            base: format!("http://127.0.0.1:{port}"),
            rules,
            log,
            counts,
        }
    }

    /// Misbehaves on every path containing `needle` (later rules win), until cleared.
    pub fn rule(&self, needle: &str, how: Misbehave) {
        self.rules.lock().unwrap().push((needle.to_string(), how));
    }

    /// Behaves again.
    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// How many requests so far had a path containing `needle`.
    pub fn requests_matching(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.contains(needle))
            .count()
    }

    /// How many connections clients have opened so far.
    pub fn connections(&self) -> usize {
        self.counts.connections.load(Ordering::SeqCst)
    }

    /// The most requests the server was answering at one time.
    pub fn max_in_flight(&self) -> usize {
        self.counts.max_in_flight.load(Ordering::SeqCst)
    }

    /// Every request path so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn serve_connection(
    stream: TcpStream,
    root: &Path,
    rules: &Mutex<Vec<(String, Misbehave)>>,
    log: &Mutex<Vec<String>>,
    counts: &Counts,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        // Skip the headers: GET requests carry no body.
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        log.lock().unwrap().push(path.clone());
        let now = counts.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counts.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let answered = answer(&mut out, &path, root, rules);
        counts.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !answered? {
            return Ok(());
        }
    }
}

/// Answers one request; false when the connection must end.
fn answer(
    out: &mut TcpStream,
    path: &str,
    root: &Path,
    rules: &Mutex<Vec<(String, Misbehave)>>,
) -> std::io::Result<bool> {
    let how = rules
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(n, _)| path.contains(n.as_str()))
        .map(|(n, h)| (n.clone(), h.clone()));
    let file = root.join(path.trim_start_matches('/'));
    let body = |f: &Path| std::fs::read(f).ok();
    let (needle, how) = match how {
        Some((n, h)) => (n, Some(h)),
        None => (String::new(), None),
    };
    match how {
        None => respond(out, body(&file))?,
        Some(Misbehave::Delay(ms)) => {
            std::thread::sleep(Duration::from_millis(ms));
            respond(out, body(&file))?;
        }
        Some(Misbehave::Replace(other)) => respond(out, body(&other))?,
        Some(Misbehave::WrongBytes) => {
            let mut b = body(&file).unwrap_or_default();
            if let Some(last) = b.last_mut() {
                *last ^= 0xff;
            }
            respond(out, Some(b))?;
        }
        Some(Misbehave::Pad(n)) => {
            let mut b = body(&file).unwrap_or_default();
            b.resize(b.len() + n, 0);
            respond(out, Some(b))?;
        }
        Some(Misbehave::Truncate) => {
            let b = body(&file).unwrap_or_default();
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                b.len()
            )?;
            out.write_all(&b[..b.len() / 2])?;
            out.flush()?;
            return Ok(false);
        }
        Some(Misbehave::Stall) => {
            // Hold the connection open, silent, for longer than any test waits.
            std::thread::sleep(Duration::from_secs(3600));
            return Ok(false);
        }
        Some(Misbehave::Redirect(to)) => {
            let location = path.replacen(&needle, &to, 1);
            write!(
                out,
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
            )?;
        }
        Some(Misbehave::Status(code)) => {
            write!(out, "HTTP/1.1 {code} Oops\r\nContent-Length: 0\r\n\r\n")?;
        }
    }
    Ok(true)
}

fn respond(out: &mut TcpStream, body: Option<Vec<u8>>) -> std::io::Result<()> {
    match body {
        Some(b) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                b.len()
            )?;
            out.write_all(&b)?;
        }
        None => write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?,
    }
    out.flush()
}
