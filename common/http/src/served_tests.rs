//! The listener's parts together, served by hyper on a real socket.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::config::HttpLimits;
use http::Response;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::test_client::{
    assert_faulty_requests_answered_in_json, connect_from, read_until_closed, status_of,
};
use crate::{Acceptor, http1_builder, request};

/// A server answering `200 ok` to everything, as the services use the
/// listener (a body is read when one is sent).
async fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = HttpLimits::default();
    let mut acceptor = Acceptor::new(listener, &limits, "test");
    tokio::spawn(async move {
        loop {
            let accepted = acceptor.accept().await;
            let (admission, connection) = (accepted.admission(), accepted.connection);
            let clock = accepted.stream.clock();
            let service = service_fn(move |mut req| {
                let refused =
                    request::check(&mut req, admission, &clock, 1024, Duration::from_secs(5));
                async move {
                    let response = match refused {
                        Some(refused) => refused,
                        None => match request::read_body(req, 1024).await {
                            Ok(_) => Response::new(Full::new(Bytes::from_static(b"ok\n"))),
                            Err(e) => e.into_response(),
                        },
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let conn = http1_builder(&limits, admission)
                .serve_connection(TokioIo::new(accepted.stream), service);
            tokio::spawn(async move {
                let _connection = connection;
                let _ = conn.await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn heads_hyper_would_refuse_bare_get_the_json_body() {
    assert_faulty_requests_answered_in_json([127, 0, 0, 1], start().await).await;
}

#[tokio::test]
async fn sound_requests_on_one_connection_pass_untouched() {
    let addr = start().await;
    let mut stream = connect_from([127, 0, 0, 1], addr).await;
    let requests = "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3;x=y\r\nabc\r\n0\r\nTrailer: 1\r\n\r\n\
                    POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
                    GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    stream.write_all(requests.as_bytes()).await.unwrap();
    let responses = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(responses.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{responses}");
    assert_eq!(status_of(&responses), 200, "{responses}");
}
