//! Every open websocket connection, and the one heartbeat that watches them
//! all.
//!
//! Pings, dead peers, writes stuck on a full TCP window, the join timeout and
//! the shutdown close are decided here, for all connections at once, a few
//! times per configured interval. A connection's task then carries no timer
//! of its own: a tokio `Sleep` is 112 bytes, and an idle connection would
//! otherwise hold three (ping interval, write timeout, join timeout) and a
//! shutdown waiter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::ws::ServerFrame;
use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::conn::Conn;
use crate::disconnect::Disconnect;
use crate::room::encode;

/// The open connections, by a number of their own.
#[derive(Default)]
pub struct Connections {
    table: DashMap<u64, Arc<Conn>>,
    next_id: AtomicU64,
}

/// A connection's place in [`Connections`]; leaving it ends the connection's
/// queue.
pub struct Registered<'a> {
    connections: &'a Connections,
    id: u64,
    conn: Arc<Conn>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.conn.shut();
        self.connections.table.remove(&self.id);
    }
}

impl Connections {
    /// A number for a new connection: its key here and in its log lines.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Watches `conn` (numbered by [`Self::next_id`]) until the returned
    /// guard is dropped.
    pub fn register(&self, id: u64, conn: Arc<Conn>) -> Registered<'_> {
        self.table.insert(id, conn.clone());
        Registered { connections: self, id, conn }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Asks every connection to close for `reason`.
    pub fn close_all(&self, reason: Disconnect) {
        for entry in &self.table {
            entry.value().close(reason);
        }
    }
}

/// What the heartbeat decides for one connection at `now_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fine,
    Ping,
    /// Silent for longer than `idle_timeout_ms`: drop it.
    Dead,
    /// A write has not finished for `idle_timeout_ms`: close with 1013.
    Stuck,
    /// Connected for `join_timeout_ms` without joining.
    JoinTimeout,
}

/// The intervals the heartbeat applies, from the backend's config.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub ping_interval_ms: u64,
    pub idle_timeout_ms: u64,
    pub join_timeout_ms: u64,
}

impl Timing {
    pub fn of(config: &common::config::BackendConfig) -> Self {
        Timing {
            ping_interval_ms: config.ping_interval_ms,
            idle_timeout_ms: config.idle_timeout_ms,
            join_timeout_ms: config.join_timeout_ms,
        }
    }

    /// How often the heartbeat looks: a quarter of the shortest interval,
    /// between 10 ms and 1 s.
    pub fn tick(&self) -> Duration {
        let shortest = self.ping_interval_ms.min(self.idle_timeout_ms).min(self.join_timeout_ms);
        Duration::from_millis(shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    pub fn verdict(&self, ctl: &Conn, now_ms: u64) -> Verdict {
        let since = |ms: u64| now_ms.saturating_sub(ms);
        if ctl.writing_since_ms().is_some_and(|ms| since(ms) > self.idle_timeout_ms) {
            return Verdict::Stuck;
        }
        let silent = since(ctl.last_heard_ms.load(Ordering::Relaxed));
        if silent > self.idle_timeout_ms {
            return Verdict::Dead;
        }
        if !ctl.is_joined() && since(ctl.opened_ms) > self.join_timeout_ms {
            return Verdict::JoinTimeout;
        }
        // Every interval, talkative peers too: a proxy in front (nginx's
        // `proxy_read_timeout`) closes a websocket the server sends nothing on.
        if now_ms >= ctl.next_ping_ms.load(Ordering::Relaxed) {
            return Verdict::Ping;
        }
        Verdict::Fine
    }
}

/// Looks at every connection each [`Timing::tick`] until `stop`.
pub async fn heartbeat(shared: Arc<Shared>, stop: CancellationToken) {
    let timing = Timing::of(&shared.config);
    let mut tick = tokio::time::interval(timing.tick());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let join_timeout = encode(&ServerFrame::error("join_timeout", "Send a join frame first."));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now_ms = shared.clock_ms();
        for entry in &shared.connections.table {
            let ctl = entry.value();
            if ctl.is_closing() {
                continue;
            }
            match timing.verdict(ctl, now_ms) {
                Verdict::Fine => {}
                Verdict::Ping => ctl.request_ping(now_ms + timing.ping_interval_ms),
                Verdict::Dead => ctl.abandon(Disconnect::Timeout),
                Verdict::Stuck => {
                    ctl.close(Disconnect::SlowConsumer);
                }
                Verdict::JoinTimeout => ctl.push_and_close(&join_timeout, Disconnect::JoinTimeout),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing =
        Timing { ping_interval_ms: 100, idle_timeout_ms: 350, join_timeout_ms: 200 };

    #[test]
    fn verdicts() {
        let ctl = Conn::new(8, 1000, 1100);
        assert_eq!(TIMING.verdict(&ctl, 1050), Verdict::Fine);
        assert_eq!(TIMING.verdict(&ctl, 1201), Verdict::JoinTimeout);
        ctl.mark_joined();
        assert_eq!(TIMING.verdict(&ctl, 1201), Verdict::Ping);
        ctl.request_ping(1301);
        assert_eq!(TIMING.verdict(&ctl, 1250), Verdict::Fine, "one ping per interval");
        ctl.last_heard_ms.store(1290, Ordering::Relaxed);
        assert_eq!(TIMING.verdict(&ctl, 1301), Verdict::Ping, "talkative peers too");
        ctl.request_ping(1401);
        assert_eq!(TIMING.verdict(&ctl, 1641), Verdict::Dead);
    }

    #[test]
    fn a_write_stuck_for_the_idle_timeout_is_stuck() {
        let ctl = Conn::new(8, 0, 0);
        ctl.mark_joined();
        ctl.begin_write(10);
        ctl.last_heard_ms.store(300, Ordering::Relaxed);
        ctl.next_ping_ms.store(400, Ordering::Relaxed);
        assert_eq!(TIMING.verdict(&ctl, 300), Verdict::Fine);
        assert_eq!(TIMING.verdict(&ctl, 361), Verdict::Stuck);
        ctl.end_write();
        assert_eq!(TIMING.verdict(&ctl, 361), Verdict::Fine);
    }

    #[test]
    fn ticks() {
        assert_eq!(TIMING.tick(), Duration::from_millis(25));
        let slow =
            Timing { ping_interval_ms: 30_000, idle_timeout_ms: 75_000, join_timeout_ms: 10_000 };
        assert_eq!(slow.tick(), Duration::from_secs(1));
    }
}
