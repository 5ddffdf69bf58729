//! The runtime: the one task that applies submissions and messages to the engine and commits the
//! consequences, persist-then-act.
//!
//! Work arrives as [`Command`]s. The runtime takes whatever is queued (up to a bound), applies it
//! all inside one `BEGIN IMMEDIATE` transaction (new engine states, inbox keys, sealed outgoing
//! messages in the outbox, results, and the audit log's entries for all of it, see
//! [`crate::audit`]) and commits; only then does it acknowledge broker messages,
//! hand the outbox to the publisher and answer clients. Random masks are therefore drawn once: a
//! restart re-sends the stored envelopes, never fresh shares. If a commit fails, the in-memory
//! state is reloaded from the store and nothing is acknowledged, so the broker redelivers.
//!
//! Every computation ends: a deadline fails it, and a failure at this party (bad input, a peer's
//! mismatching definition, a protocol error) is announced to every other party with a signed
//! abort, which fails it there too. This module owns these rules; it does no network I/O itself.
//! Its store calls are synchronous (`store::write`), so the node runs its loop on a thread of its
//! own.
//!
//! `mod.rs` owns the loop, the transaction and the state transitions every concern shares (steps,
//! failures, sealing); [`admission`] takes submissions, [`delivery`] takes messages,
//! [`deadlines`] ends what stalls, [`offload`] runs long engine steps off the loop,
//! [`receipts`] signs how computations end and keeps the peers' signatures, and [`waiters`]
//! wakes long polls.

use crate::audit::{self, Event};
use crate::caller::Caller;
use crate::config::policy::{Policy, Refusal, Rule};
use crate::config::roster::Roster;
use crate::datasets::{DatasetError, Summary};
use crate::definition::{definition_digest, participants};
use crate::envelope::{ChunkId, Envelopes, Kind, Opened, Rejection, SignedAbort};
use crate::error::Error;
use crate::failure::{self, AbortReason, Announced};
use crate::metrics::Metrics;
use crate::store::{self, ComputationRow, InboxRow, MessageKey, OutboxRow, Writer};
use async_nats::jetstream::AckKind;
use async_nats::jetstream::message::Acker;
use fsc_simon::{EngineError, Input, Limits, Machine, Masks, Spec, Step};
use rand_chacha::ChaCha20Rng;
use rusqlite::Connection;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

mod admission;
mod deadlines;
mod delivery;
mod helper;
mod offload;
mod proposals;
mod receipts;
mod report;
mod waiters;

use delivery::tombstone_row;
use helper::Invitation;
use offload::{Offload, Stepped, Work};

pub use proposals::{DECLINED, Declined};
pub use waiters::Waiters;

/// At most this many commands go into one transaction (a command may hold many items).
const MAX_COMMANDS_PER_BATCH: usize = 512;
/// How often deadlines are checked.
const TICK: Duration = Duration::from_millis(500);

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
    pub input: Input,
    pub deadline_s: Option<u64>,
    /// The federatedsecure network uuid, for computations started by its `compute`.
    pub network: Option<String>,
    /// The API client submitting it, who will own it.
    pub caller: Caller,
    /// For an input that named a dataset (`crate::datasets`): what was read (then `input` is
    /// the value it stands for), or why it could not be (then the computation fails here with
    /// that error and at every other party with its reason code, as for an invalid input).
    pub dataset: Option<Result<Summary, DatasetError>>,
    /// Which API it came through, for the audit log: `v1`, `v1_batch` or `federatedsecure`.
    pub api: &'static str,
}

/// What became of an accepted submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub id: Uuid,
    pub status: String,
    /// False if the computation existed already (an idempotent retry).
    #[serde(skip)]
    pub created: bool,
    /// For an input read from a dataset: its rows taken and skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<Summary>,
}

/// A message from the broker, authenticated (or a chunk of one), with its acknowledgement.
pub struct Delivery {
    pub incoming: Incoming,
    pub ack: Option<Acker>,
}

pub enum Incoming {
    Message(Opened),
    /// A piece of a large message, authenticated (`Envelopes::verify_chunk`).
    Chunk {
        computation: Uuid,
        sender: String,
        id: ChunkId,
        data: Vec<u8>,
    },
}

type SubmitResults = Vec<Result<Accepted, Error>>;
type SubmitReply = oneshot::Sender<SubmitResults>;

enum Command {
    Submit {
        items: Vec<Submission>,
        reply: SubmitReply,
    },
    Deliver(Vec<Delivery>),
    Published(Vec<i64>),
    /// A long engine step finished off the loop.
    Stepped(Box<Stepped>),
    /// Fails a computation that is still running, telling every other party.
    Cancel {
        id: Uuid,
        reason: AbortReason,
        /// The API client that asks, for the audit log.
        by: String,
        reply: oneshot::Sender<Cancelled>,
    },
    /// Declines a proposal (`proposals`).
    Decline {
        id: Uuid,
        /// The API client that declines, for the audit log and as the failure's owner.
        by: String,
        reply: oneshot::Sender<Declined>,
    },
    /// Audit entries of reads, which change nothing else (see `RuntimeHandle::record_reads`).
    Record(Vec<Event>),
}

