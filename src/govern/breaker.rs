//! The blast-radius breaker (design invariant 7): at most `max_revocations` automatic
//! revocations per window across all owners, and `max_revocations_per_owner` per owner.
//! The action that would exceed a limit opens the breaker instead of running: it and every
//! later automatic revocation in its scope wait for a person's approval until
//! `certresponder breaker reset` closes it (the window's count stands: a reset does not buy
//! another full window of revocations). Revocations a person asked for (reports,
//! approvals, `reissue --revoke`) are not counted and never held.
//!
//! The state is one record in the store, saved before the case it admits is opened, so a
//! crash cannot let a storm through twice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::Limits;
use crate::store::{Store, StoreError};

/// The store blob the state lives in.
const BLOB: &str = "breaker";

/// Why and when the breaker opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opened {
    /// When.
    pub at: DateTime<Utc>,
    /// Which limit was reached, in words.
    pub why: String,
}

/// One automatic revocation admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admitted {
    /// When the case was opened.
    pub at: DateTime<Utc>,
    /// The certificate's owner.
    pub owner: String,
    /// The certificate.
    pub cert: String,
    /// The case.
    pub case: u64,
}

/// The breaker's durable state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerState {
    /// Open for every owner.
    pub open: Option<Opened>,
    /// Open for one owner only (its own limit was reached).
    pub open_owners: BTreeMap<String, Opened>,
    /// Automatic revocations admitted within the window, oldest first.
    pub admitted: Vec<Admitted>,
    /// The stored bytes this state was read from (or last written as): a save succeeds only
    /// over them, so that two writers never both count from the same state.
    #[serde(skip)]
    seen: Seen,
}

/// Bytes kept beside a state, never part of its value.
#[derive(Debug, Clone, Default)]
struct Seen(Option<Vec<u8>>);

impl PartialEq for Seen {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Seen {}

/// What the breaker says about one more automatic revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead (then [`BreakerState::record`] it).
    Admit,
    /// Wait for approval. `opened_now`: this request opened the breaker.
    Hold {
        /// Why, in words.
        why: String,
        /// Whether this request is the one that opened it (owners are told once).
        opened_now: bool,
    },
}

