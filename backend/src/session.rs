//! One websocket connection, from the upgrade to the close.
//!
//! A connection is one task running two halves side by side: the
//! [`crate::reader`] parses client frames and acts on the room; the
//! [`crate::writer`] writes what the room queued and performs every close.
//! Both reach the connection's state through one handle, [`Conn`].
//!
//! The task holds no timers: the heartbeat ([`crate::connections`]) decides
//! pings and timeouts for every connection, which keeps an idle connection's
//! task small. Each task runs in a `ws` tracing span (`conn`, `room`, and
//! `member` once joined) so an operator can follow one connection; a span
//! costs nothing per frame, and nothing at all when its level is off.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use common::ws::ServerFrame;
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;

use crate::Shared;
use crate::conn::Conn;
use crate::disconnect::Disconnect;
use crate::reader::Reader;
use crate::room::{Room, encode};
use crate::writer::write_loop;

/// The websocket of one connection, after the upgrade.
pub type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// How long to wait for the peer's answering close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Serves one upgraded connection to `room` until it closes; `Err(key)` when
/// this backend holds no room of that key (the client is told, and closed).
///
/// Not an `async fn`, whose arguments stay in the future for its whole life
/// next to the locals moved out of them (the unsplit websocket alone is 328
/// bytes): the async block below uses what it captures in place.
pub fn serve(
    shared: Arc<Shared>,
    room: Result<Arc<Room>, String>,
    ws: Ws,
    client_ip: IpAddr,
) -> impl Future<Output = ()> + Send {
    let (mut sink, mut stream) = ws.split();
    // The first ping at a random point of the first interval: after a join
    // storm, every connection's pings would otherwise fall in one heartbeat.
    let now = shared.clock_ms();
    let first_ping = now + rand::rng().random_range(0..shared.config.ping_interval_ms.max(1));
    let conn = Arc::new(Conn::new(shared.config.send_queue_frames, now, first_ping));
    let id = shared.connections.next_id();
    let room_key = match &room {
        Ok(room) => room.key(),
        Err(key) => key.as_str(),
    };
    let span =
        tracing::debug_span!("ws", conn = id, room = room_key, member = tracing::field::Empty);
    async move {
        let registered = shared.connections.register(id, conn.clone());
        if shared.shutdown.is_cancelled() {
            // Shutdown began after the upgrade was accepted: `close_all` may
            // have missed this connection.
            conn.close(Disconnect::Shutdown);
        }
        let Ok(room) = room else {
            let frame = encode(&ServerFrame::error("room_not_found", "No room of that name here."));
            conn.push_and_close(&frame, Disconnect::RoomNotFound);
            let _ = write_loop(&shared, &mut sink, &conn).await;
            finish(&shared, &conn, None);
            return;
        };

        let mut reader = Reader::new(shared.clone(), room, conn.clone(), client_ip);
        let writer_closed = {
            let read = reader.run(&mut stream);
            let write = write_loop(&shared, &mut sink, &conn);
            tokio::pin!(read, write);
            tokio::select! {
                () = &mut read => false,
                closed = &mut write => closed,
            }
        };
        let member = reader.member_id();
        // Leave the room before waiting on the peer's close answer.
        drop(reader);
        drop(registered);
        if writer_closed && conn.reason() != Some(Disconnect::SlowConsumer) {
            Box::pin(linger(&mut stream)).await;
        }
        finish(&shared, &conn, member);
    }
    .instrument(span)
}

/// Reads until the peer answers our close frame, for a short while.
async fn linger(stream: &mut SplitStream<Ws>) {
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(msg)) = stream.next().await {
            if msg.is_close() {
                break;
            }
        }
    })
    .await;
}

/// Counts the disconnect and logs it (the span names the room).
fn finish(shared: &Shared, conn: &Conn, member: Option<u64>) {
    let reason = conn.reason().unwrap_or(Disconnect::ClientClosed);
    shared.metrics.disconnect(reason);
    tracing::debug!(reason = reason.label(), member, "connection closed");
}
