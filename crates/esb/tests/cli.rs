//! The `esb` binary as a user meets it: config errors, `hash-password`, the self-signed
//! certificate and its logged fingerprint, graceful shutdown on SIGTERM.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sha2::Digest;
use support::{Esb, Rie, Setup};

fn esb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_esb"))
}

#[test]
fn a_bad_config_exits_2_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("esb.toml");
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:0\"\nbogus = 1\n").unwrap();
    let out = esb()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!("error: {}:3: ", path.display());
    assert!(err.contains(&want), "{err}");
    // A missing file is the same kind of error.
    let out = esb()
        .args(["serve", "--config", "/nonexistent/esb.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: /nonexistent/esb.toml: "));
}

#[test]
fn hash_password_prints_a_phc_string_that_logs_in() {
    let mut child = esb()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret-pass\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let phc = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    // The hash works as a configured user's password.
    let setup = Setup::new("epoll").auth(&format!(
        "[[auth.users]]\nusername = \"alice\"\npassword_hash = \"{phc}\""
    ));
    let esb = Esb::start(&setup);
    let body = br#"{"AuthParameters":{"USERNAME":"alice","PASSWORD":"s3cret-pass"}}"#;
    let r = esb.request(
        "POST",
        "/user/auth/v1",
        &[("x-api-key", support::DEV_KEY)],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Accepts any certificate but remembers the one it saw.
#[derive(Debug)]
struct Capture(
    std::sync::Mutex<Vec<u8>>,
    Arc<rustls::crypto::CryptoProvider>,
);

impl rustls::client::danger::ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        *self.0.lock().unwrap() = end_entity.to_vec();
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

#[test]
fn without_a_certificate_a_self_signed_one_is_made_and_its_fingerprint_logged() {
    let dir = tempfile::tempdir().unwrap();
    let port = esb_testkit::free_port();
    std::fs::write(
        dir.path().join("esb.toml"),
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\nworkers = 1\ndriver = \"auto\"\n"),
    )
    .unwrap();
    let mut cmd = esb();
    cmd.arg("serve")
        .arg("--config")
        .arg(dir.path().join("esb.toml"));
    let child = esb_testkit::Child::spawn("esb", cmd).unwrap();
    esb_testkit::wait_for_port(port, Duration::from_secs(20)).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let capture = Arc::new(Capture(Default::default(), provider.clone()));
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(capture.clone())
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), "localhost".try_into().unwrap()).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut tls, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let der = capture.0.lock().unwrap().clone();
    let fp: Vec<String> = sha2::Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let fp = fp.join(":");
    let start = std::time::Instant::now();
    while !child.log().contains(&fp) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "fingerprint {fp} not logged:\n{}",
            child.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    let rie = Rie::start();
    let mut esb = Esb::start(&Setup::new("io_uring").rie(rie.port));
    let mut c = esb.connect();
    c.send(b"GET /public/echo?sleep_ms=700 HTTP/1.1\r\nHost: x\r\n\r\n");
    // Wait until the function is running (the RIE logs the invocation's START).
    let start = std::time::Instant::now();
    while !rie.child.log().contains("START") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no START in:\n{}",
            rie.child.log()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let pid = esb.child.pid() as i32;
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.text());
    // Draining: the answer says the connection ends, and it does.
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed());
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = esb.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "esb did not exit:\n{}",
            esb.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(0), "{}", esb.log());
    assert!(std::net::TcpStream::connect(("127.0.0.1", esb.port)).is_err());
}
