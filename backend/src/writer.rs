//! A connection's writer half: takes the queue the room fills
//! ([`crate::conn`]) and writes it to the socket, one flush per batch
//! ([`crate::batch`]), sends pings, and performs every close. Whoever decides
//! to close (the reader, a room, the heartbeat, shutdown) asks through
//! [`Conn::close`]; the writer sends what is queued (except to a slow
//! consumer), then the close frame with the reason's code and text.

use std::future::poll_fn;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use common::ws::{CloseReason, ServerFrame};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::Shared;
use crate::batch::Batch;
use crate::conn::Conn;
use crate::disconnect::Disconnect;
use crate::room::encode;
use crate::session::Ws;

/// How long a close may take before the connection is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a close to a slow consumer may take: it is not reading.
const SLOW_CLOSE_TIMEOUT: Duration = Duration::from_millis(200);

/// Writes queued frames and pings, and closes. Returns true when it sent a
/// close frame (the peer may answer it), false when the connection broke or
/// was abandoned.
pub async fn write_loop(shared: &Shared, sink: &mut SplitSink<Ws, Message>, conn: &Conn) -> bool {
    loop {
        conn.writer_work().await;
        if conn.is_abandoned() {
            return false;
        }
        if conn.close_asked().is_some() {
            break;
        }
        let Some(mut batch) = next_batch(shared, conn) else { continue };
        conn.begin_write(shared.clock_ms());
        let written = poll_fn(|cx| poll_write(cx, conn, sink, &mut batch)).await;
        conn.end_write();
        if written.is_err() {
            conn.note_reason(Disconnect::ClientClosed);
            return false;
        }
    }
    // Boxed: the close path is cold, and its state would otherwise be part
    // of every idle connection's task.
    Box::pin(close(shared, sink, conn)).await
}

/// A ping if one is due, then every queued frame; `None` when there is
/// nothing to write.
fn next_batch(shared: &Shared, conn: &Conn) -> Option<Batch> {
    let ping = conn.take_ping();
    let frames = conn.take_frames();
    if !ping && frames.is_empty() {
        return None;
    }
    Some(Batch::new(ping, frames.into_iter(), shared.fragment_bytes))
}

/// Writes `batch` and flushes once. Gives up (`Ok`, the rest unsent) as soon
/// as the connection is closing, so a write stuck on a full TCP window
/// never delays a close.
///
/// Written against the `Sink` methods rather than `feed`/`flush` futures:
/// this keeps the write's state to the iterator, in every idle task.
fn poll_write(
    cx: &mut Context<'_>,
    conn: &Conn,
    sink: &mut SplitSink<Ws, Message>,
    batch: &mut Batch,
) -> Poll<Result<(), WsError>> {
    conn.register_task(cx);
    if conn.is_closing() {
        return Poll::Ready(Ok(()));
    }
    loop {
        ready!(sink.poll_ready_unpin(cx))?;
        match batch.next() {
            Some(message) => sink.start_send_unpin(message)?,
            None => return sink.poll_flush_unpin(cx),
        }
    }
}

/// Sends what is queued (unless the client is too slow for it), a `closing`
/// frame when shutting down, and the close frame.
async fn close(shared: &Shared, sink: &mut SplitSink<Ws, Message>, conn: &Conn) -> bool {
    let reason = conn.close_asked().unwrap_or(Disconnect::ClientClosed);
    let limit = if reason.flushes_queue() { CLOSE_TIMEOUT } else { SLOW_CLOSE_TIMEOUT };
    let sent = tokio::time::timeout(limit, async {
        if reason.flushes_queue() {
            for message in Batch::new(false, conn.take_frames().into_iter(), shared.fragment_bytes)
            {
                sink.feed(message).await?;
            }
            if reason == Disconnect::Shutdown {
                let frame = encode(&ServerFrame::closing(CloseReason::Shutdown));
                sink.feed(Message::Text(frame)).await?;
            }
        }
        let frame = CloseFrame {
            code: CloseCode::from(reason.close_code()),
            reason: reason.close_text().into(),
        };
        sink.send(Message::Close(Some(frame))).await
    })
    .await;
    matches!(sent, Ok(Ok(())))
}
