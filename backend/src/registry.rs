//! The rooms this backend holds, by case-folded key, and the log of rooms it
//! removed (so aux-srv can forget them and free their names).

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::control::{RemovedRoom, RoomInfo};
use common::names::RoomName;
use common::ws::CloseReason;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use rand::Rng;

use crate::metrics::Metrics;
use crate::room::{Room, RoomSettings};

/// Why a room leaves this backend: what its members are told (`closing
/// {reason}`) and the `reason` label of `instantchat_backend_rooms_removed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Empty and idle long enough.
    Expired,
    /// Deleted through aux-srv (the admin API).
    Deleted,
    /// Moved to another backend (its members were told by the move).
    Moved,
}

impl Removal {
    pub fn close_reason(self) -> CloseReason {
        match self {
            Removal::Expired => CloseReason::RoomExpired,
            Removal::Deleted => CloseReason::RoomDeleted,
            Removal::Moved => CloseReason::Moved,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Removal::Expired => "expired",
            Removal::Deleted => "deleted",
            Removal::Moved => "moved",
        }
    }
}

/// How many removals are remembered for aux-srv to catch up on.
const REMOVED_LOG_LEN: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    #[error("this backend is draining and takes no new rooms")]
    Draining,
}

struct RemovedLog {
    entries: VecDeque<RemovedRoom>,
    /// Cursor of the newest entry (0 before the first removal).
    last_cursor: u64,
}

pub struct RoomRegistry {
    rooms: DashMap<String, Arc<Room>>,
    /// The same rooms in key order, for paging through them ([`Self::list`]):
    /// a sweep of 100,000 rooms reads them in pages without scanning them all
    /// for every page.
    ordered: Mutex<BTreeMap<String, Arc<Room>>>,
    removed: Mutex<RemovedLog>,
    settings: RoomSettings,
    metrics: Arc<Metrics>,
}

/// A random room epoch: never 0, and below 2^53 so browsers read it exactly.
fn new_epoch() -> u64 {
    rand::rng().random_range(1..(1u64 << 53))
}

impl RoomRegistry {
    pub fn new(settings: RoomSettings, metrics: Arc<Metrics>) -> Self {
        RoomRegistry {
            rooms: DashMap::new(),
            ordered: Mutex::default(),
            removed: Mutex::new(RemovedLog { entries: VecDeque::new(), last_cursor: 0 }),
            settings,
            metrics,
        }
    }

    /// Creates the room, or returns the existing one (`false`). A draining
    /// backend still answers for rooms it holds.
    pub fn create(
        &self,
        name: &RoomName,
        password_hash: Option<String>,
        owner_key_hash: Option<[u8; 32]>,
        draining: bool,
    ) -> Result<(Arc<Room>, bool), CreateError> {
        match self.rooms.entry(name.key().to_owned()) {
            Entry::Occupied(e) => Ok((e.get().clone(), false)),
            Entry::Vacant(_) if draining => Err(CreateError::Draining),
            Entry::Vacant(e) => {
                let room = Arc::new(Room::new(
                    name.display().to_owned(),
                    name.key().to_owned(),
                    new_epoch(),
                    password_hash,
                    owner_key_hash,
                    self.settings,
                    self.metrics.clone(),
                ));
                e.insert(room.clone());
                self.ordered().insert(name.key().to_owned(), room.clone());
                self.metrics.rooms.inc();
                Ok((room, true))
            }
        }
    }

    /// The limits every room here gets.
    pub fn settings(&self) -> RoomSettings {
        self.settings
    }

