//! Parsing an Invoke request: the `{FunctionName}` path segment in its four forms, `?Qualifier=`,
//! the invocation-type, log-type and client-context headers, and the payload's size and JSON.
//! Hot path: runs on every Invoke request; the payload is scanned once (JSON check), not copied.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use percent_encoding::percent_decode_str;

use crate::InvokeError;

const PREFIX: &str = "/2015-03-31/functions/";
const SUFFIX: &str = "/invocations";

/// The modeled pattern of `FunctionName`, quoted in validation errors as AWS does.
const NAME_PATTERN: &str = r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?";

/// Sync (RequestResponse, DryRun) payload limit: 6 MB.
pub const SYNC_PAYLOAD_LIMIT: usize = 6_291_456;
/// Async (Event) payload limit: 1 MB in current Lambda (256 KB before late 2025).
pub const EVENT_PAYLOAD_LIMIT: usize = 1_048_576;
/// `X-Amz-Client-Context` limit: 3,583 bytes of base64.
pub const CLIENT_CONTEXT_LIMIT: usize = 3583;

/// The raw (still percent-encoded) `{FunctionName}` of `/2015-03-31/functions/{FunctionName}/invocations`,
/// or `None` if `path` is not an Invoke path.
pub fn function_segment(path: &str) -> Option<&str> {
    let seg = path.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    (!seg.is_empty() && !seg.contains('/')).then_some(seg)
}

/// Which function (and version or alias) a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    /// From `name:qualifier` or `?Qualifier=`; `None` means `$LATEST`.
    pub qualifier: Option<String>,
    /// Present when the caller used a full ARN.
    pub region: Option<String>,
    /// Present when the caller used a full or partial ARN.
    pub account: Option<String>,
}

impl Target {
    /// `arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}]`, for messages; the
    /// caller's own region and account win over the defaults given.
    pub fn arn(&self, default_region: &str, default_account: &str) -> String {
        let region = self.region.as_deref().unwrap_or(default_region);
        let account = self.account.as_deref().unwrap_or(default_account);
        let mut arn = format!("arn:aws:lambda:{region}:{account}:function:{}", self.name);
        if let Some(q) = &self.qualifier {
            arn.push(':');
            arn.push_str(q);
        }
        arn
    }

    /// The version that runs: the qualifier, or `$LATEST`.
    pub fn qualifier_or_latest(&self) -> &str {
        self.qualifier.as_deref().unwrap_or("$LATEST")
    }
}

fn validation(value: &str, member: &str, constraint: &str) -> InvokeError {
    InvokeError::Validation {
        message: format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
        ),
    }
}

