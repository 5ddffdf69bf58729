//! Long polling: readers waiting for computations to become final, woken after the commit that
//! made them final.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use uuid::Uuid;

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

    pub(super) fn finished(&self, ids: &[Uuid]) {
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
