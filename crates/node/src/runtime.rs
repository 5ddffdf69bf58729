//! The runtime: the one task that applies submissions and messages to the engine and commits the
//! consequences, persist-then-act.
//!
//! Work arrives as [`Command`]s. The runtime takes whatever is queued (up to a bound), applies it
//! all inside one `BEGIN IMMEDIATE` transaction (new engine states, inbox keys, sealed outgoing
//! messages in the outbox, results) and commits; only then does it acknowledge broker messages,
//! hand the outbox to the publisher and answer clients. Random masks are therefore drawn once: a
//! restart re-sends the stored envelopes, never fresh shares. If a commit fails, the in-memory
//! state is reloaded from the store and nothing is acknowledged, so the broker redelivers.
//!
//! Every computation ends: a deadline fails it, and a failure at this party (bad input, a peer's
//! mismatching definition, a protocol error) is announced to every other party with a signed
//! abort, which fails it there too. This module owns these rules; it does no network I/O itself.

use crate::config::Roster;
use crate::envelope::{AbortReason, Envelopes, Kind, Opened, Rejection};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::store::{self, ComputationRow, InboxRow, MessageKey, OutboxRow, Writer};
use async_nats::jetstream::AckKind;
use async_nats::jetstream::message::Acker;
use fsc_simon::{EngineError, Machine, Spec, Step};
use rand_chacha::ChaCha20Rng;
use ring::{digest, hmac};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc, oneshot};
use uuid::Uuid;

/// At most this many commands go into one transaction (a command may hold many items).
const MAX_COMMANDS_PER_BATCH: usize = 512;
/// How often deadlines are checked.
const TICK: Duration = Duration::from_millis(500);
/// How often messages for never-submitted computations are expired.
const ORPHAN_SWEEP_EVERY_TICKS: u64 = 120;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One computation as a local client submits it.
#[derive(Debug, Clone)]
pub struct Submission {
    pub id: Option<Uuid>,
    pub microprotocol: String,
    pub parties: Vec<String>,
    pub parameters: Value,
    pub input: Value,
    pub deadline_s: Option<u64>,
    /// The federatedsecure network uuid, for computations started by its `compute`.
    pub network: Option<String>,
}

/// What became of an accepted submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub id: Uuid,
    pub status: String,
    /// False if the computation existed already (an idempotent retry).
    #[serde(skip)]
    pub created: bool,
}

/// A message from the broker, authenticated (or a chunk of one), with its acknowledgement.
pub struct Delivery {
    pub incoming: Incoming,
    pub ack: Option<Acker>,
}

pub enum Incoming {
    Message(Opened),
    Chunk {
        computation: Uuid,
        sender: String,
        seq: u64,
        idx: u32,
        total: u32,
        data: Vec<u8>,
    },
}

type SubmitResults = Vec<Result<Accepted, Error>>;
type SubmitReply = oneshot::Sender<SubmitResults>;

enum Command {
    Submit { items: Vec<Submission>, reply: SubmitReply },
    Deliver(Vec<Delivery>),
    Published(Vec<i64>),
}

/// Wakes long-polling readers when computations become final.
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<Uuid, Arc<Notify>>>,
}

impl Waiters {
    /// Starts watching `id`: enable the returned watch's `notified()` future, then check the
    /// status, then await it (so a finish between the check and the wait is not missed).
    pub fn watch(&self, id: Uuid) -> Watch<'_> {
        let notify = self.map.lock().expect("waiters lock").entry(id).or_default().clone();
        Watch {
            waiters: self,
            id,
            notify,
        }
    }

    fn finished(&self, ids: &[Uuid]) {
        let mut map = self.map.lock().expect("waiters lock");
        for id in ids {
            if let Some(notify) = map.remove(id) {
                notify.notify_waiters();
            }
        }
    }
}

/// A reader waiting for one computation. Dropping the last watch of an id forgets it, so waiting
/// for computations that never finish here (unknown ids) leaves nothing behind.
pub struct Watch<'a> {
    waiters: &'a Waiters,
    id: Uuid,
    notify: Arc<Notify>,
}

impl Watch<'_> {
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let mut map = self.waiters.map.lock().expect("waiters lock");
        // Under the lock, the map's reference and ours are all there are if nobody else waits.
        if map.get(&self.id).is_some_and(|n| Arc::ptr_eq(n, &self.notify)) && Arc::strong_count(&self.notify) == 2 {
            map.remove(&self.id);
        }
    }
}

/// How the rest of the node talks to the runtime. The runtime stops once every handle is gone.
#[derive(Clone)]
pub struct RuntimeHandle {
    commands: mpsc::Sender<Command>,
    pub waiters: Arc<Waiters>,
}

