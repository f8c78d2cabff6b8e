//! A room's share of the defences: its join attempts per minute (for the
//! automatic proof of work) and its message rate (for automatic slow mode).
//! Its own small lock, never held with the room's.

use std::sync::Mutex;
use std::time::Duration;

use common::defences::{MinuteCounter, SurgeWatch};
use common::ws::ServerFrame;

use super::Defences;
use crate::room::{Room, encode};

#[derive(Debug, Default)]
struct GuardState {
    joins: MinuteCounter,
    surge: SurgeWatch,
    /// Automatic slow mode is on until this (backend clock, ms); 0: off.
    slow_until_ms: u64,
}

/// Held by every [`Room`] (`room.guard`).
#[derive(Debug, Default)]
pub struct RoomGuard {
    state: Mutex<GuardState>,
}

fn notice(room: &Room, text: String) {
    room.announce(&encode(&ServerFrame::moderation_notice(text)));
}

impl RoomGuard {
    fn lock(&self) -> std::sync::MutexGuard<'_, GuardState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a join attempt; returns the attempts in the last minute.
    pub fn record_join(&self, clock_ms: u64) -> u32 {
        self.lock().joins.record(clock_ms)
    }

    /// True while automatic slow mode is on.
    pub fn slow_mode_on(&self, clock_ms: u64) -> bool {
        self.lock().slow_until_ms > clock_ms
    }

    /// How long a member who last posted at `last_sent_ms` must still wait,
    /// if the room is in slow mode. Ends a slow mode whose time is up (and
    /// tells the room).
    pub(super) fn slow_mode_wait(
        &self,
        defences: &Defences,
        last_sent_ms: Option<u64>,
        clock_ms: u64,
        room: &Room,
    ) -> Option<Duration> {
        let mut st = self.lock();
        if st.slow_until_ms == 0 {
            return None;
        }
        if clock_ms >= st.slow_until_ms {
            st.slow_until_ms = 0;
            drop(st);
            notice(room, "Slow mode is off again.".into());
            return None;
        }
        let every = defences.config().auto_slow_mode_secs * 1000;
        let next = last_sent_ms? + every;
        (next > clock_ms).then(|| Duration::from_millis(next - clock_ms))
    }

    /// Counts a stored message; a surge turns slow mode on for a while and
    /// the room is told.
    pub(super) fn record_message(&self, defences: &Defences, room: &Room, clock_ms: u64) {
        let config = defences.config();
        if config.surge_factor <= 0.0 {
            return;
        }
        let mut st = self.lock();
        if st.slow_until_ms > clock_ms {
            return;
        }
        if !st.surge.record(clock_ms, config.surge_factor, config.surge_min_per_minute) {
            return;
        }
        st.surge.reset_window();
        st.slow_until_ms = clock_ms + config.auto_slow_mode_for_secs * 1000;
        drop(st);
        tracing::info!(room = room.key(), "message surge: automatic slow mode on");
        notice(
            room,
            format!(
                "Messages are arriving unusually fast: slow mode is on for {}. \
                 Everyone may send one message every {} s.",
                human_secs(config.auto_slow_mode_for_secs),
                config.auto_slow_mode_secs
            ),
        );
    }
}

fn human_secs(secs: u64) -> String {
    match secs {
        s if s % 60 == 0 && s >= 120 => format!("{} minutes", s / 60),
        60 => "a minute".into(),
        s => format!("{s} seconds"),
    }
}
