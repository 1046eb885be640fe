//! Test support for the gateway tests: a temp config folder, the real `esb` binary started on a
//! free loopback port, and a raw TLS client that sends exact bytes and reads exact responses.

#![allow(dead_code)]

pub mod docker;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use esb_testkit::{Child, free_port, wait_for_port};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// The example config's development user and key (`config/esb.toml`).
pub const DEV_KEY: &str = "dev-api-key-change-in-production";
pub const DEV_USER: &str = "demo";
pub const DEV_PASS: &str = "demo-pass";
const DEV_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$w0hSAQZv0lW3erifmUhn+g$J/Jf3lMgyXSst6PShBhOebtFMp/sgM82Ega9+VgqcyU";

/// Both drivers, so every IO test runs on each (as monoio's own tests do).
pub const DRIVERS: [&str; 2] = ["epoll", "io_uring"];

/// What a test wants in its esb.toml / functions.yml / routing.yml.
#[derive(Clone, Debug)]
pub struct Setup {
    pub driver: &'static str,
    pub workers: usize,
    /// Extra lines for `[limits]`.
    pub limits: String,
    /// The RIE the `echo` function points at (`runtime: endpoint`); `None` → an unused port.
    pub rie_port: Option<u16>,
    /// Function timeout in seconds.
    pub fn_timeout: f64,
    /// Extra lines for `[auth]`.
    pub auth: String,
    /// Extra YAML lines under the `echo` function (4-space indented).
    pub function: String,
    /// Replaces the whole functions.yml (it must still define `echo` unless `routing_yml` is set).
    pub functions_yml: Option<String>,
    /// Replaces the whole routing.yml.
    pub routing_yml: Option<String>,
    /// Lines for a `[runtime]` section (e.g. `rie_binary = "..."`); empty → no section.
    pub runtime: String,
    /// Extra esb.toml text appended at the end (whole sections, e.g. `[invoke]`).
    pub toml: String,
    /// Extra functions appended to functions.yml (2-space indented entries).
    pub functions: String,
    /// Extra routes appended to routing.yml (`  - path: ...` entries).
    pub routes: String,
}

impl Setup {
    pub fn new(driver: &'static str) -> Setup {
        Setup {
            driver,
            workers: 1,
            limits: String::new(),
            rie_port: None,
            fn_timeout: 10.0,
            auth: String::new(),
            function: String::new(),
            functions_yml: None,
            routing_yml: None,
            runtime: String::new(),
            toml: String::new(),
            functions: String::new(),
            routes: String::new(),
        }
    }

    pub fn toml(mut self, text: &str) -> Setup {
        self.toml = text.to_string();
        self
    }

    pub fn functions(mut self, yaml: &str) -> Setup {
        self.functions = yaml.to_string();
        self
    }

    pub fn routes(mut self, yaml: &str) -> Setup {
        self.routes = yaml.to_string();
        self
    }

    pub fn functions_yml(mut self, yaml: &str) -> Setup {
        self.functions_yml = Some(yaml.to_string());
        self
    }

    pub fn routing_yml(mut self, yaml: &str) -> Setup {
        self.routing_yml = Some(yaml.to_string());
        self
    }

    pub fn runtime(mut self, lines: &str) -> Setup {
        self.runtime = lines.to_string();
        self
    }

    pub fn function(mut self, yaml: &str) -> Setup {
        self.function = yaml.to_string();
        self
    }

    pub fn auth(mut self, lines: &str) -> Setup {
        self.auth = lines.to_string();
        self
    }

    pub fn limits(mut self, l: &str) -> Setup {
        self.limits = l.to_string();
        self
    }

    pub fn rie(mut self, port: u16) -> Setup {
        self.rie_port = Some(port);
        self
    }

    pub fn fn_timeout(mut self, secs: f64) -> Setup {
        self.fn_timeout = secs;
        self
    }
}

/// A running esb with its config folder and certificate.
pub struct Esb {
    pub port: u16,
    pub child: Child,
    pub dir: tempfile::TempDir,
    tls: Arc<ClientConfig>,
}