/// Where the publisher reports outbox rows the broker has stored. Never blocks, and does not keep
/// the runtime alive (so the runtime can stop before the publisher has drained).
pub struct PublishedSink(mpsc::UnboundedSender<Vec<i64>>);

impl PublishedSink {
    pub fn send(&self, keys: Vec<i64>) {
        let _ = self.0.send(keys);
    }
}

impl RuntimeHandle {
    /// Submits computations; one result per item, all committed in one transaction.
    pub async fn submit(&self, items: Vec<Submission>) -> Result<Vec<Result<Accepted, Error>>, Error> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Submit { items, reply })
            .await
            .map_err(|_| Error::Unavailable("the node is shutting down".into()))?;
        answer
            .await
            .map_err(|_| Error::Unavailable("the store is not available; retry".into()))
    }

    /// Hands over authenticated messages; they are acknowledged once committed.
    pub async fn deliver(&self, deliveries: Vec<Delivery>) -> Result<(), Error> {
        self.commands
            .send(Command::Deliver(deliveries))
            .await
            .map_err(|_| Error::Unavailable("the node is shutting down".into()))
    }
}

/// Static facts the runtime needs.
pub struct RuntimeConfig {
    pub default_deadline_s: u64,
    pub max_deadline_s: u64,
    /// Submissions wait while this many computations are active here.
    pub max_active: usize,
}

struct Active {
    row: ComputationRow,
    parties: Vec<String>,
    machine: Machine,
    digest: [u8; 32],
}

/// Everything one batch changes, written at the end of the transaction.
#[derive(Default)]
struct Batch {
    /// Active computations whose state changed.
    touched: HashSet<Uuid>,
    /// Rows that are no longer active (final, or tombstones), to write as they are.
    settled: HashMap<Uuid, ComputationRow>,
    /// Computations that became final in this batch.
    finished: Vec<Uuid>,
    outbox: Vec<OutboxRow>,
    /// Computations whose pending inbox rows were consumed.
    consumed: Vec<String>,
    /// Outbox rows the broker has stored.
    published: Vec<i64>,
    acks: Vec<Acker>,
    replies: Vec<(SubmitReply, SubmitResults)>,
    succeeded: u64,
    failed: u64,
    submitted: u64,
    received: u64,
}

pub struct Runtime {
    me: String,
    roster: Arc<Roster>,
    envelopes: Arc<Envelopes>,
    /// `None` only while a batch is being applied (the transaction borrows it).
    writer: Option<Writer>,
    rng: ChaCha20Rng,
    input_mac: hmac::Key,
    config: RuntimeConfig,
    active: HashMap<Uuid, Active>,
    /// Submissions waiting for room (see `admit`).
    deferred: VecDeque<(Vec<Submission>, SubmitReply)>,
    publisher: mpsc::UnboundedSender<Vec<OutboxRow>>,
    waiters: Arc<Waiters>,
    metrics: Arc<Metrics>,
    ticks: u64,
}

