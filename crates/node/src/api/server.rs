//! The HTTP server loop: accepts connections on the API's listener and serves each as HTTP/1.1
//! with hyper, under the limits that keep slow or numerous clients from starving the node:
//!
//! - a request head must arrive within `http_header_timeout_s`, which also closes keep-alive
//!   connections idle that long;
//! - a request body must arrive within `http_body_timeout_s` of its head (in total, so a body
//!   trickled byte by byte is cut too), else the answer is 408 and the connection is closed;
//! - at most `max_connections` connections are open, fewer if the file limit allows fewer;
//!   past that, connections are accepted and refused with a bare 503 at once, so that accepting
//!   never fails for want of file descriptors.
//!
//! With a TLS config, every connection is a TLS connection (rustls), its handshake within the
//! header timeout. It knows nothing of routes or handlers (the router is given), and it does not
//! drain the node: on shutdown it stops accepting and returns once the requests in flight are
//! answered.

use crate::config::NodeConfig;
use crate::error::Error;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tower::ServiceExt;

/// File descriptors kept out of the connection limit: the store, the broker connection, logs,
/// the listener and what the runtime opens.
const RESERVED_FDS: u64 = 128;

/// What a refused connection is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// The HTTP server's limits, from the node's config.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
}

impl From<&NodeConfig> for Limits {
    fn from(config: &NodeConfig) -> Limits {
        Limits {
            max_connections: config.max_connections,
            header_timeout: Duration::from_secs(config.http_header_timeout_s),
            body_timeout: Duration::from_secs(config.http_body_timeout_s),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits until
/// every open connection has answered its request in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let max_connections = connection_limit(limits.max_connections, raise_file_limit());
    tracing::info!(
        max_connections,
        header_timeout_s = limits.header_timeout.as_secs(),
        body_timeout_s = limits.body_timeout.as_secs(),
        "http limits"
    );
    let permits = Arc::new(Semaphore::new(max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    let mut at_limit = false;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            stream = accept(&listener) => stream,
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if !at_limit {
                tracing::warn!(max_connections, "connection limit reached: refusing new connections");
            }
            at_limit = true;
            // The socket's send buffer is empty, so this short write does not block; a client
            // that misses it sees the connection closed.
            let _ = stream.try_write(BUSY);
            continue;
        };
        at_limit = false;
        let router = router.clone();
        let body_timeout = limits.body_timeout;
        let service = hyper::service::service_fn(move |request| {
            let router = router.clone();
            async move { Ok::<_, Infallible>(respond(router, request, body_timeout).await) }
        });
        let (http, watcher, tls) = (http.clone(), graceful.watcher(), tls.clone());
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                // The handshake counts as part of the request head: a client that stalls it
                // holds a connection no longer than one that stalls its headers.
                Some(tls) => match tokio::time::timeout(handshake_timeout, tls.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        watcher
                            .watch(http.serve_connection(TokioIo::new(stream), service))
                            .await
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "TLS handshake failed");
                        Ok(())
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake timed out");
                        Ok(())
                    }
                },
            };
            if let Err(error) = served {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The next connection. Errors of one connection are skipped; others (out of file descriptors
/// despite the limit, out of memory) are logged and retried after a pause rather than spun on.
async fn accept(listener: &TcpListener) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return stream,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) => {}
            Err(error) => {
                tracing::error!(%error, "cannot accept connections");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Answers one request through the router, with the body's deadline; a body that missed it
/// turns the answer into a 408 that closes the connection.
async fn respond(router: Router, request: Request<Incoming>, body_timeout: Duration) -> Response {
    let expired = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        if hyper::body::Body::is_end_stream(&body) {
            Body::new(body)
        } else {
            Body::new(DeadlineBody {
                inner: body,
                deadline: Box::pin(tokio::time::sleep(body_timeout)),
                expired: expired.clone(),
            })
        }
    });
    let response = router.oneshot(request).await.unwrap_or_else(|never| match never {});
    if !expired.load(Ordering::Relaxed) {
        return response;
    }
    let seconds = body_timeout.as_secs();
    let mut response = Error::RequestTimeout(format!("request body not received within {seconds} s")).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body that fails once its deadline has passed, however steadily it trickles in.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err("request body timed out".into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Raises this process's soft limit of open files to its hard limit; returns the soft limit in
/// force afterwards (None if it cannot be read).
fn raise_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read the open-file limit");
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            tracing::info!(
                from = limit.rlim_cur,
                to = raised.rlim_cur,
                "raised the open-file limit"
            );
            limit = raised;
        } else {
            let error = std::io::Error::last_os_error();
            tracing::warn!(%error, limit = limit.rlim_cur, "cannot raise the open-file limit");
        }
    }
    Some(limit.rlim_cur)
}

/// The configured connection limit, lowered to what the open-file limit leaves for connections.
fn connection_limit(configured: usize, file_limit: Option<u64>) -> usize {
    let Some(file_limit) = file_limit else {
        return configured;
    };
    let allowed = usize::try_from(file_limit.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    if allowed < configured {
        tracing::warn!(
            configured,
            allowed,
            file_limit,
            "max_connections lowered to what the open-file limit allows"
        );
    }
    configured.min(allowed).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_limit_caps_connections() {
        assert_eq!(connection_limit(1024, Some(1024)), 896);
        assert_eq!(connection_limit(1024, Some(65536)), 1024);
        assert_eq!(connection_limit(1024, None), 1024);
        assert_eq!(connection_limit(1024, Some(100)), 1);
        assert_eq!(connection_limit(1024, Some(libc::RLIM_INFINITY)), 1024);
    }
}
