//! Token tests, named after the reliability checklist's §7 B rows they cover.

use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::json;

use super::*;

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_esb";
const CLIENT: &str = "esb-client";

fn pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| keys::generate_rsa_pem().unwrap())
}

fn attacker_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| keys::generate_rsa_pem().unwrap())
}

fn settings() -> TokenSettings {
    TokenSettings::new(ISS, CLIENT)
}

fn rs() -> &'static TokenService {
    static S: OnceLock<TokenService> = OnceLock::new();
    S.get_or_init(|| TokenService::rs256_from_pem(pem().as_bytes(), settings()).unwrap())
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-hs";

fn hs() -> TokenService {
    TokenService::hs256(SECRET, settings()).unwrap()
}

fn alice() -> UserClaims<'static> {
    static GROUPS: OnceLock<Vec<String>> = OnceLock::new();
    UserClaims {
        username: "alice",
        email: Some("alice@example.com"),
        groups: GROUPS.get_or_init(|| vec!["admin".into(), "dev".into()]),
    }
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

fn id_kid(s: &TokenService) -> String {
    s.keys[0].kid.clone()
}

/// Baseline ID-token claims, with `edit` applied.
fn claims(edit: impl FnOnce(&mut Map<String, Value>)) -> Value {
    let mut m = json!({
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "iss": ISS, "aud": CLIENT,
        "token_use": "id", "cognito:username": "alice", "auth_time": NOW,
        "iat": NOW, "exp": NOW + 3600, "jti": "j"
    })
    .as_object()
    .unwrap()
    .clone();
    edit(&mut m);
    Value::Object(m)
}

/// Signs `header.payload` (both raw JSON text) with `key` under `alg`.
fn forge_raw(
    header: &str,
    payload: &str,
    key: &EncodingKey,
    alg: jsonwebtoken::Algorithm,
) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
    format!("{input}.{sig}")
}

fn our_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(pem().as_bytes()).unwrap()
}

fn attacker_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(attacker_pem().as_bytes()).unwrap()
}

/// A token signed with our own RS256 key and id kid, with the given claims.
fn ours(c: &Value) -> String {
    let header = json!({"kid": id_kid(rs()), "alg": "RS256"}).to_string();
    forge_raw(
        &header,
        &c.to_string(),
        &our_key(),
        jsonwebtoken::Algorithm::RS256,
    )
}

/// `Ok(username)` or the error's reason.
fn check(service: &TokenService, authorization: &str, expected: Result<&str, AuthError>) {
    let got = service.verify(authorization, NOW).map(|v| v.username);
    assert_eq!(
        got.as_deref().map_err(|e| *e),
        expected,
        "{authorization:.80}"
    );
}

fn rejected(service: &TokenService, authorization: &str) {
    assert!(
        service.verify(authorization, NOW).is_err(),
        "accepted: {authorization:.120}"
    );
}

#[test]
fn b1_baseline_raw_and_bearer() {
    let t = rs().issue(&alice(), NOW, NOW, None).unwrap();
    check(rs(), &t.id_token, Ok("alice"));
    check(rs(), &format!("Bearer {}", t.id_token), Ok("alice"));
    let v = rs().verify(&t.id_token, NOW).unwrap();
    assert_eq!(v.token_use, TokenUse::Id);
    assert_eq!(v.valid_until, NOW + 3600 + 60);
    assert_eq!(v.claims["email"], "alice@example.com");
    assert_eq!(v.claims["cognito:groups"], json!(["admin", "dev"]));
    assert_eq!(v.claims["aud"], CLIENT);
    assert_eq!(t.expires_in, 3600);
    let h = hs().issue(&alice(), NOW, NOW, None).unwrap();
    check(&hs(), &h.id_token, Ok("alice"));
}

