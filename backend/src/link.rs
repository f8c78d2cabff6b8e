//! The link between a room and one member's connection: a bounded queue of
//! encoded frames, and the flags that tell the connection's task what to do
//! next (close, ping, give up).
//!
//! Frames are `Utf8Bytes` (reference-counted): a broadcast is encoded once and
//! every member's queue holds a pointer to the same bytes.
//!
//! Memory is the design constraint here: an idle connection should cost a few
//! KiB. The queue is a `VecDeque` that the writer takes whole, so an idle
//! connection's queue holds no allocation (a tokio mpsc channel keeps a
//! 1 KiB block and a 0.5 KiB channel per connection), and one waker serves
//! the connection's single task, whose reader and writer halves both check
//! their conditions when it wakes. Timers live elsewhere
//! ([`crate::connections`]): one task watches every connection.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::metrics::Disconnect;

/// `writing_since_ms` when no write is under way.
const NOT_WRITING: u64 = u64::MAX;

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Utf8Bytes>,
    /// The connection has ended: nothing more is queued.
    shut: bool,
}

/// One connection's state shared between its task, the rooms that hold its
/// [`Link`], and the heartbeat.
#[derive(Debug)]
pub struct ConnCtl {
    /// 0 while open; else the close code the writer should send.
    close_code: AtomicU16,
    reason: AtomicU8,
    /// Drop the connection without a close frame (the peer is gone).
    abandoned: AtomicBool,
    ping_due: AtomicBool,
    joined: AtomicBool,
    /// Milliseconds (on the backend's clock, [`crate::Shared::clock_ms`])
    /// when the peer last sent anything.
    pub last_heard_ms: AtomicU64,
    /// When the next ping is due.
    pub next_ping_ms: AtomicU64,
    /// When the write under way began, or [`NOT_WRITING`].
    writing_since_ms: AtomicU64,
    /// When the connection was upgraded.
    pub opened_ms: u64,
    capacity: usize,
    queue: Mutex<Queue>,
    /// The connection's task: woken for frames, closes, pings, and queue room.
    task: AtomicWaker,
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

fn reason_index(reason: Disconnect) -> u8 {
    REASONS.iter().position(|r| *r == reason).unwrap_or(0) as u8 + 1
}

impl ConnCtl {
    /// A connection opened at `now_ms` whose queue holds `capacity` frames,
    /// due for its first ping at `first_ping_ms`.
    pub fn new(capacity: usize, now_ms: u64, first_ping_ms: u64) -> Self {
        ConnCtl {
            close_code: AtomicU16::new(0),
            reason: AtomicU8::new(0),
            abandoned: AtomicBool::new(false),
            ping_due: AtomicBool::new(false),
            joined: AtomicBool::new(false),
            last_heard_ms: AtomicU64::new(now_ms),
            next_ping_ms: AtomicU64::new(first_ping_ms),
            writing_since_ms: AtomicU64::new(NOT_WRITING),
            opened_ms: now_ms,
            capacity: capacity.max(2),
            queue: Mutex::default(),
            task: AtomicWaker::new(),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the writer to close with `code`. The first request wins; returns
    /// whether this one did.
    pub fn close(&self, code: u16, reason: Disconnect) -> bool {
        let first =
            self.close_code.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire).is_ok();
        if first {
            self.reason.store(reason_index(reason), Ordering::Release);
            self.task.wake();
        }
        first
    }

    /// Gives up on a peer that went silent: the connection is dropped
    /// without a close frame.
    pub fn abandon(&self, reason: Disconnect) {
        self.note_reason(reason);
        self.abandoned.store(true, Ordering::Release);
        self.task.wake();
    }

    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }

