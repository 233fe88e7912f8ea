//! Fetching a remote repository's files: over HTTP(S) with one keep-alive connection pool
//! shared by the worker threads, or from a local `file://` path.
//!
//! Every response is untrusted: bodies are capped at a size the caller gives (a body larger
//! than the object can be fails), redirects are followed a few times, and a stalled server
//! hits a timeout: no byte for the remote's `timeout-secs` (default 60) while connecting,
//! waiting for an answer or reading a body. A 404 is `Ok(None)`: the caller decides whether
//! absence is an error.

use crate::{Error, IoContext, Result};
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// How long a server may stay silent before it counts as stalled, unless the remote sets
/// `timeout-secs`. There is no limit on a whole request: a big object on a slow link may
/// take long, as long as bytes keep coming.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a remote's files come from.
#[derive(Clone)]
pub enum Fetcher {
    /// `http://` or `https://`: the base URL, ending in `/`, and the shared agent.
    Http {
        /// The remote's URL with a trailing slash.
        base: String,
        /// The connection pool.
        agent: ureq::Agent,
    },
    /// `file://`: the repository's directory.
    File(PathBuf),
}

/// A remote's TLS options, as ostree names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `tls-ca-path`: a PEM file of the certificate authorities to trust instead of the
    /// built-in (Mozilla's) ones.
    pub ca_path: Option<PathBuf>,
    /// `tls-permissive`: accept any certificate.
    pub permissive: bool,
}

impl TlsOptions {
    /// ureq's configuration for these options; an unreadable or empty CA file is an error
    /// naming it.
    fn config(&self) -> Result<ureq::tls::TlsConfig> {
        let mut builder = ureq::tls::TlsConfig::builder().disable_verification(self.permissive);
        if let Some(path) = &self.ca_path {
            let pem = std::fs::read(path).at(path)?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
                    Ok(_) => {}
                    Err(e) => return Err(Error::invalid(path, format!("tls-ca-path: {e}"))),
                }
            }
            if certs.is_empty() {
                return Err(Error::invalid(
                    path,
                    "tls-ca-path: no certificate in the file",
                ));
            }
            builder = builder.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        Ok(builder.build())
    }
}

/// The failure of one fetch: names the URL.
fn fetch_error(url: &str, why: impl std::fmt::Display) -> Error {
    Error::Fetch {
        url: url.to_string(),
        why: why.to_string(),
    }
}

impl Fetcher {
    /// A fetcher for a configured remote: its URL, `timeout-secs` and TLS options.
    pub fn for_remote(remote: &super::Remote, connections: usize) -> Result<Fetcher> {
        Fetcher::new(&remote.url, connections, remote.timeout, &remote.tls)
    }

    /// A fetcher for a remote URL (`http://`, `https://` or `file://`); `timeout` is how long
    /// the server may stay silent.
    pub fn new(
        url: &str,
        connections: usize,
        timeout: Duration,
        tls: &TlsOptions,
    ) -> Result<Fetcher> {
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(Fetcher::File(PathBuf::from(path)));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(fetch_error(url, "unsupported URL scheme"));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(5)
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .max_idle_connections_per_host(connections.max(1))
            .user_agent(concat!("rostree/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.config()?)
            .build()
            .new_agent();
        let base = if url.ends_with('/') {
            url.to_string()
        } else {
            format!("{url}/")
        };
        Ok(Fetcher::Http { base, agent })
    }

    /// The full URL of a file of the remote, for messages.
    pub fn url(&self, rel: &str) -> String {
        match self {
            Fetcher::Http { base, .. } => format!("{base}{rel}"),
            Fetcher::File(dir) => format!("file://{}", dir.join(rel).display()),
        }
    }

    /// Opens `rel` (a path below the repository) as a stream; `None` when the remote has no
    /// such file. The caller bounds how much it reads.
    pub fn open(&self, rel: &str) -> Result<Option<Box<dyn Read + Send>>> {
        let url = self.url(rel);
        match self {
            Fetcher::File(dir) => {
                let path = dir.join(rel);
                match std::fs::File::open(&path) {
                    Ok(f) => Ok(Some(Box::new(f))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(&path, e)),
                }
            }
            Fetcher::Http { agent, .. } => {
                let response = agent.get(&url).call().map_err(|e| fetch_error(&url, e))?;
                match response.status().as_u16() {
                    200 => {}
                    404 => return Ok(None),
                    status => {
                        return Err(fetch_error(&url, format!("Server returned HTTP {status}")));
                    }
                }
                let reader = response
                    .into_body()
                    .into_with_config()
                    .limit(u64::MAX)
                    .reader();
                Ok(Some(Box::new(reader)))
            }
        }
    }

    /// Fetches `rel` whole, refusing more than `limit` bytes; `None` when it is absent.
    pub fn get(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let Some(reader) = self.open(rel)? else {
            return Ok(None);
        };
        let url = self.url(rel);
        let mut out = Vec::new();
        reader
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| fetch_error(&url, e))?;
        if out.len() as u64 > limit {
            return Err(fetch_error(&url, format!("larger than {limit} bytes")));
        }
        Ok(Some(out))
    }

    /// Like [`Fetcher::get`], but absence is an error.
    pub fn get_required(&self, rel: &str, limit: u64) -> Result<Vec<u8>> {
        self.get(rel, limit)?
            .ok_or_else(|| fetch_error(&self.url(rel), "Server returned HTTP 404"))
    }
}
