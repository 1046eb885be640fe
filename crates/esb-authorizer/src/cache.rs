//! Authorizer answers cached per identity for the authorizer's TTL (API Gateway's
//! `authorizerResultTtlInSeconds`: default 300 s, at most 3600 s, 0 disables), bounded in size so
//! a client inventing tokens cannot grow it without limit. Hot path: one hash lookup per request.
//! Not shared between threads: each data-plane core keeps its own.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::Grant;

/// API Gateway's ceiling on an authorizer's TTL.
pub const MAX_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct DecisionCache {
    ttl: Duration,
    max_entries: usize,
    entries: HashMap<String, (Rc<Grant>, Instant)>,
    /// Keys in insertion order with their expiry, for eviction; an entry here may be stale (its
    /// key re-inserted later), which the expiry comparison detects.
    order: VecDeque<(String, Instant)>,
}

impl DecisionCache {
    /// A cache for one authorizer. `ttl` is clamped to [`MAX_TTL`]; zero caches nothing.
    pub fn new(ttl: Duration, max_entries: usize) -> DecisionCache {
        DecisionCache {
            ttl: ttl.min(MAX_TTL),
            max_entries,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The cached answer for `key`, unless it expired by `now`.
    pub fn get(&mut self, key: &str, now: Instant) -> Option<Rc<Grant>> {
        let (grant, expires) = self.entries.get(key)?;
        if now < *expires {
            return Some(Rc::clone(grant));
        }
        self.entries.remove(key);
        None
    }

    /// Caches `grant` for `key` from `now` for the TTL.
    pub fn insert(&mut self, key: String, grant: Rc<Grant>, now: Instant) {
        if self.ttl.is_zero() || self.max_entries == 0 {
            return;
        }
        let expires = now + self.ttl;
        self.evict(now);
        if self.order.len() >= 2 * self.max_entries {
            // Re-inserted keys leave stale entries behind a live front; rebuild from the map.
            let mut live: Vec<(String, Instant)> = self
                .entries
                .iter()
                .map(|(k, (_, e))| (k.clone(), *e))
                .collect();
            live.sort_by_key(|(_, e)| *e);
            self.order = live.into();
        }
        self.order.push_back((key.clone(), expires));
        self.entries.insert(key, (grant, expires));
    }

    /// Entries held (some may have expired and not been looked at since).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops expired entries from the front, then the oldest live ones while full.
    fn evict(&mut self, now: Instant) {
        while let Some((key, expires)) = self.order.front() {
            let current = self.entries.get(key).map(|(_, e)| *e);
            let stale = current != Some(*expires);
            let expired = *expires <= now;
            let full = self.entries.len() >= self.max_entries;
            if !(stale || expired || full) {
                break;
            }
            let (key, expires) = self.order.pop_front().expect("front exists");
            if current == Some(expires) {
                self.entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn grant(n: usize) -> Rc<Grant> {
        let mut context = Map::new();
        context.insert("n".into(), n.into());
        Rc::new(Grant::Simple {
            authorized: true,
            context,
        })
    }

    fn n_of(g: &Grant) -> u64 {
        match g {
            Grant::Simple { context, .. } => context["n"].as_u64().unwrap(),
            Grant::Policy { .. } => unreachable!(),
        }
    }

    #[test]
    fn entries_live_for_the_ttl() {
        let t0 = Instant::now();
        let mut c = DecisionCache::new(Duration::from_secs(300), 100);
        c.insert("tok".into(), grant(1), t0);
        assert_eq!(n_of(&c.get("tok", t0).unwrap()), 1);
        assert!(c.get("tok", t0 + Duration::from_secs(299)).is_some());
        assert!(c.get("tok", t0 + Duration::from_secs(300)).is_none());
        assert!(c.is_empty(), "an expired entry is dropped when looked at");
        assert!(c.get("other", t0).is_none());
    }

    #[test]
    fn zero_ttl_disables_and_the_ttl_is_capped() {
        let t0 = Instant::now();
        let mut off = DecisionCache::new(Duration::ZERO, 100);
        off.insert("tok".into(), grant(1), t0);
        assert!(off.get("tok", t0).is_none());
        assert_eq!(off.len(), 0);
        let capped = DecisionCache::new(Duration::from_secs(7200), 100);
        assert_eq!(capped.ttl(), Duration::from_secs(3600));
    }

    #[test]
    fn reinserting_refreshes_the_entry() {
        let t0 = Instant::now();
        let mut c = DecisionCache::new(Duration::from_secs(10), 100);
        c.insert("k".into(), grant(1), t0);
        c.insert("k".into(), grant(2), t0 + Duration::from_secs(8));
        let t = t0 + Duration::from_secs(15);
        assert_eq!(n_of(&c.get("k", t).unwrap()), 2);
        // The stale queue entry of the first insert does not evict the refreshed one.
        c.insert("x".into(), grant(3), t);
        assert!(c.get("k", t).is_some());
    }

    #[test]
    fn size_is_bounded_oldest_first() {
        let t0 = Instant::now();
        let mut c = DecisionCache::new(Duration::from_secs(300), 3);
        for i in 0..10 {
            c.insert(
                format!("k{i}"),
                grant(i),
                t0 + Duration::from_millis(i as u64),
            );
            assert!(c.len() <= 3);
        }
        let t = t0 + Duration::from_secs(1);
        assert!(c.get("k6", t).is_none());
        for i in 7..10 {
            assert_eq!(n_of(&c.get(&format!("k{i}"), t).unwrap()), i as u64);
        }
        // The eviction queue does not grow without bound either.
        assert!(c.order.len() <= 4, "{}", c.order.len());
    }

    #[test]
    fn refreshing_one_key_forever_keeps_the_queue_bounded() {
        let t0 = Instant::now();
        let mut c = DecisionCache::new(Duration::from_secs(300), 3);
        c.insert("old".into(), grant(0), t0);
        for i in 0..1000u64 {
            c.insert("hot".into(), grant(1), t0 + Duration::from_millis(i));
        }
        assert!(c.order.len() <= 6, "{}", c.order.len());
        let t = t0 + Duration::from_secs(2);
        assert!(c.get("old", t).is_some() && c.get("hot", t).is_some());
    }
}
