//! Client side of the control protocol (see `common::control`): a small pool
//! of authenticated connections to one backend, and a deadline on every
//! request. aux-srv speaks to backends through it, and so do the tests.
//!
//! It lives in its own crate, next to the protocol rather than in the
//! backend, so the coordinator does not compile rooms and websockets to talk
//! to them; and out of `common`, which does no I/O.
//!
//! Errors say whether the request may have reached the backend: placement
//! may try another backend only when it certainly did not.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::control::{
    self, AUTH_OK, DEFAULT_MAX_FRAME_BYTES, Request, RequestBody, Response, ResponseBody,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

type Conn = Framed<TcpStream, LengthDelimitedCodec>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ControlError {
    /// The request never left: unreachable, token refused, or every pooled
    /// connection busy until the deadline.
    #[error("backend unreachable: {0}")]
    NotSent(String),
    /// Sent, but no answer came: it may or may not have been carried out.
    #[error("no answer from backend: {0}")]
    Uncertain(String),
}

impl ControlError {
    /// False when the backend certainly did not act on the request.
    pub fn maybe_sent(&self) -> bool {
        matches!(self, ControlError::Uncertain(_))
    }
}

pub struct ControlClient {
    addr: String,
    auth: Bytes,
    timeout: Duration,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
    next_id: AtomicU64,
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(DEFAULT_MAX_FRAME_BYTES)
        .new_codec()
}