impl Runtime {
    /// Loads the active computations and the unsent outbox; returns the runtime, a handle to it,
    /// and the receiving ends its `run` needs.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        me: String,
        roster: Arc<Roster>,
        envelopes: Arc<Envelopes>,
        mut writer: Writer,
        rng: ChaCha20Rng,
        config: RuntimeConfig,
        publisher: mpsc::UnboundedSender<Vec<OutboxRow>>,
        metrics: Arc<Metrics>,
    ) -> Result<(Runtime, RuntimeHandle, PublishedSink, RuntimeInbox), Error> {
        let rows = store::active_computations(writer.conn()).await?;
        let outbox = store::all_outbox(writer.conn()).await?;
        metrics.outbox_pending.store(outbox.len() as i64, Ordering::Relaxed);
        if !outbox.is_empty() {
            tracing::info!(
                messages = outbox.len(),
                "re-publishing the outbox left by the previous run"
            );
            let _ = publisher.send(outbox);
        }
        let secret = envelopes.keys().x25519.to_bytes();
        let mac_key = digest::digest(&digest::SHA256, &[b"fsc/input-mac/v1\0".as_slice(), &secret].concat());
        // Small: a command can hold thousands of items, and a full queue pushes back on the API
        // and the consumer instead of growing.
        let (commands_tx, commands) = mpsc::channel(64);
        let (published_tx, published) = mpsc::unbounded_channel();
        let waiters = Arc::new(Waiters::default());
        let mut runtime = Runtime {
            me,
            roster,
            envelopes,
            writer: Some(writer),
            rng,
            input_mac: hmac::Key::new(hmac::HMAC_SHA256, mac_key.as_ref()),
            config,
            active: HashMap::new(),
            deferred: VecDeque::new(),
            publisher,
            waiters: waiters.clone(),
            metrics,
            ticks: 0,
        };
        runtime.load_active(rows)?;
        let handle = RuntimeHandle {
            commands: commands_tx,
            waiters,
        };
        Ok((
            runtime,
            handle,
            PublishedSink(published_tx),
            RuntimeInbox { commands, published },
        ))
    }

    fn load_active(&mut self, rows: Vec<ComputationRow>) -> Result<(), Error> {
        self.active.clear();
        for mut row in rows {
            let id = parse_uuid(&row.id)?;
            let machine: Machine = serde_json::from_str(row.machine.as_deref().unwrap_or("null"))
                .map_err(|e| Error::Config(format!("stored state of computation {id} is unreadable: {e}")))?;
            let parties: Vec<String> = serde_json::from_str(row.parties.as_deref().unwrap_or("[]"))
                .map_err(|e| Error::Config(format!("stored parties of computation {id} are unreadable: {e}")))?;
            let digest = row.digest.clone().and_then(|d| d.try_into().ok()).unwrap_or([0; 32]);
            row.machine = None;
            self.active.insert(
                id,
                Active {
                    row,
                    parties,
                    machine,
                    digest,
                },
            );
        }
        self.metrics
            .computations_active
            .store(self.active.len() as i64, Ordering::Relaxed);
        Ok(())
    }

    /// Applies commands until every handle is dropped.
    pub async fn run(mut self, mut inbox: RuntimeInbox) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut commands = Vec::new();
            let mut deadlines_due = false;
            // Deferred submissions that may now start need no new command to wake us.
            if !self.admissible() || self.deferred.is_empty() {
                tokio::select! {
                    command = inbox.commands.recv() => match command {
                        Some(command) => commands.push(command),
                        None => break,
                    },
                    Some(keys) = inbox.published.recv() => commands.push(Command::Published(keys)),
                    _ = tick.tick() => deadlines_due = true,
                }
            }
            while commands.len() < MAX_COMMANDS_PER_BATCH {
                match inbox.commands.try_recv() {
                    Ok(command) => commands.push(command),
                    Err(_) => break,
                }
            }
            while let Ok(keys) = inbox.published.try_recv() {
                commands.push(Command::Published(keys));
            }
            let commands = self.admit(commands);
            self.process(commands, deadlines_due).await;
        }
        tracing::debug!("runtime stopped");
    }

    fn admissible(&self) -> bool {
        self.active.len() < self.config.max_active
    }

    /// Holds back submissions while too many computations are active, so that a client that
    /// submits faster than the federation computes meets backpressure (its request waits)
    /// instead of growing this node's memory. Messages are never held back.
    fn admit(&mut self, commands: Vec<Command>) -> Vec<Command> {
        let mut admitted = Vec::with_capacity(commands.len());
        for command in commands {
            match command {
                Command::Submit { items, reply } => self.deferred.push_back((items, reply)),
                other => admitted.push(other),
            }
        }
        let mut starting = 0;
        while let Some((items, _)) = self.deferred.front() {
            // A request larger than the limit still runs, alone.
            if self.active.len() + starting + items.len() > self.config.max_active
                && (starting > 0 || !self.active.is_empty())
            {
                break;
            }
            starting += items.len();
            let (items, reply) = self.deferred.pop_front().expect("checked front");
            admitted.push(Command::Submit { items, reply });
        }
        admitted
    }

    async fn process(&mut self, commands: Vec<Command>, deadlines_due: bool) {
        let mut batch = Batch::default();
        let mut writer = self.writer.take().expect("the writer is back after every batch");
        let result = self.apply(&mut writer, commands, deadlines_due, &mut batch).await;
        match result {
            Ok(()) => self.after_commit(batch),
            Err(error) => {
                tracing::error!(%error, "store transaction failed; reloading state, messages will be redelivered");
                Metrics::add(&self.metrics.store_batch_failures, 1);
                for (reply, _) in batch.replies {
                    let _ = reply.send(Vec::new());
                }
                for ack in batch.acks {
                    tokio::spawn(async move { ack.ack_with(AckKind::Nak(None)).await });
                }
                let reloaded = match store::active_computations(writer.conn()).await {
                    Ok(rows) => self.load_active(rows),
                    Err(e) => Err(e),
                };
                if let Err(error) = reloaded {
                    tracing::error!(%error, "cannot reload state from the store; exiting");
                    std::process::exit(70);
                }
            }
        }
        self.writer = Some(writer);
    }

    async fn apply(
        &mut self,
        writer: &mut Writer,
        commands: Vec<Command>,
        deadlines_due: bool,
        batch: &mut Batch,
    ) -> Result<(), Error> {
        let now = now_ms();
        let mut submissions = Vec::new();
        let mut deliveries = Vec::new();
        for command in commands {
            match command {
                Command::Submit { items, reply } => submissions.push((items, reply)),
                Command::Deliver(items) => deliveries.extend(items),
                Command::Published(keys) => batch.published.extend(keys),
            }
        }
        let mut tx = writer.begin().await?;
        let conn = &mut *tx;

        // Chunks first: a completed message joins the other deliveries.
        let mut messages = Vec::new();
        for delivery in deliveries {
            if let Some(ack) = delivery.ack {
                batch.acks.push(ack);
            }
            match delivery.incoming {
                Incoming::Message(opened) => messages.push(opened),
                Incoming::Chunk {
                    computation,
                    sender,
                    seq,
                    idx,
                    total,
                    data,
                } => {
                    let chunk = store::ChunkRow {
                        computation: computation.to_string(),
                        sender: sender.clone(),
                        seq: seq as i64,
                        idx: idx as i64,
                        total: total as i64,
                        data,
                        received_at: now,
                    };
                    if let Some(parts) = store::add_chunk(conn, &chunk).await? {
                        let wire: Vec<u8> = parts.into_iter().flat_map(|p| p.data).collect();
                        match self.envelopes.open(&chunk.computation, &sender, &wire) {
                            Ok(opened) if opened.header.seq == seq => messages.push(opened),
                            Ok(_) => self.metrics.reject(Rejection::Misrouted),
                            Err(rejection) => {
                                tracing::warn!(%computation, %sender, %rejection, "reassembled message rejected");
                                self.metrics.reject(rejection);
                            }
                        }
                    }
                }
            }
        }

        for (items, reply) in submissions {
            let results = self.submit_all(conn, items, now, batch).await?;
            batch.replies.push((reply, results));
        }
        self.receive_all(conn, messages, now, batch).await?;
        if deadlines_due {
            self.expire(conn, now, batch).await?;
        }

        store::delete_outbox(conn, &batch.published).await?;
        let mut rows: Vec<ComputationRow> = Vec::with_capacity(batch.touched.len() + batch.settled.len());
        for id in &batch.touched {
            if let Some(active) = self.active.get(id) {
                let mut row = active.row.clone();
                row.machine = Some(serde_json::to_string(&active.machine).expect("machines serialise"));
                rows.push(row);
            }
        }
        let settled: Vec<&ComputationRow> = batch.settled.values().collect();
        let all: Vec<&ComputationRow> = rows.iter().chain(settled).collect();
        store::upsert_computations(conn, &all).await?;
        store::insert_outbox(conn, &mut batch.outbox).await?;
        store::consume_inbox(conn, &batch.consumed).await?;
        let finished: Vec<String> = batch.finished.iter().map(Uuid::to_string).collect();
        store::delete_inbox(conn, &finished).await?;
        tx.commit().await?;
        Ok(())
    }

    fn after_commit(&mut self, batch: Batch) {
        let m = &self.metrics;
        Metrics::add(&m.store_batches, 1);
        Metrics::add(&m.computations_submitted, batch.submitted);
        Metrics::add(&m.computations_succeeded, batch.succeeded);
        Metrics::add(&m.computations_failed, batch.failed);
        Metrics::add(&m.messages_received, batch.received);
        Metrics::add(&m.messages_sent, batch.outbox.len() as u64);
        m.outbox_pending.fetch_add(
            batch.outbox.len() as i64 - batch.published.len() as i64,
            Ordering::Relaxed,
        );
        m.computations_active.store(self.active.len() as i64, Ordering::Relaxed);
        for (reply, results) in batch.replies {
            let _ = reply.send(results);
        }
        if !batch.acks.is_empty() {
            tokio::spawn(async move {
                for ack in batch.acks {
                    if let Err(error) = ack.ack().await {
                        tracing::debug!(%error, "ack failed; the broker will redeliver and the store will drop the copy");
                    }
                }
            });
        }
        if !batch.outbox.is_empty() {
            let _ = self.publisher.send(batch.outbox);
        }
        self.waiters.finished(&batch.finished);
    }

    async fn submit_all(
        &mut self,
        conn: &mut sqlx::SqliteConnection,
        items: Vec<Submission>,
        now: i64,
        batch: &mut Batch,
    ) -> Result<Vec<Result<Accepted, Error>>, Error> {
        let ids: Vec<Uuid> = items.iter().map(|item| item.id.unwrap_or_else(Uuid::new_v4)).collect();
        let unknown: Vec<String> = ids
            .iter()
            .filter(|id| !self.active.contains_key(id) && !batch.settled.contains_key(id))
            .map(Uuid::to_string)
            .collect();
        let mut stored: HashMap<Uuid, ComputationRow> = HashMap::new();
        for row in store::get_computations(conn, &unknown).await? {
            stored.insert(parse_uuid(&row.id)?, row);
        }
        let mut results = Vec::with_capacity(items.len());
        let mut created = Vec::new();
        for (item, id) in items.into_iter().zip(ids) {
            let result = self.submit_one(item, id, &stored, now, batch);
            if matches!(result, Ok(Accepted { created: true, .. })) && self.active.contains_key(&id) {
                created.push(id);
            }
            results.push(result);
        }
        // Messages that peers sent before our client submitted, in arrival order.
        let created: Vec<String> = created.iter().map(Uuid::to_string).collect();
        let pending = store::pending_inbox(conn, &created).await?;
        batch.consumed.extend(
            pending
                .iter()
                .map(|row| row.computation.clone())
                .collect::<HashSet<_>>(),
        );
        for row in pending {
            let id = parse_uuid(&row.computation)?;
            let kind = if row.kind == "abort" { Kind::Abort } else { Kind::Data };
            self.apply_message(id, &row.sender, kind, row.body.unwrap_or_default(), now, batch);
        }
        Ok(results)
    }

    fn submit_one(
        &mut self,
        item: Submission,
        id: Uuid,
        stored: &HashMap<Uuid, ComputationRow>,
        now: i64,
        batch: &mut Batch,
    ) -> Result<Accepted, Error> {
        self.check_parties(&item.parties)?;
        let deadline_s = item.deadline_s.unwrap_or(self.config.default_deadline_s);
        if deadline_s == 0 || deadline_s > self.config.max_deadline_s {
            return Err(Error::bad_request(
                "invalid_deadline",
                format!(
                    "deadline_s must be between 1 and {}, got {deadline_s}",
                    self.config.max_deadline_s
                ),
            ));
        }
        let spec = Spec::new(&item.microprotocol, &item.parameters, item.parties.len());
        let parameters = spec
            .as_ref()
            .map(Spec::parameters_json)
            .unwrap_or_else(|_| item.parameters.clone());
        let digest = definition_digest(id, &item.microprotocol, &item.parties, &parameters);
        let input_mac = hmac::sign(
            &self.input_mac,
            &serde_json::to_vec(&item.input).expect("JSON values serialise"),
        );
        let me = item
            .parties
            .iter()
            .position(|p| *p == self.me)
            .expect("checked: parties include this node");

        let existing = self
            .active
            .get(&id)
            .map(|a| &a.row)
            .or_else(|| batch.settled.get(&id))
            .or_else(|| stored.get(&id));
        if let Some(row) = existing {
            if row.microprotocol.is_none() {
                // A tombstone: a peer aborted before our client submitted. Keep the failure, but
                // tell our client first about what is wrong with its own request, if anything.
                let own_error = spec
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|s| s.machine(me, &item.input))
                    .err();
                let mut row = row.clone();
                row.microprotocol = Some(item.microprotocol.clone());
                row.parties = Some(json!(item.parties).to_string());
                row.parameters = Some(parameters.to_string());
                row.digest = Some(digest.to_vec());
                row.input_mac = Some(input_mac.as_ref().to_vec());
                row.network = item.network.clone();
                let status = row.status.clone();
                batch.settled.insert(id, row);
                if let Some(error) = own_error {
                    return Err(Error::Engine(error));
                }
                return Ok(Accepted {
                    id,
                    status,
                    created: false,
                });
            }
            if row.digest.as_deref() == Some(&digest[..]) && row.input_mac.as_deref() == Some(input_mac.as_ref()) {
                return Ok(Accepted {
                    id,
                    status: row.status.clone(),
                    created: false,
                });
            }
            return Err(Error::Conflict(format!(
                "computation {id} already exists here with a different definition or input"
            )));
        }

        batch.submitted += 1;
        let mut row = ComputationRow {
            id: id.to_string(),
            microprotocol: Some(item.microprotocol.clone()),
            parties: Some(json!(item.parties).to_string()),
            parameters: Some(parameters.to_string()),
            digest: Some(digest.to_vec()),
            input_mac: Some(input_mac.as_ref().to_vec()),
            status: store::PENDING.to_string(),
            machine: None,
            next_seq: 0,
            output: None,
            error: None,
            deadline_at: now + deadline_s as i64 * 1000,
            created_at: now,
            finished_at: None,
            network: item.network.clone(),
        };
        let machine = spec.and_then(|spec| spec.machine(me, &item.input));
        let mut machine = match machine {
            Ok(machine) => machine,
            Err(error) => {
                // Tell every other party, so that nobody waits for this one.
                let reason = AbortReason {
                    code: error.code().to_string(),
                    message: error.to_string(),
                };
                self.settle_failed(&mut row, &item.parties, Failure::ours(reason), now, batch);
                batch.settled.insert(id, row);
                batch.finished.push(id);
                return Err(Error::Engine(error));
            }
        };
        let step = machine.start(&mut self.rng);
        self.active.insert(
            id,
            Active {
                row,
                parties: item.parties,
                machine,
                digest,
            },
        );
        batch.touched.insert(id);
        self.handle_step(id, step, now, batch);
        let status = self.status_of(id, batch);
        Ok(Accepted {
            id,
            status,
            created: true,
        })
    }

    fn status_of(&self, id: Uuid, batch: &Batch) -> String {
        self.active
            .get(&id)
            .map(|a| a.row.status.clone())
            .or_else(|| batch.settled.get(&id).map(|r| r.status.clone()))
            .unwrap_or_else(|| store::PENDING.to_string())
    }

    fn check_parties(&self, parties: &[String]) -> Result<(), Error> {
        let mut seen = HashSet::new();
        for party in parties {
            if self.roster.party(party).is_none() {
                return Err(Error::bad_request(
                    "unknown_party",
                    format!("party {party:?} is not in the federation roster"),
                ));
            }
            if !seen.insert(party) {
                return Err(Error::bad_request(
                    "invalid_parties",
                    format!("party {party:?} is listed twice"),
                ));
            }
        }
        if !seen.contains(&self.me) {
            return Err(Error::bad_request(
                "invalid_parties",
                format!(
                    "parties must include this node ({:?}), whose client submits the input",
                    self.me
                ),
            ));
        }
        Ok(())
    }

    async fn receive_all(
        &mut self,
        conn: &mut sqlx::SqliteConnection,
        messages: Vec<Opened>,
        now: i64,
        batch: &mut Batch,
    ) -> Result<(), Error> {
        if messages.is_empty() {
            return Ok(());
        }
        // Which computations that are not active here exist (and so are final or tombstones)?
        let inactive: Vec<String> = messages
            .iter()
            .map(|m| m.header.computation)
            .filter(|c| !self.active.contains_key(c))
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|c| c.to_string())
            .collect();
        let settled: HashSet<String> = store::get_computations(conn, &inactive)
            .await?
            .into_iter()
            .map(|row| row.id)
            .collect();

        let mut rows = Vec::with_capacity(messages.len());
        let mut bodies = HashMap::new();
        for message in messages {
            let computation = message.header.computation;
            let known_final = batch.settled.contains_key(&computation) || settled.contains(&computation.to_string());
            if known_final && !self.active.contains_key(&computation) {
                Metrics::add(&self.metrics.messages_late, 1);
                continue;
            }
            let key = (
                computation.to_string(),
                message.header.from.clone(),
                message.header.seq as i64,
            );
            let kind = match message.header.kind {
                Kind::Data => "data",
                Kind::Abort => "abort",
            };
            // Aborts are checked before anything is stored.
            if message.header.kind == Kind::Abort {
                if let Err(rejection) = self.envelopes.verify_abort(&message) {
                    tracing::warn!(%computation, from = %message.header.from, %rejection, "abort rejected");
                    self.metrics.reject(rejection);
                    continue;
                }
            }
            let active = self.active.contains_key(&computation);
            rows.push(InboxRow {
                computation: key.0.clone(),
                sender: key.1.clone(),
                seq: key.2,
                kind: kind.to_string(),
                // Consumed right away if the computation runs here; kept until it is submitted otherwise.
                body: (!active).then(|| message.plaintext.clone()),
                received_at: now,
            });
            bodies.insert(key, (message.header.kind, message.plaintext));
        }
        let fresh = store::insert_inbox(conn, &rows).await?;
        let duplicates = rows.len() - fresh.len();
        if duplicates > 0 {
            Metrics::add(&self.metrics.messages_duplicate, duplicates as u64);
            for _ in 0..duplicates {
                self.metrics.reject(Rejection::Replay);
            }
        }
        batch.received += fresh.len() as u64;
        // Apply in arrival order (RETURNING gives no order guarantee).
        let fresh: HashSet<MessageKey> = fresh.into_iter().collect();
        for row in rows {
            let key = (row.computation, row.sender, row.seq);
            if !fresh.contains(&key) {
                continue;
            }
            let Some((kind, body)) = bodies.remove(&key) else {
                continue;
            };
            let computation = parse_uuid(&key.0)?;
            if self.active.contains_key(&computation) {
                self.apply_message(computation, &key.1, kind, body, now, batch);
            } else if kind == Kind::Abort {
                self.tombstone(computation, &key.1, &body, now, batch);
            }
        }
        Ok(())
    }

    /// Applies one authenticated, deduplicated message to an active computation.
    fn apply_message(&mut self, id: Uuid, sender: &str, kind: Kind, body: Vec<u8>, now: i64, batch: &mut Batch) {
        let Some(active) = self.active.get_mut(&id) else {
            return;
        };
        let Some(from) = active.parties.iter().position(|p| p == sender) else {
            tracing::warn!(computation = %id, %sender, "message from a roster member that is not a party; dropped");
            return self.metrics.reject(Rejection::UnknownSender);
        };
        if kind == Kind::Abort {
            let reason = abort_reason(&body);
            let relayed = AbortReason {
                code: reason.code,
                message: format!("{sender}: {}", reason.message),
            };
            return self.fail(
                id,
                Failure {
                    reason: relayed,
                    culprit: Some(sender.to_string()),
                    announce: Announce::No,
                },
                now,
                batch,
            );
        }
        if body.len() < 32 || body[..32] != active.digest {
            let reason = AbortReason {
                code: "definition_mismatch".into(),
                message: format!(
                    "{sender} defines this computation differently (microprotocol, parties or parameters differ)"
                ),
            };
            return self.fail(
                id,
                Failure {
                    reason,
                    culprit: Some(sender.to_string()),
                    announce: Announce::Yes,
                },
                now,
                batch,
            );
        }
        if active.row.status == store::PENDING {
            active.row.status = store::RUNNING.to_string();
        }
        batch.touched.insert(id);
        let step = active.machine.receive(from, &body[32..], &mut self.rng);
        self.handle_step(id, step, now, batch);
    }

    /// Seals a step's messages into the outbox, and settles the computation if it finished.
    fn handle_step(&mut self, id: Uuid, step: Result<Step, EngineError>, now: i64, batch: &mut Batch) {
        let step = match step {
            Ok(step) => step,
            Err(error) => {
                let reason = AbortReason {
                    code: error.code().to_string(),
                    message: error.to_string(),
                };
                return self.fail(id, Failure::ours(reason), now, batch);
            }
        };
        let active = self.active.get_mut(&id).expect("steps belong to active computations");
        for (to, bytes) in step.outgoing {
            let recipient = active.parties[to].clone();
            let mut plaintext = Vec::with_capacity(32 + bytes.len());
            plaintext.extend_from_slice(&active.digest);
            plaintext.extend_from_slice(&bytes);
            match enqueue(
                &self.envelopes,
                &mut self.rng,
                &mut active.row,
                &recipient,
                Kind::Data,
                &plaintext,
                now,
            ) {
                Ok(message) => batch.outbox.push(message),
                Err(error) => {
                    let reason = AbortReason {
                        code: "internal".into(),
                        message: format!("cannot seal a message: {error}"),
                    };
                    return self.fail(id, Failure::ours(reason), now, batch);
                }
            }
        }
        if let Some(output) = step.output {
            let mut active = self.active.remove(&id).expect("present above");
            active.row.status = store::SUCCEEDED.to_string();
            active.row.output = Some(output.to_string());
            active.row.finished_at = Some(now);
            batch.touched.remove(&id);
            batch.settled.insert(id, active.row);
            batch.finished.push(id);
            batch.succeeded += 1;
        }
    }

    /// Fails an active computation.
    fn fail(&mut self, id: Uuid, failure: Failure, now: i64, batch: &mut Batch) {
        let Some(mut active) = self.active.remove(&id) else {
            return;
        };
        batch.touched.remove(&id);
        let parties = std::mem::take(&mut active.parties);
        self.settle_failed(&mut active.row, &parties, failure, now, batch);
        batch.settled.insert(id, active.row);
        batch.finished.push(id);
    }

    fn settle_failed(
        &mut self,
        row: &mut ComputationRow,
        parties: &[String],
        failure: Failure,
        now: i64,
        batch: &mut Batch,
    ) {
        let Failure {
            reason,
            culprit,
            announce,
        } = failure;
        let reason = &reason;
        tracing::info!(computation = %row.id, code = %reason.code, message = %reason.message, "computation failed");
        let id = parse_uuid(&row.id).expect("rows hold valid ids");
        if announce == Announce::Yes {
            let body = self.envelopes.abort_body(id, reason);
            for peer in parties.iter().filter(|p| **p != self.me) {
                match enqueue(&self.envelopes, &mut self.rng, row, peer, Kind::Abort, &body, now) {
                    Ok(message) => batch.outbox.push(message),
                    Err(error) => tracing::error!(%error, %peer, "cannot seal an abort"),
                }
            }
        }
        let mut error = json!({"code": reason.code, "message": reason.message});
        if let Some(party) = culprit {
            error["party"] = json!(party);
        }
        row.status = store::FAILED.to_string();
        row.error = Some(error.to_string());
        row.machine = None;
        row.finished_at = Some(now);
        batch.failed += 1;
    }

    /// A peer aborted a computation not submitted here: remember, so a later submission fails fast.
    fn tombstone(&mut self, id: Uuid, sender: &str, body: &[u8], now: i64, batch: &mut Batch) {
        if batch.settled.contains_key(&id) {
            return;
        }
        let reason = abort_reason(body);
        let error = json!({"code": reason.code, "message": format!("{sender}: {}", reason.message), "party": sender});
        let row = ComputationRow {
            id: id.to_string(),
            microprotocol: None,
            parties: None,
            parameters: None,
            digest: None,
            input_mac: None,
            status: store::FAILED.to_string(),
            machine: None,
            next_seq: 0,
            output: None,
            error: Some(error.to_string()),
            deadline_at: now,
            created_at: now,
            finished_at: Some(now),
            network: None,
        };
        batch.settled.insert(id, row);
        batch.finished.push(id);
    }

    async fn expire(&mut self, conn: &mut sqlx::SqliteConnection, now: i64, batch: &mut Batch) -> Result<(), Error> {
        self.ticks += 1;
        let expired: Vec<Uuid> = self
            .active
            .iter()
            .filter(|(_, a)| a.row.deadline_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let active = &self.active[&id];
            let heard: HashSet<String> = store::senders(conn, &id.to_string()).await?.into_iter().collect();
            let silent: Vec<&str> = active
                .parties
                .iter()
                .filter(|p| **p != self.me && !heard.contains(*p))
                .map(String::as_str)
                .collect();
            let waited_s = (active.row.deadline_at - active.row.created_at) / 1000;
            let message = if silent.is_empty() {
                format!("deadline of {waited_s} s exceeded before the protocol finished")
            } else {
                format!(
                    "deadline of {waited_s} s exceeded; nothing was received from {}",
                    silent.join(", ")
                )
            };
            let reason = AbortReason {
                code: "deadline_exceeded".into(),
                message,
            };
            self.fail(id, Failure::ours(reason), now, batch);
        }
        if self.ticks % ORPHAN_SWEEP_EVERY_TICKS == 0 {
            let cutoff = now - self.config.max_deadline_s as i64 * 1000;
            let dropped = store::expire_orphans(conn, cutoff).await?;
            if dropped > 0 {
                tracing::info!(dropped, "expired messages of computations never submitted here");
            }
        }
        Ok(())
    }
}

