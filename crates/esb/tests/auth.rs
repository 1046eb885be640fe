//! Login and token checks through the real `esb` binary: the Cognito-shaped login endpoint, and
//! Cognito routes refusing every token they must refuse (checklist B2, B5, B15, B18, B26) while
//! the function sees the verified claims ("Done when").

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use support::{DEV_KEY, DEV_PASS, DEV_USER, DRIVERS, Esb, Rie, Setup};

const LOGIN: &str = "/user/auth/v1";

fn login(esb: &Esb, key: Option<&str>, body: &str) -> support::Response {
    let mut headers = vec![("content-type", "application/x-amz-json-1.1")];
    if let Some(k) = key {
        headers.push(("x-api-key", k));
    }
    esb.request("POST", LOGIN, &headers, body.as_bytes())
}

fn creds(user: &str, pass: &str) -> String {
    format!(r#"{{"AuthParameters":{{"USERNAME":"{user}","PASSWORD":"{pass}"}}}}"#)
}

fn padma(r: &support::Response) -> Option<&str> {
    r.header("PADMA_USER_AUTHORIZED")
}

#[test]
fn login_answers_in_cognitos_shape() {
    let esb = Esb::start(&Setup::new("epoll"));
    let r = login(&esb, Some(DEV_KEY), &creds(DEV_USER, DEV_PASS));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(padma(&r), Some("true"));
    let a = &r.json()["AuthenticationResult"];
    for k in ["IdToken", "AccessToken", "RefreshToken"] {
        assert_eq!(a[k].as_str().unwrap().split('.').count(), 3, "{k}");
    }
    assert_eq!(
        (a["ExpiresIn"].clone(), a["TokenType"].clone()),
        (json!(3600), json!("Bearer"))
    );
    assert_eq!(r.json()["ChallengeParameters"], json!({}));

    // Cognito's full InitiateAuth body, and the second configured login path.
    let full = format!(
        r#"{{"AuthFlow":"USER_PASSWORD_AUTH","ClientId":"esb-client","AuthParameters":{{"USERNAME":"{DEV_USER}","PASSWORD":"{DEV_PASS}"}},"ClientMetadata":{{}}}}"#
    );
    assert_eq!(login(&esb, Some(DEV_KEY), &full).status, 200);
    let r = esb.request(
        "POST",
        "/user/auth/ver1.0",
        &[("x-api-key", DEV_KEY)],
        creds(DEV_USER, DEV_PASS).as_bytes(),
    );
    assert_eq!(r.status, 200);

    // Wrong or missing key: 401, and no PADMA header.
    for key in [None, Some("wrong"), Some("")] {
        let r = login(&esb, key, &creds(DEV_USER, DEV_PASS));
        assert_eq!(r.status, 401, "{key:?}");
        assert_eq!(padma(&r), None, "{key:?}");
        assert_eq!(r.json()["__type"], json!("NotAuthorizedException"));
    }
    // Right key, wrong user or password: 401 with PADMA.
    for (u, p) in [(DEV_USER, "nope"), ("nobody", DEV_PASS), (DEV_USER, "")] {
        let r = login(&esb, Some(DEV_KEY), &creds(u, p));
        assert_eq!(r.status, 401, "{u}/{p}");
        assert_eq!(padma(&r), Some("true"));
        assert_eq!(
            r.json(),
            json!({"__type": "NotAuthorizedException", "message": "Incorrect username or password."})
        );
    }
    // Not an InitiateAuth body, or a flow esb does not do.
    for body in ["", "{", "[]", r#"{"AuthParameters":{"USERNAME":"demo"}}"#] {
        let r = login(&esb, Some(DEV_KEY), body);
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.json()["__type"], json!("InvalidParameterException"));
    }
    let r = login(
        &esb,
        Some(DEV_KEY),
        r#"{"AuthFlow":"USER_SRP_AUTH","AuthParameters":{}}"#,
    );
    assert_eq!(r.status, 400);
    // The JWKS carries the signing key.
    let jwks = esb.get("/.well-known/jwks.json", &[]).json();
    assert_eq!(jwks["keys"][0]["kty"], json!("RSA"));
    assert_eq!(jwks["keys"][0]["alg"], json!("RS256"));
}

