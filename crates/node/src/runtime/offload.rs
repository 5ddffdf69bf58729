//! Offload: long engine steps (a PSI's curve work over whole lists, [`Machine::runs_long`]) run
//! on a blocking thread, so the loop keeps serving other computations, the API and deadlines
//! meanwhile. Persist-then-act holds as for any step: what a long step consumes (its start, or
//! an inbox row kept with its body) stays in the store until the batch that commits the step's
//! new state and outbox consumes it, in one transaction; a restart redoes every step whose result
//! was not committed, from the committed state. One computation runs one step at a time, its
//! work in arrival order; its in-memory machine is the committed one until the result is applied.

use super::*;
use rand_core::SeedableRng;
use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;

/// One unit of a computation's work, waiting or running.
#[derive(Debug, Clone)]
pub(super) enum Work {
    Start,
    /// A message (its store key, its sender's index and its body without the digest).
    Message {
        key: MessageKey,
        from: usize,
        body: Vec<u8>,
    },
}

/// The long work of one active computation.
#[derive(Debug, Default)]
pub(super) struct Offload {
    running: Option<u64>,
    queue: VecDeque<Work>,
    /// The machine's JSON as its last long step left it, serialised off the loop too (a PSI's
    /// state holds whole lists), for the batch that persists it.
    state: Option<String>,
    /// The store holds the machine as it is in memory: a long machine changes only in its
    /// steps, so a batch that merely touches its row (a message queued for it) need not write
    /// the whole state again.
    stored: bool,
    /// The machine's bulk ([`Machine::bulk`]: a PSI's items, left out of its state), serialised
    /// off the loop by the step that first had it, for the batch that stores it.
    bulk: Option<Vec<u8>>,
    /// The store holds the machine's bulk: it never changes, so it is written once.
    bulk_stored: bool,
    /// Set when the computation ends here (failed, cancelled): a step still running stops
    /// within one batch of its work instead of finishing work nobody wants.
    stop: Arc<AtomicBool>,
}

impl Offload {
    /// The offload of a machine loaded from the store, which holds its bulk if it was apart.
    pub(super) fn loaded(bulk_stored: bool) -> Offload {
        Offload {
            bulk_stored,
            ..Offload::default()
        }
    }

    /// Whether a step runs now: its messages will take the computation's next sequence numbers,
    /// so nothing else may be sealed for it until its result is applied.
    pub(super) fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Stops the step that runs, if any.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The JSON a batch writes for `machine`: what its last long step left, or `None` if the
    /// store holds it already (see `store::upsert_computations`), or the machine serialised now.
    /// The write is then assumed to commit; a failed commit reloads every `Offload`.
    pub(super) fn state_to_write(&mut self, machine: &Machine) -> Option<String> {
        let state = match self.state.take() {
            Some(state) => Some(state),
            None if self.stored => None,
            None => Some(serde_json::to_string(machine).expect("machines serialise")),
        };
        self.stored = machine.runs_long();
        state
    }

    /// The bulk a batch writes for `machine`, with the first of its states that leaves it out:
    /// what its last long step serialised, or (for a state stored inline by an earlier
    /// version) the machine's own, serialised now.
    pub(super) fn bulk_to_write(&mut self, machine: &Machine) -> Option<Vec<u8>> {
        if self.bulk_stored {
            return None;
        }
        let bulk = self.bulk.take().or_else(|| machine.bulk());
        self.bulk_stored = bulk.is_some();
        bulk
    }
}

/// A step that ran off the loop, its messages sealed there too (a PSI's are whole lists), for
/// the loop to commit.
pub(super) struct Stepped {
    id: Uuid,
    ticket: u64,
    /// The inbox row of the message it consumed, if it took one.
    consumed: Option<MessageKey>,
    machine: Machine,
    state: String,
    /// The machine's bulk, if the store does not hold it yet.
    bulk: Option<Vec<u8>>,
    /// The computation's next sequence number before and after sealing the step's messages.
    seqs: (i64, i64),
    sealed: Result<Sealed, Failure>,
}

impl Runtime {
    /// Queues long work of an active computation; it starts once this batch is committed.
    pub(super) fn defer(&mut self, id: Uuid, work: Work, batch: &mut Batch) {
        if let Some(active) = self.active.get_mut(&id) {
            active.offload.queue.push_back(work);
            batch.dispatch.insert(id);
        }
    }

