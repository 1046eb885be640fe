//! Verifies AWS Signature Version 4 (`Authorization: AWS4-HMAC-SHA256 ...`) on a request as boto3
//! signs it, for the Lambda Invoke API. No IO and no clock: the request, the credential lookup and
//! `now` are arguments.
//!
//! The canonical request is rebuilt the way botocore builds it (`botocore/auth.py`, `SigV4Auth`):
//! - the path is the one on the wire (already percent-encoded once by the client), with dot
//!   segments and repeated slashes removed, then **URI-encoded again** (`/` and unreserved
//!   characters kept): every service but S3 signs the path double-encoded, so `arn%3Aaws` on the
//!   wire is `arn%253Aaws` in the canonical request;
//! - the query's names and values are decoded and re-encoded strictly (unreserved characters only)
//!   and sorted by name, then value;
//! - the headers named in `SignedHeaders`, lower-cased, values trimmed with inner whitespace runs
//!   collapsed, repeated headers joined with `,`;
//! - the payload's SHA-256, or the `x-amz-content-sha256` header's value when present (checked
//!   against the body).
//!
//! Hot path when the Invoke API requires signatures: one SHA-256 over the body, one over the
//! canonical request and five HMACs per request.

mod canonical;

use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub use canonical::{canonical_query, canonical_uri};

type HmacSha256 = Hmac<Sha256>;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &[u8] = b"UNSIGNED-PAYLOAD";

/// A request as received: nothing decoded or normalised yet.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target's path exactly as received (percent-encoded as the client sent it).
    pub path: &'a str,
    /// The raw query string after `?` (empty if none).
    pub query: &'a str,
    /// Every header as received, in order, names in any case.
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
}

/// Who signed a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    /// The region the client signed for (its credential scope).
    pub region: String,
}

/// Why a signature was refused. All are the client's fault and answered with 403; retrying the
/// same request cannot help (a fresh signature can).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("no Authorization header")]
    Missing,
    #[error("malformed signature: {0}")]
    Malformed(String),
    #[error("unknown access key id {0:?}")]
    UnknownAccessKey(String),
    #[error("credential scope {0}")]
    WrongScope(String),
    /// The signing time is more than the allowed skew before or after `now`.
    #[error("signature time {signed} is outside the allowed window around {now}")]
    Expired { signed: String, now: String },
    #[error("the x-amz-content-sha256 header does not match the body")]
    PayloadHashMismatch,
    #[error("signature does not match")]
    SignatureMismatch,
}

impl SigV4Error {
    /// The `x-amzn-ErrorType` AWS answers with; botocore raises the exception of that name.
    pub fn error_type(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "MissingAuthenticationTokenException",
            SigV4Error::Malformed(_) => "IncompleteSignatureException",
            SigV4Error::UnknownAccessKey(_) => "UnrecognizedClientException",
            SigV4Error::WrongScope(_)
            | SigV4Error::Expired { .. }
            | SigV4Error::PayloadHashMismatch
            | SigV4Error::SignatureMismatch => "InvalidSignatureException",
        }
    }

    /// The HTTP status: 403 for every signature failure, as AWS does.
    pub fn status(&self) -> u16 {
        403
    }

    /// The message AWS puts in the body (`{"message": ...}`), worded like AWS's where known.
    pub fn message(&self) -> String {
        match self {
            SigV4Error::Missing => "Missing Authentication Token".to_string(),
            SigV4Error::Malformed(m) => m.clone(),
            SigV4Error::UnknownAccessKey(_) => {
                "The security token included in the request is invalid.".to_string()
            }
            SigV4Error::WrongScope(m) => format!("Credential should be scoped to {m}."),
            SigV4Error::Expired { signed, now } => {
                format!(
                    "Signature expired: {signed} is outside 5 minutes of the server time {now}."
                )
            }
            SigV4Error::PayloadHashMismatch => {
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .to_string()
            }
            SigV4Error::SignatureMismatch => "The request signature we calculated does not match \
                the signature you provided. Check your AWS Secret Access Key and signing method. \
                Consult the service documentation for details."
                .to_string(),
        }
    }
}

/// What a verifier accepts.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// The service name in the credential scope, `lambda` for the Invoke API.
    pub service: String,
    /// Only this region, or any region the client names.
    pub region: Option<String>,
    /// Allowed difference between the signing time and `now` either way (AWS: 5 minutes).
    pub max_skew: Duration,
    /// Accept `x-amz-content-sha256: UNSIGNED-PAYLOAD` (the body is then not covered).
    pub allow_unsigned_payload: bool,
}

impl Verifier {
    pub fn new(service: &str) -> Verifier {
        Verifier {
            service: service.to_string(),
            region: None,
            max_skew: Duration::from_secs(300),
            allow_unsigned_payload: false,
        }
    }