#[test]
fn cognito_shapes_and_distinct_kids() {
    let t = rs().issue(&alice(), NOW, NOW - 100, None).unwrap();
    let part = |tok: &str, i: usize| -> Value {
        let seg = tok.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
    };
    let (idh, ida) = (part(&t.id_token, 0), part(&t.id_token, 1));
    let (ach, aca) = (part(&t.access_token, 0), part(&t.access_token, 1));
    assert_eq!(idh["alg"], "RS256");
    assert_ne!(idh["kid"], ach["kid"]);
    for k in [
        "sub",
        "cognito:username",
        "token_use",
        "aud",
        "iss",
        "exp",
        "iat",
        "auth_time",
        "jti",
        "origin_jti",
        "email",
    ] {
        assert!(ida.get(k).is_some(), "id token lacks {k}");
    }
    assert_eq!(ida["auth_time"], NOW - 100);
    for k in [
        "sub",
        "username",
        "token_use",
        "client_id",
        "scope",
        "iss",
        "exp",
        "iat",
        "auth_time",
        "jti",
        "origin_jti",
    ] {
        assert!(aca.get(k).is_some(), "access token lacks {k}");
    }
    assert!(aca.get("aud").is_none());
    assert_eq!(aca["token_use"], "access");
    assert_eq!(ida["origin_jti"], aca["origin_jti"]);
    assert_eq!(ida["sub"], aca["sub"]);

    let jwks: Value = serde_json::from_str(&rs().jwks_json()).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&idh["kid"].as_str().unwrap()));
    assert!(kids.contains(&ach["kid"].as_str().unwrap()));
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["e"], "AQAB");
    assert_eq!(hs().jwks_json(), r#"{"keys":[]}"#);
}

#[test]
fn refresh_flow() {
    let t = rs().issue(&alice(), NOW, NOW, None).unwrap();
    let r = t.refresh_token.unwrap();
    let grant = rs().verify_refresh(&r, NOW + 86_400).unwrap();
    assert_eq!(grant.username, "alice");
    assert_eq!(grant.auth_time, NOW);
    // Refresh tokens are never accepted on routes.
    check(rs(), &r, Err(AuthError::TokenUse));
    // ID tokens are not refresh tokens.
    assert_eq!(
        rs().verify_refresh(&t.id_token, NOW),
        Err(AuthError::TokenUse)
    );
    let again = rs()
        .issue(
            &alice(),
            NOW + 86_400,
            grant.auth_time,
            Some(&grant.origin_jti),
        )
        .unwrap();
    assert!(again.refresh_token.is_none());
    check(rs(), &again.id_token, Err(AuthError::IssuedInFuture));
    assert!(rs().verify(&again.id_token, NOW + 86_400).is_ok());
}

#[test]
fn b2_missing_token() {
    check(rs(), "", Err(AuthError::Missing));
    check(rs(), "Bearer ", Err(AuthError::Missing));
    rejected(rs(), "Bearer");
}

#[test]
fn b3_broken_signature() {
    let t = rs().issue(&alice(), NOW, NOW, None).unwrap().id_token;
    rejected(rs(), &t[..t.len() - 4]);
    let mut altered = t.clone().into_bytes();
    let i = altered.len() - 10;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    check(
        rs(),
        std::str::from_utf8(&altered).unwrap(),
        Err(AuthError::Signature),
    );
    // A valid signature over different claims.
    let other = rs()
        .issue(
            &UserClaims {
                username: "mallory",
                email: None,
                groups: &[],
            },
            NOW,
            NOW,
            None,
        )
        .unwrap()
        .id_token;
    let spliced = format!(
        "{}.{}",
        other.rsplit_once('.').unwrap().0,
        t.rsplit_once('.').unwrap().1
    );
    check(rs(), &spliced, Err(AuthError::Signature));
}

#[test]
fn b4_null_signature() {
    let t = rs().issue(&alice(), NOW, NOW, None).unwrap().id_token;
    let (input, _) = t.rsplit_once('.').unwrap();
    check(rs(), &format!("{input}."), Err(AuthError::Signature));
}

