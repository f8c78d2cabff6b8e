//! The backends aux-srv knows, what it last heard from each, and whether it
//! may place rooms there.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use common::config::{BackendEntry, PlacementBudgets};
use common::control::LoadReport;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::placement;
use control_client::ControlClient;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not heard from yet.
    Unknown,
    Up,
    /// Its last poll failed; retried with backoff.
    Down,
}

/// What the poller learnt about one backend.
#[derive(Debug)]
pub struct BackendStatus {
    pub health: Health,
    pub consecutive_failures: u32,
    pub down_since: Option<Instant>,
    pub last_error: Option<String>,
    /// The last load report, without its list of removed rooms.
    pub report: Option<LoadReport>,
    pub reported_at: Option<Instant>,
    /// Rooms placed here since `report` was taken.
    pub placed_since_report: u64,
    /// The backend process whose rooms the map holds.
    pub instance: Option<u64>,
    /// Where to ask for removed rooms next.
    pub removed_cursor: u64,
    /// True once the map holds every room of `instance` (swept and followed
    /// since): a name missing from the map is then not on this backend, even
    /// while it is unreachable.
    pub swept: bool,
    /// Names whose creation here may have happened without us hearing back;
    /// they spoil `swept` for those names until the next sweep.
    pub uncertain: HashSet<String>,
    /// A drain (or undrain) the admin asked for that the backend has not
    /// acknowledged yet; sent again when it is reachable.
    pub pending_drain: Option<bool>,
}

pub struct Backend {
    pub id: String,
    pub client: ControlClient,
    entry: BackendEntry,
    pub status: Mutex<BackendStatus>,
    /// Serialises polls and sweeps of this backend.
    pub sync: tokio::sync::Mutex<()>,
    /// Drained by the admin API (the backend is told too; this keeps
    /// placement off it even while the backend cannot be reached).
    admin_drained: AtomicBool,
    /// Stops this backend's poller (on shutdown or removal).
    pub cancel: CancellationToken,
    /// Asks the poller to poll now instead of waiting.
    pub poke: Notify,
    /// Bumped by the poller before it forgets rooms of this backend (a
    /// removal report, a restart): an answer about a room that was asked
    /// before a bump may describe a room whose removal is already applied.
    forgets: AtomicU64,
}

impl Backend {
    pub fn new(
        entry: BackendEntry,
        token: &str,
        timeout: Duration,
        pool_size: usize,
        cancel: CancellationToken,
    ) -> Self {
        Backend {
            id: entry.id.clone(),
            client: ControlClient::new(entry.control_addr.clone(), token, timeout, pool_size),
            entry,
            status: Mutex::new(BackendStatus {
                health: Health::Unknown,
                consecutive_failures: 0,
                down_since: None,
                last_error: None,
                report: None,
                reported_at: None,
                placed_since_report: 0,
                instance: None,
                removed_cursor: 0,
                swept: false,
                uncertain: HashSet::new(),
                pending_drain: None,
            }),
            sync: tokio::sync::Mutex::new(()),
            admin_drained: AtomicBool::new(false),
            cancel,
            poke: Notify::new(),
            forgets: AtomicU64::new(0),
        }
    }

    pub fn entry(&self) -> &BackendEntry {
        &self.entry
    }

    pub fn status(&self) -> std::sync::MutexGuard<'_, BackendStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn health(&self) -> Health {
        self.status().health
    }

    pub fn set_admin_drained(&self, drained: bool) {
        self.admin_drained.store(drained, Ordering::Relaxed);
    }

    pub fn admin_drained(&self) -> bool {
        self.admin_drained.load(Ordering::Relaxed)
    }

    pub fn draining(&self) -> bool {
        self.admin_drained() || self.status().report.as_ref().is_some_and(|r| r.draining)
    }

    /// The websocket base URL browsers are told for rooms here.
    pub fn public_url(&self) -> Option<String> {
        if let Some(url) = &self.entry.public_url {
            return Some(url.trim_end_matches('/').to_owned());
        }
        self.status().report.as_ref().map(|r| r.public_url.trim_end_matches('/').to_owned())
    }

    /// The websocket URL browsers are told for room `name` here.
    pub fn room_ws_url(&self, name: &str) -> Option<String> {
        let base = self.public_url()?;
        Some(format!("{base}/ws/{}", crate::http::respond::percent_encode(name)))
    }

    /// The state shown in metrics and the admin API.
    pub fn state_label(&self) -> &'static str {
        let draining = self.draining();
        match self.health() {
            Health::Unknown => "unknown",
            Health::Down => "down",
            Health::Up if draining => "draining",
            Health::Up => "up",
        }
    }

    /// The placement score, or `None` when no room may be placed here.
    pub fn placement_score(&self, budgets: &PlacementBudgets) -> Option<f64> {
        if self.admin_drained() {
            return None;
        }
        let status = self.status();
        let report = status.report.as_ref()?;
        if status.health != Health::Up || report.draining {
            return None;
        }
        Some(placement::score(report, status.placed_since_report, budgets))
    }

    /// True when, although we cannot ask it now, we know this backend does
    /// not hold `key` (if it held it, the map would say so).
    pub fn accounts_for(&self, key: &str) -> bool {
        let status = self.status();
        status.swept && (status.uncertain.is_empty() || !status.uncertain.contains(key))
    }

    /// True when the map may answer for `key` on this backend without
    /// asking it: reachable, swept, and no doubt about this name. The map
    /// then says what the backend holds, up to removals not yet polled.
    pub fn map_is_current(&self, key: &str) -> bool {
        let status = self.status();
        status.health == Health::Up
            && status.swept
            && (status.uncertain.is_empty() || !status.uncertain.contains(key))
    }

    /// How many times the poller began forgetting rooms of this backend;
    /// read it before asking the backend about a room.
    pub fn forgets(&self) -> u64 {
        self.forgets.load(Ordering::SeqCst)
    }

    /// Called by the poller *before* it forgets rooms of this backend.
    pub fn begin_forgetting(&self) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
    }

    pub fn mark_uncertain(&self, key: &str) {
        self.status().uncertain.insert(key.to_owned());
    }

    pub fn note_placed(&self) {
        self.status().placed_since_report += 1;
    }
}

/// The current list of backends (it changes through the admin API).
#[derive(Default)]
pub struct Fleet {
    backends: RwLock<Vec<Arc<Backend>>>,
}

impl Fleet {
    pub fn all(&self) -> Vec<Arc<Backend>> {
        self.backends.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Backend>> {
        self.backends.read().unwrap_or_else(|p| p.into_inner()).iter().find(|b| b.id == id).cloned()
    }

    /// Adds `backend` unless one of the same id is there already.
    pub fn add(&self, backend: Arc<Backend>) -> bool {
        let mut list = self.backends.write().unwrap_or_else(|p| p.into_inner());
        if list.iter().any(|b| b.id == backend.id) {
            return false;
        }
        list.push(backend);
        true
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Backend>> {
        let mut list = self.backends.write().unwrap_or_else(|p| p.into_inner());
        let index = list.iter().position(|b| b.id == id)?;
        Some(list.remove(index))
    }

    /// Placeable backends, least loaded first.
    pub fn placement_order(&self, budgets: &PlacementBudgets) -> Vec<(Arc<Backend>, f64)> {
        let mut scored: Vec<_> = self
            .all()
            .into_iter()
            .filter_map(|b| b.placement_score(budgets).map(|s| (b, s)))
            .collect();
        scored.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.id.cmp(&b.0.id)));
        scored
    }
}
