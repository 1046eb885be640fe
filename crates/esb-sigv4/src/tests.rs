//! Verification against AWS's published SigV4 test-suite signatures and against requests signed
//! by botocore itself (the signer boto3 uses), plus every way a request must be refused.

use super::*;
use chrono::TimeZone;
use std::path::{Path, PathBuf};
use std::process::Command;

const SUITE_KEY: &str = "AKIDEXAMPLE";
const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SUITE_SCOPE: &str = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

fn suite_now() -> SystemTime {
    Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap().into()
}

fn suite_secret(key: &str) -> Option<&'static str> {
    (key == SUITE_KEY).then_some(SUITE_SECRET)
}

/// One case of the AWS SigV4 test suite (service `service`, us-east-1, 2015-08-30T12:36:00Z):
/// the request is accepted with the published signature and refused with any other.
#[track_caller]
fn check_suite(
    method: &str,
    path: &str,
    query: &str,
    extra: &[(&str, &str)],
    signed: &str,
    signature: &str,
) {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={SUITE_SCOPE}, SignedHeaders={signed}, Signature={signature}"
    );
    let mut headers: Vec<(&str, &[u8])> = vec![
        ("Host", b"example.amazonaws.com"),
        ("X-Amz-Date", b"20150830T123600Z"),
        ("Authorization", auth.as_bytes()),
    ];
    headers.extend(extra.iter().map(|(k, v)| (*k, v.as_bytes())));
    let req = Request {
        method,
        path,
        query,
        headers: &headers,
        body: b"",
    };
    let v = Verifier::new("service");
    assert_eq!(
        v.verify(&req, suite_secret, suite_now()),
        Ok(Verified {
            access_key_id: SUITE_KEY.into(),
            region: "us-east-1".into()
        }),
        "{method} {path}?{query}"
    );
    // The same request with one signature digit changed is refused.
    let last = signature.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &signature[..63],
        if last == '0' { '1' } else { '0' }
    );
    let bad = auth.replace(signature, &flipped);
    let mut bad_headers = headers.clone();
    bad_headers[2] = ("Authorization", bad.as_bytes());
    let req = Request {
        headers: &bad_headers,
        ..req
    };
    assert_eq!(
        v.verify(&req, suite_secret, suite_now()),
        Err(SigV4Error::SignatureMismatch)
    );
}

