//! Signing keys: RSA key generation and PEM loading (aws-lc-rs), key ids, and the JWKS document.
//!
//! Cold path: runs at start-up only.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::Digest as _;

/// A key that cannot be used. Always an operator/setup problem; fix the config and restart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("RSA private key: {0}")]
    Rsa(String),
    #[error("HS256 secret must be at least 32 bytes (RFC 8725 3.5: not a password)")]
    WeakSecret,
    #[error("RSA key generation failed")]
    Generate,
}

/// Generates a 2048-bit RSA key and returns it as a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
/// Takes tens to hundreds of milliseconds: call it at start-up, off the IO cores.
pub fn generate_rsa_pem() -> Result<String, KeyError> {
    use aws_lc_rs::encoding::AsDer;
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| KeyError::Generate)?;
    let der = key.as_der().map_err(|_| KeyError::Generate)?;
    let b64 = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(pem)
}

/// An RSA private key's public half: `(n, e)` big-endian without leading zeros.
pub(crate) struct RsaPublic {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

/// Reads `(n, e)` from a PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) PEM. aws-lc-rs
/// refuses keys under 2048 bits.
pub(crate) fn rsa_public_from_pem(pem: &[u8]) -> Result<RsaPublic, KeyError> {
    use aws_lc_rs::signature::KeyPair as _;
    let text = std::str::from_utf8(pem).map_err(|_| KeyError::Rsa("PEM is not text".into()))?;
    let (label, der) = pem_block(text).ok_or_else(|| KeyError::Rsa("no PEM block".into()))?;
    let key = match label {
        "PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_pkcs8(&der),
        "RSA PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_der(&der),
        other => return Err(KeyError::Rsa(format!("unexpected PEM block {other:?}"))),
    }
    .map_err(|e| KeyError::Rsa(e.to_string()))?;
    let public = key.public_key();
    Ok(RsaPublic {
        n: public.modulus().big_endian_without_leading_zero().to_vec(),
        e: public.exponent().big_endian_without_leading_zero().to_vec(),
    })
}

fn pem_block(text: &str) -> Option<(&str, Vec<u8>)> {
    let begin = text.find("-----BEGIN ")?;
    let rest = &text[begin + 11..];
    let label_end = rest.find("-----")?;
    let label = &rest[..label_end];
    let body_start = label_end + 5;
    let end = rest.find("-----END ")?;
    let b64: String = rest[body_start..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    Some((label, STANDARD.decode(b64).ok()?))
}

/// A short, stable key id for an RSA public key: base64url of SHA-256 over `n || e`, 16 chars.
pub(crate) fn rsa_thumbprint(pk: &RsaPublic) -> String {
    let mut h = sha2::Sha256::new();
    h.update(&pk.n);
    h.update(&pk.e);
    let digest = h.finalize();
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

/// The JWKS document for RSA keys: one entry per `kid`, all sharing `(n, e)`.
pub(crate) fn jwks_json(pk: Option<&RsaPublic>, kids: &[&str]) -> String {
    let Some(pk) = pk else {
        // HS256 keys are secrets: nothing to publish.
        return r#"{"keys":[]}"#.to_string();
    };
    let n = URL_SAFE_NO_PAD.encode(&pk.n);
    let e = URL_SAFE_NO_PAD.encode(&pk.e);
    let keys: Vec<serde_json::Value> = kids
        .iter()
        .map(|kid| serde_json::json!({"alg": "RS256", "e": e, "kid": kid, "kty": "RSA", "n": n, "use": "sig"}))
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}
