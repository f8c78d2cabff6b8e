//! Finding and placing rooms: the rules that keep one name on one backend.
//!
//! There is one aux-srv per fleet and only it creates rooms, so once a
//! backend is *swept* (its room list read into the map, and followed since
//! through its removal log and restart detection) the map holds exactly
//! that backend's rooms — up to removals not yet polled.
//!
//! - A name in the map, on a backend that is up and swept and not in doubt
//!   about that name ([`Backend::map_is_current`]), is answered from the
//!   map: no control request. Otherwise (down, not swept yet, uncertain)
//!   the backend is asked; unreachable → 503, never a guess.
//! - A name not in the map is asked only of the backends that do not
//!   account for it (not swept, or uncertain about it); a swept backend
//!   would be in the map if it held the name. A backend that must be asked
//!   and cannot be blocks the answer (503), so an unknown name is never
//!   placed while a backend that may hold it is out of reach. On a fully
//!   swept fleet a new name costs one `CreateRoom`, a lookup none.
//! - Staleness is bounded by one poll (`poll_interval_ms`, 2 s): a room that
//!   expired or was deleted on its backend may still be answered until the
//!   next load report lists its removal; a browser told so gets close 4404
//!   on the websocket and asks again, and any call that reaches the backend
//!   (messages, admin delete) drops the entry at once. A room created behind
//!   aux-srv's back (another control client) is not seen until that backend
//!   is swept again (aux-srv or backend restart, lost removals).
//! - An answer recorded after the poller began forgetting rooms of that
//!   backend is checked again ([`App::record_answer`]): without that, a
//!   removal applied between the backend's answer and the record would
//!   leave the map wrong for good.
//! - Creation runs under the name's lock: find, then place on the
//!   least-loaded backend. `CreateRoom` is idempotent, so an answer lost in
//!   transit is retried on the same backend, never elsewhere. Opening a room
//!   the map answers for takes no lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::control::{ErrorCode, RequestBody, ResponseBody, RoomInfo};
use common::names::{ROOM_NAME_MAX_CHARS, RoomName};
use common::password;
use futures_util::future::join_all;
use rand::Rng;
use startup::password_pool::PasswordPoolError;

use crate::app::App;
use crate::fleet::Backend;
use crate::room_map::Recorded;
use control_client::ControlError;

pub struct Found {
    pub backend: Arc<Backend>,
    pub room: RoomInfo,
}

pub enum Lookup {
    Found(Found),
    NotFound,
    /// A backend that holds (or may hold) it cannot be reached.
    Unavailable,
}

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("the server holding this room is unavailable, try again shortly")]
    Unavailable,
    #[error("no server can take new rooms right now, try again shortly")]
    NoBackend,
    #[error("no room of that name")]
    NotFound,
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    #[error("too many new rooms from your address, try again later")]
    RateLimited(Duration),
    #[error("password must be 1 to 256 bytes")]
    BadPassword,
    #[error("too many password-protected rooms being created at once, try again shortly")]
    PasswordsBusy,
}

pub enum Opened {
    Existing(Found),
    /// Created by this call; the owner key goes to the creator only.
    Created(Found, String),
}

impl App {
    /// The room and the backend holding it, from the map alone when the map
    /// answers for that backend ([`Backend::map_is_current`]).
    pub fn find_current(&self, name: &RoomName) -> Option<Found> {
        let key = name.key();
        // Only the fleet's lock is taken while the map's shard is held.
        let (backend, room) = self.rooms.with(key, |entry| {
            let backend = self.fleet.get(&entry.backend)?;
            let room = RoomInfo {
                key: key.to_owned(),
                name: entry.name.clone(),
                epoch: entry.epoch,
                has_password: entry.has_password,
                members: 0,
                last_seq: 0,
            };
            Some((backend, room))
        })??;
        if !backend.map_is_current(key) {
            return None;
        }
        self.metrics.lookup_hit.inc();
        Some(Found { backend, room })
    }

    /// The room and the backend holding it: from the map when it answers
    /// for that backend, else asked of the backends that may hold it.
    pub async fn find(&self, name: &RoomName) -> Lookup {
        if let Some(found) = self.find_current(name) {
            return Lookup::Found(found);
        }
        let key = name.key();
        if let Some(entry) = self.rooms.get(key) {
            match self.fleet.get(&entry.backend) {
                None => {
                    self.rooms.forget(key, &entry.backend, None);
                }
                // Down, not swept yet, or in doubt about this name: ask.
                Some(backend) => {
                    let asked_at = backend.forgets();
                    match self.ask(&backend, name).await {
                        Ok(Some(room)) => {
                            self.record_answer(&backend, name, &room, asked_at).await;
                            self.metrics.lookup_hit.inc();
                            return Lookup::Found(Found { backend, room });
                        }
                        // Gone (expired, deleted, or the backend restarted):
                        // the map was stale. Treat it as any unknown name.
                        Ok(None) => {
                            self.rooms.forget(key, &backend.id, Some(entry.epoch));
                            self.metrics.rooms_known.set(self.rooms.len() as i64);
                        }
                        Err(_) => {
                            self.metrics.lookup_unavailable.inc();
                            return Lookup::Unavailable;
                        }
                    }
                }
            }
        }
        let result = self.discover(name).await;
        match &result {
            Lookup::Found(_) => self.metrics.lookup_rebuilt.inc(),
            Lookup::NotFound => self.metrics.lookup_miss.inc(),
            Lookup::Unavailable => self.metrics.lookup_unavailable.inc(),
        }
        result
    }

