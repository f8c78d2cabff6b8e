//! What a connection's writer sends when it wakes: a ping if one is due,
//! then every queued frame, the long ones cut into websocket fragments.
//!
//! Why fragments: tungstenite copies a whole frame into its write buffer and
//! keeps that buffer's capacity for the life of the connection. A `welcome`
//! carries the room's history and member list — tens of KiB in a big room,
//! megabytes when someone filled the history with long messages — and every
//! member who joined would hold that much for as long as it stays. Cut into
//! fragments of half the write buffer, a member's write buffer never grows
//! past about one and a half times `ws_write_buffer_bytes`. Browsers (and
//! every websocket client) put fragments back together into one message.

use std::collections::vec_deque;

use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

/// The messages of one write: see the module doc.
pub struct Batch {
    ping: bool,
    frames: vec_deque::IntoIter<Utf8Bytes>,
    /// A long frame being sent in fragments, and how much of it is sent.
    long: Option<(Bytes, usize)>,
    fragment_bytes: usize,
}

impl Batch {
    /// `frames` (after a ping when `ping`), fragmented above `fragment_bytes`.
    pub fn new(ping: bool, frames: vec_deque::IntoIter<Utf8Bytes>, fragment_bytes: usize) -> Self {
        Batch { ping, frames, long: None, fragment_bytes: fragment_bytes.max(1) }
    }

    fn next_fragment(&mut self) -> Option<Message> {
        let (data, sent) = self.long.as_mut()?;
        let start = *sent;
        let end = (start + self.fragment_bytes).min(data.len());
        let opcode = if start == 0 { Data::Text } else { Data::Continue };
        let last = end == data.len();
        let fragment = Frame::message(data.slice(start..end), OpCode::Data(opcode), last);
        *sent = end;
        if last {
            self.long = None;
        }
        Some(Message::Frame(fragment))
    }
}

impl Iterator for Batch {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        if std::mem::take(&mut self.ping) {
            return Some(Message::Ping(Bytes::new()));
        }
        if self.long.is_some() {
            return self.next_fragment();
        }
        let frame = self.frames.next()?;
        if frame.len() <= self.fragment_bytes {
            return Some(Message::Text(frame));
        }
        self.long = Some((Bytes::from(frame), 0));
        self.next_fragment()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    fn batch(ping: bool, frames: &[&str], fragment_bytes: usize) -> Vec<Message> {
        let frames: VecDeque<Utf8Bytes> = frames.iter().map(|f| Utf8Bytes::from(*f)).collect();
        Batch::new(ping, frames.into_iter(), fragment_bytes).collect()
    }

    fn describe(message: &Message) -> String {
        match message {
            Message::Text(t) => format!("text {t}"),
            Message::Ping(_) => "ping".into(),
            Message::Frame(f) => format!(
                "{:?} fin={} {}",
                f.header().opcode,
                f.header().is_final,
                String::from_utf8_lossy(f.payload())
            ),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn short_frames_go_whole_after_the_ping() {
        let sent: Vec<String> = batch(true, &["a", "bcd"], 3).iter().map(describe).collect();
        assert_eq!(sent, ["ping", "text a", "text bcd"]);
    }

    #[test]
    fn long_frames_go_in_fragments_that_add_up_to_the_frame() {
        let sent: Vec<String> = batch(false, &["abcdefg", "h"], 3).iter().map(describe).collect();
        assert_eq!(
            sent,
            [
                "Data(Text) fin=false abc",
                "Data(Continue) fin=false def",
                "Data(Continue) fin=true g",
                "text h",
            ]
        );
    }

    #[test]
    fn a_frame_of_exactly_two_fragments_ends_on_the_second() {
        let sent: Vec<String> = batch(false, &["abcdef"], 3).iter().map(describe).collect();
        assert_eq!(sent, ["Data(Text) fin=false abc", "Data(Continue) fin=true def"]);
    }
}
