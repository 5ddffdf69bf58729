//! The broker side of a node: connection, the inbox consumer and the publisher.
//!
//! Every message travels on the federation's JetStream stream (`FSC` by default), subject
//! `<prefix>.<computation>.<to>.<from>` (`crate::config::stream::Names`). The operator creates the
//! stream (`fsc federation provision`); a node waits for it, verifies it (`crate::config::stream`) and
//! then creates its durable pull consumer `inbox-<id>` (filtered on `<prefix>.*.<id>.*`) afresh;
//! after a broker outage it keeps the consumer, creating it again only if the broker lost it. It
//! verifies the stream again each time the broker connection comes back and every
//! `stream_check_s` while it pulls. A stream that differs when the node starts ends it; found
//! later, it suspends the node's messages (nothing pulled, nothing published, readiness says why)
//! until it is as specified again. The consumer authenticates what arrives (envelope) and hands it
//! to the runtime, which acknowledges it only after the store committed it. The publisher sends
//! committed outbox rows with the deterministic `Nats-Msg-Id` `<computation>.<from>.<to>.<seq>`,
//! so a re-send after a crash or a
//! broker outage is a broker-side duplicate; it retries until the broker acknowledges, then
//! reports the rows as published. The small rows queued for one recipient travel together, as a
//! bundle (`crate::bundle`) on the subject of the first one's computation, with the first one's
//! id and the count as its message id; a duplicate that gets past the broker is dropped by the
//! receiver's store. Payloads above the broker's max payload (or the stream's
//! `max_msg_size`, if smaller) are split into chunks (header `Fsc-Chunk: i/n`), each
//! authenticated by an `Fsc-Chunk-Tag` that the consumer checks before a chunk is stored.
//! Connection loss is handled by async-nats's reconnect (capped backoff) to the configured servers
//! in order (over TLS, and through a JetStream domain's API prefix, as node.toml says); requests
//! time out. A pull request that dies with a server or a moved consumer leader (no heartbeat, no
//! responder) is renewed on the same consumer; a publish unacknowledged within
//! `publish_ack_timeout_ms` is sent again, so a stream leader's loss costs about its election.

use crate::bundle;
use crate::config::NodeConfig;
use crate::config::broker::login_options;
use crate::config::stream::{self, Names, StreamSpec};
use crate::envelope::{ChunkId, Envelopes, Rejection};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::runtime::{Delivery, Incoming, PublishedSink, RuntimeHandle};
use crate::store::OutboxRow;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use uuid::Uuid;

/// NATS header naming a chunk: `<index>/<count>`.
const CHUNK_HEADER: &str = "Fsc-Chunk";
/// NATS header carrying the sequence number of a chunked message.
const SEQ_HEADER: &str = "Fsc-Seq";
/// NATS header authenticating a chunk (`Envelopes::chunk_tag`), checked before it is stored.
const CHUNK_TAG_HEADER: &str = "Fsc-Chunk-Tag";
/// Most chunks of one message: 4096 chunks of a 1 MB payload (the broker's default) is a 4 GB
/// message, beyond anything a computation sends through the stream.
const MAX_CHUNKS: u32 = 4096;
/// Room left in a chunk for NATS headers (message id and chunk headers need about 150 bytes).
const HEADER_ALLOWANCE: usize = 256;
/// Publishes awaiting the broker's acknowledgement at once.
const MAX_IN_FLIGHT: usize = 4096;
/// Most messages handed to the runtime in one delivery.
const MAX_DELIVERY: usize = 2048;
/// Most payload bytes handed to the runtime in one delivery: the runtime stores a delivery in one
/// transaction, and a large message's chunks in a few smaller ones let other computations' small
/// messages in between.
const MAX_DELIVERY_BYTES: usize = 4 << 20;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between pulls of an inbox whose consumer has no leader yet: elections take seconds, and
/// the first pull after one should not wait much longer.
const STALLED_PAUSE: Duration = Duration::from_millis(250);
/// While the stream is absent, how often the node repeats that it waits for it.
const WAITING_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Connects to the broker as this node's NKey user (or `.creds` user), over TLS if configured.
/// Returns at once; the connection (and every reconnection) proceeds in the background with
/// capped exponential backoff.
/// `reconnected` is notified at every (re)connection, so that the consumer verifies the stream
/// again at once.
pub async fn connect(
    config: &NodeConfig,
    names: &Names,
    metrics: Arc<Metrics>,
    reconnected: Arc<Notify>,
) -> Result<async_nats::Client, Error> {
    let options = login_options(&config.broker_login()).await?;
    let events = metrics.clone();
    options
        .name(format!("fsc-node-{}", config.id))
        .custom_inbox_prefix(names.inbox_prefix(&config.id))
        // The party's own (nearest) server first; the others only when it is down.
        .retain_servers_order()
        .retry_on_initial_connect()
        .connection_timeout(REQUEST_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| Duration::from_millis((50u64 << attempts.min(7)).min(5000)))
        .event_callback(move |event| {
            let (events, reconnected) = (events.clone(), reconnected.clone());
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!("connected to the broker");
                        events.broker_connected.store(true, Ordering::Relaxed);
                        reconnected.notify_one();
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!("disconnected from the broker; reconnecting");
                        events.broker_connected.store(false, Ordering::Relaxed);
                    }
                    other => tracing::info!(event = %other, "broker event"),
                }
            }
        })
        .connect(config.nats_servers()?)
        .await
        .map_err(|e| Error::Broker(format!("cannot connect to {}: {e}", config.nats_url)))
}

