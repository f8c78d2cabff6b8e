//! Where each request on a connection ends, and the faults of its head that
//! hyper would answer with an empty body.
//!
//! hyper answers a request line or header block that is too long, and a bad
//! `Content-Length` or `Transfer-Encoding`, on its own — 414, 431 or 400
//! with no body — and has no hook to change that answer. [`Framing`] sees
//! the bytes hyper reads just before hyper does ([`GuardedStream`]), and
//! follows each request to its end (by `Content-Length` or chunk sizes,
//! counting, never copying) so that it knows where the next head starts. It
//! finds those faults first — its limits are below hyper's — and the stream
//! answers them with the contract's JSON body instead.
//!
//! Whatever it does not follow (an upgrade or `CONNECT`, a chunk line it
//! cannot read, a head hyper will refuse for another reason) switches it
//! off for the rest of the connection: hyper's own rules then apply alone,
//! as before. So a websocket, once upgraded, costs one comparison per read.
//!
//! [`GuardedStream`]: crate::stream::GuardedStream

use crate::fault::Fault;

/// The longest request line served; longer gets 414 (hyper's own bound,
/// 64 KiB of URI, is never reached).
pub const MAX_REQUEST_LINE_BYTES: usize = 8 * 1024;
/// The longest head (request line and headers) served; longer gets 431.
/// Below hyper's read buffer (file-srv: 64 KiB), so hyper never answers first.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Header lines a head may have: hyper's own bound, answered 431 here first.
pub const MAX_HEADERS: usize = 100;
/// A chunk-size line longer than this (its extensions) is left to hyper.
const MAX_CHUNK_LINE_BYTES: usize = 4 * 1024;

/// One connection's position in its requests.
#[derive(Debug)]
pub struct Framing {
    state: State,
    /// A head went to hyper and hyper has written nothing since: a refusal
    /// now could overtake that answer (a pipelining client), so hyper
    /// handles the fault itself.
    owes_answer: bool,
}

#[derive(Debug)]
enum State {
    Head(Head),
    Body { remaining: u64 },
    ChunkLine { size: u64, digits: u8, past_size: bool, len: u16 },
    ChunkData { remaining: u64 },
    ChunkEnd { saw_cr: bool },
    Trailers { line_len: u32 },
    Off,
}

impl Default for Framing {
    fn default() -> Self {
        Framing { state: State::Head(Head::default()), owes_answer: false }
    }
}

impl Framing {
    /// Follows `bytes`, the next ones hyper reads. `Err((at, fault))`: the
    /// request whose head starts at `bytes[at]` (at 0 when it started in an
    /// earlier read) must be refused, and hyper must see none of `bytes[at..]`.
    pub fn scan(&mut self, bytes: &[u8]) -> Result<(), (usize, Fault)> {
        let mut at = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            let (used, next) = match &mut self.state {
                State::Off => return Ok(()),
                State::Head(head) => {
                    let starts_here = head.len == 0;
                    let (used, outcome) = head.feed(rest);
                    match outcome {
                        HeadOutcome::More => (used, None),
                        HeadOutcome::Complete(next) => {
                            self.owes_answer = true;
                            (used, Some(next))
                        }
                        HeadOutcome::Fault(fault) => {
                            self.state = State::Off;
                            if self.owes_answer {
                                return Ok(());
                            }
                            return Err((if starts_here { at } else { 0 }, fault));
                        }
                    }
                }
                State::Body { remaining } => {
                    let used = skip(remaining, rest.len());
                    (used, (*remaining == 0).then(State::head))
                }
                State::ChunkData { remaining } => {
                    let used = skip(remaining, rest.len());
                    (used, (*remaining == 0).then_some(State::ChunkEnd { saw_cr: false }))
                }
                State::ChunkLine { size, digits, past_size, len } => {
                    let byte = rest[0];
                    *len += 1;
                    let next = if byte == b'\n' {
                        Some(match (*digits, *size) {
                            (0, _) => State::Off,
                            (_, 0) => State::Trailers { line_len: 0 },
                            (_, size) => State::ChunkData { remaining: size },
                        })
                    } else if usize::from(*len) > MAX_CHUNK_LINE_BYTES {
                        Some(State::Off)
                    } else if let (false, Some(digit)) = (*past_size, hex_value(byte)) {
                        *digits += 1;
                        *size = (*size << 4) | u64::from(digit);
                        (*digits > 15).then_some(State::Off)
                    } else {
                        // Extensions and whitespace after the size: skipped.
                        *past_size = true;
                        None
                    };
                    (1, next)
                }
                State::ChunkEnd { saw_cr } => (
                    1,
                    match rest[0] {
                        b'\r' if !*saw_cr => {
                            *saw_cr = true;
                            None
                        }
                        b'\n' => Some(State::chunk_line()),
                        _ => Some(State::Off),
                    },
                ),
                State::Trailers { line_len } => (
                    1,
                    match rest[0] {
                        b'\n' if *line_len == 0 => Some(State::head()),
                        b'\n' => {
                            *line_len = 0;
                            None
                        }
                        b'\r' => None,
                        _ => {
                            *line_len += 1;
                            (*line_len as usize > MAX_HEAD_BYTES).then_some(State::Off)
                        }
                    },
                ),
            };
            at += used;
            if let Some(next) = next {
                self.state = next;
            }
        }
        Ok(())
    }

    /// hyper wrote to the connection: it has answered what it was given.
    pub fn on_write(&mut self) {
        self.owes_answer = false;
    }

    /// Off for good (an upgrade, a `CONNECT`, something it cannot follow):
    /// the stream may drop it.
    pub fn is_off(&self) -> bool {
        matches!(self.state, State::Off)
    }
}