#[test]
fn b5_alg_none() {
    let payload = b64(claims(|_| {}).to_string().as_bytes());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(json!({"alg": alg, "kid": id_kid(rs())})
            .to_string()
            .as_bytes());
        rejected(rs(), &format!("{header}.{payload}."));
        check(
            rs(),
            &format!("{header}.{payload}.c2ln"),
            Err(AuthError::Algorithm),
        );
        rejected(&hs(), &format!("{header}.{payload}."));
    }
}

#[test]
fn b6_rs_to_hs_confusion() {
    let public = keys::rsa_public_from_pem(pem().as_bytes()).unwrap();
    let pub_pem_like = [
        pem().as_bytes().to_vec(),
        pem().trim_end().as_bytes().to_vec(),
        public.n.clone(),
    ];
    for secret in pub_pem_like {
        let tok = forge_raw(
            &json!({"alg": "HS256", "kid": id_kid(rs())}).to_string(),
            &claims(|_| {}).to_string(),
            &EncodingKey::from_secret(&secret),
            jsonwebtoken::Algorithm::HS256,
        );
        check(rs(), &tok, Err(AuthError::Algorithm));
    }
}

#[test]
fn b7_blank_and_weak_hmac() {
    for secret in [
        &b""[..],
        b"secret",
        b"password",
        b"dev-secret-key-change-in-production",
    ] {
        let tok = forge_raw(
            &json!({"alg": "HS256", "typ": "JWT"}).to_string(),
            &claims(|_| {}).to_string(),
            &EncodingKey::from_secret(secret),
            jsonwebtoken::Algorithm::HS256,
        );
        check(&hs(), &tok, Err(AuthError::Signature));
    }
    assert_eq!(
        TokenService::hs256(b"short", settings()).unwrap_err(),
        KeyError::WeakSecret
    );
}

#[test]
fn b8_other_algorithms() {
    use jsonwebtoken::Algorithm as A;
    for (alg, key) in [
        (A::RS384, our_key()),
        (A::RS512, our_key()),
        (A::PS256, our_key()),
        (A::RS384, attacker_key()),
    ] {
        let tok = forge_raw(
            &json!({"alg": format!("{alg:?}"), "kid": id_kid(rs())}).to_string(),
            &claims(|_| {}).to_string(),
            &key,
            alg,
        );
        check(rs(), &tok, Err(AuthError::Algorithm));
    }
    // ES256 "psychic signature" (r = s = 0) and EdDSA headers.
    for alg in ["ES256", "EdDSA", "rs256", "RS256 "] {
        let header = b64(json!({"alg": alg, "kid": id_kid(rs())})
            .to_string()
            .as_bytes());
        let payload = b64(claims(|_| {}).to_string().as_bytes());
        let zero = b64(&[0u8; 64]);
        check(
            rs(),
            &format!("{header}.{payload}.{zero}"),
            Err(AuthError::Algorithm),
        );
    }
}

#[test]
fn b9_embedded_jwk_and_other_refused_header_parameters() {
    let public = keys::rsa_public_from_pem(attacker_pem().as_bytes()).unwrap();
    let jwk = json!({"kty": "RSA", "n": b64(&public.n), "e": b64(&public.e)});
    for (extra, name) in [
        (json!({"jwk": jwk}), "jwk"),
        (
            json!({"jku": "http://169.254.169.254/latest/meta-data/"}),
            "jku",
        ),
        (json!({"jku": "https://attacker.example/jwks.json"}), "jku"),
        (json!({"x5u": "https://attacker.example/cert.pem"}), "x5u"),
        (json!({"x5c": ["MIIB"]}), "x5c"),
        (json!({"crit": ["exp"]}), "crit"),
        (json!({"crit": ["x-unknown"], "x-unknown": 1}), "crit"),
        (json!({"crit": null}), "crit"),
        (json!({"cty": "JWT"}), "cty"),
        (json!({"zip": "DEF"}), "zip"),
    ] {
        let mut h = json!({"alg": "RS256", "kid": id_kid(rs())});
        h.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        // Signed with our own key: only the parameter can make it fail.
        let tok = forge_raw(
            &h.to_string(),
            &claims(|_| {}).to_string(),
            &our_key(),
            jsonwebtoken::Algorithm::RS256,
        );
        check(rs(), &tok, Err(AuthError::Header(name)));
    }
}