#[test]
fn aws_test_suite_vectors() {
    let hd = "host;x-amz-date";
    check_suite(
        "GET",
        "/",
        "",
        &[],
        hd,
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ); // get-vanilla
    check_suite(
        "GET",
        "/example/..",
        "",
        &[],
        hd,
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ); // get-relative
    check_suite(
        "GET",
        "//",
        "",
        &[],
        hd,
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ); // get-slash
    check_suite(
        "GET",
        "/./example",
        "",
        &[],
        hd,
        "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
    ); // get-slash-pointless-dot
    check_suite(
        "GET",
        "//example//",
        "",
        &[],
        hd,
        "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
    ); // get-slashes
    check_suite(
        "GET",
        "/",
        "Param2=value2&Param1=value1",
        &[],
        hd,
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ); // get-vanilla-query-order-key-case
    check_suite(
        "GET",
        "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        "",
        &[],
        hd,
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    ); // get-unreserved
    let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    check_suite(
        "GET",
        "/",
        &format!("{unreserved}={unreserved}"),
        &[],
        hd,
        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    ); // get-vanilla-query-unreserved
    check_suite(
        "GET",
        "/",
        "%E1%88%B4=bar",
        &[],
        hd,
        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    ); // get-vanilla-utf8-query
    check_suite(
        "GET",
        "/",
        "",
        &[
            ("My-Header1", "value2"),
            ("My-Header1", "value2"),
            ("My-Header1", "value1"),
        ],
        "host;my-header1;x-amz-date",
        "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    ); // get-header-key-duplicate
    check_suite(
        "GET",
        "/",
        "",
        &[("My-Header1", "value1"), ("My-Header2", "\"a   b   c\"")],
        "host;my-header1;my-header2;x-amz-date",
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    ); // get-header-value-trim
    check_suite(
        "POST",
        "/",
        "",
        &[],
        hd,
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    ); // post-vanilla
    check_suite(
        "POST",
        "/",
        "Param1=value1",
        &[],
        hd,
        "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    ); // post-vanilla-query
    check_suite(
        "POST",
        "/",
        "%40%23%24%25%5E%26%2B=%2F%2C%3F%3E%3C%60%22%3B%3A%5C%7C%5D%5B%7B%7D",
        &[],
        hd,
        "88d3e39e4fa54b971f51c0a09140368e1a51aafb76c4652d9998f93cf3038074",
    ); // post-vanilla-query-nonunreserved
    check_suite(
        "POST",
        "/",
        "",
        &[(
            "X-Amz-Security-Token",
            "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==",
        )],
        "host;x-amz-date;x-amz-security-token",
        "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
    ); // post-sts-header-before
}

// --- botocore

const BOTO_KEY: &str = "AKIDESBTEST";
const BOTO_SECRET: &str = "esb/secret+KEY/0123456789abcdefghij";

fn boto_secret(key: &str) -> Option<&'static str> {
    (key == BOTO_KEY).then_some(BOTO_SECRET)
}

/// The time `botocore_sign.py` pins botocore's clock to.
fn boto_now() -> SystemTime {
    Utc.with_ymd_and_hms(2026, 11, 22, 7, 0, 0).unwrap().into()
}

/// A Python that imports botocore: the machine's, or a venv under target/ (the test must run,
/// not skip, where botocore is missing).
fn python_with_botocore() -> PathBuf {
    esb_testkit::install::python_with("botocore", "botocore")
}

struct Signed {
    name: String,
    method: String,
    path: String,
    query: String,
    /// Includes the Host header the HTTP client would add.
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Signed {
    fn verify_with(&self, v: &Verifier, now: SystemTime) -> Result<Verified, SigV4Error> {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let req = Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        };
        v.verify(&req, boto_secret, now)
    }
}

fn botocore_requests() -> Vec<Signed> {
    use base64::Engine as _;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/botocore_sign.py");
    let out = Command::new(python_with_botocore())
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let url = r["url"].as_str().unwrap();
            let rest = url.split_once("://").unwrap().1;
            let (host, target) = rest.split_at(rest.find('/').unwrap());
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let mut headers = vec![("Host".to_string(), host.as_bytes().to_vec())];
            for h in r["headers"].as_array().unwrap() {
                headers.push((
                    h[0].as_str().unwrap().to_string(),
                    h[1].as_str().unwrap().as_bytes().to_vec(),
                ));
            }
            Signed {
                name: r["name"].as_str().unwrap().to_string(),
                method: r["method"].as_str().unwrap().to_string(),
                path: path.to_string(),
                query: query.to_string(),
                headers,
                body: base64::engine::general_purpose::STANDARD
                    .decode(r["body_b64"].as_str().unwrap())
                    .unwrap(),
            }
        })
        .collect()
}

