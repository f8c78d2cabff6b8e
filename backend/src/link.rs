//! The link between a room and one member's connection: a bounded queue of
//! encoded frames, and a way to ask the connection to close.
//!
//! Frames are `Utf8Bytes` (reference-counted): a broadcast is encoded once and
//! every member's queue holds a pointer to the same bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU64, Ordering};

use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::metrics::Disconnect;

/// Shared between a connection's reader, its writer and the rooms that hold
/// its [`Link`].
#[derive(Debug, Default)]
pub struct ConnCtl {
    /// 0 while open; else the close code the writer should send.
    close_code: AtomicU16,
    reason: AtomicU8,
    /// Wakes the writer when `close_code` is set.
    pub notify: Notify,
    /// Milliseconds (on the backend's clock) when the peer last sent anything.
    pub last_heard_ms: AtomicU64,
}

const REASONS: [Disconnect; 12] = [
    Disconnect::ClientClosed,
    Disconnect::SlowConsumer,
    Disconnect::Flooding,
    Disconnect::FrameTooBig,
    Disconnect::BinaryFrame,
    Disconnect::InvalidUtf8,
    Disconnect::Timeout,
    Disconnect::JoinTimeout,
    Disconnect::JoinRefused,
    Disconnect::RoomClosed,
    Disconnect::Shutdown,
    Disconnect::Error,
];

impl ConnCtl {
    /// Asks the writer to close with `code`. The first request wins; returns
    /// whether this one did.
    pub fn close(&self, code: u16, reason: Disconnect) -> bool {
        let first =
            self.close_code.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire).is_ok();
        if first {
            let index = REASONS.iter().position(|r| *r == reason).unwrap_or(0);
            self.reason.store(index as u8 + 1, Ordering::Release);
            self.notify.notify_one();
        }
        first
    }

    /// The close code asked for, if any.
    pub fn close_code(&self) -> Option<u16> {
        match self.close_code.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    /// Why the connection is closing, when a close was asked for.
    pub fn reason(&self) -> Option<Disconnect> {
        match self.reason.load(Ordering::Acquire) {
            0 => None,
            i => REASONS.get(usize::from(i) - 1).copied(),
        }
    }

    /// Records a reason when none was recorded (the peer went away).
    pub fn note_reason(&self, reason: Disconnect) {
        let index = REASONS.iter().position(|r| *r == reason).unwrap_or(0) as u8 + 1;
        let _ = self.reason.compare_exchange(0, index, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// What a room holds of a member's connection.
#[derive(Debug, Clone)]
pub struct Link {
    tx: mpsc::Sender<Utf8Bytes>,
    ctl: Arc<ConnCtl>,
}

impl Link {
    pub fn new(tx: mpsc::Sender<Utf8Bytes>, ctl: Arc<ConnCtl>) -> Self {
        Self { tx, ctl }
    }

    /// Queues a frame without waiting. A full queue means the client cannot
    /// keep up: it is closed with 1013 rather than slowing the room.
    pub fn push(&self, frame: &Utf8Bytes) -> bool {
        match self.tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.ctl.close(common::ws::close_code::TRY_AGAIN_LATER, Disconnect::SlowConsumer);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Waits until at least half the queue is free. A connection's reader
    /// calls this before reading more: a client that pipelines many frames
    /// is slowed by TCP flow control instead of overflowing its own queue
    /// with the answers.
    pub async fn wait_for_half_free(&self) {
        let half = (self.tx.max_capacity() / 2).max(1);
        if self.tx.capacity() < half {
            // The permits go back to the queue as soon as they are dropped.
            let _ = self.tx.reserve_many(half).await;
        }
    }

    /// Queues `frame` (best effort) and asks the connection to close after it.
    pub fn push_and_close(&self, frame: &Utf8Bytes, code: u16, reason: Disconnect) {
        let _ = self.tx.try_send(frame.clone());
        self.ctl.close(code, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_asks_for_1013_once() {
        let (tx, mut rx) = mpsc::channel(2);
        let ctl = Arc::new(ConnCtl::default());
        let link = Link::new(tx, ctl.clone());
        let frame = Utf8Bytes::from("x");
        assert!(link.push(&frame));
        assert!(link.push(&frame));
        assert_eq!(ctl.close_code(), None);
        assert!(!link.push(&frame), "third frame does not fit");
        assert_eq!(ctl.close_code(), Some(1013));
        assert_eq!(ctl.reason(), Some(Disconnect::SlowConsumer));
        assert!(!ctl.close(1001, Disconnect::Shutdown), "the first close wins");
        assert_eq!(ctl.close_code(), Some(1013));
        assert_eq!(rx.try_recv().unwrap().as_str(), "x");
    }
}
