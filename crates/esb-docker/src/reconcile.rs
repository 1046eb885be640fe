//! Level-triggered reconciliation: compare what the control plane believes it runs with what
//! Docker lists, and say what to do. Pure, so every case is a unit test; the periodic re-list and
//! every [`crate::ContainerEvent::Resync`] feed it.

use std::collections::{HashMap, HashSet};

use crate::runtime::{ContainerState, ManagedContainer};

/// What a re-list means for the pool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Containers the pool holds that are gone or no longer running: report them dead.
    pub lost: Vec<String>,
    /// Containers the pool does not know and must not trust (stopped, stale or unknown config,
    /// started behind esb's back with the wrong hash): remove them.
    pub remove: Vec<ManagedContainer>,
    /// Running containers the pool does not know whose function and config hash are current:
    /// they may be adopted after a health check, or removed if the pool has no room.
    pub adoptable: Vec<ManagedContainer>,
}

/// Compares the pool's containers (`known`, by id) with a listing of this owner's containers.
/// `expected` maps each Docker function to its current config hash. Containers a cold start is
/// still working on are left alone.
pub fn diff(
    known: &HashSet<String>,
    listed: &[ManagedContainer],
    expected: &HashMap<String, String>,
) -> Diff {
    let mut out = Diff::default();
    let by_id: HashMap<&str, &ManagedContainer> =
        listed.iter().map(|c| (c.id.as_str(), c)).collect();
    for id in known {
        match by_id.get(id.as_str()) {
            Some(c) if c.state == ContainerState::Running => {}
            _ => out.lost.push(id.clone()),
        }
    }
    for c in listed {
        if known.contains(&c.id) {
            // Known but dead: already in `lost`; once the pool forgets it, it is removed below.
            continue;
        }
        if c.starting {
            continue;
        }
        let current = c.state == ContainerState::Running
            && c.instance.is_some()
            && match (&c.function, &c.config_hash) {
                (Some(f), Some(h)) => expected.get(f.as_str()) == Some(h),
                _ => false,
            };
        if current {
            out.adoptable.push(c.clone());
        } else {
            out.remove.push(c.clone());
        }
    }
    out.lost.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use esb_model::FunctionName;

    fn c(id: &str, function: &str, hash: &str, state: ContainerState) -> ManagedContainer {
        ManagedContainer {
            id: id.into(),
            name: format!("esb-t-{function}-{id}"),
            function: Some(FunctionName::new(function)),
            instance: Some(1),
            config_hash: Some(hash.into()),
            state,
            image_id: None,
            addr: None,
            starting: false,
        }
    }

    fn expected() -> HashMap<String, String> {
        HashMap::from([("echo".to_owned(), "h1".to_owned())])
    }

    #[test]
    fn a_known_running_container_is_fine() {
        let known = HashSet::from(["a".to_owned()]);
        let d = diff(
            &known,
            &[c("a", "echo", "h1", ContainerState::Running)],
            &expected(),
        );
        assert_eq!(d, Diff::default());
    }

    #[test]
    fn a_known_container_removed_or_dead_behind_our_back_is_lost() {
        let known = HashSet::from(["gone".to_owned(), "dead".to_owned(), "paused".to_owned()]);
        let listed = [
            c("dead", "echo", "h1", ContainerState::Exited),
            c("paused", "echo", "h1", ContainerState::Paused),
        ];
        let d = diff(&known, &listed, &expected());
        assert_eq!(d.lost, vec!["dead", "gone", "paused"]);
        assert!(d.remove.is_empty() && d.adoptable.is_empty());
    }

    #[test]
    fn strangers_are_trusted_only_with_the_current_hash() {
        let known = HashSet::new();
        let mut unlabelled = c("nolabel", "echo", "h1", ContainerState::Running);
        unlabelled.function = None;
        let mut no_instance = c("noinst", "echo", "h1", ContainerState::Running);
        no_instance.instance = None;
        let listed = [
            c("good", "echo", "h1", ContainerState::Running),
            c("stale", "echo", "h0", ContainerState::Running),
            c("other", "gone-fn", "h1", ContainerState::Running),
            c("stopped", "echo", "h1", ContainerState::Exited),
            c("created", "echo", "h1", ContainerState::Created),
            unlabelled,
            no_instance,
        ];
        let d = diff(&known, &listed, &expected());
        let ids = |v: &[ManagedContainer]| v.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&d.adoptable), vec!["good"]);
        assert_eq!(
            ids(&d.remove),
            vec!["stale", "other", "stopped", "created", "nolabel", "noinst"]
        );
        assert!(d.lost.is_empty());
    }

    #[test]
    fn a_container_being_started_is_left_alone() {
        let mut s = c("s", "echo", "h0", ContainerState::Created);
        s.starting = true;
        let d = diff(&HashSet::new(), &[s], &expected());
        assert_eq!(d, Diff::default());
    }
}