fn name_error(value: &str) -> InvokeError {
    validation(
        value,
        "functionName",
        &format!("Member must satisfy regular expression pattern: {NAME_PATTERN}"),
    )
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_qualifier(s: &str) -> bool {
    s == "$LATEST"
        || s == "$LATEST.PUBLISHED"
        || (!s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')))
}

fn is_region(s: &str) -> bool {
    // `us-east-1`, `us-gov-west-1`, `eu-isoe-west-1`: lower-case words joined by `-`, ending in
    // one digit; exact partition rules are AWS's business.
    let Some((words, digit)) = s.rsplit_once('-') else {
        return false;
    };
    digit.len() == 1
        && digit.as_bytes()[0].is_ascii_digit()
        && words.split('-').count() >= 2
        && words
            .split('-')
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses the raw `{FunctionName}` segment and the raw query string into a [`Target`].
///
/// Accepts `name`, `name:qualifier`, `arn:aws:lambda:region:account:function:name[:qualifier]`
/// and `account:function:name[:qualifier]`, percent-encoded or not.
pub fn parse_target(raw_segment: &str, query: &str) -> Result<Target, InvokeError> {
    let decoded = percent_decode_str(raw_segment)
        .decode_utf8()
        .map_err(|_| name_error(raw_segment))?;
    let full = decoded.as_ref();
    if full.is_empty() || full.len() > 256 {
        return Err(validation(
            full,
            "functionName",
            "Member must have length less than or equal to 256",
        ));
    }
    let parts: Vec<&str> = full.split(':').collect();
    let (region, account, name, qualifier) = match parts[..] {
        [
            "arn",
            partition,
            "lambda",
            region,
            account,
            "function",
            name,
            ref rest @ ..,
        ] if partition.starts_with("aws") && is_region(region) && is_account(account) => {
            (Some(region), Some(account), name, rest)
        }
        [account, "function", name, ref rest @ ..] if is_account(account) => {
            (None, Some(account), name, rest)
        }
        [name, ref rest @ ..] => (None, None, name, rest),
        [] => unreachable!("split yields at least one part"),
    };
    let qualifier = match qualifier {
        [] => None,
        [q] if is_qualifier(q) => Some(*q),
        _ => return Err(name_error(full)),
    };
    if !is_name(name) {
        return Err(name_error(full));
    }

    let mut query_qualifier = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "Qualifier" {
            let v = percent_decode_str(v)
                .decode_utf8()
                .map_err(|_| validation(v, "qualifier", "Member must be UTF-8"))?;
            if !is_qualifier(&v) {
                return Err(validation(
                    &v,
                    "qualifier",
                    "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)",
                ));
            }
            query_qualifier = Some(v.into_owned());
        }
    }
    let qualifier = match (qualifier, query_qualifier) {
        (Some(a), Some(b)) if a != b => {
            return Err(InvokeError::InvalidParameterValue {
                message: "The derived qualifier from the function name does not match the specified qualifier.".into(),
            });
        }
        (Some(a), _) => Some(a.to_string()),
        (None, b) => b,
    };
    Ok(Target {
        name: name.to_string(),
        qualifier,
        region: region.map(str::to_string),
        account: account.map(str::to_string),
    })
}

/// `X-Amz-Invocation-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvocationType {
    #[default]
    RequestResponse,
    Event,
    DryRun,
}

impl InvocationType {
    /// The header's value; a missing header is `RequestResponse`.
    pub fn parse(header: Option<&str>) -> Result<InvocationType, InvokeError> {
        match header {
            None | Some("RequestResponse") => Ok(InvocationType::RequestResponse),
            Some("Event") => Ok(InvocationType::Event),
            Some("DryRun") => Ok(InvocationType::DryRun),
            Some(other) => Err(validation(
                other,
                "invocationType",
                "Member must satisfy enum value set: [Event, RequestResponse, DryRun]",
            )),
        }
    }

    /// The success status: 200, 202 or 204.
    pub fn status(self) -> u16 {
        match self {
            InvocationType::RequestResponse => 200,
            InvocationType::Event => 202,
            InvocationType::DryRun => 204,
        }
    }

    /// The payload limit for this kind of invocation.
    pub fn payload_limit(self) -> usize {
        match self {
            InvocationType::Event => EVENT_PAYLOAD_LIMIT,
            InvocationType::RequestResponse | InvocationType::DryRun => SYNC_PAYLOAD_LIMIT,
        }
    }
}

/// `X-Amz-Log-Type`: whether the caller wants the log tail back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogType {
    #[default]
    None,
    Tail,
}

impl LogType {
    pub fn parse(header: Option<&str>) -> Result<LogType, InvokeError> {
        match header {
            None | Some("None") => Ok(LogType::None),
            Some("Tail") => Ok(LogType::Tail),
            Some(other) => Err(validation(
                other,
                "logType",
                "Member must satisfy enum value set: [Tail, None]",
            )),
        }
    }
}

/// A validated `X-Amz-Client-Context`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientContext {
    /// The header as received; forwarded to the RIE, which decodes it itself.
    pub base64: String,
    /// The decoded JSON object (what the runtime sees as `Lambda-Runtime-Client-Context`).
    pub json: String,
}