    /// After a restart or a reload: the starts and messages that long steps had not committed.
    pub(super) fn requeue(&mut self, conn: &Connection) -> Result<(), Error> {
        let long: Vec<String> = self
            .active
            .iter()
            .filter(|(_, a)| a.machine.runs_long())
            .map(|(id, _)| id.to_string())
            .collect();
        let mut redo = HashSet::new();
        for (id, active) in self.active.iter_mut() {
            if !active.machine.started() {
                active.offload.queue.push_back(Work::Start);
                redo.insert(*id);
            }
        }
        for row in self.pending_inbox(conn, &long)? {
            let id = parse_uuid(&row.computation)?;
            let active = self.active.get_mut(&id).expect("listed above");
            let Some(from) = active.parties.iter().position(|p| *p == row.sender) else {
                continue;
            };
            let body = row.body.unwrap_or_default().get(32..).unwrap_or_default().to_vec();
            active.offload.queue.push_back(Work::Message {
                key: (row.computation, row.sender, row.seq),
                from,
                body,
            });
            redo.insert(id);
        }
        self.dispatch(redo);
        Ok(())
    }

    /// Starts the next queued step of every computation in `ids` that has none running.
    pub(super) fn dispatch(&mut self, ids: impl IntoIterator<Item = Uuid>) {
        for id in ids {
            let Some(active) = self.active.get_mut(&id) else {
                continue;
            };
            if active.offload.running.is_some() {
                continue;
            }
            let Some(work) = active.offload.queue.pop_front() else {
                continue;
            };
            self.tickets += 1;
            let ticket = self.tickets;
            active.offload.running = Some(ticket);
            let machine = active.machine.clone();
            let mut row = active.row.clone();
            let parties = active.parties.clone();
            let digest = active.digest;
            let envelopes = self.envelopes.clone();
            let masks = active.masks.clone();
            let mut seed = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut self.rng, &mut seed);
            let done = self.stepped.clone();
            let stop = active.offload.stop.clone();
            let bulk_stored = active.offload.bulk_stored;
            tokio::task::spawn_blocking(move || {
                let mut rng = ChaCha20Rng::from_seed(seed);
                let mut machine = Arc::unwrap_or_clone(machine);
                // The message (a whole matrix, perhaps) is freed here with its arm, not on the loop.
                let (step, consumed) = match work {
                    Work::Start => (machine.start_stoppable(&mut rng, &masks, &stop), None),
                    Work::Message { key, from, body } => (
                        machine.receive_stoppable(from, &body, &mut rng, &masks, &stop),
                        Some(key),
                    ),
                };
                let state = serde_json::to_string(&machine).expect("machines serialise");
                let bulk = if bulk_stored { None } else { machine.bulk() };
                let before = row.next_seq;
                let sealed = seal_step(
                    &envelopes,
                    &mut rng,
                    &mut row,
                    (&parties, &digest),
                    step,
                    None,
                    now_ms(),
                );
                let _ = done.send(Box::new(Stepped {
                    id,
                    ticket,
                    consumed,
                    machine,
                    state,
                    bulk,
                    seqs: (before, row.next_seq),
                    sealed,
                }));
            });
        }
    }

    /// Applies a step that ran off the loop, if its computation still waits for it (it may have
    /// failed meanwhile, or the state may have been reloaded after a failed commit).
    pub(super) fn apply_stepped(&mut self, stepped: Stepped, now: i64, batch: &mut Batch) {
        let Stepped {
            id,
            ticket,
            consumed,
            machine,
            state,
            bulk,
            seqs: (before, after),
            sealed,
        } = stepped;
        let Some(active) = self.active.get_mut(&id) else {
            return;
        };
        if active.offload.running != Some(ticket) {
            return;
        }
        active.offload.running = None;
        // The machine it replaces holds whole lists too: freed off the loop.
        let replaced = std::mem::replace(&mut active.machine, Arc::new(machine));
        tokio::task::spawn_blocking(move || drop(replaced));
        active.offload.state = Some(state);
        active.offload.bulk = bulk.or(active.offload.bulk.take());
        batch.consumed_messages.extend(consumed);
        batch.touched.insert(id);
        batch.dispatch.insert(id);
        // Only this step seals messages while it runs, so its numbers are still free; were they
        // not, peers would drop its messages as replays, so fail rather than hang.
        let sealed = if active.row.next_seq == before {
            active.row.next_seq = after;
            sealed
        } else {
            Err(Failure::ours(AbortReason {
                code: "internal".into(),
                message: "a long step's messages were numbered out of turn".into(),
            }))
        };
        self.apply_sealed(id, sealed, now, batch);
    }
}