/// What a cancellation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The computation was running here; it has failed, and every other party is told.
    Now,
    /// It is not running here: final already, or unknown.
    NotRunning,
}

/// How the rest of the node talks to the runtime. The runtime stops once every handle is gone.
#[derive(Clone)]
pub struct RuntimeHandle {
    commands: mpsc::Sender<Command>,
    reads: mpsc::UnboundedSender<Vec<Event>>,
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
        self.ask(|reply| Command::Submit { items, reply }).await
    }

    /// Sends the command `make` builds around a reply channel, and waits for the reply: it
    /// comes once the runtime has committed what the command changed (none if the commit failed).
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| Error::Unavailable("the node is shutting down".into()))?;
        answer
            .await
            .map_err(|_| Error::Unavailable("the store is not available; retry".into()))
    }

    /// Ends computation `id` as failed for `reason` and sends every other party a signed abort,
    /// if it is still running here.
    pub async fn cancel(&self, id: Uuid, reason: AbortReason, by: &Caller) -> Result<Cancelled, Error> {
        self.ask(|reply| Command::Cancel {
            id,
            reason,
            by: by.name.clone(),
            reply,
        })
        .await
    }

    /// Declines proposal `id` for client `by`: it fails here with `declined` and every other
    /// party is sent a signed abort, if it is still a proposal here.
    pub async fn decline(&self, id: Uuid, by: &Caller) -> Result<Declined, Error> {
        self.ask(|reply| Command::Decline {
            id,
            by: by.name.clone(),
            reply,
        })
        .await
    }

    /// Queues the audit entries of reads for the runtime's next transaction, or the next tick's
    /// (within half a second), without waiting: a read changes nothing else, and a transaction
    /// of its own before each answer cost the lone sum's p50 a quarter (fsc-bench). A node that
    /// crashes in that half second loses those entries, never one of an action that changed
    /// anything (each is in its action's own transaction).
    pub fn record_reads(&self, events: Vec<Event>) {
        let _ = self.reads.send(events);
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
    /// New submissions are refused (`Error::Busy`) while this many computations are active here.
    pub max_active: usize,
    /// Chunks a sender may have waiting for the rest of their messages; beyond, they are dropped.
    pub max_pending_chunk_bytes: u64,
    /// Bytes a sender may have stored for computations not submitted here, and for how long.
    pub max_unsolicited_bytes: u64,
    pub max_unsolicited_s: u64,
    /// Who may invite this node as a helper (`None`: every roster member), and how many
    /// computations it helps at once.
    pub helper_for: Option<Vec<String>>,
    pub max_helper_computations: usize,
    /// Finished computations are pruned this long after they finished (their ids are kept).
    pub retention_s: u64,
    /// Audit entries are pruned this long after they were written (`None`: kept for good).
    pub audit_retention_s: Option<u64>,
    /// The helper two-party products name when their client names none (`runtime::helper`).
    pub helper: Option<String>,
    /// How long a computation whose deadline passed while every party had joined waits for its
    /// messages before this node gives up on it (`stalled`).
    pub stall_grace_s: u64,
    /// What any computation may make this node hold (`max_output_cells`).
    pub limits: Limits,
    /// Which computations this node lends its data to (`[policy]`), checked before anything
    /// is sent.
    pub policy: Policy,
    /// Audit entries to write when the runtime starts (changed clients or policy).
    pub audit_at_start: Vec<Event>,
}

struct Active {
    row: ComputationRow,
    /// Who runs the protocol, in engine index order: the parties, then a helper from outside.
    parties: Vec<String>,
    /// Shared with a long step that runs off the loop, which clones it there: a PSI's machine
    /// holds whole lists, too much to copy (or free) on the loop.
    machine: Arc<Machine>,
    digest: [u8; 32],
    /// This party's mask seeds for the computation's sums: derived from the keys, kept in
    /// memory only (re-derived after a restart), never stored.
    masks: Masks,
    offload: Offload,
    /// Its deadline passed and the other parties were told (`deadlines`): it now waits, until
    /// `row.deadline_at` (moved on by the stall grace), for its messages or a party's abort.
    expiring: bool,
}

