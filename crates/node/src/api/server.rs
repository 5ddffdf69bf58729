//! The HTTP server loop: accepts connections on the API's listener and serves each as HTTP/1.1
//! with hyper, under the limits that keep slow or numerous clients from starving the node:
//!
//! - a request head must arrive within `http_header_timeout_s`, which also closes keep-alive
//!   connections idle that long;
//! - a request body must arrive within `http_body_timeout_s` of its head (in total, so a body
//!   trickled byte by byte is cut too), else the answer is 408 and the connection is closed;
//! - at most `max_connections` connections are open, fewer if the file limit allows fewer, and
//!   at most `max_connections_per_address` from one peer (an IPv6 peer: its /64), so that one
//!   host cannot take them all; past that, connections are accepted and refused with a bare 503
//!   at once, so that accepting never fails for want of file descriptors;
//! - a refused connection may still have its health checked: a small reserve of connections
//!   (`HEALTH_RESERVE`, two per peer for a monitor's liveness and readiness probes at once, a
//!   short head timeout, one request) answers `/healthz` and `/readyz` and nothing else, so
//!   that a full table does not make a live node look dead to a monitor, unless enough hosts
//!   to fill the reserve take it too (what `health_listen`, a listener of its own, is for).
//!
//! Refused connections are counted by reason (`fsc_http_connections_refused_total`).
//!
//! With a TLS config, every connection is a TLS connection (rustls), its handshake within the
//! header timeout. It knows nothing of routes or handlers (the router is given), and it does not
//! drain the node: on shutdown it stops accepting and returns once the requests in flight are
//! answered.

use crate::config::NodeConfig;
use crate::error::Error;
use crate::metrics::Metrics;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tower::ServiceExt;

/// File descriptors kept out of the connection limit: the store, the broker connection, logs,
/// the listeners and what the runtime opens.
const RESERVED_FDS: u64 = 128;

/// Connections the API's listener keeps beyond `max_connections` for health checks.
const HEALTH_RESERVE: usize = 16;

/// Of the health reserve, what one peer may hold.
const HEALTH_RESERVE_PER_PEER: usize = 2;

/// Connections the health listener (`health_listen`) serves at once.
const HEALTH_LISTENER_CONNECTIONS: usize = 32;

/// How long a health check's connection may take over its TLS handshake and request head.
const HEALTH_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// What a refused connection is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// The HTTP server's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Connections kept beyond `max_connections` for health checks (two per peer).
    pub health_reserve: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
}

impl Limits {
    /// The API listener's, from the node's config: `max_connections` lowered to what the
    /// open-file limit (raised to its hard limit first) leaves once the health reserve and the
    /// health listener have theirs.
    pub fn api(config: &NodeConfig) -> Limits {
        let health = HEALTH_RESERVE + config.health_listen.as_ref().map_or(0, |_| HEALTH_LISTENER_CONNECTIONS);
        let limits = Limits {
            max_connections: connection_limit(config.max_connections, health, raise_file_limit()),
            max_connections_per_address: config.max_connections_per_address,
            health_reserve: HEALTH_RESERVE,
            header_timeout: Duration::from_secs(config.http_header_timeout_s),
            body_timeout: Duration::from_secs(config.http_body_timeout_s),
        };
        tracing::info!(
            max_connections = limits.max_connections,
            max_connections_per_address = limits.max_connections_per_address,
            header_timeout_s = limits.header_timeout.as_secs(),
            body_timeout_s = limits.body_timeout.as_secs(),
            "http limits"
        );
        limits
    }