impl Esb {
    pub fn start(setup: &Setup) -> Esb {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        std::fs::write(dir.path().join("cert.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
        write_config(dir.path(), port, setup);
        write_overrides(dir.path(), setup);

        let mut roots = RootCertStore::empty();
        roots.add(ck.cert.der().clone()).unwrap();
        let tls = ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();

        let mut cmd = Command::new(env!("CARGO_BIN_EXE_esb"));
        cmd.arg("serve")
            .arg("--config")
            .arg(dir.path().join("esb.toml"))
            .env("RUST_LOG", "info");
        let child = Child::spawn("esb", cmd).unwrap();
        let esb = Esb {
            port,
            child,
            dir,
            tls: Arc::new(tls),
        };
        if let Err(e) = wait_for_port(port, Duration::from_secs(20)) {
            panic!("esb did not listen: {e}\n{}", esb.child.log());
        }
        // The start-up line (driver, workers) comes through a non-blocking log writer.
        esb.wait_for_log("esb listening on", Duration::from_secs(20));
        esb
    }

    /// Polls the log until it contains `needle` (panics after `timeout`).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let start = std::time::Instant::now();
        let mut pause = Duration::from_millis(1);
        while !self.child.log().contains(needle) {
            assert!(
                start.elapsed() < timeout,
                "no {needle:?} in esb's log after {timeout:?}:\n{}",
                self.child.log()
            );
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    pub fn connect(&self) -> Conn {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        tcp.set_nodelay(true).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let conn =
            ClientConnection::new(self.tls.clone(), ServerName::try_from("localhost").unwrap())
                .unwrap();
        Conn {
            tls: StreamOwned::new(conn, tcp),
            pending: Vec::new(),
            head_only: false,
        }
    }

    /// A connection whose handshake may fail (the server may refuse it).
    pub fn connect_checked(&self) -> Option<Conn> {
        let mut c = self.connect();
        while c.tls.conn.is_handshaking() {
            if c.tls.conn.complete_io(&mut c.tls.sock).is_err() {
                return None;
            }
        }
        Some(c)
    }

    /// One request on a fresh connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.connect().request(method, path, headers, body)
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers, b"")
    }

    /// Logs in with the dev user and returns the IdToken.
    pub fn login(&self) -> String {
        let body =
            format!(r#"{{"AuthParameters":{{"USERNAME":"{DEV_USER}","PASSWORD":"{DEV_PASS}"}}}}"#);
        let r = self.request(
            "POST",
            "/user/auth/v1",
            &[("x-api-key", DEV_KEY), ("content-type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["AuthenticationResult"]["IdToken"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn log(&self) -> String {
        self.child.log()
    }
}

/// The admin listener, as announced in the log (`admin_listen = "127.0.0.1:0"`).
impl Esb {
    /// `http://127.0.0.1:P` of the admin endpoint, read from the start-up log.
    pub fn admin_addr(&self) -> std::net::SocketAddr {
        const NEEDLE: &str = "admin endpoint on http://";
        self.wait_for_log(NEEDLE, Duration::from_secs(20));
        let log = self.log();
        let rest = &log[log.find(NEEDLE).unwrap() + NEEDLE.len()..];
        let addr = &rest[..rest.find('/').unwrap()];
        addr.parse()
            .unwrap_or_else(|e| panic!("admin address {addr:?}: {e}"))
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}/admin/pools", self.admin_addr())
    }

    /// `GET /admin/pools` as JSON.
    pub fn admin_pools(&self) -> serde_json::Value {
        let mut c = esb_testkit::http::Client::connect_addr(self.admin_addr()).unwrap();
        let r = c.get("/admin/pools").unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("admin JSON ({e}): {}", r.text()))
    }

    /// One function's entry of `GET /admin/pools`.
    pub fn admin_pool(&self, function: &str) -> serde_json::Value {
        let pools = self.admin_pools();
        pools["functions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == function)
            .unwrap_or_else(|| panic!("no function {function:?} in {pools}"))
            .clone()
    }
}

/// The [`Setup`] fields that replace whole files or add a `[runtime]` section.
fn write_overrides(dir: &Path, s: &Setup) {
    if let Some(yaml) = &s.functions_yml {
        std::fs::write(dir.join("functions.yml"), yaml).unwrap();
    }
    if let Some(yaml) = &s.routing_yml {
        std::fs::write(dir.join("routing.yml"), yaml).unwrap();
    }
    if !s.runtime.is_empty() {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("esb.toml"))
            .unwrap();
        writeln!(f, "\n[runtime]\n{}", s.runtime).unwrap();
    }
}

fn write_config(dir: &Path, port: u16, s: &Setup) {
    let toml = format!(
        r#"routing = "routing.yml"
functions = "functions.yml"

[server]
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:0"
workers = {workers}
driver = "{driver}"

[tls]
cert = "cert.pem"
key = "key.pem"

[limits]
{limits}

[auth]
api_key = "{DEV_KEY}"
login_paths = ["/user/auth/v1", "/user/auth/ver1.0"]
{auth}

[[auth.users]]
username = "{DEV_USER}"
password_hash = "{DEV_HASH}"
email = "demo@example.com"

[api]
stage = "prod"

{extra}
"#,
        extra = s.toml,
        workers = s.workers,
        driver = s.driver,
        limits = s.limits,
        auth = s.auth,
    );
    std::fs::write(dir.join("esb.toml"), toml).unwrap();
    let rie = s.rie_port.unwrap_or_else(free_port);
    std::fs::write(
        dir.join("functions.yml"),
        format!(
            "functions:\n  echo:\n    runtime: endpoint\n    endpoint: \"http://127.0.0.1:{rie}\"\n    timeout: {}\n{}{}",
            s.fn_timeout, s.function, s.functions
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("routing.yml"),
        String::from(
            r#"routes:
  - path: "/echo/{proxy+}"
    method: ANY
    function: echo
  - path: "/v2/echo/{proxy+}"
    method: ANY
    function: echo
    payload_format: "2.0"
  - path: "/public/echo"
    method: ANY
    function: echo
    auth: none
  - path: "/keyed/echo"
    method: ANY
    function: echo
    auth: api_key
  - path: "/v2/public/{proxy+}"
    method: ANY
    function: echo
    auth: none
    payload_format: "2.0"
"#,
        ) + &s.routes,
    )
    .unwrap();
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One TLS connection that writes exact bytes and reads responses in order.
pub struct Conn {
    tls: StreamOwned<ClientConnection, TcpStream>,
    pending: Vec<u8>,
    head_only: bool,
}

impl Conn {
    pub fn send(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).unwrap();
        self.tls.flush().unwrap();
    }

    /// Like [`Conn::send`] but tolerates the server having closed already.
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tls.write_all(bytes)?;
        self.tls.flush()
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        if !body.is_empty() || !matches!(method, "GET" | "HEAD") {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send(&bytes);
        if method == "HEAD" {
            self.read_head_response()
        } else {
            self.read_response()
        }
    }

    /// Reads the answer to a HEAD request (a Content-Length but no body).
    pub fn read_head_response(&mut self) -> Response {
        self.head_only = true;
        let r = self.read_response();
        self.head_only = false;
        r
    }

    /// A request whose answer may not come (the server closed): `None` then.
    pub fn try_request(&mut self, method: &str, path: &str) -> Option<Response> {
        let req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        self.try_send(req.as_bytes()).ok()?;
        self.try_read_response()
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        match self.tls.read(&mut chunk) {
            Ok(n) => {
                self.pending.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("timed out waiting for the server")
            }
            Err(_) => 0,
        }
    }

    /// Reads one response (panics if the connection ends first).
    pub fn read_response(&mut self) -> Response {
        self.try_read_response()
            .expect("connection closed before a response")
    }

    /// One response, or `None` if the connection closed cleanly first.
    pub fn try_read_response(&mut self) -> Option<Response> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) = resp.parse(&self.pending).unwrap() {
                let status = resp.code.unwrap();
                let headers: Vec<(String, String)> = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                if status == 100 {
                    self.pending.drain(..head_len);
                    return Some(Response {
                        status,
                        headers,
                        body: Vec::new(),
                    });
                }
                let len: usize = if self.head_only {
                    0
                } else {
                    headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .map(|(_, v)| v.parse().unwrap())
                        .unwrap_or(0)
                };
                while self.pending.len() < head_len + len {
                    if self.fill() == 0 {
                        panic!("connection closed inside a body");
                    }
                }
                let body = self.pending[head_len..head_len + len].to_vec();
                self.pending.drain(..head_len + len);
                return Some(Response {
                    status,
                    headers,
                    body,
                });
            }
            if self.fill() == 0 {
                assert!(self.pending.is_empty(), "connection closed inside a head");
                return None;
            }
        }
    }

    /// True when the server closed the connection (EOF or reset) with nothing more to read.
    /// Bounded by the read timeout: a server that keeps it open fails the caller's assertion.
    pub fn is_closed(&mut self) -> bool {
        if !self.pending.is_empty() {
            return false;
        }
        let mut chunk = [0u8; 1024];
        match self.tls.read(&mut chunk) {
            Ok(0) => true,
            Ok(n) => {
                self.pending.extend_from_slice(&chunk[..n]);
                false
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                false
            }
            Err(_) => true,
        }
    }

    pub fn set_read_timeout(&self, d: Duration) {
        self.tls.sock.set_read_timeout(Some(d)).unwrap();
    }
}

/// `esb-rie` running the `echo` test function on a free loopback port.
pub struct Rie {
    pub port: u16,
    pub child: Child,
}

impl Rie {
    pub fn start() -> Rie {
        let port = free_port();
        let mut cmd = Command::new(esb_testkit::cargo_bin("esb-rie", "esb-rie"));
        cmd.arg("--runtime-interface-emulator-address")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--runtime-api-address")
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg(esb_testkit::cargo_bin("esb-echo", "echo"));
        let child = Child::spawn("esb-rie", cmd).unwrap();
        if let Err(e) = wait_for_port(port, Duration::from_secs(20)) {
            panic!("esb-rie did not listen: {e}\n{}", child.log());
        }
        Rie { port, child }
    }
}

/// Where the shared corpus lives (`/work/shared` next to the repo).
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}