    pub fn get(&self, key: &str) -> Option<Arc<Room>> {
        self.rooms.get(key).map(|r| r.clone())
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    fn ordered(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Room>>> {
        self.ordered.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget(&self, room: &Room, removal: Removal) {
        self.ordered().remove(room.key());
        if removal != Removal::Moved {
            // A moved room closed itself, atomically with its last check.
            room.close(removal);
        }
        self.metrics.rooms.dec();
        let label = removal.label();
        self.metrics.rooms_removed.with_label_values(&[label]).inc();
        if removal == Removal::Moved {
            // Not a removal aux-srv should apply: the mover switches its map
            // to the target. Were it logged, a lookup in between would find
            // the name free and create the room anew beside the import.
            tracing::info!(room = room.key(), "room moved away");
            return;
        }
        let mut log = self.removed.lock().unwrap_or_else(|p| p.into_inner());
        log.last_cursor += 1;
        let cursor = log.last_cursor;
        log.entries.push_back(RemovedRoom {
            cursor,
            key: room.key().to_owned(),
            epoch: room.epoch(),
        });
        if log.entries.len() > REMOVED_LOG_LEN {
            log.entries.pop_front();
        }
        tracing::info!(room = room.key(), reason = label, "room removed");
    }

    /// Removes a room, closing its members' connections. False if unknown.
    pub fn remove(&self, key: &str, removal: Removal) -> bool {
        match self.rooms.remove(key) {
            Some((_, room)) => {
                self.forget(&room, removal);
                true
            }
            None => false,
        }
    }

    /// Adds a room that moved here; the live room of that name if there is
    /// one already (then nothing is added).
    pub fn insert_moved_in(&self, room: Arc<Room>) -> Result<Arc<Room>, Arc<Room>> {
        match self.rooms.entry(room.key().to_owned()) {
            Entry::Occupied(e) => Err(e.get().clone()),
            Entry::Vacant(e) => {
                e.insert(room.clone());
                self.ordered().insert(room.key().to_owned(), room.clone());
                self.metrics.rooms.inc();
                Ok(room)
            }
        }
    }

    /// Removes a room that [`Room::complete_move`] closed (it moved away).
    /// Not in the removal log: until aux-srv switches its map, clients sent
    /// here get 4404 and ask again.
    pub fn remove_moved(&self, room: &Arc<Room>) {
        if self.rooms.remove_if(room.key(), |_, r| Arc::ptr_eq(r, room)).is_some() {
            self.forget(room, Removal::Moved);
        }
    }

    /// Removes every room that is empty and idle long enough (and gives up
    /// on the members of a move who did not come back in time).
    pub fn sweep_expired(&self, now: Instant) -> usize {
        let candidates: Vec<Arc<Room>> = self
            .rooms
            .iter()
            .filter(|r| {
                r.settle_arrivals(now);
                r.is_expired(now)
            })
            .map(|r| r.clone())
            .collect();
        let mut removed = 0;
        for room in candidates {
            // Checked again under the map's lock: someone may have joined.
            if let Some((_, room)) = self.rooms.remove_if(room.key(), |_, r| r.is_expired(now)) {
                self.forget(&room, Removal::Expired);
                removed += 1;
            }
        }
        removed
    }

    /// Rooms in key order strictly after `after`, at most `limit` of them
    /// and about `budget` bytes encoded, and the key to continue after when
    /// more remain.
    pub fn list(
        &self,
        after: Option<&str>,
        limit: usize,
        budget: usize,
    ) -> (Vec<RoomInfo>, Option<String>) {
        let after = after.map_or(Bound::Unbounded, Bound::Excluded);
        // One more than the page, to tell whether more remain; the rooms'
        // own locks are taken after the index's is released.
        let rooms: Vec<Arc<Room>> = self
            .ordered()
            .range::<str, _>((after, Bound::Unbounded))
            .take(limit.saturating_add(1))
            .map(|(_, room)| room.clone())
            .collect();
        let mut used = 0;
        let mut page = Vec::with_capacity(limit.min(rooms.len()));
        for room in rooms.iter().take(limit) {
            let info = room.info();
            used += info.name.len() + info.key.len() + 48;
            if used > budget && !page.is_empty() {
                break;
            }
            page.push(info);
        }
        let next = if page.len() < rooms.len() { page.last().map(|r| r.key.clone()) } else { None };
        (page, next)
    }

    /// Removals after `cursor`, the newest cursor, and whether the log still
    /// reaches back to `cursor`.
    pub fn removed_since(&self, cursor: u64) -> (Vec<RemovedRoom>, u64, bool) {
        let log = self.removed.lock().unwrap_or_else(|p| p.into_inner());
        let oldest_kept = log.entries.front().map_or(log.last_cursor + 1, |e| e.cursor);
        let complete = cursor + 1 >= oldest_kept || cursor >= log.last_cursor;
        let entries = log.entries.iter().filter(|e| e.cursor > cursor).cloned().collect();
        (entries, log.last_cursor, complete)
    }

    /// Every room, for announcements.
    pub fn all(&self) -> Vec<Arc<Room>> {
        self.rooms.iter().map(|r| r.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn registry(idle: Duration) -> RoomRegistry {
        let settings = RoomSettings {
            max_messages: 10,
            max_members: 10,
            max_text_chars: 100,
            history_page_max: 10,
            idle,
            silent: idle,
            max_votes: 100,
            arrival: Duration::from_secs(30),
        };
        RoomRegistry::new(settings, Arc::new(Metrics::new("t")))
    }

    #[test]
    fn create_is_idempotent_and_case_insensitive() {
        let reg = registry(Duration::from_secs(60));
        let (a, created) =
            reg.create(&RoomName::parse("Team").unwrap(), None, None, false).unwrap();
        assert!(created);
        let (b, created) =
            reg.create(&RoomName::parse("TEAM").unwrap(), None, None, false).unwrap();
        assert!(!created);
        assert_eq!(a.epoch(), b.epoch());
        assert_eq!(a.info().name, "Team", "the creator's spelling is kept");
        assert!(matches!(
            reg.create(&RoomName::parse("other").unwrap(), None, None, true),
            Err(CreateError::Draining)
        ));
        assert!(reg.create(&RoomName::parse("team").unwrap(), None, None, true).is_ok());
    }

    #[test]
    fn paging_through_many_rooms_lists_each_once_in_order() {
        let reg = registry(Duration::from_secs(60));
        for i in 0..200 {
            // Scrambled creation order; DashMap iterates in hash order anyway.
            let name = format!("room-{:03}", (i * 37) % 200);
            reg.create(&RoomName::parse(&name).unwrap(), None, None, false).unwrap();
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = reg.list(after.as_deref(), 7, 1 << 20);
            assert!(page.len() <= 7);
            seen.extend(page.into_iter().map(|r| r.key));
            match next {
                Some(key) => after = Some(key),
                None => break,
            }
        }
        let expected: Vec<String> = (0..200).map(|i| format!("room-{i:03}")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn list_pages_in_key_order() {
        let reg = registry(Duration::from_secs(60));
        for name in ["ccc", "aaa", "bbb", "ddd"] {
            reg.create(&RoomName::parse(name).unwrap(), None, None, false).unwrap();
        }
        let (page, next) = reg.list(None, 3, 1 << 20);
        let keys: Vec<_> = page.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["aaa", "bbb", "ccc"]);
        assert_eq!(next.as_deref(), Some("ccc"));
        let (page, next) = reg.list(next.as_deref(), 3, 1 << 20);
        assert_eq!(page.len(), 1);
        assert_eq!(next, None);
        let (page, next) = reg.list(None, 10, 1);
        assert_eq!(page.len(), 1, "a tight budget still makes progress");
        assert_eq!(next.as_deref(), Some("aaa"));
    }

    #[test]
    fn removals_are_logged_with_their_epoch() {
        let reg = registry(Duration::ZERO);
        let (room, _) = reg.create(&RoomName::parse("gone").unwrap(), None, None, false).unwrap();
        reg.create(&RoomName::parse("kept").unwrap(), None, None, false).unwrap();
        assert!(reg.remove("kept", Removal::Deleted));
        assert!(!reg.remove("kept", Removal::Deleted));
        assert_eq!(reg.sweep_expired(Instant::now()), 1);
        assert!(reg.get("gone").is_none());
        let (removed, cursor, complete) = reg.removed_since(0);
        assert!(complete);
        assert_eq!(cursor, 2);
        assert_eq!(removed[1].key, "gone");
        assert_eq!(removed[1].epoch, room.epoch());
        let (removed, _, _) = reg.removed_since(1);
        assert_eq!(removed.len(), 1);
        assert!(reg.is_empty());
    }
}