#[test]
fn b11_kid_injection() {
    for kid in [
        "".to_string(),
        "../../../../../../dev/null".into(),
        "/dev/null".into(),
        "/invalid_path".into(),
        "|sleep 10".into(),
        "x' UNION SELECT '1';--".into(),
        "ключ".into(),
        "a\0b".into(),
        "k".repeat(10 * 1024),
    ] {
        let header = json!({"alg": "RS256", "kid": kid}).to_string();
        let tok = forge_raw(
            &header,
            &claims(|_| {}).to_string(),
            &our_key(),
            jsonwebtoken::Algorithm::RS256,
        );
        rejected(rs(), &tok);
        if tok.len() <= settings().max_token_bytes {
            check(rs(), &tok, Err(AuthError::UnknownKey));
        }
    }
    // No kid at all on RS256.
    let tok = forge_raw(
        r#"{"alg":"RS256"}"#,
        &claims(|_| {}).to_string(),
        &our_key(),
        jsonwebtoken::Algorithm::RS256,
    );
    check(rs(), &tok, Err(AuthError::UnknownKey));
    // The kid must agree with token_use: an ID token under the access kid.
    let header = json!({"alg": "RS256", "kid": rs().keys[1].kid}).to_string();
    let tok = forge_raw(
        &header,
        &claims(|_| {}).to_string(),
        &our_key(),
        jsonwebtoken::Algorithm::RS256,
    );
    check(rs(), &tok, Err(AuthError::TokenUse));
}

#[test]
fn b15_expiry_and_leeway() {
    check(
        rs(),
        &ours(&claims(|c| {
            c.insert("exp".into(), json!(NOW - 61));
        })),
        Err(AuthError::Expired),
    );
    check(
        rs(),
        &ours(&claims(|c| {
            c.insert("exp".into(), json!(NOW - 60));
        })),
        Err(AuthError::Expired),
    );
    // Within the 60 s leeway.
    check(
        rs(),
        &ours(&claims(|c| {
            c.insert("exp".into(), json!(NOW - 1));
        })),
        Ok("alice"),
    );
    let strict = TokenService::rs256_from_pem(
        pem().as_bytes(),
        TokenSettings {
            leeway_secs: 0,
            ..settings()
        },
    )
    .unwrap();
    check(
        &strict,
        &ours(&claims(|c| {
            c.insert("exp".into(), json!(NOW - 1));
        })),
        Err(AuthError::Expired),
    );
    check(
        &strict,
        &ours(&claims(|c| {
            c.insert("exp".into(), json!(NOW));
        })),
        Err(AuthError::Expired),
    );
    check(
        &strict,
        &ours(&claims(|c| {
            c.insert("exp".into(), json!(NOW + 1));
        })),
        Ok("alice"),
    );
}

#[test]
fn b16_missing_exp_and_iat() {
    check(
        rs(),
        &ours(&claims(|c| {
            c.remove("exp");
        })),
        Err(AuthError::Claim("exp")),
    );
    check(
        rs(),
        &ours(&claims(|c| {
            c.remove("iat");
        })),
        Err(AuthError::Claim("iat")),
    );
}