/// The JetStream API, under the node's domain's prefix (`jetstream_domain`).
pub fn jetstream(client: async_nats::Client, config: &NodeConfig) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .max_ack_inflight(MAX_IN_FLIGHT)
        .backpressure_on_inflight(true)
        .api_prefix(config.broker_login().api_prefix())
        .build(client)
}

/// How the inbox consumer pulls (`consumer_*_ms` of node.toml), and how often it verifies the
/// stream while it does (`stream_check_s`).
#[derive(Debug, Clone, Copy)]
pub struct ConsumerTimings {
    pub ack_wait: Duration,
    pub heartbeat: Duration,
    pub pull_expiry: Duration,
    pub stream_check: Duration,
}

impl ConsumerTimings {
    pub fn of(config: &NodeConfig) -> ConsumerTimings {
        ConsumerTimings {
            ack_wait: Duration::from_millis(config.consumer_ack_wait_ms),
            heartbeat: Duration::from_millis(config.consumer_heartbeat_ms),
            pull_expiry: Duration::from_millis(config.consumer_pull_expiry_ms),
            stream_check: Duration::from_secs(config.stream_check_s),
        }
    }
}

/// Where the inbox consumer stands.
#[derive(Debug, Clone, PartialEq)]
pub enum InboxState {
    Starting,
    /// The stream does not exist yet: the operator has not provisioned it.
    AwaitingStream,
    Pulling,
    /// The stream differs from the roster's spec (the message says how): at start the node
    /// stops; once it has pulled, it exchanges no messages until the stream is as specified again.
    Refused(String),
}

/// Whether this node can exchange messages now: connected to the broker, with its inbox consumer
/// pulling. Read at every request, so it follows the connection both ways.
#[derive(Clone)]
pub struct Readiness {
    client: async_nats::Client,
    js: jetstream::Context,
    inbox: watch::Receiver<InboxState>,
    names: Arc<Names>,
}

impl Readiness {
    pub fn new(
        client: async_nats::Client,
        js: jetstream::Context,
        inbox: watch::Receiver<InboxState>,
        names: Arc<Names>,
    ) -> Readiness {
        Readiness {
            client,
            js,
            inbox,
            names,
        }
    }

    /// `Err` says what is missing.
    pub fn check(&self) -> Result<(), String> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err("not connected to the broker".into());
        }
        match &*self.inbox.borrow() {
            InboxState::Pulling => Ok(()),
            InboxState::Starting => Err("the inbox consumer is not pulling from the broker yet".into()),
            InboxState::AwaitingStream => {
                Err("waiting for the operator to provision the stream (fsc federation provision)".into())
            }
            InboxState::Refused(why) => Err(format!("sending and receiving no messages: {why}")),
        }
    }

    /// The federation's names on the broker.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// This node's stream's and inbox consumer's state, as the broker reports it now (with what
    /// a party may ask: the stream list and its own consumer).
    pub async fn stream_health(&self, me: &str) -> Result<StreamHealth, Error> {
        let name = self.names.inbox_stream(me);
        let broker = |e: &dyn std::fmt::Display| Error::Broker(format!("stream {name}: {e}"));
        let js = &self.js;
        let state = stream::find(js, &name)
            .await?
            .ok_or_else(|| broker(&"not provisioned"))?
            .state;
        let inbox: PullConsumer = js
            .get_consumer_from_stream(self.names.consumer(me), &name)
            .await
            .map_err(|e| broker(&e))?;
        let inbox = inbox.cached_info();
        Ok(StreamHealth {
            messages: state.messages,
            bytes: state.bytes,
            consumers: state.consumer_count,
            inbox_pending: inbox.num_pending,
            inbox_unacknowledged: inbox.num_ack_pending,
            inbox_redelivered: inbox.num_redelivered,
        })
    }
}

/// What the broker holds for this node: its stream (its inbox).
#[derive(Debug, Clone)]
pub struct StreamHealth {
    /// Messages in this node's stream, not yet consumed.
    pub messages: u64,
    pub bytes: u64,
    /// Consumers of the stream: this node's inbox consumer, once it started.
    pub consumers: usize,
    /// Messages for this node that it has not pulled yet.
    pub inbox_pending: u64,
    /// Messages this node pulled and has not acknowledged yet (not yet committed to its store).
    pub inbox_unacknowledged: usize,
    pub inbox_redelivered: usize,
}

/// Why the inbox consumer is not open.
enum Setback {
    /// A party's stream (named) is not there yet: wait for the operator.
    Absent(String),
    /// The stream differs from the spec: never use it.
    Refused(String),
    /// The broker did not answer as hoped (disconnected, timed out): retry.
    Broker(Error),
}

/// The federation's streams: the roster's spec, and the parties, each with a stream of its own.
pub struct Federation {
    pub spec: StreamSpec,
    pub names: Names,
    pub parties: Vec<String>,
}

