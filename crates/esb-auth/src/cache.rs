//! Per-core cache of verified tokens: an RS256 check costs tens of microseconds, a hit costs a
//! hash of the token.
//!
//! Hot path. `!Send` on purpose (`Rc`): each worker core owns one, so there is no locking.
//! Entries are keyed by the full token string (so a hit is an exact match, never a hash
//! collision), bounded in number, and expire at the token's `exp` + leeway with `now` passed in.
//! Only successes are cached; a refused token is checked again every time.

use std::collections::HashMap;
use std::rc::Rc;

use crate::{AuthError, TokenService, VerifiedToken, strip_bearer};

/// A bounded map from token to its verification result. One per core, per [`TokenService`].
#[derive(Debug)]
pub struct TokenCache {
    map: HashMap<Box<str>, Rc<VerifiedToken>>,
    capacity: usize,
}

impl TokenCache {
    /// At most `capacity` tokens (each entry costs about the token's size plus its claims).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
        }
    }

    /// [`TokenService::verify`], answered from the cache when the same token was verified before
    /// and is still within its validity.
    pub fn verify(
        &mut self,
        service: &TokenService,
        authorization: &str,
        now: u64,
    ) -> Result<Rc<VerifiedToken>, AuthError> {
        let token = strip_bearer(authorization)?;
        if token.len() > service.settings().max_token_bytes {
            return Err(AuthError::TooLarge);
        }
        if let Some(hit) = self.map.get(token) {
            if now < hit.valid_until {
                return Ok(Rc::clone(hit));
            }
            self.map.remove(token);
        }
        let verified = Rc::new(service.verify(token, now)?);
        if self.map.len() >= self.capacity {
            self.evict(now);
        }
        self.map.insert(token.into(), Rc::clone(&verified));
        Ok(verified)
    }

    /// Drops expired entries; if none were, the one expiring soonest. Runs only when full.
    fn evict(&mut self, now: u64) {
        let before = self.map.len();
        self.map.retain(|_, v| now < v.valid_until);
        if self.map.len() < before {
            return;
        }
        let soonest = self
            .map
            .iter()
            .min_by_key(|(_, v)| v.valid_until)
            .map(|(k, _)| k.clone());
        if let Some(k) = soonest {
            self.map.remove(&k);
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TokenSettings, UserClaims};

    const NOW: u64 = 1_700_000_000;

    fn service() -> TokenService {
        let settings = TokenSettings {
            token_ttl_secs: 100,
            leeway_secs: 5,
            ..TokenSettings::new("https://issuer", "client")
        };
        TokenService::hs256(b"0123456789abcdef0123456789abcdef", settings).unwrap()
    }

    fn token(s: &TokenService, user: &str, now: u64) -> String {
        let u = UserClaims {
            username: user,
            email: None,
            groups: &[],
        };
        s.issue(&u, now, now, None).unwrap().id_token
    }

    #[test]
    fn hits_share_the_verified_claims_until_exp_plus_leeway() {
        let s = service();
        let mut cache = TokenCache::new(8);
        let t = token(&s, "alice", NOW);
        let a = cache.verify(&s, &t, NOW).unwrap();
        let b = cache.verify(&s, &format!("Bearer {t}"), NOW + 104).unwrap();
        assert!(Rc::ptr_eq(&a, &b), "second lookup must be a hit");
        assert_eq!(cache.len(), 1);
        // exp = NOW + 100, leeway 5: refused from NOW + 105 on, cached or not.
        assert_eq!(cache.verify(&s, &t, NOW + 105), Err(AuthError::Expired));
        assert!(cache.is_empty());
    }

    #[test]
    fn failures_are_not_cached() {
        let s = service();
        let mut cache = TokenCache::new(8);
        assert_eq!(
            cache.verify(&s, "x.y.z", NOW),
            Err(AuthError::Malformed("header is not base64url"))
        );
        assert_eq!(cache.verify(&s, "", NOW), Err(AuthError::Missing));
        assert!(cache.is_empty());
    }

    #[test]
    fn bounded_evicting_expired_then_soonest() {
        let s = service();
        let mut cache = TokenCache::new(2);
        let old = token(&s, "old", NOW - 90);
        let a = token(&s, "a", NOW);
        let b = token(&s, "b", NOW);
        cache.verify(&s, &old, NOW).unwrap();
        cache.verify(&s, &a, NOW).unwrap();
        // Full: `old` expires soonest and goes.
        cache.verify(&s, &b, NOW).unwrap();
        assert_eq!(cache.len(), 2);
        let a2 = cache.verify(&s, &a, NOW).unwrap();
        assert_eq!(a2.username, "a");
        assert_eq!(cache.len(), 2);
        // At NOW + 20 `old` would be expired anyway; a, b are fine.
        let c = token(&s, "c", NOW + 20);
        cache.verify(&s, &c, NOW + 20).unwrap();
        assert_eq!(cache.len(), 2);
    }
}