impl Esb {
    /// Starts esb on a folder the test finishes itself: it holds `cert.pem`/`key.pem` and the
    /// esb.toml `setup` describes minus its `functions`/`routing` lines; `prepare(dir)` adds what
    /// it wants (a template, generated files) and returns the arguments after `serve`. `envs` are
    /// set for esb (e.g. `ESB_PYTHON`).
    pub fn start_prepared(
        setup: &Setup,
        envs: &[(&str, &std::ffi::OsStr)],
        prepare: impl FnOnce(&Path) -> Vec<std::ffi::OsString>,
    ) -> Esb {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        std::fs::write(dir.path().join("cert.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
        write_config(dir.path(), port, setup);
        write_overrides(dir.path(), setup);
        let toml_path = dir.path().join("esb.toml");
        let toml = std::fs::read_to_string(&toml_path).unwrap();
        let toml: String = toml
            .lines()
            .filter(|l| !l.starts_with("routing = ") && !l.starts_with("functions = "))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&toml_path, toml).unwrap();
        let args = prepare(dir.path());

        let mut roots = RootCertStore::empty();
        roots.add(ck.cert.der().clone()).unwrap();
        let tls = ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();

        let mut cmd = Command::new(env!("CARGO_BIN_EXE_esb"));
        cmd.arg("serve").args(&args).env("RUST_LOG", "info");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = Child::spawn("esb", cmd).unwrap();
        let esb = Esb {
            port,
            child,
            dir,
            tls: Arc::new(tls),
        };
        if let Err(e) = wait_for_port(port, Duration::from_secs(20)) {
            panic!("esb did not listen: {e}\n{}", esb.child.log());
        }
        esb.wait_for_log("esb listening on", Duration::from_secs(20));
        esb
    }
}