    /// Verifies `req`'s signature. `secret_for` maps an access key id to its secret access key.
    pub fn verify<S: AsRef<str>>(
        &self,
        req: &Request<'_>,
        secret_for: impl FnOnce(&str) -> Option<S>,
        now: SystemTime,
    ) -> Result<Verified, SigV4Error> {
        let auth = header(req.headers, "authorization").ok_or(SigV4Error::Missing)?;
        let auth = std::str::from_utf8(auth)
            .map_err(|_| SigV4Error::Malformed("Authorization header is not ASCII".into()))?;
        let auth = parse_authorization(auth)?;

        let amz_date = header(req.headers, "x-amz-date")
            .ok_or_else(|| SigV4Error::Malformed("missing the X-Amz-Date header".into()))?;
        let amz_date = std::str::from_utf8(amz_date)
            .ok()
            .filter(|d| d.len() == 16)
            .ok_or_else(|| SigV4Error::Malformed("X-Amz-Date is not yyyyMMddTHHmmssZ".into()))?;
        let signed_at = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
            .map_err(|_| SigV4Error::Malformed("X-Amz-Date is not yyyyMMddTHHmmssZ".into()))?
            .and_utc();
        if !auth.signed_headers.contains(&"host") {
            return Err(SigV4Error::Malformed(
                "SignedHeaders must include host".into(),
            ));
        }
        if !auth.signed_headers.contains(&"x-amz-date") {
            return Err(SigV4Error::Malformed(
                "SignedHeaders must include x-amz-date".into(),
            ));
        }
        if auth.date != &amz_date[..8] {
            return Err(SigV4Error::WrongScope(format!(
                "the date of X-Amz-Date ({})",
                &amz_date[..8]
            )));
        }
        if auth.service != self.service {
            return Err(SigV4Error::WrongScope(format!(
                "the correct service ({})",
                self.service
            )));
        }
        if let Some(region) = &self.region
            && auth.region != region
        {
            return Err(SigV4Error::WrongScope(format!("a valid region ({region})")));
        }

        let now: DateTime<Utc> = now.into();
        let skew = (now - signed_at).abs();
        if skew.to_std().unwrap_or(Duration::MAX) > self.max_skew {
            return Err(SigV4Error::Expired {
                signed: amz_date.to_string(),
                now: now.format("%Y%m%dT%H%M%SZ").to_string(),
            });
        }

        let payload_hash = match header(req.headers, "x-amz-content-sha256") {
            Some(UNSIGNED_PAYLOAD) if self.allow_unsigned_payload => UNSIGNED_PAYLOAD.to_vec(),
            Some(claimed) => {
                let actual = hex::encode(Sha256::digest(req.body));
                if !claimed.eq_ignore_ascii_case(actual.as_bytes()) {
                    return Err(SigV4Error::PayloadHashMismatch);
                }
                claimed.to_vec()
            }
            None => hex::encode(Sha256::digest(req.body)).into_bytes(),
        };

        let creq = canonical::canonical_request(req, &auth.signed_headers, &payload_hash)?;
        let scope = format!(
            "{}/{}/{}/aws4_request",
            auth.date, auth.region, auth.service
        );
        let string_to_sign = format!(
            "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(&creq))
        );

        // Look the secret up last, so an unknown key costs no more than a bad signature and
        // malformed requests are reported as such whatever key they name.
        let secret = secret_for(auth.access_key_id)
            .ok_or_else(|| SigV4Error::UnknownAccessKey(auth.access_key_id.to_string()))?;
        let key = signing_key(secret.as_ref(), auth.date, auth.region, auth.service);
        let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(string_to_sign.as_bytes());
        // Constant-time comparison: the signature is a secret-derived value.
        mac.verify_slice(&auth.signature)
            .map_err(|_| SigV4Error::SignatureMismatch)?;
        Ok(Verified {
            access_key_id: auth.access_key_id.to_string(),
            region: auth.region.to_string(),
        })
    }
}

/// The first header named `name` (lower-case), by case-insensitive match.
fn header<'a>(headers: &[(&str, &'a [u8])], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    key
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[derive(Debug, PartialEq, Eq)]
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: Vec<u8>,
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/lambda/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=<64 hex>`.
fn parse_authorization(value: &str) -> Result<Authorization<'_>, SigV4Error> {
    let malformed = |m: &str| SigV4Error::Malformed(m.to_string());
    let rest = value
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| malformed("Authorization must start with AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| malformed("Authorization parameters are Name=value"))?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return Err(malformed("unknown Authorization parameter")),
        };
        if slot.replace(v).is_some() {
            return Err(malformed("repeated Authorization parameter"));
        }
    }
    let credential = credential
        .ok_or_else(|| malformed("Authorization header requires 'Credential' parameter"))?;
    let signed = signed
        .ok_or_else(|| malformed("Authorization header requires 'SignedHeaders' parameter"))?;
    let signature = signature
        .ok_or_else(|| malformed("Authorization header requires 'Signature' parameter"))?;

    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = parts[..] else {
        return Err(malformed(
            "Credential must be <key>/<yyyyMMdd>/<region>/<service>/aws4_request",
        ));
    };
    if access_key_id.is_empty() || date.len() != 8 || region.is_empty() || service.is_empty() {
        return Err(malformed(
            "Credential must be <key>/<yyyyMMdd>/<region>/<service>/aws4_request",
        ));
    }
    let signed_headers: Vec<&str> = signed.split(';').collect();
    if signed_headers
        .iter()
        .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
        || !signed_headers.is_sorted()
    {
        return Err(malformed(
            "SignedHeaders must be lower-case names, sorted, separated by ';'",
        ));
    }
    let signature = hex::decode(signature)
        .ok()
        .filter(|s| s.len() == 32)
        .ok_or_else(|| malformed("Signature must be 64 hex digits"))?;
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

#[cfg(test)]
mod tests;