/// Everything one batch changes, written at the end of the transaction.
#[derive(Default)]
struct Batch {
    /// Active computations whose state changed.
    touched: HashSet<Uuid>,
    /// Rows that are no longer active (final, or tombstones), to write as they are.
    settled: HashMap<Uuid, ComputationRow>,
    /// Computations that started here in this batch (submitted, or joined as helper).
    started: Vec<Uuid>,
    /// Computations that became final in this batch.
    finished: Vec<Uuid>,
    outbox: Vec<OutboxRow>,
    /// Statements of the computations that ended here in this batch, signed together before
    /// the commit (`receipts`).
    statements: Vec<crate::receipt::Statement>,
    /// Receipt messages being filled with them, one per peer, sealed before the commit.
    receipt_messages: Vec<receipts::ReceiptMessage>,
    /// Receipt messages sealed: in the outbox with the rest, published after the results.
    receipt_outbox: Vec<OutboxRow>,
    /// This node's signatures in them, one per peer and computation.
    receipts_sent: u64,
    /// Invites of waiting computations in `outbox` (`proposals`).
    invites_sent: u64,
    /// Receipt signatures to store: this node's of what ended in this batch, and peers'.
    receipts: Vec<store::ReceiptRow>,
    /// Computations whose pending inbox rows were consumed.
    consumed: Vec<String>,
    /// Single inbox rows consumed (by long steps).
    consumed_messages: Vec<MessageKey>,
    /// Computations with long work to start once this batch is committed.
    dispatch: HashSet<Uuid>,
    /// Outbox rows the broker has stored.
    published: Vec<i64>,
    acks: Vec<Acker>,
    replies: Vec<(SubmitReply, SubmitResults)>,
    cancelled: Vec<(oneshot::Sender<Cancelled>, Cancelled)>,
    declined: Vec<(oneshot::Sender<Declined>, Declined)>,
    /// Proposals that peers' messages brought in this batch.
    proposals: Vec<store::ProposalRow>,
    /// Privacy budget charges of computations that started in this batch.
    charges: Vec<store::ChargeRow>,
    /// Audit entries of this batch's actions, in order (computations' starts and ends are
    /// added at the end of the batch, see `audit_computations`).
    audit: Vec<Event>,
    /// Chunks were stored or deleted: the pending-chunk gauge is recounted.
    chunks_changed: bool,
    /// Messages reassembled from their chunks in this batch: the chunks are discarded after the
    /// inbox took the messages, unless they hold a pending message's body.
    assembled: Vec<MessageKey>,
    succeeded: u64,
    failed: u64,
    /// Peers' receipt signatures stored (not copies of stored ones).
    receipts_received: u64,
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
    config: RuntimeConfig,
    active: HashMap<Uuid, Active>,
    publisher: mpsc::UnboundedSender<Vec<OutboxRow>>,
    waiters: Arc<Waiters>,
    metrics: Arc<Metrics>,
    /// When (ms) messages and chunks of computations never submitted here are next expired.
    next_sweep_at: i64,
    /// Bytes of stored chunks, as last counted (for the gauge).
    chunk_bytes: i64,
    /// Where long steps report back, and how the loop tells their results from stale ones.
    stepped: mpsc::UnboundedSender<Box<Stepped>>,
    tickets: u64,
    /// The audit log's last entry, which the next one chains to.
    audit: audit::Head,
    /// Invites to send for computations started here that are still running then
    /// (`proposals`), in the order they fall due.
    invites: VecDeque<proposals::DueInvite>,
    /// Active computations whose stored state this build cannot read, with their participants:
    /// the next batch fails them as any failure here, so that the peers are told (not left to
    /// their deadlines) and a receipt is signed.
    unreadable: Vec<(ComputationRow, Vec<String>)>,
}

