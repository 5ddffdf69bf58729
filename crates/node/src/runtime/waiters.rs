//! Long polling: readers waiting for computations to become final, woken after the commit that
//! made them final, with the final row: reading it back from the store would put a round trip
//! to a reader thread between the commit and the answer.

use crate::store::ComputationRow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::Notify;
use uuid::Uuid;

/// Wakes long-polling readers when computations become final.
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<Uuid, Arc<Waiting>>>,
}

/// What the readers of one computation share.
#[derive(Default)]
struct Waiting {
    notify: Notify,
    /// The committed final row, set before `notify` wakes anyone.
    row: OnceLock<ComputationRow>,
}

impl Waiters {
    /// Starts watching `id`: enable the returned watch's `notified()` future, then check the
    /// status, then await it (so a finish between the check and the wait is not missed).
    pub fn watch(&self, id: Uuid) -> Watch<'_> {
        let waiting = self.map.lock().expect("waiters lock").entry(id).or_default().clone();
        Watch {
            waiters: self,
            id,
            waiting,
        }
    }

    /// Wakes the readers of these computations, committed final; `row` gives each one's row.
    pub(super) fn finished<'r>(&self, ids: &[Uuid], row: impl Fn(&Uuid) -> Option<&'r ComputationRow>) {
        let mut map = self.map.lock().expect("waiters lock");
        for id in ids {
            if let Some(waiting) = map.remove(id) {
                if let Some(row) = row(id) {
                    // Readers show the status and the result, never the engine's state.
                    let _ = waiting.row.set(ComputationRow {
                        machine: None,
                        ..row.clone()
                    });
                }
                waiting.notify.notify_waiters();
            }
        }
    }
}

/// A reader waiting for one computation. Dropping the last watch of an id forgets it, so waiting
/// for computations that never finish here (unknown ids) leaves nothing behind.
pub struct Watch<'a> {
    waiters: &'a Waiters,
    id: Uuid,
    waiting: Arc<Waiting>,
}

impl Watch<'_> {
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.waiting.notify.notified()
    }

    /// The computation's final row, once `notified()` has woken this watch.
    pub fn final_row(&self) -> Option<&ComputationRow> {
        self.waiting.row.get()
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let mut map = self.waiters.map.lock().expect("waiters lock");
        // Under the lock, the map's reference and ours are all there are if nobody else waits.
        if map.get(&self.id).is_some_and(|w| Arc::ptr_eq(w, &self.waiting)) && Arc::strong_count(&self.waiting) == 2 {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn final_row(id: Uuid) -> ComputationRow {
        ComputationRow {
            id: id.to_string(),
            microprotocol: Some("SecureSum".into()),
            parties: None,
            parameters: None,
            digest: None,
            status: "succeeded".into(),
            machine: Some("a large state".into()),
            next_seq: 0,
            output: Some("42".into()),
            error: None,
            deadline_at: 0,
            created_at: 0,
            finished_at: Some(1),
            network: None,
            client: None,
        }
    }

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
            let row = final_row(id);
            waiters.finished(&[id], |_| Some(&row));
            notified.await;
            let woken = watch.final_row().expect("the final row comes with the wake-up");
            assert_eq!(woken.status, "succeeded");
            assert!(woken.machine.is_none(), "readers never get the engine's state");
        }
        assert!(waiters.map.lock().unwrap().is_empty());
    }
}
