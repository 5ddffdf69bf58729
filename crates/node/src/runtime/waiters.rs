//! Long polling: readers waiting for computations to become final, woken after the commit that
//! made them final, with the final row. Readers also learn here which computations are running,
//! and whose they are: a reader of one needs no read of the store before it waits. (Each read
//! is a round trip to a reader thread.)

use crate::store::ComputationRow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// Wakes long-polling readers when computations become final.
#[derive(Default)]
pub struct Waiters {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Computations with readers waiting.
    watched: HashMap<Uuid, Arc<Waiting>>,
    /// The computations running here (committed, not final), each with the API client that owns
    /// it (`None`: only admins see it).
    running: HashMap<Uuid, Option<String>>,
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
    fn watch(&self, id: Uuid) -> Watch<'_> {
        let waiting = self.lock().watched.entry(id).or_default().clone();
        Watch {
            waiters: self,
            id,
            waiting,
        }
    }

    /// A long poll of computation `id`: waits up to `timeout` for its final row. `check` runs
    /// once the wait is registered (so a finish during it is not missed), with the computation's
    /// owner if it is running here, else `None`; it returns the final row a read found, ending
    /// the poll at once, or `None` to wait. `None` here: the time ran out first.
    pub async fn poll<E, Checked>(
        &self,
        id: Uuid,
        timeout: Duration,
        check: impl FnOnce(Option<Option<String>>) -> Checked,
    ) -> Result<Option<ComputationRow>, E>
    where
        Checked: Future<Output = Result<Option<ComputationRow>, E>>,
    {
        let watch = self.watch(id);
        let notified = watch.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(row) = check(watch.running_owner()).await? {
            return Ok(Some(row));
        }
        let _ = tokio::time::timeout(timeout, notified).await;
        Ok(watch.final_row().cloned())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("waiters lock")
    }

    /// Sets the running computations (after a (re)load of the store), with their owners.
    pub(super) fn set_running(&self, running: impl Iterator<Item = (Uuid, Option<String>)>) {
        self.lock().running = running.collect();
    }

    /// Notes computations that a commit has started, with their owners.
    pub(super) fn started(&self, running: impl Iterator<Item = (Uuid, Option<String>)>) {
        self.lock().running.extend(running);
    }

    /// Wakes the readers of these computations, committed final; `row` gives each one's row.
    pub(super) fn finished<'r>(&self, ids: &[Uuid], row: impl Fn(&Uuid) -> Option<&'r ComputationRow>) {
        let mut inner = self.lock();
        for id in ids {
            inner.running.remove(id);
            if let Some(waiting) = inner.watched.remove(id) {
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
struct Watch<'a> {
    waiters: &'a Waiters,
    id: Uuid,
    waiting: Arc<Waiting>,
}

impl Watch<'_> {
    fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.waiting.notify.notified()
    }

    /// The computation's final row, once `notified()` has woken this watch.
    fn final_row(&self) -> Option<&ComputationRow> {
        self.waiting.row.get()
    }

    /// If the computation is running here: its owner. Asked after `notified()` is enabled, a
    /// `Some` means that its end will wake this watch (or has already set `final_row`).
    fn running_owner(&self) -> Option<Option<String>> {
        self.waiters.lock().running.get(&self.id).cloned()
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let mut inner = self.waiters.lock();
        // Under the lock, the map's reference and ours are all there are if nobody else waits.
        if inner
            .watched
            .get(&self.id)
            .is_some_and(|w| Arc::ptr_eq(w, &self.waiting))
            && Arc::strong_count(&self.waiting) == 2
        {
            inner.watched.remove(&self.id);
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
            dataset: None,
        }
    }

    #[tokio::test]
    async fn waiting_for_an_unknown_computation_leaves_nothing_behind() {
        let waiters = Waiters::default();
        let id = Uuid::new_v4();
        let first = waiters.watch(id);
        let second = waiters.watch(id);
        drop(first);
        assert_eq!(waiters.lock().watched.len(), 1, "another reader still waits");
        drop(second);
        assert!(waiters.lock().watched.is_empty());

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
        assert!(waiters.lock().watched.is_empty());
    }

    /// A reader learns without the store that a computation runs and whose it is, and a reader
    /// that found it running is woken with its final row, even if it ends before the reader
    /// awaits.
    #[tokio::test]
    async fn a_reader_of_a_running_computation_is_woken_with_its_final_row() {
        let waiters = Waiters::default();
        let (mine, helped) = (Uuid::new_v4(), Uuid::new_v4());
        waiters.set_running([(mine, Some("alice-app".to_string()))].into_iter());
        waiters.started([(helped, None)].into_iter());
        assert_eq!(waiters.watch(helped).running_owner(), Some(None));

        let watch = waiters.watch(mine);
        let notified = watch.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        assert_eq!(watch.running_owner(), Some(Some("alice-app".to_string())));
        let row = final_row(mine);
        waiters.finished(&[mine], |_| Some(&row));
        notified.await;
        assert_eq!(watch.final_row().map(|r| r.output.as_deref()), Some(Some("42")));
        assert_eq!(watch.running_owner(), None, "final: no longer running");

        // A reload of the store replaces the running set.
        waiters.set_running(std::iter::empty());
        assert_eq!(waiters.watch(helped).running_owner(), None);
    }

    /// A poll returns what its check read, is woken by a finish that comes while the check runs
    /// (not by its timeout, a minute later), and gives up at its timeout.
    #[tokio::test]
    async fn a_poll_misses_no_finish_during_its_check_and_ends_at_its_timeout() {
        let waiters = Waiters::default();
        let id = Uuid::new_v4();
        let read = waiters
            .poll(id, Duration::from_secs(60), |running| async move {
                assert_eq!(running, None);
                Ok::<_, ()>(Some(final_row(id)))
            })
            .await;
        assert_eq!(read.unwrap().map(|r| r.id), Some(id.to_string()));

        waiters.started([(id, Some("alice-app".to_string()))].into_iter());
        let (waiters, row) = (&waiters, final_row(id));
        let row = &row;
        let started = std::time::Instant::now();
        let woken = waiters
            .poll(id, Duration::from_secs(60), |running| async move {
                assert_eq!(running, Some(Some("alice-app".to_string())));
                waiters.finished(&[id], |_| Some(row));
                Ok::<_, ()>(None)
            })
            .await;
        assert_eq!(woken.unwrap().map(|r| r.status), Some("succeeded".to_string()));
        assert!(started.elapsed() < Duration::from_secs(30), "woken by the finish");

        let unknown = Uuid::new_v4();
        let timed_out = waiters
            .poll(unknown, Duration::from_millis(1), |_| async { Ok::<_, ()>(None) })
            .await;
        assert!(matches!(timed_out, Ok(None)));
        assert!(waiters.lock().watched.is_empty(), "nothing left behind");
    }
}
