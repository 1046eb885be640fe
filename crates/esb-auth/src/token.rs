//! Cognito-shaped tokens: issue ID/access/refresh tokens and verify ID (optionally access) tokens,
//! with the time passed in.
//!
//! Hot path: [`TokenService::verify`] (behind the per-core [`crate::TokenCache`]).
//!
//! Verification order, each step failing closed (checklist §7 B):
//! 1. optional `Bearer ` prefix (exactly that spelling and one space), size cap (B25);
//! 2. compact JWS shape: three non-empty base64url segments, nothing else (B4, B24);
//! 3. header: `alg` must equal the configured algorithm byte for byte (B5, B6, B8); `jwk`, `jku`,
//!    `x5u`, `x5c`, `x5t`, `crit`, `cty`, `zip`, `enc`, `b64` are refused, never fetched or
//!    interpreted (B9, B10, B27); `typ`, if present, is `JWT`; `kid` must name one of our keys
//!    and is only compared, never used as a path or query (B11);
//! 4. signature, by jsonwebtoken's aws-lc-rs backend (B3, B7);
//! 5. only then the payload is parsed, with duplicate claim names refused (B23), and typed
//!    checks with `now`: `exp` required, `exp`/`nbf`/`iat`/`auth_time` must be non-negative
//!    integers (a string, float, bool or null is refused: B16, B18); `exp + leeway > now`,
//!    `nbf <= now + leeway`, `iat <= now + leeway` (B15, B17); `iss` equal (B19); `token_use`
//!    `id` with `aud` equal to the client id, or, if enabled, `access` with `client_id` equal
//!    (B20, B21); the kid's use must agree with `token_use`.
//!
//! jsonwebtoken is used for its signing and signature primitives only, so its own claim
//! validation (and its clock) is never involved and the claims handed to functions are exactly
//! the claims checked here.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::AuthError;
use crate::keys::{self, KeyError, RsaPublic};

/// The signing algorithm tokens use; verification accepts exactly this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Cognito's algorithm and esb's default.
    Rs256,
    /// A shared secret, for clients of the original ESB.
    Hs256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Hs256 => "HS256",
        }
    }

    fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::Hs256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

/// What a token is for (`token_use`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    Id,
    Access,
    Refresh,
}

impl TokenUse {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenUse::Id => "id",
            TokenUse::Access => "access",
            TokenUse::Refresh => "refresh",
        }
    }
}