    /// The health listener's (`health_listen`): a few connections, each quick.
    pub fn health() -> Limits {
        Limits {
            max_connections: HEALTH_LISTENER_CONNECTIONS,
            max_connections_per_address: HEALTH_LISTENER_CONNECTIONS,
            health_reserve: 0,
            header_timeout: HEALTH_HEADER_TIMEOUT,
            body_timeout: HEALTH_HEADER_TIMEOUT,
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
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let table = Arc::new(Table::new(&limits));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    // A health check on a reserved connection: one request, whose head comes at once.
    let mut health_only = http1::Builder::new();
    health_only
        .timer(TokioTimer::new())
        .header_read_timeout(HEALTH_HEADER_TIMEOUT)
        .keep_alive(false);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut shutdown => break,
        };
        let (slot, http, handshake_timeout) = match table.admit(peer.ip()) {
            Admission::Serve(slot) => (slot, http.clone(), limits.header_timeout),
            Admission::HealthOnly(slot, refusal) => {
                refusal.counter(&metrics).fetch_add(1, Ordering::Relaxed);
                (slot, health_only.clone(), HEALTH_HEADER_TIMEOUT)
            }
            Admission::Refuse(refusal) => {
                refusal.counter(&metrics).fetch_add(1, Ordering::Relaxed);
                // The socket's send buffer is empty, so this short write does not block; a
                // client that misses it sees the connection closed.
                let _ = stream.try_write(BUSY);
                continue;
            }
        };
        let router = router.clone();
        let body_timeout = limits.body_timeout;
        let only_health = slot.reserved;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let router = router.clone();
            async move {
                Ok::<_, Infallible>(if only_health && !is_health_check(&request) {
                    no_room()
                } else {
                    respond(router, request, body_timeout).await
                })
            }
        });
        let (watcher, tls) = (graceful.watcher(), tls.clone());
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
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Whether `request` is a health check, all a reserved connection answers.
fn is_health_check(request: &Request<Incoming>) -> bool {
    matches!(request.method().as_str(), "GET" | "HEAD") && matches!(request.uri().path(), "/healthz" | "/readyz")
}

/// The answer to anything but a health check on a reserved connection.
fn no_room() -> Response {
    let mut response =
        Error::Unavailable("this node has no room for more connections now; try again later".into()).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Why a connection found no room.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Refusal {
    /// `max_connections` are open.
    MaxConnections,
    /// Its peer holds `max_connections_per_address`.
    PerAddress,
}

impl Refusal {
    fn counter(self, metrics: &Metrics) -> &AtomicU64 {
        match self {
            Refusal::MaxConnections => &metrics.http_refused_max_connections,
            Refusal::PerAddress => &metrics.http_refused_per_address,
        }
    }
}

/// What a new connection gets.
enum Admission {
    Serve(Slot),
    /// No room ([`Refusal`]), but a reserved connection that answers a health check.
    HealthOnly(Slot, Refusal),
    Refuse(Refusal),
}

/// The connections a listener holds, in all and per peer, in its table and in its health
/// reserve.
struct Table {
    limits: Limits,
    state: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    open: usize,
    reserved: usize,
    peers: HashMap<IpAddr, Peer>,
    /// Whether the table was full at the last admission (said once per time it fills).
    full: bool,
}

/// One peer's connections.
#[derive(Default)]
struct Peer {
    open: usize,
    reserved: usize,
    /// Whether its reaching `max_connections_per_address` was logged (once while it holds them).
    said: bool,
}

impl Table {
    fn new(limits: &Limits) -> Table {
        Table {
            limits: limits.clone(),
            state: Mutex::new(Held::default()),
        }
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Admission {
        let key = peer_key(ip);
        let mut held = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Held {
            open,
            reserved,
            peers,
            full,
        } = &mut *held;
        let peer = peers.entry(key).or_default();
        let refusal = if peer.open >= self.limits.max_connections_per_address {
            if !peer.said {
                tracing::warn!(
                    peer = %key,
                    max_connections_per_address = self.limits.max_connections_per_address,
                    "a peer holds max_connections_per_address: refusing its new connections"
                );
                peer.said = true;
            }
            Some(Refusal::PerAddress)
        } else if *open >= self.limits.max_connections {
            if !*full {
                tracing::warn!(
                    max_connections = self.limits.max_connections,
                    "connection limit reached: refusing new connections"
                );
            }
            *full = true;
            Some(Refusal::MaxConnections)
        } else {
            *full = false;
            None
        };
        let slot = |reserved| Slot {
            table: self.clone(),
            peer: key,
            reserved,
        };
        match refusal {
            None => {
                peer.open += 1;
                *open += 1;
                Admission::Serve(slot(false))
            }
            Some(refusal) if peer.reserved < HEALTH_RESERVE_PER_PEER && *reserved < self.limits.health_reserve => {
                peer.reserved += 1;
                *reserved += 1;
                Admission::HealthOnly(slot(true), refusal)
            }
            Some(refusal) => {
                if peer.open == 0 && peer.reserved == 0 {
                    peers.remove(&key);
                }
                Admission::Refuse(refusal)
            }
        }
    }

    fn release(&self, key: IpAddr, reserved: bool) {
        let mut held = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Held {
            open,
            reserved: reserve,
            peers,
            ..
        } = &mut *held;
        let Some(peer) = peers.get_mut(&key) else {
            return;
        };
        if reserved {
            peer.reserved -= 1;
            *reserve -= 1;
        } else {
            peer.open -= 1;
            *open -= 1;
        }
        if peer.open == 0 && peer.reserved == 0 {
            peers.remove(&key);
        }
    }
}

/// A connection's place in its listener's [`Table`], given back when it is dropped.
struct Slot {
    table: Arc<Table>,
    peer: IpAddr,
    reserved: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table.release(self.peer, self.reserved);
    }
}

/// The peer a connection counts for: its IPv4 address, or its IPv6 address's /64 (a host
/// commonly has a whole /64 to choose addresses from).
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX)))),
        v4 => v4,
    }
}