/// Finds every party's stream and verifies it against the spec: this node receives through its
/// own and sends through the others'.
async fn verify_stream(js: &jetstream::Context, federation: &Federation) -> Result<(), Setback> {
    let names = &federation.names;
    let found = stream::list(js, |info| names.stream_party(&info.config.name).is_some())
        .await
        .map_err(Setback::Broker)?;
    // Every stream there is verified before one missing is waited for: a changed one is refused
    // whatever else is missing.
    let mut missing = None;
    for party in &federation.parties {
        let stream = names.inbox_stream(party);
        match found.iter().find(|info| info.config.name == stream) {
            Some(info) => stream::verify(&federation.spec, party, &info.config)
                .map_err(|mismatch| Setback::Refused(stream::refusal(&stream, &mismatch)))?,
            None => missing = missing.or(Some(stream)),
        }
    }
    missing.map_or(Ok(()), |stream| Err(Setback::Absent(stream)))
}

/// Finds the stream, verifies it against the spec, and opens this node's inbox consumer: a new
/// one at the node's first open (`fresh`) or when the broker lost it, else the one it has. Never
/// creates the stream: the operator does (`fsc federation provision`).
async fn open_inbox(
    js: &jetstream::Context,
    federation: &Federation,
    me: &str,
    ack_wait: Duration,
    fresh: bool,
    metrics: &Metrics,
) -> Result<PullConsumer, Setback> {
    verify_stream(js, federation).await?;
    let names = &federation.names;
    let stream = &names.inbox_stream(me);
    let broker = |e: &dyn std::fmt::Display| Setback::Broker(Error::Broker(format!("inbox of stream {stream}: {e}")));
    let name = names.consumer(me);
    if fresh {
        // At start, re-create the consumer rather than reuse it: messages a previous run had
        // received but not acknowledged are then redelivered at once instead of after `ack_wait`.
        // Nothing is lost: a work-queue stream keeps every message until it is acknowledged.
        if let Err(error) = js.delete_consumer_from_stream(&name, stream).await {
            tracing::debug!(%error, "no previous inbox consumer to replace");
        }
    } else {
        // After a reconnect, keep the consumer: in a cluster a new one waits for its replicas to
        // elect a leader (seconds, at every party at once), while what the lost connection had in
        // flight only comes again after `ack_wait`.
        match js.get_consumer_from_stream(&name, stream).await {
            Ok(consumer) => return Ok(consumer),
            Err(error) if consumer_gone(&error) => {
                tracing::info!(consumer = %name, "the inbox consumer is gone from the broker; creating it again");
            }
            Err(error) => return Err(broker(&error)),
        }
    }
    let consumer = js
        .create_consumer_on_stream(
            pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: names.inbox_filter(me),
                ack_policy: AckPolicy::Explicit,
                ack_wait,
                // Messages received but not yet committed wait in memory: this bounds them (and the
                // node's memory) when the runtime falls behind; the broker keeps the rest.
                max_ack_pending: 8192,
                ..Default::default()
            },
            stream,
        )
        .await
        .map_err(|e| broker(&e))?;
    Metrics::add(&metrics.inbox_consumers_created, 1);
    Ok(consumer)
}

/// Whether the broker answered that the consumer does not exist (not that it could not tell).
fn consumer_gone(error: &async_nats::jetstream::stream::ConsumerError) -> bool {
    matches!(
        error.kind(),
        async_nats::jetstream::stream::ConsumerErrorKind::JetStream(e)
            if e.error_code() == async_nats::jetstream::ErrorCode::CONSUMER_NOT_FOUND
    )
}