#[test]
fn b17_nbf_and_iat_in_the_future() {
    check(
        rs(),
        &ours(&claims(|c| {
            c.insert("nbf".into(), json!(NOW + 3600));
        })),
        Err(AuthError::NotYetValid),
    );
    check(
        rs(),
        &ours(&claims(|c| {
            c.insert("iat".into(), json!(NOW + 3600));
        })),
        Err(AuthError::IssuedInFuture),
    );
    check(
        rs(),
        &ours(&claims(|c| {
            c.insert("nbf".into(), json!(NOW + 30));
        })),
        Ok("alice"),
    );
    check(
        rs(),
        &ours(&claims(|c| {
            c.insert("nbf".into(), json!(NOW - 30));
        })),
        Ok("alice"),
    );
}

#[test]
fn b18_claim_type_confusion() {
    for claim in ["exp", "nbf", "iat", "auth_time"] {
        for bad in [
            json!("99999999999"),
            json!({"a": 1}),
            json!([NOW + 10]),
            json!(true),
            json!(null),
            json!(1e300),
            json!(-1),
            json!(1.5),
            json!(NOW as f64 + 0.5),
            json!(u64::MAX),
        ] {
            let tok = ours(&claims(|c| {
                c.insert(claim.into(), bad.clone());
            }));
            check(rs(), &tok, Err(AuthError::Claim(claim)));
        }
    }
    for (claim, bad) in [
        ("sub", json!(5)),
        ("cognito:username", json!(["alice"])),
        ("cognito:username", json!("")),
    ] {
        rejected(
            rs(),
            &ours(&claims(|c| {
                c.insert(claim.into(), bad);
            })),
        );
    }
}

#[test]
fn b19_wrong_issuer() {
    for bad in [
        json!("https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_other"),
        json!(format!("{ISS}/")),
        json!([ISS]),
        json!(null),
    ] {
        check(
            rs(),
            &ours(&claims(|c| {
                c.insert("iss".into(), bad);
            })),
            Err(AuthError::Issuer),
        );
    }
    check(
        rs(),
        &ours(&claims(|c| {
            c.remove("iss");
        })),
        Err(AuthError::Issuer),
    );
}

#[test]
fn b20_wrong_or_missing_audience() {
    // Arrays are refused even when one element matches: Cognito's aud is one client id.
    for bad in [
        json!("other-client"),
        json!([CLIENT, "other"]),
        json!([CLIENT]),
        json!(null),
    ] {
        check(
            rs(),
            &ours(&claims(|c| {
                c.insert("aud".into(), bad);
            })),
            Err(AuthError::Audience),
        );
    }
    check(
        rs(),
        &ours(&claims(|c| {
            c.remove("aud");
        })),
        Err(AuthError::Audience),
    );
}

#[test]
fn b21_token_kind_confusion() {
    let t = rs().issue(&alice(), NOW, NOW, None).unwrap();
    check(rs(), &t.access_token, Err(AuthError::TokenUse));
    check(
        rs(),
        &ours(&claims(|c| {
            c.remove("token_use");
        })),
        Err(AuthError::TokenUse),
    );
    check(
        rs(),
        &ours(&claims(|c| {
            c.insert("token_use".into(), json!("ID"));
        })),
        Err(AuthError::TokenUse),
    );
    let both = TokenService::rs256_from_pem(
        pem().as_bytes(),
        TokenSettings {
            accept_access_tokens: true,
            ..settings()
        },
    )
    .unwrap();
    let t = both.issue(&alice(), NOW, NOW, None).unwrap();
    let v = both.verify(&t.access_token, NOW).unwrap();
    assert_eq!(
        (v.username.as_str(), v.token_use),
        ("alice", TokenUse::Access)
    );
    check(&both, &t.id_token, Ok("alice"));
}

