//! Users: username -> argon2 PHC hash, and the password check behind the login endpoint.
//!
//! Slow by design (tens of milliseconds per check): the data plane runs [`UserStore::verify_password`]
//! off its IO cores. An unknown username costs the same as a wrong password: it is checked
//! against a dummy hash made with argon2's default parameters (those `hash_password` uses).

use std::collections::HashMap;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

/// A configured user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    /// Argon2 PHC string, e.g. from `esb hash-password`.
    pub password_hash: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A user list that cannot be used. The operator's fault: fix the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("user {0}: password_hash is not an argon2 PHC string")]
    BadHash(String),
    #[error("user {0} is defined twice")]
    Duplicate(String),
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Why a login failed. Deliberately one case: the client must not learn whether the user exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("unknown user or wrong password")]
    BadCredentials,
}

/// argon2id with the default parameters (m=19456, t=2, p=1) and random salt and output bytes:
/// checking any password against it costs a real check, and none matches.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Jmvfz3AhUPh9tJnM8x6m1Q$x4ZEo5n8HdLkK6KzJ0F8qH9Jb4E8Gm3tGv3l8nD0mQg";

/// All users, by name. Immutable; share one across threads.
#[derive(Debug)]
pub struct UserStore {
    users: HashMap<String, User>,
}

impl UserStore {
    /// Checks every hash parses, and that no username repeats.
    pub fn new(users: impl IntoIterator<Item = User>) -> Result<Self, PasswordError> {
        let mut map = HashMap::new();
        for u in users {
            if PasswordHash::new(&u.password_hash).is_err() {
                return Err(PasswordError::BadHash(u.username));
            }
            if map.contains_key(&u.username) {
                return Err(PasswordError::Duplicate(u.username));
            }
            map.insert(u.username.clone(), u);
        }
        Ok(Self { users: map })
    }

    pub fn get(&self, username: &str) -> Option<&User> {
        self.users.get(username)
    }

    /// The user, if `password` is theirs. Slow (argon2); never on an IO core.
    pub fn verify_password(&self, username: &str, password: &str) -> Result<&User, LoginError> {
        let user = self.users.get(username);
        let phc = user.map_or(DUMMY_HASH, |u| u.password_hash.as_str());
        let ok = match PasswordHash::new(phc) {
            Ok(parsed) => argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        };
        match user {
            Some(u) if ok => Ok(u),
            _ => Err(LoginError::BadCredentials),
        }
    }
}

/// Hashes a password with argon2id and a random salt, as a PHC string (`esb hash-password`).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, hash: String) -> User {
        User {
            username: name.into(),
            password_hash: hash,
            email: None,
            groups: vec![],
        }
    }

    #[test]
    fn hash_and_verify() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        let store = UserStore::new([user("alice", h)]).unwrap();
        assert_eq!(
            store.verify_password("alice", "s3cret").unwrap().username,
            "alice"
        );
        assert_eq!(
            store.verify_password("alice", "wrong"),
            Err(LoginError::BadCredentials)
        );
        assert_eq!(
            store.verify_password("bob", "s3cret"),
            Err(LoginError::BadCredentials)
        );
        assert_eq!(
            store.verify_password("", ""),
            Err(LoginError::BadCredentials)
        );
    }

    #[test]
    fn dummy_hash_has_the_default_cost() {
        // An unknown user must cost what a real user costs: same algorithm and parameters.
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        let real = hash_password("x").unwrap();
        let real = PasswordHash::new(&real).unwrap();
        assert_eq!(parsed.algorithm, real.algorithm);
        assert_eq!(parsed.params.to_string(), real.params.to_string());
    }

    #[test]
    fn config_errors() {
        assert_eq!(
            UserStore::new([user("a", "plain".into())]).unwrap_err(),
            PasswordError::BadHash("a".into())
        );
        let h = hash_password("p").unwrap();
        assert_eq!(
            UserStore::new([user("a", h.clone()), user("a", h)]).unwrap_err(),
            PasswordError::Duplicate("a".into())
        );
    }
}