/// Pulls this node's inbox until `stop` turns true, handing authenticated messages to the runtime.
/// A stream that differs from `spec` before the inbox first pulled ends it, with `ready` at
/// [`InboxState::Refused`] (the node stops). Later, the stream is verified again every
/// `timings.stream_check` and whenever `reconnected` is notified; while it differs, `ready` is
/// [`InboxState::Refused`] and nothing is pulled (nor published: see [`publish`]).
#[allow(clippy::too_many_arguments)]
pub async fn consume(
    js: jetstream::Context,
    envelopes: Arc<Envelopes>,
    runtime: RuntimeHandle,
    metrics: Arc<Metrics>,
    federation: Federation,
    timings: ConsumerTimings,
    reconnected: Arc<Notify>,
    ready: watch::Sender<InboxState>,
    mut stop: watch::Receiver<bool>,
) {
    let me = envelopes.me().to_string();
    let names = federation.names.clone();
    let mut backoff = Backoff::default();
    let mut waiting_said: Option<tokio::time::Instant> = None;
    let mut recheck = Recheck {
        js: &js,
        federation: &federation,
        every: timings.stream_check,
        reconnected: &reconnected,
        due: Instant::now() + timings.stream_check,
    };
    let mut pulled_once = false;
    // Why the stream is refused, while it is (after the inbox first pulled).
    let mut refused: Option<String> = None;
    let mut fresh = true;
    'open: while !*stop.borrow() {
        let consumer = tokio::select! {
            _ = stop.changed() => break,
            consumer = open_inbox(&js, &federation, &me, timings.ack_wait, fresh, &metrics) => consumer,
        };
        let consumer = match consumer {
            Ok(consumer) => {
                fresh = false;
                consumer
            }
            Err(Setback::Absent(missing)) => {
                let _ = ready.send(InboxState::AwaitingStream);
                if waiting_said.is_none_or(|at| at.elapsed() >= WAITING_LOG_INTERVAL) {
                    tracing::warn!(
                        stream = names.stream(),
                        %missing,
                        "waiting for the operator to provision stream {} (fsc federation provision): no {missing} yet",
                        names.stream()
                    );
                    waiting_said = Some(tokio::time::Instant::now());
                }
                backoff.wait(&mut stop).await;
                continue;
            }
            Err(Setback::Refused(why)) if !pulled_once => {
                tracing::error!("refusing to use the stream: {why}");
                let _ = ready.send(InboxState::Refused(why));
                return;
            }
            Err(Setback::Refused(why)) => {
                suspend(&ready, &mut refused, why);
                backoff.wait(&mut stop).await;
                continue;
            }
            Err(Setback::Broker(error)) => {
                tracing::warn!(%error, "cannot open the inbox; retrying");
                backoff.wait(&mut stop).await;
                continue;
            }
        };
        if waiting_said.take().is_some() {
            tracing::info!(
                stream = names.stream(),
                "the stream is provisioned as the roster specifies"
            );
        }
        if refused.take().is_some() {
            tracing::info!(
                stream = names.stream(),
                "the stream is as the roster specifies again: sending and receiving messages"
            );
        }
        loop {
            let messages = consumer
                .stream()
                .max_messages_per_batch(1000)
                .expires(timings.pull_expiry)
                .heartbeat(timings.heartbeat)
                .messages()
                .await;
            let mut messages = match messages {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(%error, "cannot pull the inbox; retrying");
                    backoff.wait(&mut stop).await;
                    continue 'open;
                }
            };
            let _ = ready.send(InboxState::Pulling);
            pulled_once = true;
            backoff = Backoff::default();
            let pulled = pull(
                &mut messages,
                &names,
                &envelopes,
                &runtime,
                &metrics,
                &mut recheck,
                &mut stop,
            )
            .await;
            // Refused goes straight from Pulling to Refused: the publisher never sees it clear.
            if !matches!(pulled, Pulled::Refused(_)) {
                let _ = ready.send(InboxState::Starting);
            }
            match pulled {
                Pulled::Stopped => return,
                Pulled::Stalled => {
                    tokio::select! {
                        _ = tokio::time::sleep(STALLED_PAUSE) => {}
                        _ = stop.changed() => {}
                    }
                }
                Pulled::Broken => {
                    backoff.wait(&mut stop).await;
                    continue 'open;
                }
                Pulled::Refused(why) => {
                    suspend(&ready, &mut refused, why);
                    backoff.wait(&mut stop).await;
                    continue 'open;
                }
            }
        }
    }
}

/// Why [`pull`] returned.
enum Pulled {
    /// `stop` turned true, or the runtime is gone.
    Stopped,
    /// The broker's heartbeats stopped, or nothing answered the pull request: it died with a
    /// server, or the consumer's leader is being elected anew. The consumer is intact: pull it
    /// afresh after a short pause (what was delivered and lost in flight comes again after
    /// `ack_wait`).
    Stalled,
    /// The subscription failed otherwise: open the inbox again.
    Broken,
    /// The stream differs from the spec now (the reason): stop pulling.
    Refused(String),
}

/// The stream under a running node changed (`why`): no more messages through it until it is as
/// the roster specifies again (verified as often as a missing stream is looked for), and the node
/// stays up to say why (in the log once per reason).
fn suspend(ready: &watch::Sender<InboxState>, refused: &mut Option<String>, why: String) {
    if refused.as_deref() != Some(why.as_str()) {
        tracing::error!("sending and receiving no messages until the stream is as the roster specifies: {why}");
    }
    *refused = Some(why.clone());
    let _ = ready.send(InboxState::Refused(why));
}

/// When a pulling inbox verifies its stream again: every `every`, and as soon as the broker
/// connection comes back (`reconnected`), since the stream may have changed meanwhile.
struct Recheck<'a> {
    js: &'a jetstream::Context,
    federation: &'a Federation,
    every: Duration,
    reconnected: &'a Notify,
    due: Instant,
}

impl Recheck<'_> {
    /// Resolves when the next verification is due.
    async fn due(&self) {
        tokio::select! {
            _ = tokio::time::sleep_until(self.due) => {}
            _ = self.reconnected.notified() => {}
        }
    }

    /// Verifies the stream; `Err` says how it differs. A stream that is gone, or a broker that
    /// does not answer, is left to the pull, which then fails and opens the inbox again.
    async fn verify(&mut self) -> Result<(), String> {
        self.due = Instant::now() + self.every;
        match verify_stream(self.js, self.federation).await {
            Err(Setback::Refused(why)) => Err(why),
            Err(Setback::Broker(error)) => {
                tracing::debug!(%error, "cannot verify the stream now");
                Ok(())
            }
            Ok(()) | Err(Setback::Absent(_)) => Ok(()),
        }
    }
}