/// The "Done when" walk: login, then the echo function sees the user and the request.
#[test]
fn a_logged_in_user_reaches_the_function_with_claims() {
    let rie = Rie::start();
    for driver in DRIVERS {
        let esb = Esb::start(&Setup::new(driver).rie(rie.port));
        let token = esb.login();
        let mut c = esb.connect();
        let auth = format!("Bearer {token}");
        let r = c.request("GET", "/echo/a/b?x=1&x=2", &[("Authorization", &auth)], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let e = &r.json()["event"];
        assert_eq!(
            e["requestContext"]["authorizer"]["claims"]["cognito:username"],
            json!(DEV_USER)
        );
        assert_eq!(e["multiValueQueryStringParameters"]["x"], json!(["1", "2"]));
        assert_eq!(e["queryStringParameters"]["x"], json!("2"));
        assert_eq!(e["pathParameters"]["proxy"], json!("a/b"));
        assert_eq!(e["resource"], json!("/echo/{proxy+}"));
        // The raw token works too (API Gateway's Cognito authorizer takes both forms).
        let r = c.request("GET", "/echo/raw", &[("Authorization", &token)], b"");
        assert_eq!(r.status, 200);
        // HTTP API events carry the claims under jwt.
        let r = c.request("POST", "/v2/echo/x", &[("Authorization", &auth)], b"{}");
        assert_eq!(
            r.json()["event"]["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:username"],
            json!(DEV_USER)
        );
        // Function failures behind a token are the same 502 / 500.
        let r = c.request(
            "GET",
            "/echo/x?malformed=1",
            &[("Authorization", &auth)],
            b"",
        );
        assert_eq!(r.status, 502);
        let r = c.request("GET", "/echo/x?fail=1", &[("Authorization", &auth)], b"");
        assert_eq!(r.status, 502);
    }
}

fn unauthorized(esb: &Esb, headers: &[(&str, &str)], what: &str) {
    let r = esb.request("GET", "/echo/a", headers, b"");
    assert_eq!(r.status, 401, "{what}: {}", r.text());
    assert_eq!(r.json(), json!({"message": "Unauthorized"}), "{what}");
}

#[test]
fn b2_b5_b26_missing_broken_and_unsigned_tokens_are_401() {
    let esb = Esb::start(&Setup::new("io_uring"));
    let token = esb.login();
    // B2: no token, empty, a bare scheme.
    unauthorized(&esb, &[], "no header");
    unauthorized(&esb, &[("Authorization", "")], "empty");
    unauthorized(&esb, &[("Authorization", "Bearer")], "scheme only");
    unauthorized(&esb, &[("Authorization", "Bearer ")], "scheme and space");
    // Broken signature, null signature, garbage.
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let broken = format!("{signed}.{}", &sig[..sig.len() - 4]);
    unauthorized(&esb, &[("Authorization", &broken)], "broken signature");
    unauthorized(
        &esb,
        &[("Authorization", &format!("{signed}."))],
        "null signature",
    );
    unauthorized(&esb, &[("Authorization", "not.a.token")], "garbage");
    // B5: alg none in every spelling, with the genuine payload.
    let payload = signed.split('.').nth(1).unwrap();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = B64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        let forged = format!("{header}.{payload}.");
        unauthorized(&esb, &[("Authorization", &format!("Bearer {forged}"))], alg);
    }
    // B26: quirks of the header itself.
    unauthorized(
        &esb,
        &[("Authorization", &format!("bearer {token}"))],
        "lower-case scheme",
    );
    unauthorized(
        &esb,
        &[("Authorization", &format!("Bearer  {token}"))],
        "two spaces",
    );
    let two = esb.request(
        "GET",
        "/echo/a",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Authorization", "Bearer x"),
        ],
        b"",
    );
    assert_eq!(two.status, 400, "two Authorization headers");
    // The genuine token still works after all that (nothing was cached wrongly).
    let ok = esb.request(
        "GET",
        "/health",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(ok.status, 200);
}

const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long!";

/// Re-signs a token's header and (edited) claims with the HS256 secret esb was given.
fn resign(token: &str, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut parts = token.split('.');
    let header = parts.next().unwrap();
    let mut claims: Value =
        serde_json::from_slice(&B64.decode(parts.next().unwrap()).unwrap()).unwrap();
    edit(claims.as_object_mut().unwrap());
    let payload = B64.encode(serde_json::to_vec(&claims).unwrap());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        B64.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn b15_b18_expired_and_type_confused_claims_are_401_even_when_signed() {
    let rie = Rie::start();
    let setup = Setup::new("epoll").rie(rie.port).auth(&format!(
        "algorithm = \"HS256\"\nhs256_secret = \"{SECRET}\"\nleeway_secs = 60"
    ));
    let esb = Esb::start(&setup);
    let token = esb.login();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let bearer = |t: &str| format!("Bearer {t}");
    // The re-signing itself is sound: an unchanged token re-signed passes.
    let same = resign(&token, |_| {});
    let r = esb.request("GET", "/echo/a", &[("Authorization", &bearer(&same))], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    // B15: expired beyond the leeway.
    for exp in [now - 61 - 60, now - 3600] {
        let t = resign(&token, |c| {
            c.insert("exp".into(), json!(exp));
        });
        unauthorized(
            &esb,
            &[("Authorization", &bearer(&t))],
            &format!("exp {exp}"),
        );
    }
    // Within the 60 s leeway it is still accepted (documented leeway).
    let t = resign(&token, |c| {
        c.insert("exp".into(), json!(now - 1));
    });
    let r = esb.request("GET", "/echo/a", &[("Authorization", &bearer(&t))], b"");
    assert_eq!(r.status, 200, "exp within leeway");
    // B18: exp / nbf of the wrong type or out of range, and other claims broken.
    let bad: Vec<(&str, Value)> = vec![
        ("exp", json!("99999999999")),
        ("exp", json!({"a": 1})),
        ("exp", json!([1])),
        ("exp", json!(true)),
        ("exp", json!(null)),
        ("exp", json!(1e300)),
        ("exp", json!(-1)),
        ("exp", json!(1.5)),
        ("nbf", json!("99999999999")),
        ("nbf", json!(now + 3600)),
        ("iat", json!(now + 3600)),
        ("token_use", json!("access")),
        ("aud", json!("someone-else")),
        (
            "iss",
            json!("https://cognito-idp.us-east-1.amazonaws.com/other"),
        ),
    ];
    for (claim, value) in bad {
        let t = resign(&token, |c| {
            c.insert(claim.into(), value.clone());
        });
        unauthorized(
            &esb,
            &[("Authorization", &bearer(&t))],
            &format!("{claim}={value}"),
        );
    }
    let t = resign(&token, |c| {
        c.remove("exp");
    });
    unauthorized(&esb, &[("Authorization", &bearer(&t))], "no exp");
}