    /// Asks about a name the map does not hold every backend that does not
    /// account for it (not swept yet, or in doubt about this name). A swept
    /// backend is not asked: were the name there, the map would say so.
    async fn discover(&self, name: &RoomName) -> Lookup {
        let key = name.key();
        let backends: Vec<Arc<Backend>> =
            self.fleet.all().into_iter().filter(|b| !b.accounts_for(key)).collect();
        if backends.is_empty() {
            return Lookup::NotFound;
        }
        let answers = join_all(backends.iter().map(|b| async move {
            let asked_at = b.forgets();
            (asked_at, self.ask(b, name).await)
        }))
        .await;
        let mut found: Vec<(Arc<Backend>, RoomInfo, u64)> = Vec::new();
        let mut blocked = false;
        for (backend, (asked_at, answer)) in backends.iter().zip(answers) {
            match answer {
                Ok(Some(room)) => found.push((backend.clone(), room, asked_at)),
                Ok(None) => {}
                Err(_) => blocked = true,
            }
        }
        if found.len() > 1 {
            self.metrics.duplicate_rooms.inc();
            let holders: Vec<&str> = found.iter().map(|(b, _, _)| b.id.as_str()).collect();
            tracing::error!(room = key, ?holders, "one room name is held by several backends");
            found.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        }
        match found.into_iter().next() {
            Some((backend, room, asked_at)) => {
                self.record_answer(&backend, name, &room, asked_at).await;
                Lookup::Found(Found { backend, room })
            }
            None if blocked => Lookup::Unavailable,
            None => Lookup::NotFound,
        }
    }

    /// `LookupRoom` on one backend.
    pub(crate) async fn ask(
        &self,
        backend: &Backend,
        name: &RoomName,
    ) -> Result<Option<RoomInfo>, ControlError> {
        let body = RequestBody::LookupRoom { name: name.display().to_owned() };
        match self.call(backend, body).await? {
            ResponseBody::Room(room) => Ok(room),
            ResponseBody::Error { code: ErrorCode::NotFound, .. } => Ok(None),
            other => {
                Err(ControlError::Uncertain(format!("unexpected answer to lookup: {other:?}")))
            }
        }
    }

    /// Notes in the map that `backend` holds `room`.
    pub(crate) fn record(&self, backend: &Backend, room: &RoomInfo) {
        match self.rooms.record(&backend.id, room) {
            Recorded::New => self.metrics.rooms_known.set(self.rooms.len() as i64),
            Recorded::Updated => {}
            Recorded::Conflict { kept } => {
                self.metrics.duplicate_rooms.inc();
                tracing::error!(
                    room = room.key,
                    kept,
                    also = backend.id,
                    "one room name is held by several backends"
                );
            }
        }
    }

    /// Records an answer of `backend` about a room, asked when its
    /// [`Backend::forgets`] was `asked_at`. If the poller began forgetting
    /// rooms of that backend since, the room may have been removed and its
    /// removal applied before this record, which would leave the map wrong
    /// for good: the backend is asked again until an answer is known to be
    /// current. Should it keep changing (or stop answering), the name is
    /// marked uncertain there, so that lookups ask until the next sweep.
    pub(crate) async fn record_answer(
        &self,
        backend: &Backend,
        name: &RoomName,
        room: &RoomInfo,
        asked_at: u64,
    ) {
        self.record(backend, room);
        let mut epoch = room.epoch;
        let mut asked_at = asked_at;
        for _ in 0..3 {
            let now = backend.forgets();
            if now == asked_at {
                return;
            }
            asked_at = now;
            match self.ask(backend, name).await {
                Ok(Some(room)) => {
                    self.record(backend, &room);
                    epoch = room.epoch;
                }
                Ok(None) => {
                    self.rooms.forget(name.key(), &backend.id, Some(epoch));
                    self.metrics.rooms_known.set(self.rooms.len() as i64);
                    return;
                }
                Err(_) => break,
            }
        }
        if backend.forgets() != asked_at {
            backend.mark_uncertain(name.key());
        }
    }