/// Hands what `messages` brings to the runtime, in deliveries, until it fails, `stop`, or the
/// stream is found changed.
async fn pull(
    messages: &mut pull::Stream,
    names: &Names,
    envelopes: &Envelopes,
    runtime: &RuntimeHandle,
    metrics: &Metrics,
    recheck: &mut Recheck<'_>,
    stop: &mut watch::Receiver<bool>,
) -> Pulled {
    loop {
        // The check runs in its branch's handler, where arriving messages cannot cancel it.
        let mut next = tokio::select! {
            _ = stop.changed() => return Pulled::Stopped,
            next = messages.next() => next,
            () = recheck.due() => {
                let verified = tokio::select! {
                    _ = stop.changed() => return Pulled::Stopped,
                    verified = recheck.verify() => verified,
                };
                match verified {
                    Ok(()) => continue,
                    Err(why) => return Pulled::Refused(why),
                }
            }
        };
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut interrupted = None;
        loop {
            match next {
                Some(Ok(message)) => {
                    bytes += message.payload.len();
                    batch.extend(prepare(message, names, envelopes, metrics).await);
                }
                Some(Err(error))
                    if matches!(
                        error.kind(),
                        pull::MessagesErrorKind::MissingHeartbeat | pull::MessagesErrorKind::NoResponders
                    ) =>
                {
                    tracing::warn!(%error, "the inbox's pull request is gone; pulling afresh");
                    interrupted = Some(Pulled::Stalled);
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "inbox pull interrupted; resubscribing");
                    interrupted = Some(Pulled::Broken);
                }
                None => interrupted = Some(Pulled::Broken),
            }
            if interrupted.is_some() || batch.len() >= MAX_DELIVERY || bytes >= MAX_DELIVERY_BYTES {
                break;
            }
            // Take whatever else is already here, so that one transaction covers it all.
            match messages.next().now_or_never() {
                Some(more) => next = more,
                None => break,
            }
        }
        if !batch.is_empty() && runtime.deliver(batch).await.is_err() {
            return Pulled::Stopped;
        }
        if let Some(interrupted) = interrupted {
            return interrupted;
        }
    }
}

/// Authenticates one broker message (or each message of a bundle); drops (and terminates) what
/// fails.
async fn prepare(
    message: jetstream::Message,
    names: &Names,
    envelopes: &Envelopes,
    metrics: &Metrics,
) -> Vec<Delivery> {
    let (message, acker) = message.split();
    let subject = message.subject.as_str();
    let Some((computation, _to, from)) = names.parse(subject) else {
        return reject(acker, metrics, Rejection::Malformed, subject).await;
    };
    if let Some(count) = message.headers.as_ref().and_then(|h| h.get(bundle::HEADER)) {
        let Some(wires) = bundle::unpack(&message.payload, count.as_str()) else {
            return reject(acker, metrics, Rejection::Malformed, subject).await;
        };
        let mut deliveries = Vec::with_capacity(wires.len());
        for wire in wires {
            match envelopes.open_bundled(from, wire) {
                Ok(opened) => deliveries.push(Delivery {
                    incoming: Incoming::Message(opened),
                    ack: None,
                }),
                Err(rejection) => {
                    tracing::warn!(%subject, %rejection, "message in a bundle dropped");
                    metrics.reject(rejection);
                }
            }
        }
        // One acknowledgement for the bundle, once the runtime has stored what it holds.
        match deliveries.last_mut() {
            Some(last) => {
                metrics.peer_seen(from);
                last.ack = Some(acker);
            }
            None => {
                // Term: never redeliver what can never be valid.
                let _ = acker.ack_with(AckKind::Term).await;
            }
        }
        return deliveries;
    }
    let chunk = message.headers.as_ref().and_then(|h| {
        Some((
            h.get(CHUNK_HEADER)?.as_str().to_string(),
            h.get(SEQ_HEADER)?.as_str().to_string(),
            h.get(CHUNK_TAG_HEADER).map(|t| t.as_str().to_string()),
        ))
    });
    if let Some((chunk, seq, tag)) = chunk {
        let parsed = (|| {
            let (idx, total) = chunk.split_once('/')?;
            let id = ChunkId {
                seq: seq.parse().ok()?,
                idx: idx.parse().ok()?,
                total: total.parse().ok()?,
            };
            (id.idx < id.total && id.total <= MAX_CHUNKS).then_some((Uuid::parse_str(computation).ok()?, id))
        })();
        let Some((computation, id)) = parsed else {
            return reject(acker, metrics, Rejection::Malformed, subject).await;
        };
        // Authenticated before anything is stored: without the sender's keys, a broker login
        // alone cannot fill this node's disk with chunks.
        let verified = match tag {
            Some(tag) => envelopes.verify_chunk(computation, from, &id, &message.payload, &tag),
            None => Err(Rejection::Forged),
        };
        if let Err(rejection) = verified {
            return reject(acker, metrics, rejection, subject).await;
        }
        metrics.peer_seen(from);
        let incoming = Incoming::Chunk {
            computation,
            sender: from.to_string(),
            id,
            data: message.payload.to_vec(),
        };
        return vec![Delivery {
            incoming,
            ack: Some(acker),
        }];
    }
    match envelopes.open(computation, from, &message.payload) {
        Ok(opened) => {
            metrics.peer_seen(from);
            vec![Delivery {
                incoming: Incoming::Message(opened),
                ack: Some(acker),
            }]
        }
        Err(rejection) => reject(acker, metrics, rejection, subject).await,
    }
}