impl ControlClient {
    pub fn new(addr: String, token: &str, timeout: Duration, pool_size: usize) -> Self {
        ControlClient {
            addr,
            auth: Bytes::from(control::auth_frame(token)),
            timeout,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(pool_size.max(1)),
            next_id: AtomicU64::new(1),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Closes the idle connections (after the backend restarted or failed).
    pub fn reset(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Sends one request and waits for its answer, within the deadline.
    /// A pooled connection the backend closed meanwhile is replaced once,
    /// transparently, unless the request is not safe to repeat.
    pub async fn request(&self, body: RequestBody) -> Result<ResponseBody, ControlError> {
        let deadline = Instant::now() + self.timeout;
        let _permit = timeout_at(deadline, self.permits.acquire())
            .await
            .map_err(|_| ControlError::NotSent("all control connections busy".into()))?
            .map_err(|_| ControlError::NotSent("client closed".into()))?;
        let repeatable = !matches!(body, RequestBody::Announce { .. });
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(mut conn) = pooled {
            match self.exchange(&mut conn, &body, deadline).await {
                Ok(response) => {
                    self.give_back(conn);
                    return Ok(response);
                }
                // A stale connection fails before any answer; the request is
                // repeated on a fresh one only when doing it twice is harmless.
                Err(ExchangeError::Closed(reason)) if !repeatable => {
                    return Err(ControlError::Uncertain(reason));
                }
                Err(ExchangeError::Closed(_)) => {}
                Err(ExchangeError::Failed(e)) => return Err(e),
            }
        }
        let mut conn = self.connect(deadline).await?;
        match self.exchange(&mut conn, &body, deadline).await {
            Ok(response) => {
                self.give_back(conn);
                Ok(response)
            }
            Err(ExchangeError::Closed(reason)) => Err(ControlError::Uncertain(reason)),
            Err(ExchangeError::Failed(e)) => Err(e),
        }
    }

    fn give_back(&self, conn: Conn) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
    }

    async fn connect(&self, deadline: Instant) -> Result<Conn, ControlError> {
        let not_sent = |what: &str| ControlError::NotSent(what.to_owned());
        let stream = timeout_at(deadline, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| not_sent("connect timed out"))?
            .map_err(|e| ControlError::NotSent(format!("connect: {e}")))?;
        let _ = stream.set_nodelay(true);
        let mut conn = Framed::new(stream, codec());
        timeout_at(deadline, conn.send(self.auth.clone()))
            .await
            .map_err(|_| not_sent("authentication timed out"))?
            .map_err(|e| ControlError::NotSent(format!("authentication: {e}")))?;
        match timeout_at(deadline, conn.next()).await {
            Ok(Some(Ok(frame))) if frame.as_ref() == AUTH_OK => Ok(conn),
            Ok(_) => Err(not_sent("authentication refused (check control_token)")),
            Err(_) => Err(not_sent("authentication timed out")),
        }
    }

    async fn exchange(
        &self,
        conn: &mut Conn,
        body: &RequestBody,
        deadline: Instant,
    ) -> Result<ResponseBody, ExchangeError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = control::encode(&Request { id, body: body.clone() });
        let uncertain = |why: String| ExchangeError::Failed(ControlError::Uncertain(why));
        match timeout_at(deadline, conn.send(Bytes::from(frame))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(ExchangeError::Closed(format!("send: {e}"))),
            Err(_) => return Err(uncertain("send timed out".into())),
        }
        match timeout_at(deadline, conn.next()).await {
            Ok(Some(Ok(frame))) => {
                let response: Response =
                    control::decode(&frame).map_err(|e| uncertain(e.to_string()))?;
                if response.id != id {
                    return Err(uncertain(format!(
                        "answer to request {} arrived for request {id}",
                        response.id
                    )));
                }
                Ok(response.body)
            }
            Ok(Some(Err(e))) => Err(ExchangeError::Closed(format!("receive: {e}"))),
            Ok(None) => Err(ExchangeError::Closed("connection closed".into())),
            Err(_) => Err(uncertain("timed out waiting for the answer".into())),
        }
    }
}

enum ExchangeError {
    /// The connection broke before an answer: on a pooled connection this is
    /// usually a backend that closed it while idle.
    Closed(String),
    Failed(ControlError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    const TOKEN: &str = "0123456789abcdef";

    /// A fake backend answering every request with `Deleted { existed: true }`,
    /// closing each connection after `per_conn` requests.
    async fn fake_backend(per_conn: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut conn = Framed::new(stream, codec());
                    let auth = conn.next().await.unwrap().unwrap();
                    if !control::check_auth(&auth, TOKEN) {
                        return;
                    }
                    conn.send(Bytes::from_static(AUTH_OK)).await.unwrap();
                    for _ in 0..per_conn {
                        let Some(Ok(frame)) = conn.next().await else { return };
                        let req: Request = control::decode(&frame).unwrap();
                        let resp =
                            Response { id: req.id, body: ResponseBody::Deleted { existed: true } };
                        conn.send(Bytes::from(control::encode(&resp))).await.unwrap();
                    }
                });
            }
        });
        addr
    }

    fn delete() -> RequestBody {
        RequestBody::DeleteRoom { name: "abc".into() }
    }

    #[tokio::test]
    async fn requests_reuse_and_replace_connections() {
        let addr = fake_backend(1).await;
        let client = ControlClient::new(addr, TOKEN, Duration::from_secs(2), 2);
        for _ in 0..3 {
            // Every pooled connection is closed by the server after one answer;
            // the client notices and retries on a fresh one.
            assert_eq!(
                client.request(delete()).await.unwrap(),
                ResponseBody::Deleted { existed: true }
            );
        }
        let announce = RequestBody::Announce { text: "x".into() };
        assert!(matches!(client.request(announce).await, Err(ControlError::Uncertain(_))));
    }

    #[tokio::test]
    async fn wrong_token_and_dead_address_are_not_sent() {
        let addr = fake_backend(10).await;
        let client = ControlClient::new(addr, "another-token-of-16", Duration::from_secs(2), 2);
        let err = client.request(delete()).await.unwrap_err();
        assert!(!err.maybe_sent(), "{err}");

        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = dead.local_addr().unwrap().to_string();
        drop(dead);
        let client = ControlClient::new(addr, TOKEN, Duration::from_secs(2), 2);
        assert!(!client.request(delete()).await.unwrap_err().maybe_sent());
    }

    #[tokio::test]
    async fn a_silent_backend_times_out_as_uncertain() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut conn = Framed::new(stream, codec());
            let _auth = conn.next().await;
            conn.send(Bytes::from_static(AUTH_OK)).await.unwrap();
            let _request = conn.next().await;
            std::future::pending::<()>().await;
        });
        let client = ControlClient::new(addr, TOKEN, Duration::from_millis(300), 1);
        let started = std::time::Instant::now();
        let err = client.request(delete()).await.unwrap_err();
        assert!(err.maybe_sent(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