impl Runtime {
    /// Loads the active computations and the unsent outbox; returns the runtime, a handle to it,
    /// and the receiving ends its `run` needs.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        me: String,
        roster: Arc<Roster>,
        envelopes: Arc<Envelopes>,
        writer: Writer,
        rng: ChaCha20Rng,
        config: RuntimeConfig,
        publisher: mpsc::UnboundedSender<Vec<OutboxRow>>,
        metrics: Arc<Metrics>,
    ) -> Result<(Runtime, RuntimeHandle, PublishedSink, RuntimeInbox), Error> {
        let mut writer = writer;
        let mut head = audit::head(writer.conn())?;
        if !config.audit_at_start.is_empty() {
            let tx = writer.begin()?;
            audit::append(&tx, &mut head, now_ms(), &config.audit_at_start)?;
            tx.commit()?;
        }
        let rows = store::active_computations(writer.conn())?;
        let outbox = store::all_outbox(writer.conn())?;
        metrics.outbox_pending.store(outbox.len() as i64, Ordering::Relaxed);
        if !outbox.is_empty() {
            tracing::info!(
                messages = outbox.len(),
                "re-publishing the outbox left by the previous run"
            );
            let _ = publisher.send(outbox);
        }
        // Small: a command can hold thousands of items, and a full queue pushes back on the API
        // and the consumer instead of growing.
        let (commands_tx, commands) = mpsc::channel(64);
        let (published_tx, published) = mpsc::unbounded_channel();
        let (reads_tx, reads) = mpsc::unbounded_channel();
        let (stepped_tx, stepped) = mpsc::unbounded_channel();
        let waiters = Arc::new(Waiters::default());
        let mut runtime = Runtime {
            me,
            roster,
            envelopes,
            writer: Some(writer),
            rng,
            config,
            active: HashMap::new(),
            publisher,
            waiters: waiters.clone(),
            metrics,
            next_sweep_at: 0,
            chunk_bytes: 0,
            stepped: stepped_tx,
            tickets: 0,
            audit: head,
            invites: VecDeque::new(),
            unreadable: Vec::new(),
        };
        let writer = runtime.writer.take().expect("just set");
        let loaded = runtime
            .load_active(writer.conn(), rows)
            .and_then(|()| runtime.requeue(writer.conn()));
        runtime.writer = Some(writer);
        loaded?;
        let handle = RuntimeHandle {
            commands: commands_tx,
            reads: reads_tx,
            waiters,
        };
        Ok((
            runtime,
            handle,
            PublishedSink(published_tx),
            RuntimeInbox {
                commands,
                published,
                reads,
                stepped,
            },
        ))
    }

    /// Loads the active computations from their stored rows. One whose engine state this build
    /// cannot read (written by another version of the engine) is not loaded but failed by the
    /// next batch, with the reason `internal` (`unreadable`), instead of stopping the node from
    /// starting.
    fn load_active(&mut self, conn: &Connection, rows: Vec<ComputationRow>) -> Result<(), Error> {
        self.active.clear();
        self.unreadable.clear();
        for mut row in rows {
            let id = parse_uuid(&row.id)?;
            let parties: Vec<String> = serde_json::from_str(row.parties.as_deref().unwrap_or("[]"))
                .map_err(|e| Error::Config(format!("stored parties of computation {id} are unreadable: {e}")))?;
            let parameters: Value = serde_json::from_str(row.parameters.as_deref().unwrap_or("null"))
                .map_err(|e| Error::Config(format!("stored parameters of computation {id} are unreadable: {e}")))?;
            let parties = participants(&parties, &parameters);
            // A state that leaves its machine's bulk out (`Machine::bulk`) loads with it from the
            // store, which then holds it.
            let loaded = serde_json::from_str::<Machine>(row.machine.as_deref().unwrap_or("null"))
                .map_err(|error| error.to_string())
                .and_then(|mut machine| {
                    let apart = machine.lacks_bulk();
                    if apart {
                        let bulk = store::bulk(conn, &row.id).map_err(|error| error.to_string())?;
                        machine
                            .restore_bulk(&bulk)
                            .map_err(|error| format!("its bulk: {error}"))?;
                    }
                    Ok((machine, apart))
                });
            let (machine, bulk_stored) = match loaded {
                Ok(loaded) => loaded,
                Err(error) => {
                    tracing::error!(computation = %id, %error, "stored state unreadable by this build; the computation fails");
                    row.machine = None;
                    self.unreadable.push((row, parties));
                    continue;
                }
            };
            let digest = row.digest.clone().and_then(|d| d.try_into().ok()).unwrap_or([0; 32]);
            row.machine = None;
            let masks = self.masks(id, &digest, &parties);
            self.active.insert(
                id,
                Active {
                    row,
                    parties,
                    machine: Arc::new(machine),
                    digest,
                    masks,
                    offload: Offload::loaded(bulk_stored),
                    expiring: false,
                },
            );
        }
        self.metrics
            .computations_active
            .store(self.active.len() as i64, Ordering::Relaxed);
        self.waiters
            .set_running(self.active.iter().map(|(id, a)| (*id, a.row.client.clone())));
        Ok(())
    }

    /// This party's mask seeds for computation `id` among `parties`. If they cannot be derived
    /// (this node does not run its newest roster key), there are none: a sum then fails the
    /// computation at its start, and every other party is told.
    fn masks(&self, id: Uuid, digest: &[u8; 32], parties: &[String]) -> Masks {
        self.envelopes.mask_seeds(id, digest, parties).unwrap_or_else(|error| {
            tracing::warn!(computation = %id, %error, "no mask seeds for this computation");
            Masks::default()
        })
    }

    /// Applies commands until every handle is dropped. Nothing here waits for room: submissions
    /// beyond capacity are refused at once (see `admission`), so the loop always returns to
    /// waiting, and deadlines are checked on time however busy it is.
    pub async fn run(mut self, mut inbox: RuntimeInbox) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut checked = tokio::time::Instant::now();
        // Outbox rows the broker has stored, not yet deleted. Deleting them is no reason for a
        // transaction of its own: that one would hold up the peers' answers, which arrive just
        // then. They go with the next batch, or with the next tick's; a crash before re-sends
        // them, and the receivers drop the copies.
        let mut published = Vec::new();
        // Audit entries of reads, likewise waiting for the next batch or tick.
        let mut reads = Vec::new();
        // Peers' receipt signatures, likewise: nothing waits for them, and a transaction of their
        // own, just after a result, would hold up the next computation. They are acknowledged
        // once stored; a crash before leaves them to the broker's redelivery.
        let mut receipts = Vec::new();
        loop {
            let mut commands = Vec::new();
            tokio::select! {
                command = inbox.commands.recv() => match command {
                    Some(command) => commands.extend(unless_receipts(command, &mut receipts)),
                    None => break,
                },
                Some(keys) = inbox.published.recv() => self.published(&mut published, keys),
                Some(events) = inbox.reads.recv() => reads.extend(events),
                Some(stepped) = inbox.stepped.recv() => commands.push(Command::Stepped(stepped)),
                _ = tick.tick() => {}
            }
            while commands.len() < MAX_COMMANDS_PER_BATCH {
                match inbox.commands.try_recv() {
                    Ok(command) => commands.extend(unless_receipts(command, &mut receipts)),
                    Err(_) => break,
                }
            }
            while let Ok(keys) = inbox.published.try_recv() {
                self.published(&mut published, keys);
            }
            while let Ok(events) = inbox.reads.try_recv() {
                reads.extend(events);
            }
            while let Ok(stepped) = inbox.stepped.try_recv() {
                commands.push(Command::Stepped(stepped));
            }
            let deadlines_due = checked.elapsed() >= TICK;
            if deadlines_due {
                checked = tokio::time::Instant::now();
            }
            // An idle node's tick opens no transaction: nothing to expire, nothing to delete.
            let tick_work = !self.unreadable.is_empty()
                || deadlines_due
                    && (!published.is_empty()
                        || !reads.is_empty()
                        || !receipts.is_empty()
                        || self.expiry_due(now_ms())
                        || self.invites_due(now_ms()));
            if !commands.is_empty() || tick_work {
                if !receipts.is_empty() {
                    commands.push(Command::Deliver(std::mem::take(&mut receipts)));
                }
                if !published.is_empty() {
                    commands.push(Command::Published(std::mem::take(&mut published)));
                }
                if !reads.is_empty() {
                    commands.push(Command::Record(std::mem::take(&mut reads)));
                }
                self.process(commands, deadlines_due);
            }
        }
        if !published.is_empty() || !reads.is_empty() || !receipts.is_empty() {
            let last = vec![
                Command::Published(published),
                Command::Record(reads),
                Command::Deliver(receipts),
            ];
            self.process(last, false);
        }
        tracing::debug!("runtime stopped");
    }

    /// Notes outbox rows the broker has stored, to delete with the next batch.
    fn published(&self, published: &mut Vec<i64>, keys: Vec<i64>) {
        self.metrics
            .outbox_pending
            .fetch_sub(keys.len() as i64, Ordering::Relaxed);
        published.extend(keys);
    }

    fn process(&mut self, commands: Vec<Command>, deadlines_due: bool) {
        let mut batch = Batch::default();
        let mut writer = self.writer.take().expect("the writer is back after every batch");
        let result = self.apply(&mut writer, commands, deadlines_due, &mut batch);
        match result {
            Ok(()) => self.after_commit(batch),
            Err(error) => {
                tracing::error!(%error, "store transaction failed; reloading state, messages will be redelivered");
                Metrics::add(&self.metrics.store_batch_failures, 1);
                for (reply, _) in batch.replies {
                    let _ = reply.send(Vec::new());
                }
                // The entries were rolled back; their clients hear so (their replies drop).
                match audit::head(writer.conn()) {
                    Ok(head) => self.audit = head,
                    Err(error) => {
                        tracing::error!(%error, "cannot read the audit log's head; exiting");
                        std::process::exit(70);
                    }
                }
                for ack in batch.acks {
                    tokio::spawn(async move { ack.ack_with(AckKind::Nak(None)).await });
                }
                let reloaded = match store::active_computations(writer.conn()) {
                    Ok(rows) => match self.load_active(writer.conn(), rows) {
                        Ok(()) => self.requeue(writer.conn()),
                        Err(e) => Err(e),
                    },
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

    fn apply(
        &mut self,
        writer: &mut Writer,
        commands: Vec<Command>,
        deadlines_due: bool,
        batch: &mut Batch,
    ) -> Result<(), Error> {
        let now = now_ms();
        for (mut row, parties) in std::mem::take(&mut self.unreadable) {
            let reason = AbortReason {
                code: "internal".into(),
                message: "its stored state is unreadable by this version of fsc".into(),
            };
            self.settle_failed(&mut row, &parties, Failure::ours(reason), now, batch);
            let id = parse_uuid(&row.id)?;
            batch.settled.insert(id, row);
            batch.finished.push(id);
        }
        let mut submissions = Vec::new();
        let mut deliveries = Vec::new();
        let mut cancels = Vec::new();
        let mut declines = Vec::new();
        let mut stepped = Vec::new();
        for command in commands {
            match command {
                Command::Stepped(done) => stepped.push(done),
                Command::Submit { items, reply } => submissions.push((items, reply)),
                Command::Deliver(items) => deliveries.extend(items),
                Command::Published(keys) => batch.published.extend(keys),
                Command::Cancel { id, reason, by, reply } => cancels.push((id, reason, by, reply)),
                Command::Decline { id, by, reply } => declines.push((id, by, reply)),
                Command::Record(events) => batch.audit.extend(events),
            }
        }
        let tx = writer.begin()?;
        let conn: &Connection = &tx;

        let messages = self.reassemble(conn, deliveries, now, batch)?;

        for (items, reply) in submissions {
            let results = self.submit_all(conn, items, now, batch)?;
            batch.replies.push((reply, results));
        }
        for done in stepped {
            self.apply_stepped(*done, now, batch);
        }
        self.receive_all(conn, messages, now, batch)?;
        store::discard_chunks(conn, &batch.assembled)?;
        for (id, reason, by, reply) in cancels {
            let code = reason.code.clone();
            let outcome = if self.active.contains_key(&id) {
                self.fail(id, Failure::ours(reason), now, batch);
                Cancelled::Now
            } else {
                Cancelled::NotRunning
            };
            let done = match outcome {
                Cancelled::Now => "cancelled",
                Cancelled::NotRunning => "not_running",
            };
            batch.audit.push(Event::new(
                Some(&by),
                audit::CANCEL,
                Some(id.to_string()),
                json!({"reason": code, "outcome": done}),
            ));
            batch.cancelled.push((reply, outcome));
        }
        for (id, by, reply) in declines {
            let outcome = self.decline(conn, id, &by, now, batch)?;
            let done = match outcome {
                Declined::Now => "declined",
                Declined::NotProposed => "not_proposed",
            };
            batch.audit.push(Event::new(
                Some(&by),
                audit::DECLINE,
                Some(id.to_string()),
                json!({"outcome": done}),
            ));
            batch.declined.push((reply, outcome));
        }
        if deadlines_due {
            self.expire(conn, now, batch)?;
            self.send_invites(conn, now, batch)?;
        }

        let mut rows: Vec<ComputationRow> = Vec::with_capacity(batch.touched.len() + batch.settled.len());
        let (mut oversized, max_bytes) = (Vec::new(), store::max_value_bytes(conn));
        let mut bulks = Vec::new();
        for id in &batch.touched {
            if let Some(active) = self.active.get_mut(id) {
                let mut row = active.row.clone();
                row.machine = active.offload.state_to_write(&active.machine);
                let bulk = active.offload.bulk_to_write(&active.machine);
                match row.machine.as_ref().map_or(0, String::len) {
                    bytes if bytes > max_bytes => oversized.push((*id, bytes)),
                    _ => {
                        bulks.extend(bulk.map(|bulk| (row.id.clone(), bulk)));
                        rows.push(row);
                    }
                }
            }
        }
        // A state the store cannot hold would fail every transaction that tried to write it, the
        // same way after each reload: the computation fails instead, in this transaction.
        for (id, bytes) in oversized {
            let reason = AbortReason {
                code: "too_large".into(),
                message: format!(
                    "this party's state of the computation ({bytes} bytes) is larger than its store holds ({} bytes)",
                    max_bytes
                ),
            };
            self.fail(id, Failure::ours(reason), now, batch);
        }
        let settled: Vec<&ComputationRow> = batch.settled.values().collect();
        let all: Vec<&ComputationRow> = rows.iter().chain(settled).collect();
        store::consume_messages(conn, &batch.consumed_messages)?;
        let finished: Vec<String> = batch.finished.iter().map(Uuid::to_string).collect();
        store::delete_outbox(conn, &batch.published)?;
        store::upsert_computations(conn, &all)?;
        for (id, bulk) in &bulks {
            store::insert_bulk(conn, id, bulk)?;
        }
        store::consume_inbox(conn, &batch.consumed)?;
        store::delete_inbox(conn, &finished)?;
        store::insert_outbox(conn, &mut batch.outbox)?;
        store::insert_proposals(conn, &batch.proposals)?;
        self.seal_receipts(now, batch);
        store::insert_outbox(conn, &mut batch.receipt_outbox)?;
        let stored = store::insert_receipts(conn, &batch.receipts)?;
        batch.receipts_received = stored.iter().filter(|(_, party)| *party != self.me).count() as u64;
        // With the computations' rows: a charge is made exactly when its computation starts.
        store::insert_charges(conn, &batch.charges)?;
        self.audit_computations(batch);
        audit::append(conn, &mut self.audit, now, &batch.audit)?;
        if batch.chunks_changed || (self.chunk_bytes > 0 && !finished.is_empty()) {
            self.chunk_bytes = store::chunk_bytes(conn)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn after_commit(&mut self, batch: Batch) {
        self.report(&batch);
        let m = &self.metrics;
        Metrics::add(&m.store_batches, 1);
        Metrics::add(&m.computations_submitted, batch.submitted);
        Metrics::add(&m.computations_succeeded, batch.succeeded);
        Metrics::add(&m.computations_failed, batch.failed);
        Metrics::add(&m.messages_received, batch.received);
        Metrics::add(&m.messages_sent, batch.outbox.len() as u64);
        Metrics::add(&m.receipts_sent, batch.receipts_sent);
        Metrics::add(&m.invites_sent, batch.invites_sent);
        Metrics::add(&m.receipts_received, batch.receipts_received);
        let queued = batch.outbox.len() + batch.receipt_outbox.len();
        m.outbox_pending.fetch_add(queued as i64, Ordering::Relaxed);
        m.computations_active.store(self.active.len() as i64, Ordering::Relaxed);
        m.chunk_bytes.store(self.chunk_bytes, Ordering::Relaxed);
        // Before the clients hear of them, so that their next reads find them running.
        let started = batch.started.iter();
        self.waiters
            .started(started.filter_map(|id| Some((*id, self.active.get(id)?.row.client.clone()))));
        for (reply, results) in batch.replies {
            let _ = reply.send(results);
        }
        for (reply, outcome) in batch.cancelled {
            let _ = reply.send(outcome);
        }
        for (reply, outcome) in batch.declined {
            let _ = reply.send(outcome);
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
        self.waiters.finished(&batch.finished, |id| batch.settled.get(id));
        // After the results are released: receipts must not delay them.
        if !batch.receipt_outbox.is_empty() {
            let _ = self.publisher.send(batch.receipt_outbox);
        }
        self.dispatch(batch.dispatch);
    }
    /// Seals and queues a step's messages; with the `opening` definition (a computation's first
    /// step here), the first message to each peer carries it (`proposals`).
    fn handle_step(
        &mut self,
        id: Uuid,
        step: Result<Step, EngineError>,
        opening: Option<&[u8]>,
        now: i64,
        batch: &mut Batch,
    ) {
        let active = self.active.get_mut(&id).expect("steps belong to active computations");
        let sealed = seal_step(
            &self.envelopes,
            &mut self.rng,
            &mut active.row,
            (&active.parties, &active.digest),
            step,
            opening,
            now,
        );
        self.apply_sealed(id, sealed, now, batch);
    }

    /// Queues a step's sealed messages and settles the computation if the step finished it.
    fn apply_sealed(&mut self, id: Uuid, sealed: Result<Sealed, Failure>, now: i64, batch: &mut Batch) {
        let sealed = match sealed {
            Ok(sealed) => sealed,
            Err(failure) => return self.fail(id, failure, now, batch),
        };
        batch.outbox.extend(sealed.outbox);
        if let Some(output) = sealed.output {
            let mut active = self.active.remove(&id).expect("steps belong to active computations");
            active.row.status = store::SUCCEEDED.to_string();
            active.row.output = Some(output.to_string());
            active.row.finished_at = Some(now);
            self.sign_receipt(&mut active.row, batch);
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
        active.offload.stop();
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
            rule,
        } = failure;
        let reason = &reason;
        let id = parse_uuid(&row.id).expect("rows hold valid ids");
        if announce == Announce::Yes {
            // The code and the party at fault only: the detail may quote our client's input.
            let told = Announced {
                code: reason.code.clone(),
                culprit: culprit.clone(),
                rule: rule.map(|r| r.token().to_string()),
            };
            let body = self.envelopes.abort_body(id, &told);
            for peer in parties.iter().filter(|p| **p != self.me) {
                match enqueue(&self.envelopes, &mut self.rng, row, peer, Kind::Abort, &body, now) {
                    Ok(message) => batch.outbox.push(message),
                    Err(error) => tracing::error!(%error, %peer, "cannot seal an abort"),
                }
            }
        }
        let mut error = json!({"code": reason.code, "message": failure::truncated(&reason.message)});
        if let Some(party) = culprit {
            error["party"] = json!(party);
        }
        if let Some(rule) = rule {
            error["rule"] = json!(rule.token());
        }
        row.status = store::FAILED.to_string();
        row.error = Some(error.to_string());
        row.machine = None;
        row.finished_at = Some(now);
        batch.failed += 1;
        self.sign_receipt(row, batch);
    }
}

/// Why a computation fails, who caused it (if another party), and whether to tell the others.
struct Failure {
    reason: AbortReason,
    culprit: Option<String>,
    announce: Announce,
    /// The policy rule, for `policy_refused`.
    rule: Option<Rule>,
}

impl Failure {
    /// A failure detected here, announced to every other party.
    fn ours(reason: AbortReason) -> Failure {
        Failure {
            reason,
            culprit: None,
            announce: Announce::Yes,
            rule: None,
        }
    }

    /// This node's policy refuses the computation: everybody is told the rule, not the detail.
    fn refused(refusal: Refusal) -> Failure {
        Failure {
            reason: AbortReason {
                code: "policy_refused".into(),
                message: refusal.message,
            },
            culprit: None,
            announce: Announce::Yes,
            rule: Some(refusal.rule),
        }
    }

    /// A dataset input that cannot be read: everybody is told the code, not the detail (which
    /// names a row).
    fn dataset(error: &DatasetError) -> Failure {
        Failure::ours(AbortReason {
            code: error.announced().to_string(),
            message: error.message.clone(),
        })
    }

    /// An engine error here: a peer's message that breaks the protocol names that peer.
    fn engine(error: &EngineError, parties: &[String]) -> Failure {
        Failure {
            reason: AbortReason {
                code: error.code().to_string(),
                message: error.to_string(),
            },
            culprit: error.culprit().and_then(|from| parties.get(from)).cloned(),
            announce: Announce::Yes,
            rule: error.rule().and_then(Rule::from_token),
        }
    }

    /// `sender` defines the computation differently from us; everybody is told.
    fn mismatch(sender: &str) -> Failure {
        Failure {
            reason: AbortReason {
                code: "definition_mismatch".into(),
                message: format!(
                    "{sender} defines this computation differently (microprotocol, parties or parameters differ)"
                ),
            },
            culprit: Some(sender.to_string()),
            announce: Announce::Yes,
            rule: None,
        }
    }
}

/// The row of computation `id` as it starts here at `now`: its definition and digest, pending,
/// no engine state yet, nothing sent, no owner (the caller sets what differs).
fn defined_row(id: Uuid, definition: &Invitation, deadline_at: i64, now: i64) -> ComputationRow {
    let Invitation {
        microprotocol,
        parties,
        parameters,
        ..
    } = definition;
    ComputationRow {
        id: id.to_string(),
        microprotocol: Some(microprotocol.clone()),
        parties: Some(json!(parties).to_string()),
        parameters: Some(parameters.to_string()),
        digest: Some(definition_digest(id, microprotocol, parties, parameters).to_vec()),
        status: store::PENDING.to_string(),
        machine: None,
        next_seq: 0,
        output: None,
        error: None,
        deadline_at,
        created_at: now,
        finished_at: None,
        network: None,
        client: None,
        dataset: None,
    }
}

/// A step's messages, sealed as outbox rows, and its output if it finished the computation.
struct Sealed {
    outbox: Vec<OutboxRow>,
    output: Option<Value>,
}

/// Seals a step's messages for the parties they go to (engine indices into `parties`), each
/// prefixed with the definition digest, with the computation's next sequence numbers; a failed
/// step becomes its abort reason. With an `opening` definition, the first message to each peer is
/// an opening that carries it (`proposals`). Needs no runtime state, so that a long step seals
/// its whole-list messages off the loop (`offload`).
fn seal_step(
    envelopes: &Envelopes,
    rng: &mut ChaCha20Rng,
    row: &mut ComputationRow,
    (parties, digest): (&[String], &[u8; 32]),
    step: Result<Step, EngineError>,
    opening: Option<&[u8]>,
    now: i64,
) -> Result<Sealed, Failure> {
    let step = step.map_err(|error| Failure::engine(&error, parties))?;
    let mut outbox = Vec::with_capacity(step.outgoing.len());
    let mut opened = HashSet::new();
    for (to, bytes) in step.outgoing {
        let mut plaintext = Vec::with_capacity(32 + bytes.len());
        plaintext.extend_from_slice(digest);
        plaintext.extend_from_slice(&bytes);
        drop(bytes);
        let (kind, plaintext) = match opening {
            Some(definition) if opened.insert(to) => (Kind::Opening, proposals::opening_body(definition, &plaintext)),
            _ => (Kind::Data, plaintext),
        };
        let message = enqueue(envelopes, rng, row, &parties[to], kind, &plaintext, now).map_err(|error| {
            Failure::ours(AbortReason {
                code: "internal".into(),
                message: format!("cannot seal a message: {error}"),
            })
        })?;
        outbox.push(message);
    }
    Ok(Sealed {
        outbox,
        output: step.output,
    })
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
    let message = seal_as(envelopes, rng, &row.id, row.next_seq, to, kind, plaintext, now)?;
    row.next_seq += 1;
    Ok(message)
}

/// A sealed outbox row with sequence number `seq`.
#[allow(clippy::too_many_arguments)]
fn seal_as(
    envelopes: &Envelopes,
    rng: &mut ChaCha20Rng,
    computation: &str,
    seq: i64,
    to: &str,
    kind: Kind,
    plaintext: &[u8],
    now: i64,
) -> Result<OutboxRow, Error> {
    let envelope = envelopes.seal(parse_uuid(computation)?, to, seq as u64, kind, plaintext, rng)?;
    Ok(OutboxRow {
        id: 0,
        computation: computation.to_string(),
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
    reads: mpsc::UnboundedReceiver<Vec<Event>>,
    stepped: mpsc::UnboundedReceiver<Box<Stepped>>,
}

/// `command`, unless it delivers nothing but peers' receipt signatures: those are kept in
/// `receipts`, for the next batch or tick (see `Runtime::run`).
fn unless_receipts(command: Command, receipts: &mut Vec<Delivery>) -> Option<Command> {
    match command {
        Command::Deliver(items)
            if items
                .iter()
                .all(|d| matches!(&d.incoming, Incoming::Message(m) if m.header.kind == Kind::Receipt)) =>
        {
            receipts.extend(items);
            None
        }
        command => Some(command),
    }
}

/// What a peer's abort (verified when it arrived) announces.
fn announced(body: &[u8]) -> Announced {
    serde_json::from_slice::<SignedAbort>(body)
        .map(|signed| signed.reason)
        .unwrap_or_else(|_| Announced {
            code: "aborted".into(),
            culprit: None,
            rule: None,
        })
}

fn parse_uuid(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|e| Error::Config(format!("stored computation id {text:?} is not a UUID: {e}")))
}