async fn reject(
    acker: jetstream::message::Acker,
    metrics: &Metrics,
    rejection: Rejection,
    subject: &str,
) -> Vec<Delivery> {
    tracing::warn!(%subject, %rejection, "message dropped");
    metrics.reject(rejection);
    // Term: never redeliver what can never be valid.
    let _ = acker.ack_with(AckKind::Term).await;
    Vec::new()
}

/// Where and how large the publisher sends.
pub struct Outgoing {
    pub names: Names,
    /// The node's own cap on a chunk (`max_chunk_bytes`), if any.
    pub max_chunk_bytes: Option<usize>,
    /// The stream's largest message (payload and headers).
    pub max_msg_size: usize,
    /// How long a publish waits for the stream's acknowledgement (`publish_ack_timeout_ms`).
    pub ack_timeout: Duration,
    /// The most each party's stream holds (the roster's `[stream] max_bytes`), for the log and
    /// the size of a broker message.
    pub max_bytes: i64,
}

/// The first pause before a recipient whose stream is full is tried again; it doubles with every
/// refusal, up to [`FULL_PAUSE_MAX`].
const FULL_PAUSE_FIRST: Duration = Duration::from_millis(100);
const FULL_PAUSE_MAX: Duration = Duration::from_secs(2);

/// A recipient whose stream refused a message as full (its party is away, or behind, and its
/// inbox holds `max_bytes`): what is for it waits here, one probe goes out after each pause, and
/// the rest follows once the stream takes one again. Messages to every other party go on.
struct Parked {
    since: Instant,
    pause: Duration,
    /// When the next probe goes out.
    next: Instant,
    /// The first row id of the probe in flight, if one is.
    probe: Option<i64>,
    /// Broker messages refused, re-sent as they were (same message ids).
    failed: VecDeque<Vec<OutboxRow>>,
    /// Rows for the recipient that came since, not yet packed.
    rows: VecDeque<OutboxRow>,
}

impl Parked {
    fn waiting(&self) -> usize {
        self.rows.len() + self.failed.iter().map(Vec::len).sum::<usize>()
    }
}

/// How one broker message's publish ended.
struct Sent {
    recipient: String,
    first: i64,
    result: Result<Vec<i64>, (Vec<OutboxRow>, Error)>,
}

/// Whether the recipient's stream refused a publish as full (`max_bytes`; nats-server answers
/// "maximum bytes exceeded"): its recipient has to take messages off it first. Not a full subject
/// (`max_msgs_per_subject`, "maximum messages per subject exceeded"): that holds up one
/// computation's messages from this node to that recipient, which are retried as before, and
/// must not hold up the recipient's others (a party could fill one pair's subject through the
/// JetStream API's reply subjects).
fn stream_full(error: &Error) -> bool {
    error.to_string().contains("maximum bytes exceeded")
}