/// Issuing and checking rules, from `esb.toml`'s `[auth]`.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `iss`, e.g. `https://cognito-idp.{region}.amazonaws.com/{poolId}`.
    pub issuer: String,
    /// The app client id: ID tokens' `aud`, access tokens' `client_id`.
    pub client_id: String,
    /// Lifetime of ID and access tokens (Cognito: 5 min to 1 day, default 1 h).
    pub token_ttl_secs: u64,
    /// Lifetime of refresh tokens (Cognito's default is 30 days).
    pub refresh_ttl_secs: u64,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`. jsonwebtoken's default is 60 s; API
    /// Gateway documents none. Keep it small.
    pub leeway_secs: u64,
    /// Also accept access tokens (API Gateway does when a route has OAuth scopes). Off: ID
    /// tokens only, as a REST Cognito authorizer without scopes.
    pub accept_access_tokens: bool,
    /// Longest token accepted, in bytes, checked before any decoding.
    pub max_token_bytes: usize,
}

impl TokenSettings {
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            token_ttl_secs: 3600,
            refresh_ttl_secs: 30 * 86_400,
            leeway_secs: 60,
            accept_access_tokens: false,
            max_token_bytes: 8 * 1024,
        }
    }
}

/// Who a token is issued to.
#[derive(Debug, Clone, Copy)]
pub struct UserClaims<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub groups: &'a [String],
}

/// The answer to a successful login (Cognito `AuthenticationResult`).
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub id_token: String,
    pub access_token: String,
    /// `None` on a refresh (Cognito does not rotate refresh tokens).
    pub refresh_token: Option<String>,
    /// Seconds, Cognito's `ExpiresIn`.
    pub expires_in: u64,
}

/// What a valid refresh token allows: new tokens for this user, keeping the original login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshGrant {
    pub username: String,
    pub auth_time: u64,
    pub origin_jti: String,
}

/// A verified token: its claims exactly as checked, ready for `requestContext.authorizer`.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub claims: Map<String, Value>,
    /// `cognito:username` (ID token) or `username` (access token).
    pub username: String,
    pub token_use: TokenUse,
    /// Epoch seconds after which the token is refused: `exp + leeway`. Caches expire it then.
    pub valid_until: u64,
}

/// One of our keys, under one `kid`, for one use.
struct KeyEntry {
    kid: String,
    token_use: TokenUse,
}

/// Issues and verifies tokens with one key. Immutable; share one across cores.
pub struct TokenService {
    alg: Algorithm,
    settings: TokenSettings,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// RS256: the public half, for the JWKS document.
    public: Option<RsaPublic>,
    /// ID, access, refresh: distinct kids like Cognito's (same key material).
    keys: [KeyEntry; 3],
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("alg", &self.alg)
            .field("settings", &self.settings)
            .field(
                "kids",
                &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// RS256 with a PKCS#8 or PKCS#1 PEM private key (at least 2048 bits).
    pub fn rs256_from_pem(pem: &[u8], settings: TokenSettings) -> Result<Self, KeyError> {
        let public = keys::rsa_public_from_pem(pem)?;
        let encoding = EncodingKey::from_rsa_pem(pem).map_err(|e| KeyError::Rsa(e.to_string()))?;
        let decoding = DecodingKey::from_rsa_raw_components(&public.n, &public.e);
        let thumb = keys::rsa_thumbprint(&public);
        let service = Self {
            alg: Algorithm::Rs256,
            settings,
            encoding,
            decoding,
            keys: kids(&thumb),
            public: Some(public),
        };
        service.self_test()?;
        Ok(service)
    }

    /// HS256 with a shared secret of at least 32 bytes.
    pub fn hs256(secret: &[u8], settings: TokenSettings) -> Result<Self, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::WeakSecret);
        }
        let service = Self {
            alg: Algorithm::Hs256,
            settings,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            keys: kids("hs256"),
            public: None,
        };
        service.self_test()?;
        Ok(service)
    }

    /// Signs and verifies one token, so a missing crypto backend or an unusable key fails at
    /// start-up instead of on the first request (checklist B30).
    fn self_test(&self) -> Result<(), KeyError> {
        let user = UserClaims {
            username: "self-test",
            email: None,
            groups: &[],
        };
        let tokens = self
            .issue(&user, 1_000_000, 1_000_000, None)
            .map_err(|e| KeyError::Rsa(format!("self-test signing failed: {e}")))?;
        self.verify(&tokens.id_token, 1_000_001)
            .map(|_| ())
            .map_err(|e| KeyError::Rsa(format!("self-test verification failed: {e}")))
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// The `/.well-known/jwks.json` document (`{"keys":[]}` for HS256).
    pub fn jwks_json(&self) -> String {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        keys::jwks_json(self.public.as_ref(), &kids)
    }

    /// Issues an ID, an access and (on a fresh login, `origin_jti` None) a refresh token.
    /// `auth_time` is when the user authenticated (equal to `now` on a login; kept on refresh).
    pub fn issue(
        &self,
        user: &UserClaims<'_>,
        now: u64,
        auth_time: u64,
        origin_jti: Option<&str>,
    ) -> Result<IssuedTokens, AuthError> {
        let fresh = origin_jti.is_none();
        let origin = origin_jti.map_or_else(new_id, str::to_string);
        let exp = now + self.settings.token_ttl_secs;
        let sub = user_sub(&self.settings.issuer, user.username);

        let mut id = Map::new();
        id.insert("sub".into(), Value::from(sub.clone()));
        if !user.groups.is_empty() {
            id.insert("cognito:groups".into(), Value::from(user.groups.to_vec()));
        }
        if let Some(email) = user.email {
            id.insert("email_verified".into(), Value::Bool(true));
            id.insert("email".into(), Value::from(email));
        }
        id.insert("iss".into(), Value::from(self.settings.issuer.as_str()));
        id.insert("cognito:username".into(), Value::from(user.username));
        id.insert("origin_jti".into(), Value::from(origin.as_str()));
        id.insert("aud".into(), Value::from(self.settings.client_id.as_str()));
        id.insert("token_use".into(), Value::from("id"));
        id.insert("auth_time".into(), Value::from(auth_time));
        id.insert("exp".into(), Value::from(exp));
        id.insert("iat".into(), Value::from(now));
        id.insert("jti".into(), Value::from(new_id()));

        let mut access = Map::new();
        access.insert("sub".into(), Value::from(sub));
        if !user.groups.is_empty() {
            access.insert("cognito:groups".into(), Value::from(user.groups.to_vec()));
        }
        access.insert("iss".into(), Value::from(self.settings.issuer.as_str()));
        access.insert(
            "client_id".into(),
            Value::from(self.settings.client_id.as_str()),
        );
        access.insert("origin_jti".into(), Value::from(origin.as_str()));
        access.insert("token_use".into(), Value::from("access"));
        access.insert("scope".into(), Value::from("aws.cognito.signin.user.admin"));
        access.insert("auth_time".into(), Value::from(auth_time));
        access.insert("exp".into(), Value::from(exp));
        access.insert("iat".into(), Value::from(now));
        access.insert("jti".into(), Value::from(new_id()));
        access.insert("username".into(), Value::from(user.username));

        let refresh_token = if fresh {
            let mut refresh = Map::new();
            refresh.insert("iss".into(), Value::from(self.settings.issuer.as_str()));
            refresh.insert(
                "client_id".into(),
                Value::from(self.settings.client_id.as_str()),
            );
            refresh.insert("token_use".into(), Value::from("refresh"));
            refresh.insert("username".into(), Value::from(user.username));
            refresh.insert("origin_jti".into(), Value::from(origin.as_str()));
            refresh.insert("auth_time".into(), Value::from(auth_time));
            refresh.insert(
                "exp".into(),
                Value::from(now + self.settings.refresh_ttl_secs),
            );
            refresh.insert("iat".into(), Value::from(now));
            refresh.insert("jti".into(), Value::from(new_id()));
            Some(self.sign(TokenUse::Refresh, &refresh)?)
        } else {
            None
        };

        Ok(IssuedTokens {
            id_token: self.sign(TokenUse::Id, &id)?,
            access_token: self.sign(TokenUse::Access, &access)?,
            refresh_token,
            expires_in: self.settings.token_ttl_secs,
        })
    }

    fn sign(&self, token_use: TokenUse, claims: &Map<String, Value>) -> Result<String, AuthError> {
        let mut header = jsonwebtoken::Header::new(self.alg.jwt());
        header.typ = None;
        header.kid = Some(self.key_for(token_use).kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|_| AuthError::Malformed("signing failed"))
    }

    fn key_for(&self, token_use: TokenUse) -> &KeyEntry {
        match token_use {
            TokenUse::Id => &self.keys[0],
            TokenUse::Access => &self.keys[1],
            TokenUse::Refresh => &self.keys[2],
        }
    }

    /// Verifies an `Authorization` value (raw token or `Bearer <token>`) at `now` (epoch s).
    pub fn verify(&self, authorization: &str, now: u64) -> Result<VerifiedToken, AuthError> {
        let token = strip_bearer(authorization)?;
        if token.len() > self.settings.max_token_bytes {
            return Err(AuthError::TooLarge);
        }
        let claims = self.verify_signed(token, now)?;
        let token_use = match claims.get("token_use").and_then(Value::as_str) {
            Some("id") => TokenUse::Id,
            Some("access") if self.settings.accept_access_tokens => TokenUse::Access,
            _ => return Err(AuthError::TokenUse),
        };
        let (aud_claim, name_claim) = match token_use {
            TokenUse::Id => ("aud", "cognito:username"),
            _ => ("client_id", "username"),
        };
        if claims.get(aud_claim).and_then(Value::as_str) != Some(&self.settings.client_id) {
            return Err(AuthError::Audience);
        }
        if token_use == TokenUse::Access && claims.contains_key("aud") {
            return Err(AuthError::TokenUse);
        }
        let username = claims
            .get(name_claim)
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .ok_or(AuthError::Claim(name_claim))?
            .to_string();
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        Ok(VerifiedToken {
            claims,
            username,
            token_use,
            valid_until: exp.saturating_add(self.settings.leeway_secs),
        })
    }

    /// Verifies a refresh token (raw) and returns what it grants.
    pub fn verify_refresh(&self, token: &str, now: u64) -> Result<RefreshGrant, AuthError> {
        if token.len() > self.settings.max_token_bytes {
            return Err(AuthError::TooLarge);
        }
        let claims = self.verify_signed(token, now)?;
        if claims.get("token_use").and_then(Value::as_str) != Some("refresh") {
            return Err(AuthError::TokenUse);
        }
        if claims.get("client_id").and_then(Value::as_str) != Some(&self.settings.client_id) {
            return Err(AuthError::Audience);
        }
        let s = |k: &'static str| {
            claims
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or(AuthError::Claim(k))
        };
        Ok(RefreshGrant {
            username: s("username")?,
            origin_jti: s("origin_jti")?,
            auth_time: claims
                .get("auth_time")
                .and_then(Value::as_u64)
                .ok_or(AuthError::Claim("auth_time"))?,
        })
    }

    /// Steps 2-5 of the module doc, minus the token_use/aud decision.
    fn verify_signed(&self, token: &str, now: u64) -> Result<Map<String, Value>, AuthError> {
        let (signing_input, signature) = split_compact(token)?;
        let header_b64 = &signing_input[..signing_input.find('.').unwrap_or(0)];
        let payload_b64 = &signing_input[header_b64.len() + 1..];

        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| AuthError::Malformed("header is not base64url"))?;
        let header: JoseHeader = serde_json::from_slice(&header_json)
            .map_err(|_| AuthError::Malformed("header JSON"))?;
        if header.alg != self.alg.as_str() {
            return Err(AuthError::Algorithm);
        }
        if let Some(name) = header.forbidden {
            return Err(AuthError::Header(name));
        }
        if header
            .typ
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
        {
            return Err(AuthError::Header("typ"));
        }
        let key_use = match header.kid.as_deref() {
            Some(kid) => Some(
                self.keys
                    .iter()
                    .find(|k| k.kid == kid)
                    .ok_or(AuthError::UnknownKey)?
                    .token_use,
            ),
            // RSA keys are always named; an HS256 token of the original ESB had no kid.
            None if self.alg == Algorithm::Rs256 => return Err(AuthError::UnknownKey),
            None => None,
        };

        let ok = jsonwebtoken::crypto::verify(
            signature,
            signing_input.as_bytes(),
            &self.decoding,
            self.alg.jwt(),
        )
        .map_err(|_| AuthError::Signature)?;
        if !ok {
            return Err(AuthError::Signature);
        }

        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| AuthError::Malformed("payload is not base64url"))?;
        let UniqueMap(claims) = serde_json::from_slice(&payload)
            .map_err(|_| AuthError::Malformed("payload JSON (or duplicate claim)"))?;

        let leeway = self.settings.leeway_secs;
        let exp = time_claim(&claims, "exp")?.ok_or(AuthError::Claim("exp"))?;
        if exp.saturating_add(leeway) <= now {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = time_claim(&claims, "nbf")?
            && nbf > now.saturating_add(leeway)
        {
            return Err(AuthError::NotYetValid);
        }
        let iat = time_claim(&claims, "iat")?.ok_or(AuthError::Claim("iat"))?;
        if iat > now.saturating_add(leeway) {
            return Err(AuthError::IssuedInFuture);
        }
        time_claim(&claims, "auth_time")?;
        if claims.get("iss").and_then(Value::as_str) != Some(&self.settings.issuer) {
            return Err(AuthError::Issuer);
        }
        if !claims.get("sub").is_none_or(Value::is_string) {
            return Err(AuthError::Claim("sub"));
        }
        if let (Some(kid_use), Some(tu)) =
            (key_use, claims.get("token_use").and_then(Value::as_str))
            && kid_use.as_str() != tu
        {
            return Err(AuthError::TokenUse);
        }
        Ok(claims)
    }
}

/// Accepts `<token>` or `Bearer <token>` (exactly one space). Anything else with a space in it
/// fails the token's own shape check later.
pub fn strip_bearer(authorization: &str) -> Result<&str, AuthError> {
    let token = authorization
        .strip_prefix("Bearer ")
        .unwrap_or(authorization);
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    Ok(token)
}

/// `header.payload` and `signature` of a compact JWS, after checking its shape.
fn split_compact(token: &str) -> Result<(&str, &str), AuthError> {
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(AuthError::Malformed("characters outside base64url and '.'"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed("not three segments"));
    };
    if h.is_empty() || p.is_empty() {
        return Err(AuthError::Malformed("empty segment"));
    }
    if s.is_empty() {
        return Err(AuthError::Signature);
    }
    Ok((&token[..h.len() + 1 + p.len()], s))
}

/// `Some(secs)` for a present non-negative integer claim; absent is `None`; anything else is an
/// error (CVE-2026-25537: a string `nbf` once passed as "absent").
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            // Beyond year 9999 is no real time; refusing keeps the arithmetic far from overflow.
            Some(n) if n < 253_402_300_800 => Ok(Some(n)),
            _ => Err(AuthError::Claim(name)),
        },
    }
}

/// Three kids per key: `<prefix>-id`, `-access`, `-refresh`.
fn kids(prefix: &str) -> [KeyEntry; 3] {
    [TokenUse::Id, TokenUse::Access, TokenUse::Refresh].map(|token_use| KeyEntry {
        kid: format!("{prefix}-{}", token_use.as_str()),
        token_use,
    })
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A stable UUID-shaped `sub` per (pool, username), like Cognito's per-user UUID.
fn user_sub(issuer: &str, username: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::new()
        .chain_update(issuer.as_bytes())
        .chain_update([0])
        .chain_update(username.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The JOSE header fields esb acts on; any refused parameter is recorded in `forbidden`.
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    forbidden: Option<&'static str>,
}

impl<'de> Deserialize<'de> for JoseHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JoseHeader;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JOSE header object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<JoseHeader, A::Error> {
                const REFUSED: [&str; 10] = [
                    "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "cty", "zip", "b64",
                ];
                let mut seen: BTreeMap<String, ()> = BTreeMap::new();
                let mut h = JoseHeader {
                    alg: String::new(),
                    kid: None,
                    typ: None,
                    forbidden: None,
                };
                let mut has_alg = false;
                while let Some(key) = m.next_key::<String>()? {
                    if seen.insert(key.clone(), ()).is_some() {
                        return Err(de::Error::custom("duplicate header parameter"));
                    }
                    match key.as_str() {
                        "alg" => {
                            h.alg = m.next_value()?;
                            has_alg = true;
                        }
                        "kid" => h.kid = Some(m.next_value()?),
                        "typ" => h.typ = Some(m.next_value()?),
                        "enc" => {
                            m.next_value::<IgnoredAny>()?;
                            h.forbidden.get_or_insert("enc");
                        }
                        other => {
                            m.next_value::<IgnoredAny>()?;
                            if let Some(r) = REFUSED.iter().find(|r| **r == other) {
                                h.forbidden.get_or_insert(r);
                            }
                        }
                    }
                }
                if !has_alg {
                    return Err(de::Error::custom("no alg"));
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON object whose top-level keys are unique (RFC 7519 §4: reject duplicates).
struct UniqueMap(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<UniqueMap, A::Error> {
                let mut map = Map::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    if map.insert(k, v).is_some() {
                        return Err(de::Error::custom("duplicate claim"));
                    }
                }
                Ok(UniqueMap(map))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests;