impl State {
    fn head() -> State {
        State::Head(Head::default())
    }

    fn chunk_line() -> State {
        State::ChunkLine { size: 0, digits: 0, past_size: false, len: 0 }
    }
}

/// Takes up to `available` bytes off `remaining`; how many it took.
fn skip(remaining: &mut u64, available: usize) -> usize {
    let used = usize::try_from(*remaining).unwrap_or(usize::MAX).min(available);
    *remaining -= used as u64;
    used
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

enum HeadOutcome {
    More,
    Complete(State),
    Fault(Fault),
}

/// The longest header name that matters (`transfer-encoding`).
const NAME_BYTES: usize = 17;

/// A head read so far: counts and the few headers that frame a request.
#[derive(Debug, Default)]
struct Head {
    /// Bytes of the head so far.
    len: u32,
    /// Bytes of the line so far, CR not counted.
    line_len: u32,
    request_line_done: bool,
    headers: u8,
    /// The request line's first bytes (`CONNECT `) and last ones (`HTTP/1.1`).
    start: [u8; 8],
    tail: [u8; 8],
    name: [u8; NAME_BYTES],
    /// Bytes of the header name so far; over [`NAME_BYTES`]: one that does
    /// not matter. `None` once past the colon.
    name_len: Option<u8>,
    value: Value,
    content_length: Option<u64>,
    chunked: bool,
    upgrade: bool,
}

/// The value of the header line being read, as far as it matters.
#[derive(Debug, Default, Clone, Copy)]
enum Value {
    #[default]
    Other,
    /// Digits, optionally surrounded by whitespace.
    Length {
        value: u64,
        digits: u8,
        ended: bool,
        bad: bool,
    },
    /// `chunked`, optionally surrounded by whitespace.
    Encoding {
        matched: u8,
        ended: bool,
        bad: bool,
    },
    Upgrade,
}

impl Head {
    /// Reads head bytes off `bytes`: how many it used, and whether the head
    /// is complete (and what follows it) or at fault.
    fn feed(&mut self, bytes: &[u8]) -> (usize, HeadOutcome) {
        for (i, &byte) in bytes.iter().enumerate() {
            self.len += 1;
            if self.len as usize > MAX_HEAD_BYTES {
                return (i, HeadOutcome::Fault(Fault::HeadTooLarge));
            }
            let outcome = match byte {
                b'\r' => continue,
                b'\n' => self.end_line(),
                _ => {
                    self.line_len += 1;
                    self.byte(byte)
                }
            };
            if let Some(outcome) = outcome {
                return (i + 1, outcome);
            }
        }
        (bytes.len(), HeadOutcome::More)
    }

    fn byte(&mut self, byte: u8) -> Option<HeadOutcome> {
        if !self.request_line_done {
            if self.line_len as usize > MAX_REQUEST_LINE_BYTES {
                return Some(HeadOutcome::Fault(Fault::UriTooLong));
            }
            if let Some(slot) = self.start.get_mut(self.line_len as usize - 1) {
                *slot = byte;
            }
            self.tail.rotate_left(1);
            self.tail[7] = byte;
            return None;
        }
        match self.name_len {
            Some(_) if byte == b':' => {
                self.value = self.header_kind();
                self.name_len = None;
            }
            Some(n) => {
                if let Some(slot) = self.name.get_mut(usize::from(n)) {
                    *slot = byte.to_ascii_lowercase();
                }
                self.name_len = Some(n.saturating_add(1));
            }
            None => self.value.byte(byte),
        }
        None
    }

    fn header_kind(&self) -> Value {
        let name =
            self.name_len.map_or(&[][..], |n| self.name.get(..usize::from(n)).unwrap_or(&[]));
        match name {
            b"content-length" => Value::Length { value: 0, digits: 0, ended: false, bad: false },
            b"transfer-encoding" => Value::Encoding { matched: 0, ended: false, bad: false },
            b"upgrade" => Value::Upgrade,
            _ => Value::Other,
        }
    }

    fn end_line(&mut self) -> Option<HeadOutcome> {
        let empty = self.line_len == 0;
        self.line_len = 0;
        if !self.request_line_done {
            // Empty lines before a request line are skipped, as hyper does.
            self.request_line_done = !empty;
            self.name_len = Some(0);
            return None;
        }
        if empty {
            return Some(self.complete());
        }
        self.headers += 1;
        if usize::from(self.headers) > MAX_HEADERS {
            return Some(HeadOutcome::Fault(Fault::HeadTooLarge));
        }
        if self.name_len.is_some() {
            // A line without a colon: hyper refuses it, its own way.
            return Some(HeadOutcome::Complete(State::Off));
        }
        let value = std::mem::take(&mut self.value);
        self.name_len = Some(0);
        match value {
            Value::Other => None,
            Value::Upgrade => {
                self.upgrade = true;
                None
            }
            Value::Length { value, digits, bad, .. } => {
                let agrees = self.content_length.is_none_or(|before| before == value);
                self.content_length = Some(value);
                (bad || digits == 0 || !agrees)
                    .then_some(HeadOutcome::Fault(Fault::BadContentLength))
            }
            Value::Encoding { matched, bad, .. } => {
                let once = !self.chunked;
                self.chunked = true;
                (bad || usize::from(matched) != CHUNKED.len() || !once)
                    .then_some(HeadOutcome::Fault(Fault::BadTransferEncoding))
            }
        }
    }

    /// The head is over: what follows it.
    fn complete(&self) -> HeadOutcome {
        let http_11 = &self.tail == b"HTTP/1.1";
        if self.chunked && self.content_length.is_some() {
            return HeadOutcome::Fault(Fault::LengthAndEncoding);
        }
        if self.chunked && !http_11 {
            return HeadOutcome::Fault(Fault::BadTransferEncoding);
        }
        // After an upgrade the bytes are no longer HTTP (hyper upgrades only HTTP/1.1).
        if (self.upgrade && http_11) || &self.start == b"CONNECT " {
            return HeadOutcome::Complete(State::Off);
        }
        HeadOutcome::Complete(match self.content_length {
            _ if self.chunked => State::chunk_line(),
            Some(remaining) if remaining > 0 => State::Body { remaining },
            _ => State::head(),
        })
    }
}

const CHUNKED: &[u8] = b"chunked";

impl Value {
    fn byte(&mut self, byte: u8) {
        let blank = byte == b' ' || byte == b'\t';
        match self {
            Value::Length { value, digits, ended, bad } => {
                if blank {
                    *ended |= *digits > 0;
                } else if let (false, Some(digit)) = (*ended, (byte as char).to_digit(10)) {
                    *digits = digits.saturating_add(1);
                    match value.checked_mul(10).and_then(|v| v.checked_add(u64::from(digit))) {
                        Some(next) => *value = next,
                        None => *bad = true,
                    }
                } else {
                    *bad = true;
                }
            }
            Value::Encoding { matched, ended, bad } => {
                if blank {
                    *ended |= *matched > 0;
                } else if !*ended
                    && CHUNKED.get(usize::from(*matched)) == Some(&byte.to_ascii_lowercase())
                {
                    *matched += 1;
                } else {
                    *bad = true;
                }
            }
            Value::Other | Value::Upgrade => {}
        }
    }
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
