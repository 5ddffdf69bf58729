//! Assembles a node from its config and runs it until shutdown: store, broker connection, runtime,
//! consumer, publisher and HTTP API. The entry point takes an already-bound listener and a
//! shutdown future, so tests and the demo can run nodes on ports they chose.

use crate::api::federatedsecure::{Bus, Federatedsecure, Simon, SyncObjects};
use crate::api::{self, AppState, Shared};
use crate::config::NodeConfig;
use crate::config::roster::Roster;
use crate::config::stream::Names;
use crate::envelope::Envelopes;
use crate::error::Error;
use crate::keys::NodeKeys;
use crate::metrics::Metrics;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::transport::{InboxState, Outgoing};
use crate::{store, transport};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use ring::rand::{SecureRandom, SystemRandom};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::Instant;

/// The API's listening socket: inherited (`listen_fd`, e.g. from a test harness or a socket
/// activation) or bound to `listen`. Without configured API clients nothing authenticates
/// requests, so the API is then served on loopback only, whatever `listen` says.
pub async fn bind(config: &NodeConfig) -> Result<TcpListener, Error> {
    let open = config.clients.is_empty();
    let listener = match config.listen_fd {
        Some(fd) => {
            use std::os::fd::FromRawFd;
            // SAFETY: the parent process passed this descriptor for us to own; nothing else in
            // this process uses it.
            let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)?
        }
        None => {
            let cannot = |e: &dyn std::fmt::Display| Error::Config(format!("cannot listen on {}: {e}", config.listen));
            let mut address = tokio::net::lookup_host(&config.listen)
                .await
                .map_err(|e| cannot(&e))?
                .next()
                .ok_or_else(|| cannot(&"no address"))?;
            if open && !address.ip().is_loopback() {
                let loopback = if address.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    IpAddr::V6(Ipv6Addr::LOCALHOST)
                };
                tracing::warn!(
                    listen = %config.listen,
                    "no API clients are configured ([[clients]] in node.toml; `fsc client add` makes one): \
                     serving on loopback only"
                );
                address.set_ip(loopback);
            }
            TcpListener::bind(address).await.map_err(|e| cannot(&e))?
        }
    };
    Ok(listener)
}

