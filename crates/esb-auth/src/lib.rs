//! esb's auth: Cognito-shaped tokens (issue and verify, with `now` passed in), a per-core cache of
//! verified tokens, users with argon2 password hashes, and the API key check.
//!
//! No IO and no clock. Sharing: [`TokenService`], [`UserStore`] and [`ApiKey`] are immutable and
//! `Sync` (one `Arc` for all cores); [`TokenCache`] is per core and `!Send`.
//!
//! The client never learns why a token was refused: every [`AuthError`] becomes 401
//! `{"message":"Unauthorized"}` in the data plane; [`AuthError::reason`] is for logs.

mod apikey;
mod cache;
mod keys;
mod token;
mod users;

pub use apikey::ApiKey;
pub use cache::TokenCache;
pub use keys::{KeyError, generate_rsa_pem};
pub use token::{
    Algorithm, IssuedTokens, RefreshGrant, TokenService, TokenSettings, TokenUse, UserClaims,
    VerifiedToken, strip_bearer,
};
pub use users::{LoginError, PasswordError, User, UserStore, hash_password};

/// Why a token was refused. The client's fault; retrying with the same token never helps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no token")]
    Missing,
    #[error("token longer than the configured limit")]
    TooLarge,
    /// Not three base64url segments of a JWS in compact form (or bad base64/JSON inside).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is not exactly the configured algorithm (`none`, HS/RS confusion, ES256...).
    #[error("algorithm not allowed")]
    Algorithm,
    /// A header parameter esb refuses to act on (`jwk`, `jku`, `x5u`, `x5c`, `crit`, ...).
    #[error("header parameter {0} not allowed")]
    Header(&'static str),
    #[error("unknown key id")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("not valid yet (nbf)")]
    NotYetValid,
    #[error("issued in the future (iat)")]
    IssuedInFuture,
    /// A claim is missing or has the wrong type or value.
    #[error("claim {0} missing or invalid")]
    Claim(&'static str),
    #[error("wrong issuer")]
    Issuer,
    #[error("wrong audience")]
    Audience,
    /// An access or refresh token where an ID token is expected (or the kid's use disagrees).
    #[error("wrong token_use")]
    TokenUse,
}

impl AuthError {
    /// A short static reason for logs and counters.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "no token",
            AuthError::TooLarge => "token too large",
            AuthError::Malformed(r) => r,
            AuthError::Algorithm => "algorithm not allowed",
            AuthError::Header(h) => h,
            AuthError::UnknownKey => "unknown kid",
            AuthError::Signature => "bad signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "nbf in the future",
            AuthError::IssuedInFuture => "iat in the future",
            AuthError::Claim(c) => c,
            AuthError::Issuer => "wrong issuer",
            AuthError::Audience => "wrong audience",
            AuthError::TokenUse => "wrong token_use",
        }
    }
}