    /// Opens the room, creating it first if nobody holds it. `client` is
    /// charged for a creation only.
    pub async fn open_or_create(
        &self,
        name: &RoomName,
        password: Option<String>,
        client: std::net::IpAddr,
    ) -> Result<Opened, RoomError> {
        if let Some(p) = &password {
            password::check_password(p).map_err(|_| RoomError::BadPassword)?;
        }
        // An open of a room the map answers for decides nothing: no lock.
        if let Some(found) = self.find_current(name) {
            return Ok(Opened::Existing(found));
        }
        let _lock = self.rooms.lock(name.key()).await;
        match self.find(name).await {
            Lookup::Found(found) => return Ok(Opened::Existing(found)),
            Lookup::Unavailable => return Err(RoomError::Unavailable),
            Lookup::NotFound => {}
        }
        // A room that was moving when its mover or source died may wait as
        // a pending import: settle it before making a new room of that name.
        if crate::moves::settle_before_creating(self, name).await {
            if let Lookup::Found(found) = self.find(name).await {
                return Ok(Opened::Existing(found));
            }
        }
        if let Err(wait) = self.create_limit.check(client, Instant::now()) {
            self.metrics.rate_limited.with_label_values(&["room_create"]).inc();
            return Err(RoomError::RateLimited(wait));
        }
        let password_hash = match password {
            Some(p) => Some(self.hash_password(p).await?),
            None => None,
        };
        self.place(name, password_hash).await
    }

    async fn hash_password(&self, password: String) -> Result<String, RoomError> {
        let salt: [u8; 16] = rand::rng().random();
        self.passwords.hash(password, salt).await.map_err(|e| match e {
            PasswordPoolError::Busy => RoomError::PasswordsBusy,
            PasswordPoolError::Password(_) => RoomError::BadPassword,
            PasswordPoolError::Stopped => {
                RoomError::Refused { code: ErrorCode::Internal, message: "internal error".into() }
            }
        })
    }

    /// Creates the room on the least-loaded backend that accepts it.
    async fn place(
        &self,
        name: &RoomName,
        password_hash: Option<String>,
    ) -> Result<Opened, RoomError> {
        let order = self.fleet.placement_order(&self.config.placement);
        if order.is_empty() {
            return Err(RoomError::NoBackend);
        }
        // Only the key's hash goes to the backend; the key goes to the creator.
        let owner_key = common::owner_key::new_owner_key(&mut rand::rng());
        let body = RequestBody::CreateRoom {
            name: name.display().to_owned(),
            password_hash,
            owner_key_hash: Some(common::owner_key::hash_owner_key(&owner_key)),
        };
        for (backend, _score) in order {
            let asked_at = backend.forgets();
            let mut answer = self.call(&backend, body.clone()).await;
            let uncertain = answer.as_ref().is_err_and(ControlError::maybe_sent);
            if uncertain {
                // It may exist there now: only this backend may have it.
                backend.mark_uncertain(name.key());
                answer = self.call(&backend, body.clone()).await;
            }
            let placed = |result: &str| {
                self.metrics.placements.with_label_values(&[&backend.id, result]).inc();
            };
            match answer {
                Ok(ResponseBody::Created { room, created }) => {
                    placed(if created { "created" } else { "existed" });
                    backend.status().uncertain.remove(name.key());
                    if created {
                        backend.note_placed();
                        tracing::debug!(room = room.key, backend = backend.id, "room placed");
                    }
                    self.record_answer(&backend, name, &room, asked_at).await;
                    let found = Found { backend, room };
                    return Ok(if created {
                        Opened::Created(found, owner_key)
                    } else {
                        Opened::Existing(found)
                    });
                }
                Ok(ResponseBody::Error { code: ErrorCode::Draining, .. }) => {
                    placed("draining");
                    backend.poke.notify_one();
                }
                Ok(ResponseBody::Error { code, message }) => {
                    placed("refused");
                    return Err(RoomError::Refused { code, message });
                }
                Ok(_) => {
                    placed("failed");
                    return Err(RoomError::Unavailable);
                }
                Err(e) if uncertain || e.maybe_sent() => {
                    placed("failed");
                    tracing::warn!(room = name.key(), backend = backend.id, error = %e, "room creation outcome unknown");
                    return Err(RoomError::Unavailable);
                }
                Err(_) => placed("failed"),
            }
        }
        Err(RoomError::NoBackend)
    }

    /// Up to three free names close to `name`.
    pub async fn suggestions(&self, name: &RoomName) -> Vec<String> {
        let base: String = name.display().chars().take(ROOM_NAME_MAX_CHARS - 4).collect();
        let mut candidates: Vec<String> = (2..=4).map(|n| format!("{base}-{n}")).collect();
        {
            let mut rng = rand::rng();
            candidates.extend((0..3).map(|_| format!("{base}-{}", rng.random_range(10..1000))));
        }
        let checks = candidates.iter().map(|c| async move {
            let parsed = RoomName::parse(c).ok()?;
            if self.rooms.get(parsed.key()).is_some() {
                return None;
            }
            matches!(self.discover(&parsed).await, Lookup::NotFound).then(|| c.clone())
        });
        let mut free: Vec<String> = join_all(checks).await.into_iter().flatten().collect();
        free.dedup();
        free.truncate(3);
        free
    }
}
