//! One connection's handle, [`Conn`]: what its task, the rooms it joined and
//! the heartbeat share of it — a bounded queue of encoded frames, and the
//! flags that tell the connection's task what to do next (close, ping, give
//! up).
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
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::disconnect::Disconnect;

/// `writing_since_ms` when no write is under way.
const NOT_WRITING: u64 = u64::MAX;

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Utf8Bytes>,
    /// The connection has ended: nothing more is queued.
    shut: bool,
}

/// One connection's handle, shared (as `Arc<Conn>`) by its task, the room it
/// joined, and the heartbeat.
#[derive(Debug)]
pub struct Conn {
    /// 0 while open; else the [`Disconnect::index`] of the close the writer
    /// should perform.
    close_asked: AtomicU8,
    /// Why the connection ends, once known ([`Disconnect::index`]).
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

impl Conn {
    /// A connection opened at `now_ms` whose queue holds `capacity` frames,
    /// due for its first ping at `first_ping_ms`.
    pub fn new(capacity: usize, now_ms: u64, first_ping_ms: u64) -> Self {
        Conn {
            close_asked: AtomicU8::new(0),
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

    /// Asks the writer to close for `reason` (its close code and text). The
    /// first request wins; returns whether this one did.
    pub fn close(&self, reason: Disconnect) -> bool {
        let index = reason.index();
        let first = self
            .close_asked
            .compare_exchange(0, index, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if first {
            self.reason.store(index, Ordering::Release);
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

    /// The close asked for, if any.
    pub fn close_asked(&self) -> Option<Disconnect> {
        Disconnect::from_index(self.close_asked.load(Ordering::Acquire))
    }

    /// True once the connection is closing, one way or the other.
    pub fn is_closing(&self) -> bool {
        self.close_asked().is_some() || self.is_abandoned()
    }

    /// Why the connection ends, once known.
    pub fn reason(&self) -> Option<Disconnect> {
        Disconnect::from_index(self.reason.load(Ordering::Acquire))
    }

    /// Records a reason when none was recorded (the peer went away).
    pub fn note_reason(&self, reason: Disconnect) {
        let _ =
            self.reason.compare_exchange(0, reason.index(), Ordering::AcqRel, Ordering::Acquire);
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

    /// Queues a frame without waiting; false when it was not queued. A full
    /// queue means the client cannot keep up: it is closed with 1013 rather
    /// than slowing the room. A gone connection queues nothing.
    pub fn push(&self, frame: &Utf8Bytes) -> bool {
        let mut queue = self.queue();
        if queue.shut {
            return false;
        }
        if queue.frames.len() >= self.capacity {
            drop(queue);
            self.close(Disconnect::SlowConsumer);
            return false;
        }
        queue.frames.push_back(frame.clone());
        drop(queue);
        self.task.wake();
        true
    }

    /// Queues `frame` (best effort) and asks the connection to close after it.
    pub fn push_and_close(&self, frame: &Utf8Bytes, reason: Disconnect) {
        let _ = self.push(frame);
        self.close(reason);
    }

    /// Ends the queue when the connection is gone: what is queued is freed,
    /// and rooms that still hold the handle queue nothing more.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_asks_for_1013_once() {
        let ctl = Conn::new(2, 0, 0);
        let frame = Utf8Bytes::from("x");
        assert!(ctl.push(&frame));
        assert!(ctl.push(&frame));
        assert_eq!(ctl.close_asked(), None);
        assert!(!ctl.push(&frame), "third frame does not fit");
        assert_eq!(ctl.close_asked().map(Disconnect::close_code), Some(1013));
        assert_eq!(ctl.reason(), Some(Disconnect::SlowConsumer));
        assert!(!ctl.close(Disconnect::Shutdown), "the first close wins");
        assert_eq!(ctl.close_asked().map(Disconnect::close_code), Some(1013));
        let frames = ctl.take_frames();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].as_str(), "x");
    }

    #[test]
    fn an_empty_queue_holds_no_allocation() {
        let ctl = Conn::new(8, 0, 0);
        assert!(ctl.push(&Utf8Bytes::from("welcome")));
        let taken = ctl.take_frames();
        assert_eq!(taken.len(), 1);
        assert_eq!(ctl.queue().frames.capacity(), 0);
    }

    #[test]
    fn a_shut_queue_takes_nothing() {
        let ctl = Conn::new(8, 0, 0);
        assert!(ctl.push(&Utf8Bytes::from("a")));
        ctl.shut();
        assert!(!ctl.push(&Utf8Bytes::from("b")));
        assert!(ctl.take_frames().is_empty());
        assert_eq!(ctl.close_asked(), None, "a gone connection is not a slow one");
    }

    #[test]
    fn abandoning_keeps_an_earlier_reason() {
        let ctl = Conn::new(8, 0, 0);
        ctl.note_reason(Disconnect::ClientClosed);
        ctl.abandon(Disconnect::Timeout);
        assert!(ctl.is_closing());
        assert_eq!(ctl.reason(), Some(Disconnect::ClientClosed));
        assert_eq!(ctl.close_asked(), None);
    }
}