/// Runs the node until `shutdown` resolves, then drains: stops taking requests and messages,
/// commits what is in progress, publishes what it can, and returns, within `shutdown_grace_s`
/// whatever the broker and the clients do. What could not be published stays in the outbox for
/// the next start; an interrupted transaction is rolled back by SQLite, as after a crash.
pub async fn run(
    config: NodeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let address = listener.local_addr()?;
    if config.clients.is_empty() {
        if !address.ip().is_loopback() {
            return Err(Error::Config(format!(
                "the API socket listens on {address}, not on loopback, and no API clients are configured: \
                 add [[clients]] to node.toml (`fsc client add`) or listen on loopback"
            )));
        }
        tracing::info!(%address, "no API clients are configured: the API needs no token, on loopback only");
    }
    let tls = crate::tls::server_config(&config)?;
    if tls.is_none() && !address.ip().is_loopback() && !config.allow_plain_http {
        return Err(Error::Config(format!(
            "the API would serve plain HTTP on {address}, which is not loopback: tokens and inputs would \
             travel in clear. Set tls_cert and tls_key (`fsc federation init --tls` makes a private CA and \
             certificates for a test federation), or allow_plain_http = true where a TLS-terminating \
             proxy or a private network protects the API"
        )));
    }
    // Health checks only, for monitors: on any address, as they need no token and show no data.
    let health = match &config.health_listen {
        Some(at) => Some(
            TcpListener::bind(at)
                .await
                .map_err(|e| Error::Config(format!("cannot listen on {at} (health_listen): {e}")))?,
        ),
        None => None,
    };
    let roster = Arc::new(Roster::load(&config.roster)?);
    let spec = roster.stream.clone();
    let names = Arc::new(Names::new(&spec));
    if config.max_deadline_s > spec.max_age_s {
        tracing::warn!(
            max_deadline_s = config.max_deadline_s,
            max_age_s = spec.max_age_s,
            "max_deadline_s is longer than the stream keeps messages (the roster's [stream] max_age_s): \
             a computation waiting that long may lose messages"
        );
    }
    let keys = NodeKeys::load(&config.x25519_key, &config.ed25519_key)?;
    let envelopes = Arc::new(Envelopes::new(&config.id, keys, &roster)?);
    let (read, writer) = store::open(&config.store).await?;
    let metrics = Arc::new(Metrics::default());
    let reconnected = Arc::new(Notify::new());
    let client = transport::connect(&config, &names, metrics.clone(), reconnected.clone()).await?;
    let js = transport::jetstream(client.clone(), &config);

    let mut seed = [0u8; 32];
    SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| Error::Crypto("no system randomness".into()))?;
    let (outbox_tx, outbox_rx) = mpsc::unbounded_channel();
    let runtime_config = RuntimeConfig {
        default_deadline_s: config.default_deadline_s,
        max_deadline_s: config.max_deadline_s,
        max_active: config.max_active_computations,
        max_pending_chunk_bytes: config.max_pending_chunk_bytes,
        max_unsolicited_bytes: config.max_unsolicited_bytes,
        max_unsolicited_s: config.max_unsolicited_s,
        helper_for: config.helper_for.clone(),
        max_helper_computations: config.max_helper_computations,
        retention_s: config.retention_s,
        audit_retention_s: config.audit_retention_s,
        helper: config.helper.clone(),
        stall_grace_s: config.stall_grace_s,
        limits: fsc_simon::Limits {
            max_output_cells: config.max_output_cells,
        },
        policy: config.policy.clone(),
        audit_at_start: crate::audit::config_changes(writer.conn(), &config.clients, &config.policy, &config.datasets)?,
    };
    let (runtime, handle, published, inbox) = Runtime::start(
        config.id.clone(),
        roster.clone(),
        envelopes.clone(),
        writer,
        ChaCha20Rng::from_seed(seed),
        runtime_config,
        outbox_tx,
        metrics.clone(),
    )?;
    // The runtime's store calls are synchronous: it gets a thread of its own, where they hold up
    // no other task. Its channels and timers are still the node's tokio runtime's.
    let (runtime_stopped_tx, runtime_stopped) = oneshot::channel::<()>();
    let tokio_handle = tokio::runtime::Handle::current();
    std::thread::Builder::new().name("fsc-runtime".into()).spawn(move || {
        tokio_handle.block_on(runtime.run(inbox));
        let _ = runtime_stopped_tx.send(());
    })?;

    let (stop_tx, stop) = watch::channel(false);
    let (ready_tx, ready) = watch::channel(InboxState::Starting);
    let consumer_task = tokio::spawn(transport::consume(
        js.clone(),
        envelopes.clone(),
        handle.clone(),
        metrics.clone(),
        transport::Federation {
            spec: spec.clone(),
            names: (*names).clone(),
            parties: roster.parties.iter().map(|p| p.id.clone()).collect(),
        },
        transport::ConsumerTimings::of(&config),
        reconnected,
        ready_tx,
        stop.clone(),
    ));
    let outgoing = Outgoing {
        names: (*names).clone(),
        max_chunk_bytes: config.max_chunk_bytes,
        max_msg_size: usize::try_from(spec.max_msg_size).unwrap_or(usize::MAX),
        max_bytes: spec.max_bytes,
        ack_timeout: Duration::from_millis(config.publish_ack_timeout_ms),
    };
    let readiness_js = js.clone();
    let publisher_task = tokio::spawn(transport::publish(
        js,
        envelopes.clone(),
        Arc::new(outgoing),
        outbox_rx,
        published,
        metrics.clone(),
        ready.clone(),
    ));

    let datasets = crate::datasets::Datasets::new(&config);
    let federatedsecure = Federatedsecure {
        bus: Bus::new(
            Duration::from_secs(config.representation_ttl_s),
            config.max_representations,
            config.max_representation_bytes,
        ),
        simon: Simon::new(
            config.id.clone(),
            roster.clone(),
            handle.clone(),
            read.clone(),
            datasets.clone(),
        ),
        objects: SyncObjects::default(),
    };
    let state = Arc::new(Shared {
        runtime: handle,
        read: read.clone(),
        federatedsecure,
        max_request_bytes: config.max_request_bytes,
        metrics: metrics.clone(),
        roster,
        envelopes,
        clients: api::auth::Clients::new(&config.clients),
        policy: config.policy.clone(),
        datasets,
        readiness: transport::Readiness::new(client.clone(), readiness_js, ready.clone(), names),
    });
    let sweeper = tokio::spawn(sweep_representations(state.clone()));
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(node = %config.id, %address, scheme, "serving");

    // From the shutdown signal on, everything below has `shutdown_grace_s` in all: requests in
    // flight (long polls, `compute` calls) and the drain are cut off when it is up.
    let grace = Duration::from_secs(config.shutdown_grace_s);
    let (signalled_tx, signalled) = watch::channel(None);
    // The routers hold runtime handles, so each is built only for a server that takes it: one
    // left unused would live to the end of this function and keep the drain below from ending.
    let serve_health = match health {
        Some(listener) => {
            let address = listener.local_addr()?;
            tracing::info!(%address, "serving health checks");
            let mut signalled = signalled.clone();
            let stopped = async move {
                let _ = signalled.wait_for(Option::is_some).await;
            };
            let limits = api::server::Limits::health();
            Some(api::server::serve(
                listener,
                api::health_router(state.clone()),
                limits,
                None,
                metrics.clone(),
                stopped,
            ))
        }
        None => None,
    };
    let limits = api::server::Limits::api(&config);
    let serve_api = api::server::serve(listener, api::router(state), limits, tls, metrics.clone(), async move {
        shutdown.await;
        tracing::info!("shutting down");
        let _ = signalled_tx.send(Some(Instant::now() + grace));
    });
    let serve = async move {
        match serve_health {
            Some(serve_health) => {
                tokio::join!(serve_api, serve_health);
            }
            None => serve_api.await,
        }
    };
    let mut cut_at = signalled.clone();
    let cut_off = async move {
        let at = cut_at.wait_for(Option::is_some).await.ok().and_then(|at| *at);
        if let Some(at) = at {
            tokio::time::sleep_until(at).await;
        }
    };
    // A stream that differs from the roster's spec when the node starts ends it at once, with the
    // reason. Once the inbox has pulled, a change only suspends the node's messages
    // (`transport::consume`), and the API stays up to say why.
    let mut inbox = ready;
    let refused = async move {
        let why = match inbox
            .wait_for(|state| matches!(state, InboxState::Pulling | InboxState::Refused(_)))
            .await
        {
            Ok(state) => match &*state {
                InboxState::Refused(why) => Some(why.clone()),
                _ => None,
            },
            Err(_) => None,
        };
        match why {
            Some(why) => why,
            None => std::future::pending().await,
        }
    };
    let mut refusal = None;
    tokio::select! {
        () = serve => {}
        _ = cut_off => tracing::warn!("requests still open at shutdown_grace_s; closing them"),
        why = refused => refusal = Some(why),
    }
    let stop_at = (*signalled.borrow()).unwrap_or_else(|| Instant::now() + grace);

    let drain = async {
        let _ = stop_tx.send(true);
        sweeper.abort();
        let _ = consumer_task.await;
        // The API and the consumer held the last runtime handles: the runtime finishes its queue.
        let _ = runtime_stopped.await;
        let _ = publisher_task.await;
        let _ = client.flush().await;
        read.close().await;
    };
    if tokio::time::timeout_at(stop_at, drain).await.is_err() {
        tracing::warn!(
            outbox = metrics.outbox_pending.load(std::sync::atomic::Ordering::Relaxed),
            "not drained within shutdown_grace_s; unpublished messages stay in the outbox for the next start"
        );
    }
    tracing::info!("stopped");
    match refusal {
        Some(why) => Err(Error::Config(why)),
        None => Ok(()),
    }
}

/// Forgets federatedsecure representations nobody used within their TTL, which returns the bytes
/// they held to the budget.
async fn sweep_representations(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(30));
    loop {
        every.tick().await;
        let dropped = state.federatedsecure.bus.sweep();
        if dropped > 0 {
            tracing::debug!(dropped, "expired representations");
        }
    }
}