/// Padding optional, as clients differ; the alphabet is the standard one.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl ClientContext {
    /// Checks the header: at most 3,583 bytes of base64 that decode to a JSON object. The RIE
    /// answers an undecodable one with a bare 500, so it is refused here first.
    pub fn parse(header: &str) -> Result<ClientContext, InvokeError> {
        if header.len() > CLIENT_CONTEXT_LIMIT {
            return Err(InvokeError::InvalidRequestContent {
                message: format!(
                    "Client context must be at most {CLIENT_CONTEXT_LIMIT} bytes of base64, got {}.",
                    header.len()
                ),
            });
        }
        let invalid = || InvokeError::InvalidRequestContent {
            message: "Client context must be a valid Base64-encoded JSON object.".into(),
        };
        let bytes = LENIENT.decode(header.trim()).map_err(|_| invalid())?;
        let json = String::from_utf8(bytes).map_err(|_| invalid())?;
        match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(serde_json::Value::Object(_)) => Ok(ClientContext {
                base64: header.to_string(),
                json,
            }),
            _ => Err(invalid()),
        }
    }
}

/// Refuses a payload of `len` bytes over the limit of `kind`; callable with `Content-Length`
/// before the body is read.
pub fn check_payload_size(kind: InvocationType, len: usize) -> Result<(), InvokeError> {
    let limit = kind.payload_limit();
    if len > limit {
        return Err(InvokeError::RequestTooLarge {
            message: format!(
                "Request must be smaller than {limit} bytes for the InvokeFunction operation"
            ),
        });
    }
    Ok(())
}