/// The next connection and its peer. Errors of one connection are skipped; others (out of file
/// descriptors despite the limit, out of memory) are logged and retried after a pause rather
/// than spun on.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
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

/// The configured connection limit, lowered to what the open-file limit leaves for connections
/// once `health` connections (the health reserve and listener) have theirs.
fn connection_limit(configured: usize, health: usize, file_limit: Option<u64>) -> usize {
    let Some(file_limit) = file_limit else {
        return configured;
    };
    let kept = RESERVED_FDS + health as u64;
    let allowed = usize::try_from(file_limit.saturating_sub(kept)).unwrap_or(usize::MAX);
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
        assert_eq!(connection_limit(1024, 16, Some(1024)), 880);
        assert_eq!(connection_limit(1024, 48, Some(1024)), 848);
        assert_eq!(connection_limit(1024, 16, Some(65536)), 1024);
        assert_eq!(connection_limit(1024, 16, None), 1024);
        assert_eq!(connection_limit(1024, 16, Some(100)), 1);
        assert_eq!(connection_limit(1024, 16, Some(libc::RLIM_INFINITY)), 1024);
    }

    fn limits(max_connections: usize, per_address: usize, reserve: usize) -> Limits {
        Limits {
            max_connections,
            max_connections_per_address: per_address,
            health_reserve: reserve,
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
        }
    }

    fn kind(admission: &Admission) -> (&'static str, Option<Refusal>) {
        match admission {
            Admission::Serve(_) => ("serve", None),
            Admission::HealthOnly(_, refusal) => ("health", Some(*refusal)),
            Admission::Refuse(refusal) => ("refuse", Some(*refusal)),
        }
    }

    #[test]
    fn a_peer_gets_its_share_and_two_health_checks_beyond() {
        let table = Arc::new(Table::new(&limits(3, 2, 3)));
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        );
        let a1 = table.admit(a);
        let a2 = table.admit(a);
        assert_eq!(kind(&a1), ("serve", None));
        assert_eq!(kind(&a2), ("serve", None));
        let a3 = table.admit(a);
        let a4 = table.admit(a);
        assert_eq!(kind(&a3), ("health", Some(Refusal::PerAddress)));
        assert_eq!(kind(&a4), ("health", Some(Refusal::PerAddress)));
        assert_eq!(kind(&table.admit(a)), ("refuse", Some(Refusal::PerAddress)));
        let b1 = table.admit(b);
        assert_eq!(kind(&b1), ("serve", None));
        let b2 = table.admit(b);
        assert_eq!(kind(&b2), ("health", Some(Refusal::MaxConnections)));
        // The reserve is full: a third peer is refused outright.
        assert_eq!(kind(&table.admit(c)), ("refuse", Some(Refusal::MaxConnections)));
        drop((a3, a4, b1));
        let c1 = table.admit(c);
        assert_eq!(kind(&c1), ("serve", None));
        drop((a1, a2, b2));
        let held = table.state.lock().unwrap();
        assert_eq!((held.open, held.reserved, held.peers.len()), (1, 0, 1));
    }

    #[test]
    fn an_ipv6_peer_is_its_64() {
        let key = |ip: &str| peer_key(ip.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
    }
}