impl BreakerState {
    /// The stored state (closed and empty when none is stored).
    pub fn load(store: &dyn Store) -> Result<Self, StoreError> {
        match store.get_blob(BLOB)? {
            None => Ok(Self::default()),
            Some(bytes) => {
                let mut state: Self =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                        tree: "blobs",
                        key: BLOB.into(),
                        reason: e.to_string(),
                    })?;
                state.seen = Seen(Some(bytes));
                Ok(state)
            }
        }
    }

    /// Saves the state durably, by compare-and-swap over what it was read from: when
    /// another writer saved the breaker in between, nothing is written and the caller is
    /// told to decide again from the state as it is now.
    pub fn save(&mut self, store: &dyn Store) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(self).map_err(|e| StoreError::Backend(e.to_string()))?;
        if !store.swap_blob(BLOB, self.seen.0.as_deref(), &bytes)? {
            return Err(StoreError::Backend(
                "the blast-radius breaker was changed by another writer meanwhile; nothing was counted, decide again".into(),
            ));
        }
        self.seen = Seen(Some(bytes));
        Ok(())
    }

    /// Forgets admissions older than the window.
    pub fn prune(&mut self, limits: &Limits, now: DateTime<Utc>) {
        let since = now - limits.window;
        self.admitted.retain(|a| a.at > since);
    }

    /// Automatic revocations in the window, all owners and for `owner`.
    pub fn counts(&self, owner: &str) -> (usize, usize) {
        let owner_count = self.admitted.iter().filter(|a| a.owner == owner).count();
        (self.admitted.len(), owner_count)
    }

    /// Whether the breaker holds automatic revocations for `owner`.
    pub fn holds(&self, owner: &str) -> Option<&Opened> {
        self.open.as_ref().or_else(|| self.open_owners.get(owner))
    }

    /// Decides about one more automatic revocation for `owner`, opening the breaker when it
    /// would exceed a limit.
    pub fn admit(&mut self, limits: &Limits, owner: &str, now: DateTime<Utc>) -> Admission {
        self.prune(limits, now);
        if let Some(o) = self.holds(owner) {
            return Admission::Hold {
                why: format!(
                    "the blast-radius breaker has been open since {}: {}",
                    o.at.format("%Y-%m-%d %H:%M:%SZ"),
                    o.why
                ),
                opened_now: false,
            };
        }
        let (all, mine) = self.counts(owner);
        let window = super::human_duration(limits.window);
        let reached = if all >= limits.max_revocations as usize {
            Some((
                None,
                format!(
                    "{all} automatic revocations in the last {window} reached the limit of {} for all owners",
                    limits.max_revocations
                ),
            ))
        } else if mine >= limits.max_revocations_per_owner as usize {
            Some((
                Some(owner.to_string()),
                format!(
                    "{mine} automatic revocations for owner `{owner}` in the last {window} reached the per-owner limit of {}",
                    limits.max_revocations_per_owner
                ),
            ))
        } else {
            None
        };
        match reached {
            None => Admission::Admit,
            Some((scope, why)) => {
                let opened = Opened {
                    at: now,
                    why: why.clone(),
                };
                match scope {
                    None => self.open = Some(opened),
                    Some(o) => {
                        self.open_owners.insert(o, opened);
                    }
                }
                Admission::Hold {
                    why: format!("the blast-radius breaker opened: {why}"),
                    opened_now: true,
                }
            }
        }
    }

    /// Records an admitted automatic revocation.
    pub fn record(&mut self, owner: &str, cert: &str, case: u64, now: DateTime<Utc>) {
        self.admitted.push(Admitted {
            at: now,
            owner: owner.to_string(),
            cert: cert.to_string(),
            case,
        });
    }

    /// Closes the breaker (for every owner). The revocations admitted in the window still
    /// count: the limit holds across a reset, so the next automatic revocation opens the
    /// breaker again if the window is still full. Returns whether it was open.
    pub fn reset(&mut self) -> bool {
        let was_open = self.open.is_some() || !self.open_owners.is_empty();
        self.open = None;
        self.open_owners.clear();
        was_open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn limits(all: u32, per_owner: u32) -> Limits {
        Limits {
            max_revocations: all,
            max_revocations_per_owner: per_owner,
            window: Duration::hours(1),
        }
    }

    #[test]
    fn the_limit_holds_and_opens_once() {
        let l = limits(5, 100);
        let now = Utc::now();
        let mut b = BreakerState::default();
        for i in 0..5 {
            assert_eq!(b.admit(&l, "team", now), Admission::Admit);
            b.record("team", &format!("c{i}"), i, now);
        }
        let Admission::Hold { opened_now, why } = b.admit(&l, "team", now) else {
            panic!("the sixth revocation was admitted")
        };
        assert!(opened_now && why.contains("limit of 5"), "{why}");
        let Admission::Hold { opened_now, .. } = b.admit(&l, "other", now) else {
            panic!("an open breaker admitted a revocation")
        };
        assert!(!opened_now);
        // A reset within the window closes it, but the window's revocations still count:
        // the next one opens it again.
        assert!(b.reset());
        assert!(matches!(
            b.admit(&l, "team", now),
            Admission::Hold {
                opened_now: true,
                ..
            }
        ));
        // Even once the window has passed, an open breaker stays open until reset.
        let later = now + Duration::hours(2);
        assert!(matches!(b.admit(&l, "team", later), Admission::Hold { .. }));
        assert!(b.reset());
        assert_eq!(b.admit(&l, "team", later), Admission::Admit);
        assert!(!BreakerState::default().reset());
    }

    #[test]
    fn the_per_owner_limit_holds_only_that_owner() {
        let l = limits(100, 2);
        let now = Utc::now();
        let mut b = BreakerState::default();
        for i in 0..2 {
            assert_eq!(b.admit(&l, "a", now), Admission::Admit);
            b.record("a", "x", i, now);
        }
        assert!(matches!(
            b.admit(&l, "a", now),
            Admission::Hold {
                opened_now: true,
                ..
            }
        ));
        assert_eq!(b.admit(&l, "b", now), Admission::Admit);
        assert!(b.holds("a").is_some() && b.holds("b").is_none());
    }

    #[test]
    fn admissions_leave_the_window() {
        let l = limits(1, 1);
        let then = Utc::now() - Duration::hours(3);
        let mut b = BreakerState::default();
        assert_eq!(b.admit(&l, "a", then), Admission::Admit);
        b.record("a", "x", 1, then);
        assert_eq!(b.admit(&l, "a", Utc::now()), Admission::Admit);
    }

    #[test]
    fn the_state_survives_the_store() {
        let store = crate::store::MemoryStore::new();
        let mut b = BreakerState::load(&store).unwrap();
        assert_eq!(b, BreakerState::default());
        b.record("a", "x", 1, Utc::now());
        b.save(&store).unwrap();
        assert_eq!(BreakerState::load(&store).unwrap(), b);
        store.put_blob(BLOB, b"not json").unwrap();
        assert!(
            BreakerState::load(&store)
                .unwrap_err()
                .to_string()
                .contains("breaker")
        );
    }
}
