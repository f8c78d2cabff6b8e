//! Finding and placing rooms: the rules that keep one name on one backend.
//!
//! - A name in the room map is checked with the backend that holds it.
//! - A name not in the map is asked of every backend ("rebuilt" when one
//!   has it). A backend that cannot be asked blocks the answer (503) unless
//!   the map is known to hold all of its rooms, so an unknown name is never
//!   placed while a backend that may hold it is out of reach.
//! - Creation runs under the name's lock: ask, then place on the
//!   least-loaded backend. `CreateRoom` is idempotent, so an answer lost in
//!   transit is retried on the same backend, never elsewhere.

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::control::{ErrorCode, RequestBody, ResponseBody, RoomInfo};
use common::names::{ROOM_NAME_MAX_CHARS, RoomName};
use common::password;
use futures_util::future::join_all;
use rand::Rng;

use crate::app::App;
use crate::fleet::{Backend, Health};
use crate::room_map::Recorded;
use backend::control_client::ControlError;

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
}

pub enum Opened {
    Existing(Found),
    Created(Found),
}

impl App {
    /// The room and the backend holding it, checked with that backend.
    pub async fn find(&self, name: &RoomName) -> Lookup {
        let key = name.key();
        if let Some(entry) = self.rooms.get(key) {
            match self.fleet.get(&entry.backend) {
                None => {
                    self.rooms.forget(key, &entry.backend, None);
                }
                Some(backend) => match self.ask(&backend, name).await {
                    Ok(Some(room)) => {
                        self.record(&backend, &room);
                        self.metrics.lookups.with_label_values(&["hit"]).inc();
                        return Lookup::Found(Found { backend, room });
                    }
                    // Gone (expired, deleted, or the backend restarted): the
                    // map was stale. Ask everyone, as for any unknown name.
                    Ok(None) => {
                        self.rooms.forget(key, &backend.id, Some(entry.epoch));
                        self.metrics.rooms_known.set(self.rooms.len() as i64);
                    }
                    Err(_) => {
                        self.metrics.lookups.with_label_values(&["unavailable"]).inc();
                        return Lookup::Unavailable;
                    }
                },
            }
        }
        let result = self.discover(name).await;
        let label = match &result {
            Lookup::Found(_) => "rebuilt",
            Lookup::NotFound => "miss",
            Lookup::Unavailable => "unavailable",
        };
        self.metrics.lookups.with_label_values(&[label]).inc();
        result
    }

    /// Asks every backend about a name the map does not hold.
    async fn discover(&self, name: &RoomName) -> Lookup {
        let key = name.key();
        let backends = self.fleet.all();
        let answers = join_all(backends.iter().map(|b| async move {
            // Known not to hold it, and known to be down: asking would only
            // wait for a timeout.
            if b.health() == Health::Down && b.accounts_for(key) {
                return Ok(None);
            }
            self.ask(b, name).await
        }))
        .await;
        let mut found: Vec<(Arc<Backend>, RoomInfo)> = Vec::new();
        let mut blocked = false;
        for (backend, answer) in backends.iter().zip(answers) {
            match answer {
                Ok(Some(room)) => found.push((backend.clone(), room)),
                Ok(None) => {}
                Err(_) => blocked |= !backend.accounts_for(key),
            }
        }
        if found.len() > 1 {
            self.metrics.duplicate_rooms.inc();
            let holders: Vec<&str> = found.iter().map(|(b, _)| b.id.as_str()).collect();
            tracing::error!(room = key, ?holders, "one room name is held by several backends");
            found.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        }
        match found.into_iter().next() {
            Some((backend, room)) => {
                self.record(&backend, &room);
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
        let _lock = self.rooms.lock(name.key()).await;
        match self.find(name).await {
            Lookup::Found(found) => return Ok(Opened::Existing(found)),
            Lookup::Unavailable => return Err(RoomError::Unavailable),
            Lookup::NotFound => {}
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
        let _permit = self.hash_permits.acquire().await.map_err(|_| RoomError::NoBackend)?;
        let salt: [u8; 16] = rand::rng().random();
        tokio::task::spawn_blocking(move || password::hash_password(&password, &salt))
            .await
            .map_err(|_| RoomError::Refused {
                code: ErrorCode::Internal,
                message: "internal error".into(),
            })?
            .map_err(|_| RoomError::BadPassword)
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
        let body = RequestBody::CreateRoom { name: name.display().to_owned(), password_hash };
        for (backend, _score) in order {
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
                    self.record(&backend, &room);
                    let found = Found { backend, room };
                    return Ok(if created {
                        Opened::Created(found)
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
