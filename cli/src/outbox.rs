//! Sends not yet confirmed by the server.
//!
//! One send is on the wire at a time: the server answers every `send` in
//! order, with our own `message` back (same `client_id`) or an `error`, so
//! an error frame always belongs to the send in flight. Unconfirmed sends
//! survive reconnects and are sent again with the same `client_id`, which
//! the server stores only once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use common::ws::ClientFrame;
use rand::Rng;

use crate::frames;

/// A send waiting for its confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub client_id: String,
    pub text: String,
    pub reply_to: Option<u64>,
}

/// Errors that answer other frames (a rename, a vote), never a send.
const NOT_ABOUT_SENDS: &[&str] = &[
    "bad_nick",
    "reserved_nick",
    "already_joined",
    "bad_vote",
    "too_many_votes",
    "no_such_message",
    "message_deleted",
];

/// How long to wait before re-sending when the server asks to wait but
/// does not say how long (`room_moving` from older servers).
const DEFAULT_RETRY: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<Pending>,
    capacity: usize,
    in_flight: bool,
    retry_at: Option<Instant>,
}

impl Outbox {
    pub fn new(capacity: usize) -> Outbox {
        Outbox { queue: VecDeque::new(), capacity, in_flight: false, retry_at: None }
    }

    pub fn has_room(&self) -> bool {
        self.queue.len() < self.capacity
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn push(&mut self, text: String, reply_to: Option<u64>) {
        let client_id = format!("{:032x}", rand::rng().random::<u128>());
        self.queue.push_back(Pending { client_id, text, reply_to });
    }

    /// When a send that was refused for now may go again.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// The frame to write now, if one may go: nothing in flight and no
    /// wait asked for.
    pub fn next_frame(&mut self, now: Instant) -> Option<String> {
        if self.in_flight || self.retry_at.is_some_and(|at| at > now) {
            return None;
        }
        let front = self.queue.front()?;
        self.in_flight = true;
        self.retry_at = None;
        Some(frames::encode(&ClientFrame::Send {
            text: front.text.clone(),
            client_id: Some(front.client_id.clone()),
            drawing: None,
            reply_to: front.reply_to,
        }))
    }

    /// Our message came back (as a broadcast, or in a `welcome` after a
    /// reconnect): it is stored. True when it was one of ours.
    pub fn confirm(&mut self, client_id: &str) -> bool {
        let Some(index) = self.queue.iter().position(|p| p.client_id == client_id) else {
            return false;
        };
        self.queue.remove(index);
        if index == 0 {
            self.in_flight = false;
        }
        true
    }

    /// An `error` frame arrived. A send refused for now (it carries a
    /// wait, or the room is moving) goes again later; one refused for good
    /// is dropped and returned so the person hears about it.
    pub fn refused(
        &mut self,
        code: &str,
        retry_after_ms: Option<u64>,
        now: Instant,
    ) -> Option<Pending> {
        if !self.in_flight || NOT_ABOUT_SENDS.contains(&code) {
            return None;
        }
        self.in_flight = false;
        let wait = match (retry_after_ms, code) {
            (Some(ms), _) => Some(Duration::from_millis(ms)),
            (None, "room_moving") => Some(DEFAULT_RETRY),
            _ => None,
        };
        match wait {
            Some(wait) => {
                self.retry_at = Some(now + wait);
                None
            }
            None => self.queue.pop_front(),
        }
    }

    /// The connection is gone: what was in flight goes again on the next.
    pub fn disconnected(&mut self) {
        self.in_flight = false;
        self.retry_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn sent(outbox: &mut Outbox, now: Instant) -> Option<Value> {
        outbox.next_frame(now).map(|t| serde_json::from_str(&t).unwrap())
    }

    #[test]
    fn one_send_in_flight_until_confirmed() {
        let now = Instant::now();
        let mut outbox = Outbox::new(8);
        outbox.push("one".into(), None);
        outbox.push("two".into(), Some(1));
        let first = sent(&mut outbox, now).unwrap();
        assert_eq!(first["text"], "one");
        assert!(sent(&mut outbox, now).is_none(), "nothing more while one is in flight");
        assert!(outbox.confirm(first["client_id"].as_str().unwrap()));
        let second = sent(&mut outbox, now).unwrap();
        assert_eq!((second["text"].as_str(), second["reply_to"].as_u64()), (Some("two"), Some(1)));
        assert!(!outbox.confirm("someone-else"));
    }

    #[test]
    fn a_lost_connection_resends_with_the_same_client_id() {
        let now = Instant::now();
        let mut outbox = Outbox::new(8);
        outbox.push("hello".into(), None);
        let first = sent(&mut outbox, now).unwrap();
        outbox.disconnected();
        let again = sent(&mut outbox, now).unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn waits_when_asked_and_drops_what_is_refused_for_good() {
        let now = Instant::now();
        let mut outbox = Outbox::new(8);
        outbox.push("a".into(), None);
        outbox.push("b".into(), None);
        let a = sent(&mut outbox, now).unwrap();
        assert_eq!(outbox.refused("rate_limited", Some(300), now), None);
        assert!(sent(&mut outbox, now + Duration::from_millis(299)).is_none());
        assert_eq!(sent(&mut outbox, now + Duration::from_millis(300)).unwrap(), a);
        assert_eq!(outbox.refused("bad_nick", None, now), None, "a rename's error");
        let dropped = outbox.refused("bad_reply_to", None, now).unwrap();
        assert_eq!(dropped.text, "a");
        assert_eq!(sent(&mut outbox, now).unwrap()["text"], "b");
        assert_eq!(outbox.refused("room_moving", None, now), None);
        assert_eq!(outbox.retry_at(), Some(now + DEFAULT_RETRY));
    }

    #[test]
    fn bounded() {
        let mut outbox = Outbox::new(2);
        outbox.push("a".into(), None);
        assert!(outbox.has_room());
        outbox.push("b".into(), None);
        assert!(!outbox.has_room());
    }
}
