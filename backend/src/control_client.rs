//! A client for the control protocol: one authenticated connection, one
//! request at a time. aux-srv and the tests speak to backends through it.

use std::time::Duration;

use bytes::Bytes;
use common::control::{self, AUTH_OK, Request, RequestBody, Response, ResponseBody};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("control connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("backend refused the control token")]
    Refused,
    #[error("backend closed the control connection")]
    Closed,
    #[error("control request timed out")]
    Timeout,
    #[error(transparent)]
    Decode(#[from] control::DecodeError),
    #[error("answer to request {got} arrived for request {expected}")]
    OutOfStep { expected: u64, got: u64 },
}

pub struct ControlClient {
    framed: Framed<TcpStream, LengthDelimitedCodec>,
    next_id: u64,
    timeout: Duration,
}

impl ControlClient {
    /// Connects and authenticates, all within `timeout`.
    pub async fn connect(
        addr: impl ToSocketAddrs,
        token: &str,
        max_frame_bytes: usize,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let setup = async {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let codec =
                LengthDelimitedCodec::builder().max_frame_length(max_frame_bytes).new_codec();
            let mut framed = Framed::new(stream, codec);
            framed.send(Bytes::from(control::auth_frame(token))).await?;
            match framed.next().await {
                Some(Ok(answer)) if answer.as_ref() == AUTH_OK => Ok(framed),
                Some(Err(e)) => Err(ClientError::Io(e)),
                _ => Err(ClientError::Refused),
            }
        };
        let framed =
            tokio::time::timeout(timeout, setup).await.map_err(|_| ClientError::Timeout)??;
        Ok(ControlClient { framed, next_id: 1, timeout })
    }

    /// Sends one request and waits for its answer. After an error the
    /// connection is in an unknown state: drop it.
    pub async fn request(&mut self, body: RequestBody) -> Result<ResponseBody, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let exchange = async {
            self.framed.send(Bytes::from(control::encode(&Request { id, body }))).await?;
            let frame = self.framed.next().await.ok_or(ClientError::Closed)??;
            let response: Response = control::decode(&frame)?;
            if response.id != id {
                return Err(ClientError::OutOfStep { expected: id, got: response.id });
            }
            Ok(response.body)
        };
        tokio::time::timeout(self.timeout, exchange).await.map_err(|_| ClientError::Timeout)?
    }
}