/// Publishes committed outbox rows until the runtime is gone and everything is acknowledged.
/// A node that stops sooner (its shutdown grace is bounded) drops this task: what is left stays in
/// the outbox and is re-sent at the next start. Nothing is sent before the inbox has verified the
/// stream (`inbox` first [`InboxState::Pulling`]), nor while the stream is refused: what such a
/// stream does with a message (copy it elsewhere, drop it) is not what the parties agreed on.
/// A recipient whose stream is full is [`Parked`]: its messages wait, without holding up the
/// others', and the node logs it once (WARN) and when it clears (INFO).
pub async fn publish(
    js: jetstream::Context,
    envelopes: Arc<Envelopes>,
    outgoing: Arc<Outgoing>,
    mut outbox: mpsc::UnboundedReceiver<Vec<OutboxRow>>,
    published: PublishedSink,
    metrics: Arc<Metrics>,
    mut inbox: watch::Receiver<InboxState>,
) {
    let mut queue: VecDeque<OutboxRow> = VecDeque::new();
    // Broker messages whose publish failed, re-sent as they were: a bundle that did reach the
    // stream (its acknowledgement was lost) then has the same message id, and the stream drops
    // the copy instead of the receiver counting each message in it as a replay.
    let mut retries: VecDeque<Vec<OutboxRow>> = VecDeque::new();
    let mut parked: BTreeMap<String, Parked> = BTreeMap::new();
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    let (mut verified, mut watching) = (false, true);
    let start = |rows: Vec<OutboxRow>| send(js.clone(), envelopes.clone(), outgoing.clone(), metrics.clone(), rows);
    loop {
        let held = match &*inbox.borrow_and_update() {
            InboxState::Pulling => {
                verified = true;
                false
            }
            InboxState::Refused(_) => true,
            InboxState::Starting | InboxState::AwaitingStream => !verified,
        };
        // Stopping while held: what is unsent stays in the outbox for the next start.
        if !open && in_flight.is_empty() && (held || (queue.is_empty() && retries.is_empty() && parked.is_empty())) {
            return;
        }
        let budget = broker_message_budget(&js, &outgoing);
        let now = Instant::now();
        for parking in parked
            .values_mut()
            .filter(|p| !held && p.probe.is_none() && p.next <= now)
        {
            let probe = match parking.failed.pop_front() {
                Some(rows) => Some(rows),
                None => bundle::take(&mut parking.rows, budget),
            };
            if let Some(rows) = probe {
                parking.probe = Some(rows[0].id);
                in_flight.push(start(rows));
            }
        }
        let due = parked.values().filter(|p| p.probe.is_none()).map(|p| p.next).min();
        while !held && in_flight.len() < MAX_IN_FLIGHT {
            let rows = match retries.pop_front() {
                Some(rows) if bundle::fits(&rows, budget) => Some(rows),
                // The broker now takes less (another server): packed again.
                Some(rows) => {
                    rows.into_iter().rev().for_each(|row| queue.push_front(row));
                    bundle::take(&mut queue, budget)
                }
                None => bundle::take(&mut queue, budget),
            };
            let Some(rows) = rows else { break };
            in_flight.push(start(rows));
        }
        tokio::select! {
            changed = inbox.changed(), if watching => watching = changed.is_ok(),
            () = tokio::time::sleep_until(due.unwrap_or(now)), if due.is_some() && !held => {}
            rows = outbox.recv(), if open => match rows {
                Some(rows) if parked.is_empty() => queue.extend(rows),
                Some(rows) => {
                    for row in rows {
                        match parked.get_mut(&row.recipient) {
                            Some(parking) => parking.rows.push_back(row),
                            None => queue.push_back(row),
                        }
                    }
                    metrics.set_full_streams(parked.iter().map(|(r, p)| (r.clone(), p.waiting())));
                }
                None => open = false,
            },
            Some(sent) = in_flight.next(), if !in_flight.is_empty() => {
                let mut done = Vec::new();
                let mut changed = false;
                let mut handle = |sent: Sent| {
                    let Sent { recipient, first, result } = sent;
                    match result {
                        Ok(keys) => {
                            done.extend(keys);
                            // Only the probe's success says that the stream takes messages again:
                            // a publish in flight when it filled may have taken its last room.
                            let probed = parked.get(&recipient).is_some_and(|p| p.probe == Some(first));
                            if let Some(parking) = probed.then(|| parked.remove(&recipient)).flatten() {
                                // The stream takes messages again: everything that waited goes.
                                tracing::info!(
                                    recipient = %recipient,
                                    stream = %outgoing.names.inbox_stream(&recipient),
                                    waited_s = parking.since.elapsed().as_secs_f64(),
                                    messages = parking.waiting(),
                                    "stream {} takes messages again; sending the messages to {recipient} that waited",
                                    outgoing.names.inbox_stream(&recipient),
                                );
                                retries.extend(parking.failed);
                                queue.extend(parking.rows);
                                changed = true;
                            }
                        }
                        Err((rows, error)) => {
                            Metrics::add(&metrics.publish_retries, 1);
                            let full = stream_full(&error);
                            if !full && !parked.contains_key(&recipient) {
                                tracing::debug!(%error, messages = rows.len(), "publish failed; will retry");
                                retries.push_back(rows);
                                return;
                            }
                            changed = true;
                            let parking = parked.entry(recipient.clone()).or_insert_with(|| {
                                Metrics::add(&metrics.stream_full_episodes, 1);
                                let stream = outgoing.names.inbox_stream(&recipient);
                                tracing::warn!(
                                    recipient = %recipient,
                                    %stream,
                                    max_bytes = outgoing.max_bytes,
                                    %error,
                                    "stream {stream} is full: {recipient}'s inbox holds its max_bytes ({} bytes), \
                                     {recipient} is away or behind; messages to {recipient} wait here, \
                                     the other parties' go on",
                                    outgoing.max_bytes,
                                );
                                // What is queued for the recipient waits with it.
                                let (rows, others): (VecDeque<_>, VecDeque<_>) =
                                    queue.drain(..).partition(|row| row.recipient == recipient);
                                queue = others;
                                let (failed, others): (VecDeque<_>, VecDeque<_>) =
                                    retries.drain(..).partition(|rows| rows[0].recipient == recipient);
                                retries = others;
                                let now = Instant::now();
                                Parked {
                                    since: now,
                                    pause: FULL_PAUSE_FIRST,
                                    next: now + FULL_PAUSE_FIRST,
                                    probe: None,
                                    failed,
                                    rows,
                                }
                            });
                            if parking.probe == Some(first) {
                                // The probe was refused too: wait longer.
                                parking.probe = None;
                                parking.pause = (parking.pause * 2).min(FULL_PAUSE_MAX);
                                parking.next = Instant::now() + parking.pause;
                                parking.failed.push_front(rows);
                            } else {
                                parking.failed.push_back(rows);
                            }
                        }
                    }
                };
                handle(sent);
                while let Some(Some(sent)) = in_flight.next().now_or_never() {
                    handle(sent);
                }
                if changed {
                    metrics.set_full_streams(parked.iter().map(|(r, p)| (r.clone(), p.waiting())));
                }
                if !done.is_empty() {
                    published.send(done);
                }
            }
        }
    }
}

/// The most payload one broker message carries: the broker's max payload or the stream's
/// `max_msg_size`, whichever is smaller, less room for headers, or the node's `max_chunk_bytes`;
/// and at most a quarter of a party's stream (`max_bytes`): a message about as large as the
/// stream itself fits only into an empty one, so after the stream has been full it could wait
/// for ever behind a recipient that is never quite drained.
fn broker_message_budget(js: &jetstream::Context, outgoing: &Outgoing) -> usize {
    let broker_limit = match js.client().server_info().max_payload {
        0 => 1024 * 1024,
        n => n,
    }
    .min(outgoing.max_msg_size)
    .min(match outgoing.max_bytes {
        bytes if bytes > 0 => usize::try_from(bytes / 4).unwrap_or(usize::MAX),
        _ => usize::MAX,
    });
    outgoing
        .max_chunk_bytes
        .unwrap_or(usize::MAX)
        .min(broker_limit.saturating_sub(HEADER_ALLOWANCE))
        .max(64)
}