/// Why a computation fails, who caused it (if another party), and whether to tell the others.
struct Failure {
    reason: AbortReason,
    culprit: Option<String>,
    announce: Announce,
}

impl Failure {
    /// A failure detected here, announced to every other party.
    fn ours(reason: AbortReason) -> Failure {
        Failure {
            reason,
            culprit: None,
            announce: Announce::Yes,
        }
    }
}

/// Gives a message the computation's next sequence number and seals it for `to`, as an outbox row.
fn enqueue(
    envelopes: &Envelopes,
    rng: &mut ChaCha20Rng,
    row: &mut ComputationRow,
    to: &str,
    kind: Kind,
    plaintext: &[u8],
    now: i64,
) -> Result<OutboxRow, Error> {
    let seq = row.next_seq;
    let computation = parse_uuid(&row.id)?;
    let envelope = envelopes.seal(computation, to, seq as u64, kind, plaintext, rng)?;
    row.next_seq += 1;
    Ok(OutboxRow {
        id: 0,
        computation: row.id.clone(),
        recipient: to.to_string(),
        seq,
        envelope,
        created_at: now,
    })
}

/// Whether a failure is sent to the other parties as a signed abort. A failure caused by a
/// peer's abort is not: that peer has told everybody itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announce {
    Yes,
    No,
}

