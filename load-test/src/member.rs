//! One simulated user: opens the room like a browser (aux-srv, then the
//! websocket), joins, sends stamped messages on its schedule, and checks
//! every frame it receives — latency from the stamp, gaps and repeats in
//! `seq`, errors and close codes.

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use http::Method;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use crate::net::{self, Http, Ws};
use crate::stats::{Collector, now_ms, now_nanos};

/// When a member sends.
#[derive(Debug, Clone, Copy)]
pub enum SendPlan {
    Quiet,
    /// Messages per second, evenly spaced, starting at a random phase.
    Rate(f64),
    /// Once every `min..max` (uniform), starting at a random phase.
    Every(Duration, Duration),
}

/// Who a member is and where it goes.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// Global member number (unique over all workers).
    pub index: usize,
    pub room: usize,
    pub room_name: String,
    pub ws_url: String,
    pub addr: SocketAddr,
    pub source: Option<Ipv4Addr>,
    pub send: SendPlan,
}

/// What every member of a worker shares.
#[derive(Clone)]
pub struct MemberCtx {
    pub stats: Collector,
    pub http: Http,
    pub aux: String,
    /// Ask aux-srv before connecting, as a browser does.
    pub lookup: bool,
    pub filler: String,
}

/// A member that has joined.
pub struct Joined {
    sink: SplitSink<Ws, Message>,
    stream: SplitStream<Ws>,
    my_id: u64,
    next_seq: u64,
}

/// The window a member sends in and how long it listens after.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
    pub drain_until: Instant,
}

/// Where a member's room stood when the drain ended.
#[derive(Debug, Clone, Copy)]
pub struct Tail {
    pub room: usize,
    /// Highest seq received in order (0: none).
    pub last_seq: u64,
}

#[derive(Deserialize)]
struct From {
    id: u64,
}

/// The fields of a server frame the load test reads; the rest is skipped.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    from: Option<From>,
    #[serde(default)]
    you: Option<From>,
    #[serde(default)]
    last_seq: Option<u64>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
}

/// The stamp a message's text starts with: `t=<unix nanos> `.
fn stamp_of(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("t=")?;
    let end = rest.find(' ').unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Opens the room and joins it; records the `join` latency (TCP connect to
/// `welcome`). Failures are counted under `join_failed.<why>`.
pub async fn join(spec: &MemberSpec, ctx: &MemberCtx) -> anyhow::Result<Joined> {
    let result = join_inner(spec, ctx).await;
    if let Err(e) = &result {
        let why = format!("{e:#}");
        let key = if why.contains("HTTP") {
            "join_failed.http"
        } else if why.contains("handshake") {
            "join_failed.handshake"
        } else if why.contains("connect") || why.contains("bind") {
            "join_failed.connect"
        } else {
            "join_failed.other"
        };
        ctx.stats.add(key, 1);
    }
    result
}

async fn join_inner(spec: &MemberSpec, ctx: &MemberCtx) -> anyhow::Result<Joined> {
    let mut ws_url = std::borrow::Cow::Borrowed(spec.ws_url.as_str());
    let mut addr = spec.addr;
    if ctx.lookup {
        match ctx.http.room(&ctx.aux, Method::PUT, &spec.room_name).await? {
            Ok(answer) => {
                if answer.ws_url != spec.ws_url {
                    let (host, port) = net::ws_target(&answer.ws_url)?;
                    addr = net::resolve(&host, port).await?;
                    ws_url = Cow::Owned(answer.ws_url);
                }
            }
            Err(e) => bail!("room lookup: {e}"),
        }
    }
    let started = std::time::Instant::now();
    let ws = net::connect_ws(&ws_url, addr, spec.source).await?;
    let (mut sink, mut stream) = ws.split();
    let nick = format!("lt{}", spec.index);
    let join = serde_json::json!({"type": "join", "nick": nick}).to_string();
    sink.send(Message::text(join)).await.context("send join")?;
    let welcome = tokio::time::timeout(net::REQUEST_TIMEOUT, async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: Frame = serde_json::from_str(&text).context("bad frame")?;
                    match frame.kind.as_ref() {
                        "welcome" => return Ok((frame.you, frame.last_seq)),
                        "error" => {
                            bail!("join refused: {}", frame.code.as_deref().unwrap_or("?"))
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(close))) => {
                    bail!("closed before welcome: {}", close.map_or(1005, |c| u16::from(c.code)))
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("read before welcome: {e}"),
                None => bail!("connection ended before welcome"),
            }
        }
    })
    .await
    .map_err(|_| anyhow!("no welcome in time"))??;
    let (Some(you), Some(last_seq)) = welcome else {
        bail!("welcome without `you` or `last_seq`");
    };
    let micros = started.elapsed().as_micros() as u64;
    let at = now_ms();
    ctx.stats.record("join", micros, at);
    ctx.stats.mark("join", at);
    Ok(Joined { sink, stream, my_id: you.id, next_seq: last_seq + 1 })
}