/// Publishes outbox rows for one recipient ([`bundle::take`]) as one broker message (a lone row
/// as itself, in chunks if it is large; several as a bundle) and waits for the broker's
/// acknowledgement. A failure waits a little before returning the rows, so retries are paced
/// (but for a full stream, whose recipient the publisher parks).
async fn send(
    js: jetstream::Context,
    envelopes: Arc<Envelopes>,
    outgoing: Arc<Outgoing>,
    metrics: Arc<Metrics>,
    rows: Vec<OutboxRow>,
) -> Sent {
    let me = envelopes.me();
    let row = &rows[0];
    let subject = outgoing.names.subject(&row.computation, &row.recipient, me);
    let message_id = format!("{}.{}.{}.{}", row.computation, me, row.recipient, row.seq);
    let result = if rows.len() > 1 {
        // The first message's id and the count: a re-sent bundle of the same rows is a duplicate.
        let publish = Publish::build()
            .payload(bundle::pack(&rows).into())
            .message_id(format!("{message_id}+{}", rows.len()))
            .header(bundle::HEADER, rows.len().to_string().as_str());
        publish_one(&js, &subject, publish, outgoing.ack_timeout, &metrics).await
    } else {
        send_alone(&js, &envelopes, &outgoing, &metrics, row, &subject, &message_id).await
    };
    let (recipient, first) = (row.recipient.clone(), row.id);
    let result = match result {
        Ok(()) => Ok(rows.iter().map(|r| r.id).collect()),
        // A full stream: the publisher parks the recipient and paces its retries.
        Err(error) if stream_full(&error) => Err((rows, error)),
        Err(error) => {
            tokio::time::sleep(Duration::from_millis(250)).await;
            Err((rows, error))
        }
    };
    Sent {
        recipient,
        first,
        result,
    }
}

/// Publishes one row as itself, in chunks if it is larger than a broker message.
async fn send_alone(
    js: &jetstream::Context,
    envelopes: &Envelopes,
    outgoing: &Outgoing,
    metrics: &Metrics,
    row: &OutboxRow,
    subject: &str,
    message_id: &str,
) -> Result<(), Error> {
    let chunk_size = broker_message_budget(js, outgoing);
    let payload = Bytes::from(row.envelope.clone());
    if payload.len() <= chunk_size {
        let publish = Publish::build().payload(payload).message_id(message_id);
        return publish_one(js, subject, publish, outgoing.ack_timeout, metrics).await;
    }
    let computation = Uuid::parse_str(&row.computation).map_err(|e| Error::Broker(e.to_string()))?;
    let total = payload.len().div_ceil(chunk_size);
    for idx in 0..total {
        let part = payload.slice(idx * chunk_size..((idx + 1) * chunk_size).min(payload.len()));
        let id = ChunkId {
            seq: row.seq as u64,
            idx: idx as u32,
            total: total as u32,
        };
        let tag = envelopes.chunk_tag(computation, &row.recipient, &id, &part)?;
        let publish = Publish::build()
            .payload(part)
            .message_id(format!("{message_id}.{idx}"))
            .header(CHUNK_HEADER, format!("{idx}/{total}").as_str())
            .header(SEQ_HEADER, row.seq.to_string().as_str())
            .header(CHUNK_TAG_HEADER, tag.as_str());
        publish_one(js, subject, publish, outgoing.ack_timeout, metrics).await?;
    }
    Ok(())
}

/// Publishes and waits at most `ack_timeout` for the stream's acknowledgement: a message sent to
/// a stream leader that died is re-sent soon after a new one is elected (a duplicate of one
/// that did arrive is dropped by its message id).
async fn publish_one(
    js: &jetstream::Context,
    subject: &str,
    publish: Publish,
    ack_timeout: Duration,
    metrics: &Metrics,
) -> Result<(), Error> {
    let ack = js
        .send_publish(subject.to_string(), publish)
        .await
        .map_err(|e| Error::Broker(e.to_string()))?;
    tokio::time::timeout(ack_timeout, ack)
        .await
        .map_err(|_| Error::Broker(format!("no acknowledgement from the stream within {ack_timeout:?}")))?
        .map_err(|e| Error::Broker(e.to_string()))?;
    Metrics::add(&metrics.broker_messages_published, 1);
    Ok(())
}

/// Capped exponential backoff that gives up waiting when `stop` turns true.
struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            next: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    async fn wait(&mut self, stop: &mut watch::Receiver<bool>) {
        let delay = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_full_stream_parks_its_recipient() {
        let refused = |text: &str| Error::Broker(format!("{text} (10077)"));
        assert!(stream_full(&refused("nats: maximum bytes exceeded")));
        assert!(!stream_full(&refused("nats: maximum messages per subject exceeded")));
        assert!(!stream_full(&refused("no acknowledgement from the stream within 2s")));
    }
}
