//! Hot path (of the load generator): targets, keep-alive connections (plain HTTP/1.1 or rustls
//! HTTPS) and one request/response exchange on them.
//!
//! Only loopback targets are accepted: load from this tool must never leave the machine, and that
//! is also what makes accepting any server certificate (self-signed test certificates) harmless.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// One URL to send requests to, resolved once.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub https: bool,
    /// What goes into `Host` and the TLS server name.
    pub host: String,
    pub authority: String,
    pub path_and_query: String,
}

impl Target {
    /// Parses `http://` or `https://` URLs whose host resolves to loopback addresses only.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => bail!("URL {url:?} must start with http:// or https://"),
        };
        let host = uri
            .host()
            .with_context(|| format!("URL {url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .collect();
        let Some(addr) = addrs.first().copied() else {
            bail!("{host} resolves to no address");
        };
        if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            bail!(
                "refusing {url}: {bad} is not a loopback address (load tests stay on this machine)"
            );
        }
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_else(|| format!("{host}:{port}"));
        let path_and_query = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        Ok(Target {
            addr,
            https,
            host,
            authority,
            path_and_query,
        })
    }
}

/// What one connection sends, built once and cloned per request.
#[derive(Clone, Debug)]
pub struct RequestTemplate {
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RequestTemplate {
    /// `headers` are `name: value` strings as given on the command line.
    pub fn new(method: &str, headers: &[String], body: Bytes) -> anyhow::Result<RequestTemplate> {
        let method = Method::from_bytes(method.as_bytes()).context("bad method")?;
        let mut map = HeaderMap::new();
        for h in headers {
            let (name, value) = h
                .split_once(':')
                .with_context(|| format!("header {h:?} is not `name: value`"))?;
            map.append(
                HeaderName::from_bytes(name.trim().as_bytes())
                    .with_context(|| format!("bad header name in {h:?}"))?,
                HeaderValue::from_str(value.trim())
                    .with_context(|| format!("bad header value in {h:?}"))?,
            );
        }
        Ok(RequestTemplate {
            method,
            headers: map,
            body,
        })
    }

    fn build(&self, target: &Target) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = target
            .path_and_query
            .parse()
            .unwrap_or_else(|_| Uri::from_static("/"));
        let headers = req.headers_mut();
        headers.extend(self.headers.clone());
        if let Ok(host) = HeaderValue::from_str(&target.authority) {
            headers.insert(http::header::HOST, host);
        }
        req
    }
}

/// Why one exchange failed, as reported in the JSON error breakdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// TCP connect or TLS handshake failed.
    Connect,
    /// The connection broke (reset, closed mid-response, protocol error).
    Io,
    /// No full response within the request timeout.
    Timeout,
}

/// A keep-alive connection: HTTP/1.1, one request in flight at a time.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

/// Builds the TLS client setup used for every HTTPS connection.
pub fn tls_connector() -> anyhow::Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

impl Conn {
    /// Connects (and handshakes, for HTTPS). The connection's driver runs as a local task.
    pub async fn open(target: &Target, tls: &TlsConnector) -> Result<Conn, Failure> {
        let tcp = TcpStream::connect(target.addr)
            .await
            .map_err(|_| Failure::Connect)?;
        tcp.set_nodelay(true).map_err(|_| Failure::Connect)?;
        let sender = if target.https {
            let name = ServerName::try_from(target.host.clone()).map_err(|_| Failure::Connect)?;
            let stream = tls.connect(name, tcp).await.map_err(|_| Failure::Connect)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| Failure::Connect)?;
            tokio::task::spawn_local(conn);
            sender
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(|_| Failure::Connect)?;
            tokio::task::spawn_local(conn);
            sender
        };
        Ok(Conn { sender })
    }

    /// The server closed the connection (say after `Connection: close`): open a new one.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends one request and reads the whole response; returns its status and body.
    pub async fn exchange(
        &mut self,
        target: &Target,
        template: &RequestTemplate,
        timeout: Duration,
    ) -> Result<(u16, Bytes), Failure> {
        let work = async {
            self.sender.ready().await.map_err(|_| Failure::Io)?;
            let response = self
                .sender
                .send_request(template.build(target))
                .await
                .map_err(|_| Failure::Io)?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|_| Failure::Io)?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or(Err(Failure::Timeout))
    }
}

/// Accepts any server certificate but still checks the handshake signatures, so the TLS work a
/// server does is the same as with a real client. Only used on loopback (see [`Target::parse`]).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_parse() {
        let t = Target::parse("https://127.0.0.1:8443/echo/x?sleep_ms=1").unwrap();
        assert!(t.https);
        assert_eq!(t.addr, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(t.path_and_query, "/echo/x?sleep_ms=1");
        assert_eq!(t.authority, "127.0.0.1:8443");
        let t = Target::parse("http://localhost:9000").unwrap();
        assert!(!t.https);
        assert!(t.addr.ip().is_loopback());
        assert_eq!(t.path_and_query, "/");
        let t = Target::parse("http://[::1]:81/a").unwrap();
        assert_eq!(t.addr, "[::1]:81".parse().unwrap());
    }

    #[test]
    fn non_loopback_and_odd_targets_are_refused() {
        for url in [
            "http://10.0.0.1:80/",
            "https://192.168.1.1/",
            "http://8.8.8.8/",
            "ftp://127.0.0.1/",
            "127.0.0.1:80",
        ] {
            assert!(Target::parse(url).is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn templates_take_command_line_headers() {
        let t = RequestTemplate::new(
            "POST",
            &[
                "x-api-key: k1".into(),
                "Content-Type:application/json".into(),
            ],
            Bytes::from_static(b"{}"),
        )
        .unwrap();
        assert_eq!(t.headers["x-api-key"], "k1");
        assert_eq!(t.headers["content-type"], "application/json");
        assert!(RequestTemplate::new("GET", &["nocolon".into()], Bytes::new()).is_err());
        let req = t.build(&Target::parse("http://127.0.0.1:1/p?q=1").unwrap());
        assert_eq!(req.uri(), "/p?q=1");
        assert_eq!(req.headers()["host"], "127.0.0.1:1");
    }
}
