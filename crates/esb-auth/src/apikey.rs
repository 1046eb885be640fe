//! The API key check: constant-time, and the key never appears in `Debug` output or logs.
//!
//! Hot path. Both sides are hashed with SHA-256 first, so the comparison time depends neither on
//! how long a matching prefix is nor on the presented key's length (checklist B31).

use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

/// A configured API key (`x-api-key`).
#[derive(Clone)]
pub struct ApiKey {
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

impl ApiKey {
    pub fn new(key: &str) -> Self {
        Self {
            digest: sha2::Sha256::digest(key.as_bytes()).into(),
        }
    }

    /// Whether `presented` (the header value, exactly as received) is this key.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let d: [u8; 32] = sha2::Sha256::digest(presented).into();
        d.ct_eq(&self.digest).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b31_api_key_must_match_exactly() {
        let key = ApiKey::new("dev-api-key-change-in-production");
        let check = |presented: &str, want: bool| {
            assert_eq!(key.matches(presented.as_bytes()), want, "{presented:?}");
        };
        check("dev-api-key-change-in-production", true);
        check("dev-api-key-change-in-productioN", false);
        check("dev-api-key-change-in-production ", false);
        check(" dev-api-key-change-in-production", false);
        check("dev-api-key-change-in-productio", false);
        check("", false);
        assert_eq!(format!("{key:?}"), "ApiKey(..)");
    }
}
