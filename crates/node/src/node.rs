//! Assembles a node from its config and runs it until shutdown: store, broker connection, runtime,
//! consumer, publisher and HTTP API. The entry point takes an already-bound listener and a
//! shutdown future, so tests and the demo can run nodes on ports they chose.

use crate::api::federatedsecure::{Bus, Federatedsecure, Simon, SyncObjects};
use crate::api::{self, AppState, Shared};
use crate::config::{NodeConfig, Roster};
use crate::envelope::Envelopes;
use crate::error::Error;
use crate::keys::NodeKeys;
use crate::metrics::Metrics;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::{store, transport};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use ring::rand::{SecureRandom, SystemRandom};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// The API's listening socket: inherited (`listen_fd`, e.g. from a test harness or a socket
/// activation) or bound to `listen`.
pub async fn bind(config: &NodeConfig) -> Result<TcpListener, Error> {
    match config.listen_fd {
        Some(fd) => {
            use std::os::fd::FromRawFd;
            // SAFETY: the parent process passed this descriptor for us to own; nothing else in
            // this process uses it.
            let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            listener.set_nonblocking(true)?;
            Ok(TcpListener::from_std(listener)?)
        }
        None => TcpListener::bind(&config.listen)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", config.listen))),
    }
}

/// Runs the node until `shutdown` resolves, then drains: stops taking requests and messages,
/// commits what is in progress, gives the publisher a few seconds, and returns.
pub async fn run(
    config: NodeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let roster = Arc::new(Roster::load(&config.roster)?);
    let keys = NodeKeys::load(&config.x25519_key, &config.ed25519_key)?;
    let envelopes = Arc::new(Envelopes::new(&config.id, keys, &roster)?);
    let (read, writer) = store::open(&config.store).await?;
    let metrics = Arc::new(Metrics::default());
    let client = transport::connect(&config, metrics.clone()).await?;
    let js = transport::jetstream(client.clone());

    let mut seed = [0u8; 32];
    SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| Error::Crypto("no system randomness".into()))?;
    let (outbox_tx, outbox_rx) = mpsc::unbounded_channel();
    let runtime_config = RuntimeConfig {
        default_deadline_s: config.default_deadline_s,
        max_deadline_s: config.max_deadline_s,
        max_active: config.max_active_computations,
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
    )
    .await?;
    let runtime_task = tokio::spawn(runtime.run(inbox));

    let (stop_tx, stop) = watch::channel(false);
    let (ready_tx, ready) = watch::channel(false);
    let max_deadline = Duration::from_secs(config.max_deadline_s);
    let consumer_task = tokio::spawn(transport::consume(
        js.clone(),
        envelopes.clone(),
        handle.clone(),
        metrics.clone(),
        max_deadline,
        ready_tx,
        stop.clone(),
    ));
    let publisher_task = tokio::spawn(transport::publish(
        js,
        config.id.clone(),
        config.max_chunk_bytes,
        outbox_rx,
        published,
        metrics.clone(),
        stop,
    ));

    let federatedsecure = Federatedsecure {
        bus: Bus::new(
            Duration::from_secs(config.representation_ttl_s),
            config.max_representations,
            config.max_representation_bytes,
        ),
        simon: Simon::new(config.id.clone(), roster.clone(), handle.clone(), read.clone()),
        objects: SyncObjects::default(),
    };
    let state = Arc::new(Shared {
        runtime: handle,
        read: read.clone(),
        federatedsecure,
        max_request_bytes: config.max_request_bytes,
        metrics,
        roster,
        envelopes,
        api_token: config.api_token.clone(),
        broker_ready: ready,
    });
    let sweeper = tokio::spawn(sweep_representations(state.clone()));
    let app = api::router(state);
    tracing::info!(node = %config.id, address = %listener.local_addr()?, "serving");
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;

    tracing::info!("shutting down: draining");
    let _ = stop_tx.send(true);
    sweeper.abort();
    let _ = consumer_task.await;
    // The API and the consumer held the last runtime handles: the runtime finishes its queue.
    let _ = runtime_task.await;
    let _ = publisher_task.await;
    let _ = client.flush().await;
    read.close().await;
    tracing::info!("stopped");
    Ok(())
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
