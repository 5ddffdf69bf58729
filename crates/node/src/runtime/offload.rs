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
}

impl Offload {
    /// The machine's JSON, if the last long step serialised it and nothing was persisted since.
    pub(super) fn take_state(&mut self) -> Option<String> {
        self.state.take()
    }
}

/// A step that ran off the loop, for the loop to commit.
pub(super) struct Stepped {
    id: Uuid,
    ticket: u64,
    work: Work,
    machine: Machine,
    state: String,
    step: Result<Step, EngineError>,
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
    pub(super) async fn requeue(&mut self, conn: &mut sqlx::SqliteConnection) -> Result<(), Error> {
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
        for row in store::pending_inbox(conn, &long).await? {
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
            let mut machine = active.machine.clone();
            let masks = active.masks.clone();
            let mut seed = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut self.rng, &mut seed);
            let done = self.stepped.clone();
            tokio::task::spawn_blocking(move || {
                let mut rng = ChaCha20Rng::from_seed(seed);
                let step = match &work {
                    Work::Start => machine.start(&mut rng, &masks),
                    Work::Message { from, body, .. } => machine.receive(*from, body, &mut rng, &masks),
                };
                let state = serde_json::to_string(&machine).expect("machines serialise");
                let _ = done.send(Box::new(Stepped {
                    id,
                    ticket,
                    work,
                    machine,
                    state,
                    step,
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
            work,
            machine,
            state,
            step,
        } = stepped;
        let Some(active) = self.active.get_mut(&id) else {
            return;
        };
        if active.offload.running != Some(ticket) {
            return;
        }
        active.offload.running = None;
        active.machine = machine;
        active.offload.state = Some(state);
        if let Work::Message { key, .. } = work {
            batch.consumed_messages.push(key);
        }
        batch.touched.insert(id);
        batch.dispatch.insert(id);
        self.handle_step(id, step, now, batch);
    }
}
