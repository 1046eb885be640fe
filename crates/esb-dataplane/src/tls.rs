//! The front door's TLS configuration: the configured PEM certificate and key, or a self-signed
//! `localhost`/`127.0.0.1` certificate made at start (its SHA-256 fingerprint is returned so the
//! binary can log it for `curl --pinnedpubkey`-style checks).

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::StartError;

/// The TLS setup every worker shares.
#[derive(Clone)]
pub struct TlsSetup {
    pub config: Arc<ServerConfig>,
    /// `Some` when the certificate was generated at start: hex SHA-256 of its DER, `aa:bb:..`.
    pub self_signed_fingerprint: Option<String>,
    /// The certificate chain as PEM (what a client must trust to verify esb).
    pub certificate_pem: String,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("self_signed_fingerprint", &self.self_signed_fingerprint)
            .finish_non_exhaustive()
    }
}

/// Loads the configured certificate and key, or makes a self-signed pair when both are absent.
pub fn setup(cfg: &esb_config::TlsConfig) -> Result<TlsSetup, StartError> {
    let (chain, key, fingerprint) = match (&cfg.cert, &cfg.key) {
        (Some(cert), Some(key)) => {
            let (chain, key) = load_pem(cert, key)?;
            (chain, key, None)
        }
        _ => {
            let (chain, key) = self_signed()?;
            let fp = fingerprint(&chain[0]);
            (chain, key, Some(fp))
        }
    };
    let certificate_pem = chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| StartError::Tls(format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsSetup {
        config: Arc::new(config),
        self_signed_fingerprint: fingerprint,
        certificate_pem,
    })
}

/// One PEM block (base64 in 64-column lines).
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or(""));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn load_pem(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), StartError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StartError::Tls(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(StartError::Tls(format!(
            "{}: no certificate in the file",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| StartError::Tls(format!("{}: {e}", key.display())))?;
    Ok((chain, key))
}

fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), StartError> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .map_err(|e| StartError::Tls(format!("cannot make a self-signed certificate: {e}")))?;
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    Ok((vec![cert], key))
}

/// `aa:bb:...` SHA-256 of a DER certificate (the form `openssl x509 -fingerprint -sha256` prints).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let pairs: Vec<String> = digest.iter().map(|b| hex::encode_upper([*b])).collect();
    pairs.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_setup_has_a_fingerprint_and_alpn() {
        let s = setup(&esb_config::TlsConfig::default()).unwrap();
        let fp = s.self_signed_fingerprint.unwrap();
        let pems: Vec<_> = CertificateDer::pem_slice_iter(s.certificate_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(pems.len(), 1);
        assert_eq!(
            fingerprint(&pems[0]),
            fp,
            "the PEM is the served certificate"
        );
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert_eq!(s.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn configured_pem_files_load_and_bad_ones_fail() {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, ck.cert.pem()).unwrap();
        std::fs::write(&k, ck.signing_key.serialize_pem()).unwrap();
        let cfg = esb_config::TlsConfig {
            cert: Some(c.clone()),
            key: Some(k.clone()),
        };
        let s = setup(&cfg).unwrap();
        assert!(s.self_signed_fingerprint.is_none());

        std::fs::write(&c, "not a pem").unwrap();
        let err = setup(&cfg).unwrap_err().to_string();
        assert!(err.contains("c.pem"), "{err}");
    }
}
