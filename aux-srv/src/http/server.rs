//! The accept loop shared by both listeners: HTTP/1.1 connections, and on
//! shutdown, no new connections, the requests in flight answered within the
//! grace period.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_listener::{Acceptor, request};
use hyper::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::http::respond::Resp;

/// Serves `listener` with `handler` until the app shuts down, then waits up
/// to `shutdown_grace_ms` for the requests in flight.
pub async fn serve<H, F>(listener: TcpListener, app: Arc<App>, handler: H)
where
    H: Fn(Arc<App>, Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
{
    let connections = TaskTracker::new();
    let shutdown = app.shutdown.clone();
    let limits = app.config.http.clone();
    let mut acceptor = Acceptor::new(listener, &limits, "aux");
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = acceptor.accept() => accepted,
        };
        let (peer, admission, connection) =
            (accepted.peer, accepted.admission(), accepted.connection);
        let clock = accepted.stream.clock();
        let app = app.clone();
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        let builder = http_listener::http1_builder(&limits, admission);
        let body_timeout = Duration::from_millis(limits.body_timeout_ms);
        connections.spawn(async move {
            let _connection = connection;
            let service = service_fn(move |mut req| {
                let refused = request::check(
                    &mut req,
                    admission,
                    &clock,
                    app.config.max_body_bytes,
                    body_timeout,
                );
                let response = refused.is_none().then(|| handler(app.clone(), req, peer));
                async move {
                    Ok::<_, Infallible>(match (refused, response) {
                        (Some(refused), _) => refused,
                        (None, Some(response)) => response.await,
                        (None, None) => unreachable!("a request is refused or handled"),
                    })
                }
            });
            let conn = builder.serve_connection(TokioIo::new(accepted.stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(acceptor);
    connections.close();
    let grace = Duration::from_millis(app.config.shutdown_grace_ms);
    if tokio::time::timeout(grace, connections.wait()).await.is_err() {
        tracing::warn!("requests still running after shutdown_grace_ms; closing them");
    }
}
