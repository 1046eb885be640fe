//! The front door's immutable state, built once at start from the config and shared by every
//! core behind an `Arc`: built-in paths, the API key, routes, token keys, users, functions.

use esb_config::Config;

/// Everything the request pipeline reads but never changes.
pub struct FrontDoor {
    pub api_key: String,
    pub login_paths: Vec<String>,
}

/// Per-core mutable state of the front door (the verified-token cache).
#[derive(Default)]
pub struct Local {}

impl FrontDoor {
    pub fn new(cfg: &Config) -> Result<FrontDoor, crate::StartError> {
        Ok(FrontDoor {
            api_key: cfg.auth.api_key.clone(),
            login_paths: cfg.auth.login_paths.clone(),
        })
    }

    pub fn is_login_path(&self, path: &str) -> bool {
        self.login_paths.iter().any(|p| p == path)
    }

    /// Constant-time comparison of a presented `x-api-key` with the configured one.
    pub fn api_key_ok(&self, presented: Option<&[u8]>) -> bool {
        let Some(p) = presented else { return false };
        let want = self.api_key.as_bytes();
        // Length is not secret; the content is compared without an early exit.
        p.len() == want.len() && p.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}