/// Per-connection tallies, added to the collector once at the end so the
/// hot path takes one lock per delivery (the histogram's).
#[derive(Default)]
struct Tally {
    sent: u64,
    acked: u64,
    gaps: u64,
    duplicates: u64,
    refused: u64,
}

impl Joined {
    /// Sends on schedule inside `window`, listens until the drain ends,
    /// reports the tail, keeps answering pings until `close`, then closes.
    pub async fn live(
        mut self,
        spec: &MemberSpec,
        ctx: &MemberCtx,
        window: Window,
        tail: tokio::sync::mpsc::UnboundedSender<Tail>,
        close: CancellationToken,
    ) {
        let mut tally = Tally::default();
        let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
        let mut next_send = match spec.send {
            SendPlan::Quiet => None,
            SendPlan::Rate(per_sec) if per_sec > 0.0 => {
                Some(window.start + Duration::from_secs_f64(rng.random::<f64>() / per_sec))
            }
            SendPlan::Rate(_) => None,
            SendPlan::Every(_, max) => Some(
                window.start + Duration::from_secs_f64(rng.random::<f64>() * max.as_secs_f64()),
            ),
        };
        let mut counter = 0u64;
        let mut tail_sent = false;
        let mut closed_by_server = false;
        // Timers made once and reset, not made anew for every frame received:
        // each new `Sleep` is a timer-wheel insert and removal, and at 100,000
        // deliveries a second that was a good part of the generator's CPU.
        let send_timer = tokio::time::sleep_until(next_send.unwrap_or(window.end));
        let drain_timer = tokio::time::sleep_until(window.drain_until);
        let closed = close.cancelled();
        tokio::pin!(send_timer, drain_timer, closed);
        loop {
            let send_at = next_send.filter(|t| *t < window.end);
            tokio::select! {
                biased;
                msg = self.stream.next() => match msg {
                    Some(Ok(Message::Text(text))) => self.on_text(&text, ctx, &mut tally),
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map_or(1005, |f| u16::from(f.code));
                        ctx.stats.add(&format!("close.{code}"), 1);
                        closed_by_server = true;
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        ctx.stats.add("disconnected", 1);
                        closed_by_server = true;
                        break;
                    }
                },
                () = &mut send_timer, if send_at.is_some() => {
                    counter += 1;
                    let text = format!("t={} {}", now_nanos(), ctx.filler);
                    let frame = serde_json::json!({
                        "type": "send",
                        "text": text,
                        "client_id": format!("{}-{counter}", spec.index),
                    });
                    if self.sink.send(Message::text(frame.to_string())).await.is_err() {
                        ctx.stats.add("send_failed", 1);
                        closed_by_server = true;
                        break;
                    }
                    tally.sent += 1;
                    let now = Instant::now();
                    let next = match spec.send {
                        SendPlan::Rate(per_sec) => send_at.unwrap_or(now) + Duration::from_secs_f64(1.0 / per_sec),
                        SendPlan::Every(min, max) => {
                            let span = max.saturating_sub(min).as_secs_f64();
                            now + min + Duration::from_secs_f64(rng.random::<f64>() * span)
                        }
                        SendPlan::Quiet => window.end,
                    };
                    // Behind schedule (an overloaded generator): skip, don't burst.
                    let next = if next < now { now } else { next };
                    next_send = Some(next);
                    send_timer.as_mut().reset(next);
                }
                () = &mut drain_timer, if !tail_sent => {
                    tail_sent = true;
                    let _ = tail.send(Tail { room: spec.room, last_seq: self.next_seq - 1 });
                }
                () = &mut closed, if tail_sent => break,
            }
        }
        if !tail_sent {
            let _ = tail.send(Tail { room: spec.room, last_seq: self.next_seq - 1 });
        }
        let s = &ctx.stats;
        s.add("sent", tally.sent);
        s.add("acked", tally.acked);
        s.add("lost.gaps", tally.gaps);
        s.add("duplicates", tally.duplicates);
        s.add("send_refused", tally.refused);
        if !closed_by_server {
            let bye = CloseFrame { code: CloseCode::Normal, reason: "".into() };
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = self.sink.send(Message::Close(Some(bye))).await;
                while let Some(Ok(msg)) = self.stream.next().await {
                    if msg.is_close() {
                        break;
                    }
                }
            })
            .await;
        } else if !close.is_cancelled() {
            // Lost before the end of the run: wait with the others.
            close.cancelled().await;
        }
    }

    fn on_text(&mut self, text: &str, ctx: &MemberCtx, tally: &mut Tally) {
        let Ok(frame) = serde_json::from_str::<Frame>(text) else {
            ctx.stats.add("bad_frames", 1);
            return;
        };
        match frame.kind.as_ref() {
            "message" => {
                let Some(seq) = frame.seq else { return };
                if seq == self.next_seq {
                    self.next_seq += 1;
                } else if seq > self.next_seq {
                    tally.gaps += seq - self.next_seq;
                    self.next_seq = seq + 1;
                } else {
                    tally.duplicates += 1;
                    return;
                }
                if frame.from.is_some_and(|f| f.id == self.my_id) {
                    tally.acked += 1;
                }
                if let Some(stamp) = frame.text.as_deref().and_then(stamp_of) {
                    let now = now_nanos();
                    let micros = now.saturating_sub(stamp) / 1000;
                    ctx.stats.record("delivery", micros, now / 1_000_000);
                }
            }
            "error" => {
                tally.refused += 1;
                ctx.stats.add(&format!("error.{}", frame.code.as_deref().unwrap_or("?")), 1);
            }
            "closing" => {
                ctx.stats.add(&format!("closing.{}", frame.reason.as_deref().unwrap_or("?")), 1);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        assert_eq!(stamp_of("t=123 xx"), Some(123));
        assert_eq!(stamp_of("t=123"), Some(123));
        assert_eq!(stamp_of("hello"), None);
        assert_eq!(stamp_of("t=abc x"), None);
    }

    #[test]
    fn frames_parse_borrowed() {
        let f: Frame = serde_json::from_str(
            r#"{"type":"message","seq":4,"ts":1,"from":{"id":7,"nick":"a"},"text":"t=5 x","client_id":"1-1"}"#,
        )
        .unwrap();
        assert_eq!(f.kind, "message");
        assert_eq!(f.seq, Some(4));
        assert_eq!(f.from.unwrap().id, 7);
        let w: Frame = serde_json::from_str(
            r#"{"type":"welcome","room":"r","epoch":1,"you":{"id":3,"nick":"n"},"members":[],"last_seq":9,"messages":[{"type":"message","seq":9}]}"#,
        )
        .unwrap();
        assert_eq!(w.last_seq, Some(9));
        assert_eq!(w.you.unwrap().id, 3);
    }
}
