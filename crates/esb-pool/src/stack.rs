//! A lock-free LIFO of slot indices: a Treiber stack over a fixed array of links.
//!
//! Hot path. Nodes are indices into the function's slot array, which lives as long as the table,
//! so nothing is ever freed under a reader (no epoch reclamation needed). The head packs a 32-bit
//! tag with the index and every successful CAS bumps the tag, so a pop that read `next` of a node
//! that was popped and pushed again meanwhile fails its CAS instead of corrupting the list (ABA).
//! LIFO on purpose: the most recently used environment is reused first, so surplus environments
//! age out and get reaped, as Lambda does.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const NIL: u32 = u32::MAX;

fn pack(tag: u32, index: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(index)
}

fn index_of(head: u64) -> u32 {
    head as u32
}

fn tag_of(head: u64) -> u32 {
    (head >> 32) as u32
}

pub(crate) struct IdleStack {
    head: AtomicU64,
}

impl IdleStack {
    pub(crate) fn new() -> Self {
        Self {
            head: AtomicU64::new(pack(0, NIL)),
        }
    }

    /// Pushes `index`, which the caller owns (it is in no stack). `link` gives each node's `next`.
    // SeqCst on the head: with the waiter count it forms a Dekker pair (see table.rs), so a
    // releaser that pushes and then reads "no waiters" and a waiter that registers and then pops
    // cannot both miss each other.
    pub(crate) fn push<'a>(&self, index: u32, link: impl Fn(u32) -> &'a AtomicU32) {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            link(index).store(index_of(head), Ordering::Relaxed);
            let new = pack(tag_of(head).wrapping_add(1), index);
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    pub(crate) fn pop<'a>(&self, link: impl Fn(u32) -> &'a AtomicU32) -> Option<u32> {
        let mut head = self.head.load(Ordering::SeqCst);
        loop {
            let index = index_of(head);
            if index == NIL {
                return None;
            }
            // May be stale if `index` was popped meanwhile; the tag makes the CAS fail then.
            let next = link(index).load(Ordering::Relaxed);
            let new = pack(tag_of(head).wrapping_add(1), next);
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Some(index),
                Err(now) => head = now,
            }
        }
    }

    /// Pops everything, top first (for the reaper and crash handling, under the function's lock).
    pub(crate) fn drain<'a>(&self, link: impl Fn(u32) -> &'a AtomicU32 + Copy) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(i) = self.pop(link) {
            out.push(i);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU8;

    fn links(n: usize) -> Vec<AtomicU32> {
        (0..n).map(|_| AtomicU32::new(NIL)).collect()
    }

    #[test]
    fn last_in_first_out() {
        let l = links(4);
        let s = IdleStack::new();
        let link = |i: u32| &l[i as usize];
        assert_eq!(s.pop(link), None);
        for i in 0..4 {
            s.push(i, link);
        }
        assert_eq!(s.pop(link), Some(3));
        s.push(3, link);
        assert_eq!(s.drain(link), vec![3, 2, 1, 0]);
        assert_eq!(s.pop(link), None);
    }

    #[test]
    fn concurrent_pop_push_never_duplicates_or_loses_a_node() {
        // Each thread pops a node, marks it owned (must be unowned), unmarks it and pushes it
        // back. A duplicated node would be owned twice; a lost one would be missing at the end.
        const N: usize = 4;
        let l: Arc<Vec<AtomicU32>> = Arc::new(links(N));
        let owned: Arc<Vec<AtomicU8>> = Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
        let s = Arc::new(IdleStack::new());
        for i in 0..N as u32 {
            s.push(i, |i| &l[i as usize]);
        }
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (l, owned, s) = (l.clone(), owned.clone(), s.clone());
                std::thread::spawn(move || {
                    let link = |i: u32| &l[i as usize];
                    for _ in 0..50_000 {
                        if let Some(i) = s.pop(link) {
                            let prev = owned[i as usize].swap(1, Ordering::SeqCst);
                            assert_eq!(prev, 0, "node {i} handed out twice");
                            owned[i as usize].store(0, Ordering::SeqCst);
                            s.push(i, link);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut all = s.drain(|i| &l[i as usize]);
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3]);
    }
}