#[test]
fn accepts_what_botocore_signs_and_nothing_altered() {
    let requests = botocore_requests();
    assert_eq!(
        requests.len(),
        8,
        "every case of botocore_sign.py came back"
    );
    let v = Verifier::new("lambda");
    for r in &requests {
        let want_region = if r.name == "other-region" {
            "eu-west-3"
        } else {
            "us-east-1"
        };
        assert_eq!(
            r.verify_with(&v, boto_now()),
            Ok(Verified {
                access_key_id: BOTO_KEY.into(),
                region: want_region.into()
            }),
            "{} {}",
            r.name,
            r.path
        );
        // Within the 5-minute window either way, and not beyond it.
        let five = Duration::from_secs(300);
        assert!(r.verify_with(&v, boto_now() + five).is_ok());
        assert!(r.verify_with(&v, boto_now() - five).is_ok());
        let late = r.verify_with(&v, boto_now() + five + Duration::from_secs(1));
        assert!(matches!(late, Err(SigV4Error::Expired { .. })), "{late:?}");
        let early = r.verify_with(&v, boto_now() - five - Duration::from_secs(1));
        assert!(
            matches!(early, Err(SigV4Error::Expired { .. })),
            "{early:?}"
        );

        // Tampering with anything signed is caught.
        let mut body = r.body.clone();
        body.push(b' ');
        let tampered = Signed {
            body,
            name: r.name.clone(),
            ..clone(r)
        };
        assert_eq!(
            tampered.verify_with(&v, boto_now()),
            Err(SigV4Error::SignatureMismatch),
            "{} body",
            r.name
        );
        let mut other_fn = clone(r);
        other_fn.path = r.path.replace("orders", "orderz").replace("mail", "maim");
        assert_eq!(
            other_fn.verify_with(&v, boto_now()),
            Err(SigV4Error::SignatureMismatch),
            "{} path",
            r.name
        );
        let mut other_host = clone(r);
        other_host.headers[0].1 = b"127.0.0.1:9998".to_vec();
        assert_eq!(
            other_host.verify_with(&v, boto_now()),
            Err(SigV4Error::SignatureMismatch)
        );
        let mut other_method = clone(r);
        other_method.method = "PUT".into();
        assert_eq!(
            other_method.verify_with(&v, boto_now()),
            Err(SigV4Error::SignatureMismatch)
        );
    }

    // The qualifier query and the invocation-type headers are signed.
    let arn = requests.iter().find(|r| r.name == "arn-qualifier").unwrap();
    assert!(arn.path.contains("arn%3Aaws%3Alambda"), "{}", arn.path);
    let mut q = clone(arn);
    q.query = "Qualifier=%24LATES".into();
    assert_eq!(
        q.verify_with(&v, boto_now()),
        Err(SigV4Error::SignatureMismatch)
    );
    let mut t = clone(arn);
    for h in &mut t.headers {
        if h.0 == "X-Amz-Invocation-Type" {
            h.1 = b"Event".to_vec();
        }
    }
    assert_eq!(
        t.verify_with(&v, boto_now()),
        Err(SigV4Error::SignatureMismatch)
    );

    // Restricting the region and the service.
    let mut only_us = Verifier::new("lambda");
    only_us.region = Some("us-east-1".into());
    let eu = requests.iter().find(|r| r.name == "other-region").unwrap();
    assert!(matches!(
        eu.verify_with(&only_us, boto_now()),
        Err(SigV4Error::WrongScope(_))
    ));
    assert!(requests[0].verify_with(&only_us, boto_now()).is_ok());
    assert!(matches!(
        requests[0].verify_with(&Verifier::new("s3"), boto_now()),
        Err(SigV4Error::WrongScope(_))
    ));
}

fn clone(r: &Signed) -> Signed {
    Signed {
        name: r.name.clone(),
        method: r.method.clone(),
        path: r.path.clone(),
        query: r.query.clone(),
        headers: r.headers.clone(),
        body: r.body.clone(),
    }
}

// --- refusals, on a request signed here with the suite key

fn signed_get(extra: &[(&str, &str)], auth: &str) -> Vec<(String, Vec<u8>)> {
    let mut h = vec![
        ("Host".to_string(), b"example.amazonaws.com".to_vec()),
        ("X-Amz-Date".to_string(), b"20150830T123600Z".to_vec()),
        ("Authorization".to_string(), auth.as_bytes().to_vec()),
    ];
    h.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
    );
    h
}

const VANILLA: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

