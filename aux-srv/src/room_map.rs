//! Which backend holds which room, by case-folded key. It is filled by
//! sweeps, creations and lookups, emptied by removal reports, restarts and
//! deletions; for a swept backend it is exact up to removals not yet polled
//! (directory.rs says when it is trusted and when the backends are asked).
//!
//! Also the per-name locks that make "find, then place" atomic for one
//! name.

use std::sync::Arc;

use common::control::RoomInfo;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomEntry {
    pub backend: String,
    /// As its creator typed it.
    pub name: String,
    pub epoch: u64,
    pub has_password: bool,
}

/// What [`RoomMap::record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    New,
    Updated,
    /// The map already places this name on another backend: two backends
    /// hold it. The map keeps the first.
    Conflict {
        kept: String,
    },
}

#[derive(Default)]
pub struct RoomMap {
    rooms: DashMap<String, RoomEntry>,
    locks: Arc<DashMap<String, Arc<Mutex<()>>>>,
}

impl RoomMap {
    pub fn get(&self, key: &str) -> Option<RoomEntry> {
        self.rooms.get(key).map(|e| e.clone())
    }

    /// `f` of the room's entry, read in place (no copy of the entry).
    pub fn with<R>(&self, key: &str, f: impl FnOnce(&RoomEntry) -> R) -> Option<R> {
        self.rooms.get(key).map(|e| f(&e))
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Records that `backend` holds the room.
    pub fn record(&self, backend: &str, info: &RoomInfo) -> Recorded {
        let fresh = RoomEntry {
            backend: backend.to_owned(),
            name: info.name.clone(),
            epoch: info.epoch,
            has_password: info.has_password,
        };
        match self.rooms.entry(info.key.clone()) {
            Entry::Vacant(v) => {
                v.insert(fresh);
                Recorded::New
            }
            Entry::Occupied(mut o) if o.get().backend == backend => {
                o.insert(fresh);
                Recorded::Updated
            }
            Entry::Occupied(o) => Recorded::Conflict { kept: o.get().backend.clone() },
        }
    }

    /// Records that the room now lives on `backend`, whichever backend the
    /// map had it on (a move, decided under the name's lock).
    pub fn switch(&self, backend: &str, info: &RoomInfo) {
        let entry = RoomEntry {
            backend: backend.to_owned(),
            name: info.name.clone(),
            epoch: info.epoch,
            has_password: info.has_password,
        };
        self.rooms.insert(info.key.clone(), entry);
    }

    /// Forgets the room if the map still has it on `backend` (and, when
    /// given, with that epoch: a room created again since is kept).
    pub fn forget(&self, key: &str, backend: &str, epoch: Option<u64>) -> bool {
        self.rooms
            .remove_if(key, |_, e| e.backend == backend && epoch.is_none_or(|ep| ep == e.epoch))
            .is_some()
    }

    /// Forgets every room on `backend`; returns how many.
    pub fn forget_backend(&self, backend: &str) -> usize {
        let before = self.rooms.len();
        self.rooms.retain(|_, e| e.backend != backend);
        before.saturating_sub(self.rooms.len())
    }

    /// Keys of the rooms the map has on `backend`.
    pub fn keys_on(&self, backend: &str) -> Vec<String> {
        self.rooms.iter().filter(|e| e.backend == backend).map(|e| e.key().clone()).collect()
    }

    pub fn count_on(&self, backend: &str) -> usize {
        self.rooms.iter().filter(|e| e.backend == backend).count()
    }

    /// Waits for the lock of one room name; held until the guard drops.
    pub async fn lock(&self, key: &str) -> KeyGuard {
        let mutex = self.locks.entry(key.to_owned()).or_default().clone();
        let guard = mutex.lock_owned().await;
        KeyGuard { key: key.to_owned(), locks: self.locks.clone(), _guard: Some(guard) }
    }

    /// Names with a lock entry (for tests: entries must not pile up).
    pub fn lock_entries(&self) -> usize {
        self.locks.len()
    }
}

pub struct KeyGuard {
    key: String,
    locks: Arc<DashMap<String, Arc<Mutex<()>>>>,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        // The map's Arc and ours: nobody else waits, so the entry can go. A
        // waiter holds a clone, which keeps it.
        self.locks.remove_if(&self.key, |_, m| Arc::strong_count(m) == 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn info(key: &str, epoch: u64) -> RoomInfo {
        RoomInfo {
            name: key.to_uppercase(),
            key: key.into(),
            epoch,
            has_password: false,
            members: 0,
            last_seq: 0,
        }
    }

    #[test]
    fn record_forget_and_conflicts() {
        let map = RoomMap::default();
        assert_eq!(map.record("b1", &info("abc", 1)), Recorded::New);
        assert_eq!(map.record("b1", &info("abc", 2)), Recorded::Updated);
        assert_eq!(map.record("b2", &info("abc", 3)), Recorded::Conflict { kept: "b1".into() });
        assert_eq!(map.get("abc").unwrap().epoch, 2);
        assert!(!map.forget("abc", "b2", None), "only the holder's removal counts");
        assert!(!map.forget("abc", "b1", Some(1)), "an older epoch's removal is stale");
        assert!(map.forget("abc", "b1", Some(2)));
        assert!(map.get("abc").is_none());

        map.record("b1", &info("one", 1));
        map.record("b1", &info("two", 1));
        map.record("b2", &info("three", 1));
        assert_eq!(map.count_on("b1"), 2);
        assert_eq!(map.forget_backend("b1"), 2);
        assert_eq!(map.keys_on("b2"), vec!["three".to_owned()]);
    }

    #[tokio::test]
    async fn key_locks_exclude_and_clean_up() {
        let map = RoomMap::default();
        let first = map.lock("abc").await;
        let other = map.lock("xyz").await;
        let second = tokio::time::timeout(Duration::from_millis(20), map.lock("abc")).await;
        assert!(second.is_err(), "the second lock of a name waits");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), map.lock("abc")).await;
        drop(second.expect("free again"));
        drop(other);
        assert_eq!(map.lock_entries(), 0);
    }
}