    /// The close code asked for, if any.
    pub fn close_code(&self) -> Option<u16> {
        match self.close_code.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    /// True once the connection is closing, one way or the other.
    pub fn is_closing(&self) -> bool {
        self.close_code().is_some() || self.is_abandoned()
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
        let index = reason_index(reason);
        let _ = self.reason.compare_exchange(0, index, Ordering::AcqRel, Ordering::Acquire);
    }

    pub fn mark_joined(&self) {
        self.joined.store(true, Ordering::Release);
    }

    pub fn is_joined(&self) -> bool {
        self.joined.load(Ordering::Acquire)
    }

    /// Asks the writer for a ping; the next one is due at `next_ping_ms`.
    pub fn request_ping(&self, next_ping_ms: u64) {
        self.next_ping_ms.store(next_ping_ms, Ordering::Relaxed);
        self.ping_due.store(true, Ordering::Release);
        self.task.wake();
    }

    /// When the write under way began, if one is.
    pub fn writing_since_ms(&self) -> Option<u64> {
        match self.writing_since_ms.load(Ordering::Acquire) {
            NOT_WRITING => None,
            ms => Some(ms),
        }
    }

    /// Queues a frame without waiting. A full queue means the client cannot
    /// keep up: it is closed with 1013 rather than slowing the room.
    fn push(&self, frame: &Utf8Bytes) -> bool {
        let mut queue = self.queue();
        if queue.shut {
            return false;
        }
        if queue.frames.len() >= self.capacity {
            drop(queue);
            self.close(common::ws::close_code::TRY_AGAIN_LATER, Disconnect::SlowConsumer);
            return false;
        }
        queue.frames.push_back(frame.clone());
        drop(queue);
        self.task.wake();
        true
    }

    /// Ends the queue when the connection is gone: what is queued is freed,
    /// and rooms that still hold the link queue nothing more.
    pub fn shut(&self) {
        let frames = {
            let mut queue = self.queue();
            queue.shut = true;
            std::mem::take(&mut queue.frames)
        };
        drop(frames);
    }

    // The connection's own side.

    /// Every queued frame, leaving the queue empty (and unallocated).
    pub fn take_frames(&self) -> VecDeque<Utf8Bytes> {
        let frames = std::mem::take(&mut self.queue().frames);
        if !frames.is_empty() {
            // The reader may be waiting for room in the queue.
            self.task.wake();
        }
        frames
    }

    /// True (once) when a ping was asked for.
    pub fn take_ping(&self) -> bool {
        self.ping_due.swap(false, Ordering::AcqRel)
    }

    /// Ready when the writer has something to do: close, ping, or frames.
    fn poll_writer_work(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.task.register(cx.waker());
        let ready = self.is_closing()
            || self.ping_due.load(Ordering::Acquire)
            || !self.queue().frames.is_empty();
        if ready { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Waits until the writer has something to do.
    pub async fn writer_work(&self) {
        poll_fn(|cx| self.poll_writer_work(cx)).await
    }

    /// Registers the connection's task to be woken by this connection's
    /// events.
    pub fn register_task(&self, cx: &Context<'_>) {
        self.task.register(cx.waker());
    }

    /// Notes that a write began at `now_ms`: the heartbeat closes a
    /// connection whose write stays stuck.
    pub fn begin_write(&self, now_ms: u64) {
        self.writing_since_ms.store(now_ms, Ordering::Release);
    }

    pub fn end_write(&self) {
        self.writing_since_ms.store(NOT_WRITING, Ordering::Release);
    }

    /// Waits until at least half the queue is free. A connection's reader
    /// calls this before reading more: a client that pipelines many frames
    /// is slowed by TCP flow control instead of overflowing its own queue
    /// with the answers.
    pub async fn wait_for_half_free(&self) {
        let half = self.capacity / 2;
        poll_fn(|cx| {
            if self.queue().frames.len() < half {
                return Poll::Ready(());
            }
            self.task.register(cx.waker());
            if self.queue().frames.len() < half { Poll::Ready(()) } else { Poll::Pending }
        })
        .await
    }
}

/// What a room holds of a member's connection.
#[derive(Debug, Clone)]
pub struct Link {
    ctl: Arc<ConnCtl>,
}

impl Link {
    pub fn new(ctl: Arc<ConnCtl>) -> Self {
        Self { ctl }
    }

    /// The connection's own state.
    pub fn ctl(&self) -> &ConnCtl {
        &self.ctl
    }

    /// Queues a frame without waiting; false when it was not queued (the
    /// queue was full, and the connection is now closing with 1013, or the
    /// connection is gone).
    pub fn push(&self, frame: &Utf8Bytes) -> bool {
        self.ctl.push(frame)
    }

    /// Queues `frame` (best effort) and asks the connection to close after it.
    pub fn push_and_close(&self, frame: &Utf8Bytes, code: u16, reason: Disconnect) {
        let _ = self.ctl.push(frame);
        self.ctl.close(code, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_asks_for_1013_once() {
        let ctl = Arc::new(ConnCtl::new(2, 0, 0));
        let link = Link::new(ctl.clone());
        let frame = Utf8Bytes::from("x");
        assert!(link.push(&frame));
        assert!(link.push(&frame));
        assert_eq!(ctl.close_code(), None);
        assert!(!link.push(&frame), "third frame does not fit");
        assert_eq!(ctl.close_code(), Some(1013));
        assert_eq!(ctl.reason(), Some(Disconnect::SlowConsumer));
        assert!(!ctl.close(1001, Disconnect::Shutdown), "the first close wins");
        assert_eq!(ctl.close_code(), Some(1013));
        let frames = ctl.take_frames();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].as_str(), "x");
    }

    #[test]
    fn an_empty_queue_holds_no_allocation() {
        let ctl = ConnCtl::new(8, 0, 0);
        let link = Link::new(Arc::new(ctl));
        assert!(link.push(&Utf8Bytes::from("welcome")));
        let taken = link.ctl.take_frames();
        assert_eq!(taken.len(), 1);
        assert_eq!(link.ctl.queue().frames.capacity(), 0);
    }

    #[test]
    fn a_shut_queue_takes_nothing() {
        let ctl = Arc::new(ConnCtl::new(8, 0, 0));
        let link = Link::new(ctl.clone());
        assert!(link.push(&Utf8Bytes::from("a")));
        ctl.shut();
        assert!(!link.push(&Utf8Bytes::from("b")));
        assert!(ctl.take_frames().is_empty());
        assert_eq!(ctl.close_code(), None, "a gone connection is not a slow one");
    }

    #[test]
    fn abandoning_keeps_an_earlier_reason() {
        let ctl = ConnCtl::new(8, 0, 0);
        ctl.note_reason(Disconnect::ClientClosed);
        ctl.abandon(Disconnect::Timeout);
        assert!(ctl.is_closing());
        assert_eq!(ctl.reason(), Some(Disconnect::ClientClosed));
        assert_eq!(ctl.close_code(), None);
    }
}