#[test]
fn b23_duplicate_claims_are_refused() {
    let base = claims(|c| {
        c.remove("sub");
    })
    .to_string();
    let dup_sub = format!("{{\"sub\":\"alice\",\"sub\":\"admin\",{}", &base[1..]);
    let dup_exp = format!("{{\"exp\":{},{}", NOW - 10_000, &base[1..]);
    for payload in [dup_sub, dup_exp] {
        let header = json!({"alg": "RS256", "kid": id_kid(rs())}).to_string();
        let tok = forge_raw(
            &header,
            &payload,
            &our_key(),
            jsonwebtoken::Algorithm::RS256,
        );
        check(
            rs(),
            &tok,
            Err(AuthError::Malformed("payload JSON (or duplicate claim)")),
        );
    }
    let header = format!(
        "{{\"alg\":\"RS256\",\"alg\":\"none\",\"kid\":\"{}\"}}",
        id_kid(rs())
    );
    rejected(
        rs(),
        &forge_raw(
            &header,
            &claims(|_| {}).to_string(),
            &our_key(),
            jsonwebtoken::Algorithm::RS256,
        ),
    );
}

#[test]
fn b24_format_confusion() {
    let t = rs().issue(&alice(), NOW, NOW, None).unwrap().id_token;
    let parts: Vec<&str> = t.split('.').collect();
    let json_serialized =
        json!({"protected": parts[0], "payload": parts[1], "signature": parts[2]}).to_string();
    let padded_sig = {
        let raw = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        URL_SAFE.encode(raw)
    };
    let std_b64 = {
        let raw = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
        STANDARD.encode(raw)
    };
    for bad in [
        json_serialized,
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!("{}.{}.{padded_sig}", parts[0], parts[1]),
        format!("{}.{std_b64}.{}", parts[0], parts[2]),
        format!("{t}.{}", parts[2]),
        format!("{}.{}", parts[0], parts[1]),
        format!(
            "{}.{}.{}.{}.{}",
            parts[0], parts[1], parts[2], parts[2], parts[2]
        ),
        format!("{}. {}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}\n.{}", parts[0], parts[1], parts[2]),
        format!("\"{t}\""),
        format!("{{{t}}}"),
        format!("Bearer  {t}"),
        format!("bearer {t}"),
        format!("Basic {t}"),
        format!(".{}.{}", parts[1], parts[2]),
    ] {
        rejected(rs(), &bad);
    }
}

#[test]
fn b25_oversized_token_is_refused_before_decoding() {
    let huge = "a".repeat(100 * 1024);
    check(rs(), &huge, Err(AuthError::TooLarge));
    check(
        rs(),
        &format!("Bearer {huge}.b.c"),
        Err(AuthError::TooLarge),
    );
}

#[test]
fn b27_crit_and_typ() {
    for (h, want) in [
        (
            json!({"alg": "RS256", "kid": id_kid(rs()), "typ": "at+jwt"}),
            Err(AuthError::Header("typ")),
        ),
        (
            json!({"alg": "RS256", "kid": id_kid(rs()), "typ": "JWT"}),
            Ok("alice"),
        ),
        (
            json!({"alg": "RS256", "kid": id_kid(rs()), "crit": ["exp"]}),
            Err(AuthError::Header("crit")),
        ),
    ] {
        let tok = forge_raw(
            &h.to_string(),
            &claims(|_| {}).to_string(),
            &our_key(),
            jsonwebtoken::Algorithm::RS256,
        );
        check(rs(), &tok, want);
    }
}

#[test]
fn keys_load_from_pem() {
    assert!(matches!(
        TokenService::rs256_from_pem(b"not a pem", settings()),
        Err(KeyError::Rsa(_))
    ));
    assert!(pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));
    // Same PEM, same kids: tokens survive a restart with a persisted key.
    let again = TokenService::rs256_from_pem(pem().as_bytes(), settings()).unwrap();
    assert_eq!(again.keys[0].kid, rs().keys[0].kid);
    let t = again.issue(&alice(), NOW, NOW, None).unwrap();
    check(rs(), &t.id_token, Ok("alice"));
    // Another key's tokens are not ours.
    let other = TokenService::rs256_from_pem(attacker_pem().as_bytes(), settings()).unwrap();
    let t = other.issue(&alice(), NOW, NOW, None).unwrap();
    check(rs(), &t.id_token, Err(AuthError::UnknownKey));
}