/// A GET / with `headers` is refused with `want`.
#[track_caller]
fn check_refused(headers: &[(String, Vec<u8>)], body: &[u8], want: SigV4Error) {
    let headers: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let req = Request {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    assert_eq!(
        Verifier::new("service").verify(&req, suite_secret, suite_now()),
        Err(want)
    );
}

fn malformed(m: &str) -> SigV4Error {
    SigV4Error::Malformed(m.into())
}

#[test]
fn refusals() {
    let no_auth: Vec<_> = signed_get(&[], VANILLA).into_iter().take(2).collect();
    check_refused(&no_auth, b"", SigV4Error::Missing);
    check_refused(
        &signed_get(&[], &VANILLA.replace("AKIDEXAMPLE", "AKIDOTHER")),
        b"",
        SigV4Error::UnknownAccessKey("AKIDOTHER".into()),
    );
    check_refused(
        &signed_get(&[], &VANILLA.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1")),
        b"",
        malformed("Authorization must start with AWS4-HMAC-SHA256"),
    );
    check_refused(
        &signed_get(&[], &VANILLA.replace("Signature=5fa0", "Signature=zz")),
        b"",
        malformed("Signature must be 64 hex digits"),
    );
    check_refused(
        &signed_get(
            &[],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date",
        ),
        b"",
        malformed("Authorization header requires 'Signature' parameter"),
    );
    check_refused(
        &signed_get(&[], &VANILLA.replace("/aws4_request", "/aws5_request")),
        b"",
        malformed("Credential must be <key>/<yyyyMMdd>/<region>/<service>/aws4_request"),
    );
    check_refused(
        &signed_get(&[], &VANILLA.replace("host;x-amz-date", "x-amz-date")),
        b"",
        malformed("SignedHeaders must include host"),
    );
    check_refused(
        &signed_get(&[], &VANILLA.replace("host;x-amz-date", "host")),
        b"",
        malformed("SignedHeaders must include x-amz-date"),
    );
    check_refused(
        &signed_get(&[], &VANILLA.replace("host;x-amz-date", "x-amz-date;host")),
        b"",
        malformed("SignedHeaders must be lower-case names, sorted, separated by ';'"),
    );
    check_refused(
        &signed_get(
            &[],
            &VANILLA.replace("host;x-amz-date", "host;my-header;x-amz-date"),
        ),
        b"",
        malformed("signed header my-header is not in the request"),
    );
    check_refused(
        &signed_get(&[], &VANILLA.replace("/20150830/", "/20150831/")),
        b"",
        SigV4Error::WrongScope("the date of X-Amz-Date (20150830)".into()),
    );
    let mut bad_date = signed_get(&[], VANILLA);
    bad_date[1].1 = b"2015-08-30T12:36:00Z".to_vec();
    check_refused(
        &bad_date,
        b"",
        malformed("X-Amz-Date is not yyyyMMddTHHmmssZ"),
    );
    // An unsigned header may change freely; a content hash that lies about the body may not.
    check_refused(
        &signed_get(&[("X-Amz-Content-SHA256", "00")], VANILLA),
        b"",
        SigV4Error::PayloadHashMismatch,
    );
    check_refused(
        &signed_get(&[("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")], VANILLA),
        b"",
        SigV4Error::PayloadHashMismatch,
    );
    // A body on a request signed for an empty one.
    check_refused(
        &signed_get(&[], VANILLA),
        b"x",
        SigV4Error::SignatureMismatch,
    );
}

#[test]
fn a_matching_content_hash_header_is_what_gets_signed() {
    // get-vanilla with the (unsigned) hash header of the empty body still verifies.
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let headers = signed_get(&[("X-Amz-Content-SHA256", empty)], VANILLA);
    let headers: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let req = Request {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    assert!(
        Verifier::new("service")
            .verify(&req, suite_secret, suite_now())
            .is_ok()
    );
}

#[test]
fn errors_render_as_aws_does() {
    #[track_caller]
    fn check(e: SigV4Error, ty: &str, msg: &str) {
        assert_eq!((e.status(), e.error_type()), (403, ty));
        assert!(e.message().contains(msg), "{:?}", e.message());
    }
    check(
        SigV4Error::Missing,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    );
    check(
        SigV4Error::UnknownAccessKey("A".into()),
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
    check(
        SigV4Error::SignatureMismatch,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided.",
    );
    check(
        SigV4Error::Expired {
            signed: "20150830T123600Z".into(),
            now: "20150830T124700Z".into(),
        },
        "InvalidSignatureException",
        "Signature expired: 20150830T123600Z",
    );
    check(malformed("x"), "IncompleteSignatureException", "x");
}