/// Checks the payload (size, then JSON) and returns what the function receives: the body, or
/// `{}` for an empty one (boto3 sends an empty body when `Payload` is omitted).
pub fn payload(kind: InvocationType, body: &[u8]) -> Result<&[u8], InvokeError> {
    check_payload_size(kind, body.len())?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(b"{}");
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|e| {
        InvokeError::InvalidRequestContent {
            message: format!(
                "Could not parse request body into json: Could not parse payload into json: {e}"
            ),
        }
    })?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(
        name: &str,
        qualifier: Option<&str>,
        region: Option<&str>,
        account: Option<&str>,
    ) -> Target {
        Target {
            name: name.into(),
            qualifier: qualifier.map(Into::into),
            region: region.map(Into::into),
            account: account.map(Into::into),
        }
    }

    #[track_caller]
    fn check(path: &str, query: &str, want: Target) {
        let seg = function_segment(path).unwrap_or_else(|| panic!("{path} is an invoke path"));
        assert_eq!(parse_target(seg, query), Ok(want), "{path}?{query}");
    }

    #[track_caller]
    fn check_err(seg: &str, query: &str, ty: &str, msg: &str) {
        let e = parse_target(seg, query).expect_err(seg);
        assert_eq!(e.error_type(), ty, "{seg}");
        assert!(e.to_string().contains(msg), "{seg}: {e}");
    }

    const ACCT: &str = "123456789012";

    #[test]
    fn every_function_name_form_boto3_sends() {
        let p = |seg: &str| format!("/2015-03-31/functions/{seg}/invocations");
        check(&p("orders"), "", t("orders", None, None, None));
        check(
            &p("orders%3Alive"),
            "",
            t("orders", Some("live"), None, None),
        );
        check(&p("orders:7"), "", t("orders", Some("7"), None, None));
        check(
            &p("orders%3A%24LATEST"),
            "",
            t("orders", Some("$LATEST"), None, None),
        );
        check(
            &p("orders"),
            "Qualifier=%24LATEST",
            t("orders", Some("$LATEST"), None, None),
        );
        check(
            &p("arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aorders"),
            "Qualifier=%24LATEST",
            t("orders", Some("$LATEST"), Some("us-east-1"), Some(ACCT)),
        );
        check(
            &p("arn%3Aaws%3Alambda%3Aus-west-2%3A123456789012%3Afunction%3Amy-function%3Aprod"),
            "",
            t("my-function", Some("prod"), Some("us-west-2"), Some(ACCT)),
        );
        check(
            &p("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f_1"),
            "",
            t("f_1", None, Some("us-gov-west-1"), Some(ACCT)),
        );
        check(
            &p("123456789012%3Afunction%3Aorders"),
            "",
            t("orders", None, None, Some(ACCT)),
        );
        check(
            &p("123456789012%3Afunction%3Aorders%3A3"),
            "Qualifier=3",
            t("orders", Some("3"), None, Some(ACCT)),
        );
        // Other query parameters are not ours to refuse.
        check(
            &p("orders"),
            "x=1&Qualifier=v2",
            t("orders", Some("v2"), None, None),
        );
        check(
            &p(&"a".repeat(64)),
            "",
            t(&"a".repeat(64), None, None, None),
        );
    }

    #[test]
    fn malformed_names_and_qualifiers() {
        let pattern = "Member must satisfy regular expression pattern";
        check_err("bad%20name", "", "ValidationException", pattern);
        check_err(
            "bad%20name",
            "",
            "ValidationException",
            "Value 'bad name' at 'functionName'",
        );
        check_err(&"a".repeat(65), "", "ValidationException", pattern);
        check_err("orders:a:b", "", "ValidationException", pattern);
        check_err("orders:", "", "ValidationException", pattern);
        check_err("orders:v%2F1", "", "ValidationException", pattern);
        check_err("%FF", "", "ValidationException", pattern);
        check_err("", "", "ValidationException", "length");
        check_err(&"a".repeat(257), "", "ValidationException", "length");
        // Not one of the ARN forms: a short account, a non-lambda service, a missing `function`.
        check_err("12345:function:orders", "", "ValidationException", pattern);
        check_err(
            "arn:aws:s3:us-east-1:123456789012:function:x",
            "",
            "ValidationException",
            pattern,
        );
        check_err(
            "arn:aws:lambda:us-east-1:123456789012:layer:x",
            "",
            "ValidationException",
            pattern,
        );
        check_err(
            "orders",
            "Qualifier=a%20b",
            "ValidationException",
            "Value 'a b' at 'qualifier'",
        );
        check_err(
            "orders:live",
            "Qualifier=7",
            "InvalidParameterValueException",
            "The derived qualifier from the function name does not match the specified qualifier.",
        );
        // The same qualifier twice is fine.
        assert_eq!(
            parse_target("orders:live", "Qualifier=live")
                .unwrap()
                .qualifier
                .as_deref(),
            Some("live")
        );
    }

    #[test]
    fn only_invoke_paths_have_a_function_segment() {
        assert_eq!(
            function_segment("/2015-03-31/functions/f/invocations"),
            Some("f")
        );
        assert_eq!(function_segment("/2015-03-31/functions//invocations"), None);
        assert_eq!(
            function_segment("/2015-03-31/functions/a/b/invocations"),
            None
        );
        assert_eq!(
            function_segment("/2015-03-31/functions/f/invoke-async"),
            None
        );
        assert_eq!(
            function_segment("/2016-03-31/functions/f/invocations"),
            None
        );
    }

    #[test]
    fn arns_for_messages() {
        let target = parse_target("orders:live", "").unwrap();
        assert_eq!(
            target.arn("us-east-1", ACCT),
            "arn:aws:lambda:us-east-1:123456789012:function:orders:live"
        );
        let target = parse_target("arn:aws:lambda:eu-west-3:000000000000:function:x", "").unwrap();
        assert_eq!(
            target.arn("us-east-1", ACCT),
            "arn:aws:lambda:eu-west-3:000000000000:function:x"
        );
        assert_eq!(target.qualifier_or_latest(), "$LATEST");
    }

    #[test]
    fn invocation_and_log_types() {
        use InvocationType::*;
        assert_eq!(InvocationType::parse(None), Ok(RequestResponse));
        assert_eq!(InvocationType::parse(Some("Event")), Ok(Event));
        assert_eq!(InvocationType::parse(Some("DryRun")), Ok(DryRun));
        let e = InvocationType::parse(Some("event")).unwrap_err();
        assert_eq!(e.error_type(), "ValidationException");
        assert!(e.to_string().contains("[Event, RequestResponse, DryRun]"));
        assert_eq!(
            [RequestResponse, Event, DryRun].map(InvocationType::status),
            [200, 202, 204]
        );
        assert_eq!(LogType::parse(None), Ok(LogType::None));
        assert_eq!(LogType::parse(Some("Tail")), Ok(LogType::Tail));
        assert_eq!(LogType::parse(Some("tail")).unwrap_err().status(), 400);
    }

    #[test]
    fn client_context() {
        // {"custom": {"k": "v"}}
        let ok = ClientContext::parse("eyJjdXN0b20iOiB7ImsiOiAidiJ9fQ==").unwrap();
        assert_eq!(ok.json, r#"{"custom": {"k": "v"}}"#);
        assert_eq!(ok.base64, "eyJjdXN0b20iOiB7ImsiOiAidiJ9fQ==");
        assert_eq!(
            ClientContext::parse("eyJjdXN0b20iOiB7ImsiOiAidiJ9fQ")
                .unwrap()
                .json,
            ok.json,
            "padding is optional"
        );
        let bad = |h: &str| ClientContext::parse(h).unwrap_err();
        for h in [
            "not base64!",
            "WzFd",         /* [1] */
            "bm90IGpzb24=", /* not json */
            "/w==",         /* 0xff */
        ] {
            let e = bad(h);
            assert_eq!(e.error_type(), "InvalidRequestContentException", "{h}");
            assert_eq!(
                e.to_string(),
                "Client context must be a valid Base64-encoded JSON object."
            );
        }
        // 3,583 bytes of base64 pass, 3,584 do not.
        let json = format!("{{\"k\":\"{}\"}}", "x".repeat(2680));
        let b64 = base64::engine::general_purpose::STANDARD.encode(&json);
        assert_eq!(b64.len(), 3584);
        assert!(bad(&b64).to_string().contains("at most 3583 bytes"));
        let json = format!("{{\"k\":\"{}\"}}", "x".repeat(2679));
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&json);
        assert_eq!(b64.len(), 3583);
        assert!(ClientContext::parse(&b64).is_ok());
    }

    #[test]
    fn payloads() {
        use InvocationType::*;
        assert_eq!(payload(RequestResponse, b""), Ok(&b"{}"[..]));
        assert_eq!(payload(Event, b" \n"), Ok(&b"{}"[..]));
        assert_eq!(payload(RequestResponse, b"[1,2]"), Ok(&b"[1,2]"[..]));
        assert_eq!(payload(RequestResponse, b"\"s\""), Ok(&b"\"s\""[..]));
        let e = payload(RequestResponse, b"{\"a\":").unwrap_err();
        assert_eq!(e.error_type(), "InvalidRequestContentException");
        assert!(
            e.to_string()
                .starts_with("Could not parse request body into json")
        );
        assert_eq!(
            payload(RequestResponse, b"{} {}").unwrap_err().status(),
            400,
            "trailing data"
        );
        assert!(check_payload_size(RequestResponse, SYNC_PAYLOAD_LIMIT).is_ok());
        let e = check_payload_size(RequestResponse, SYNC_PAYLOAD_LIMIT + 1).unwrap_err();
        assert_eq!(
            (e.status(), e.error_type()),
            (413, "RequestTooLargeException")
        );
        assert_eq!(
            e.to_string(),
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
        );
        assert!(check_payload_size(Event, EVENT_PAYLOAD_LIMIT).is_ok());
        assert_eq!(
            check_payload_size(Event, EVENT_PAYLOAD_LIMIT + 1)
                .unwrap_err()
                .status(),
            413
        );
        assert_eq!(check_payload_size(DryRun, EVENT_PAYLOAD_LIMIT + 1), Ok(()));
    }
}
