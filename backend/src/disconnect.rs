//! Why a websocket connection ends: one enum carrying, for each reason, the
//! close code and close text the client gets and the metric label operators
//! see (as centrifuge's `disconnect.go` does), so the three never drift.

use common::ws::close_code;

/// Why a websocket connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Disconnect {
    /// The client closed or went away; no close frame of ours follows.
    ClientClosed = 1,
    /// The send queue filled up, or a write stayed stuck.
    SlowConsumer,
    /// The client kept sending after being rate limited.
    Flooding,
    FrameTooBig,
    BinaryFrame,
    InvalidUtf8,
    /// A websocket protocol violation: reserved opcode or bits, an unmasked
    /// frame, a stray continuation, a bad close payload.
    ProtocolError,
    /// The peer went silent; dropped without a close frame.
    Timeout,
    JoinTimeout,
    /// The room is not (or no longer) on this backend.
    RoomNotFound,
    /// The join was refused (the room is full).
    JoinRefused,
    /// The room was deleted or expired.
    RoomClosed,
    /// The backend is shutting down.
    Shutdown,
    /// A transport error; no close frame of ours follows.
    Error,
    /// A newer connection reclaimed this member's token.
    Replaced,
    /// The room moved to another backend.
    Moved,
    /// A room owner removed the member (close 4403).
    Kicked,
    /// Kept out: banned (by an owner or fleet-wide) or the room is locked
    /// (close 4403).
    Barred,
}

impl Disconnect {
    /// Every reason, in discriminant order (for [`Self::from_index`]).
    const ALL: [Disconnect; 18] = [
        Disconnect::ClientClosed,
        Disconnect::SlowConsumer,
        Disconnect::Flooding,
        Disconnect::FrameTooBig,
        Disconnect::BinaryFrame,
        Disconnect::InvalidUtf8,
        Disconnect::ProtocolError,
        Disconnect::Timeout,
        Disconnect::JoinTimeout,
        Disconnect::RoomNotFound,
        Disconnect::JoinRefused,
        Disconnect::RoomClosed,
        Disconnect::Shutdown,
        Disconnect::Error,
        Disconnect::Replaced,
        Disconnect::Moved,
        Disconnect::Kicked,
        Disconnect::Barred,
    ];

    /// The reason as one byte (never 0), for storing in an atomic.
    pub fn index(self) -> u8 {
        self as u8
    }

    /// The reason stored as [`Self::index`]; `None` for 0 (no reason yet).
    pub fn from_index(index: u8) -> Option<Self> {
        Self::ALL.get(usize::from(index).checked_sub(1)?).copied()
    }

    /// The `reason` label of `instantchat_backend_disconnects_total`.
    pub fn label(self) -> &'static str {
        match self {
            Disconnect::ClientClosed => "client_closed",
            Disconnect::SlowConsumer => "slow_consumer",
            Disconnect::Flooding => "flooding",
            Disconnect::FrameTooBig => "frame_too_big",
            Disconnect::BinaryFrame => "binary_frame",
            Disconnect::InvalidUtf8 => "invalid_utf8",
            Disconnect::ProtocolError => "protocol_error",
            Disconnect::Timeout => "timeout",
            Disconnect::JoinTimeout => "join_timeout",
            Disconnect::RoomNotFound | Disconnect::JoinRefused => "join_refused",
            Disconnect::RoomClosed => "room_closed",
            Disconnect::Shutdown => "shutdown",
            Disconnect::Error => "error",
            Disconnect::Replaced => "replaced",
            Disconnect::Moved => "moved",
            Disconnect::Kicked => "kicked",
            Disconnect::Barred => "barred",
        }
    }

    /// The close code the writer sends. The reasons that end a connection
    /// without a close frame of ours (the peer is gone) say 1000.
    pub fn close_code(self) -> u16 {
        match self {
            Disconnect::SlowConsumer | Disconnect::JoinRefused => close_code::TRY_AGAIN_LATER,
            Disconnect::Flooding | Disconnect::JoinTimeout => close_code::POLICY_VIOLATION,
            Disconnect::FrameTooBig => close_code::MESSAGE_TOO_BIG,
            Disconnect::BinaryFrame => close_code::UNSUPPORTED_DATA,
            Disconnect::InvalidUtf8 => close_code::INVALID_PAYLOAD,
            Disconnect::ProtocolError => close_code::PROTOCOL_ERROR,
            Disconnect::RoomNotFound => close_code::ROOM_NOT_FOUND,
            Disconnect::Kicked | Disconnect::Barred => close_code::JOIN_REFUSED,
            Disconnect::Shutdown => close_code::GOING_AWAY,
            Disconnect::Replaced => close_code::REPLACED,
            Disconnect::Moved => close_code::SERVICE_RESTART,
            Disconnect::ClientClosed
            | Disconnect::Timeout
            | Disconnect::RoomClosed
            | Disconnect::Error => close_code::NORMAL,
        }
    }

    /// The close frame's text: a hint for whoever reads a client's log.
    pub fn close_text(self) -> &'static str {
        match self {
            Disconnect::SlowConsumer => "too slow to keep up",
            Disconnect::Flooding => "too many messages",
            Disconnect::FrameTooBig => "frame too big",
            Disconnect::BinaryFrame => "binary frames are not accepted",
            Disconnect::ProtocolError => "protocol error",
            Disconnect::Shutdown => "server shutting down",
            Disconnect::Replaced => "replaced by a newer connection",
            Disconnect::Moved => "room moved",
            Disconnect::Kicked => "removed by a room owner",
            Disconnect::Barred => "not admitted",
            _ => "",
        }
    }

    /// Whether the writer still sends what is queued before the close frame:
    /// not to a client too slow to take it.
    pub fn flushes_queue(self) -> bool {
        self != Disconnect::SlowConsumer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_through_its_index() {
        assert_eq!(Disconnect::from_index(0), None);
        for (i, reason) in Disconnect::ALL.iter().enumerate() {
            assert_eq!(usize::from(reason.index()), i + 1, "{reason:?} out of order in ALL");
            assert_eq!(Disconnect::from_index(reason.index()), Some(*reason));
        }
        assert_eq!(Disconnect::from_index(Disconnect::ALL.len() as u8 + 1), None);
    }

    #[test]
    fn close_codes_and_texts() {
        assert_eq!(Disconnect::SlowConsumer.close_code(), 1013);
        assert_eq!(Disconnect::ProtocolError.close_code(), 1002);
        assert_eq!(Disconnect::RoomNotFound.close_code(), 4404);
        assert_eq!(Disconnect::Shutdown.close_code(), 1001);
        assert_eq!(Disconnect::RoomClosed.close_code(), 1000);
        assert_eq!(Disconnect::Flooding.close_text(), "too many messages");
        assert_eq!(Disconnect::RoomNotFound.label(), Disconnect::JoinRefused.label());
    }
}
