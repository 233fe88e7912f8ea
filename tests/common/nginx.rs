//! A real web server for pull tests: nginx on a free loopback port, serving one directory
//! with its own config, stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A running nginx.
pub struct Nginx {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its access log, one line per request.
    pub access_log: PathBuf,
    /// For HTTPS: the PEM file of the test certificate authority that signed its certificate.
    pub ca: Option<PathBuf>,
}

impl Nginx {
    /// Serves `root` (read-only) from a new nginx whose files live in `dir`.
    pub fn serve(root: &Path, dir: &Path) -> Nginx {
        Nginx::start(root, dir, false)
    }

    /// Serves `root` over HTTPS, with a certificate for 127.0.0.1 signed by a throw-away
    /// certificate authority (made by openssl, kept in `ca`).
    pub fn serve_https(root: &Path, dir: &Path) -> Nginx {
        Nginx::start(root, dir, true)
    }

    fn start(root: &Path, dir: &Path, tls: bool) -> Nginx {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect(
                "nginx is not installed: run the README's test command (it installs nginx-light)",
            );
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let access_log = dir.join("access.log");
        // As root, workers would drop to `nobody`, who cannot read the test's private dirs.
        let user = if super::is_root() { "user root;\n" } else { "" };
        let (listen, ca) = if tls {
            let ca = make_certificates(dir);
            let d = dir.display();
            (
                format!(
                    "listen 127.0.0.1:{port} ssl; ssl_certificate {d}/server.pem; \
                     ssl_certificate_key {d}/server.key;"
                ),
                Some(ca),
            )
        } else {
            (format!("listen 127.0.0.1:{port};"), None)
        };
        let conf = format!(
            "{user}daemon off;\nworker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
             scgi_temp_path {d}/scgi;\n  server {{ {listen} root {root}; }}\n}}\n",
            d = dir.display(),
            root = root.display()
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        // Its output goes to its logs: workers must not hold the test runner's pipes.
        let child = Command::new(nginx)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nginx");
        let scheme = if tls { "https" } else { "http" };
        let server = Nginx {
            child,
            base: format!("{scheme}://127.0.0.1:{port}"),
            access_log,
            ca,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// How many requests nginx has logged whose path contains `needle`.
    pub fn requests_matching(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the master then stops its workers, which a killed master
        // would leave running (holding the port, the logs and the caller's stdout).
        let pid = rustix::process::Pid::from_child(&self.child);
        if rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A certificate authority (`ca.pem`) and a certificate it signed for 127.0.0.1
/// (`server.pem`, `server.key`) in `dir`; returns the authority's file.
fn make_certificates(dir: &Path) -> PathBuf {
    let d = |name: &str| dir.join(name).display().to_string();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509", "-days", "2", "-subj", "/CN=rostree test CA"];
    args.extend(ec);
    let (ca_key, ca, key, csr, cert, ext) = (
        d("ca.key"),
        d("ca.pem"),
        d("server.key"),
        d("server.csr"),
        d("server.pem"),
        d("server.ext"),
    );
    args.extend(["-keyout", &ca_key, "-out", &ca]);
    openssl(&args);
    let mut args = vec!["req", "-subj", "/CN=127.0.0.1"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &csr]);
    openssl(&args);
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    dir.join("ca.pem")
}