/// The receiving ends of the runtime's channels.
pub struct RuntimeInbox {
    commands: mpsc::Receiver<Command>,
    published: mpsc::UnboundedReceiver<Vec<i64>>,
}

fn abort_reason(body: &[u8]) -> AbortReason {
    #[derive(serde::Deserialize)]
    struct Signed {
        reason: AbortReason,
    }
    serde_json::from_slice::<Signed>(body)
        .map(|s| s.reason)
        .unwrap_or_else(|_| AbortReason {
            code: "aborted".into(),
            message: "aborted by a peer".into(),
        })
}

fn parse_uuid(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|e| Error::Config(format!("stored computation id {text:?} is not a UUID: {e}")))
}

/// SHA-256 over the canonical JSON of what all parties must agree on.
pub fn definition_digest(id: Uuid, microprotocol: &str, parties: &[String], parameters: &Value) -> [u8; 32] {
    let canonical = serde_json::to_vec(&json!(["fsc/definition/v1", id, microprotocol, parties, parameters]))
        .expect("JSON values serialise");
    digest::digest(&digest::SHA256, &canonical)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_for_an_unknown_computation_leaves_nothing_behind() {
        let waiters = Waiters::default();
        let id = Uuid::new_v4();
        let first = waiters.watch(id);
        let second = waiters.watch(id);
        drop(first);
        assert_eq!(waiters.map.lock().unwrap().len(), 1, "another reader still waits");
        drop(second);
        assert!(waiters.map.lock().unwrap().is_empty());

        {
            let watch = waiters.watch(id);
            let notified = watch.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            waiters.finished(&[id]);
            notified.await;
        }
        assert!(waiters.map.lock().unwrap().is_empty());
    }
}
