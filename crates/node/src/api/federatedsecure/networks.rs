//! The `compute` calls of each federatedsecure network uuid, in this node's memory: one call of
//! a network at a time picks its computation (a lock per network), and which computations a
//! call is waiting for, or was waiting for until its client went away.
//!
//! The k-th `compute` of a network at each node forms one computation. A call whose client
//! disconnects (an interrupted run) leaves its computation without anyone to collect the result;
//! `Simon::compute` lets the same client's next call of that network take it over, so that the
//! parties stay in step. This module only keeps the facts; `simon` decides.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a computation whose caller left stays available for the next call to take over.
const ABANDONED_FOR: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub struct Networks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    calls: Mutex<HashMap<Uuid, Call>>,
}

enum Call {
    /// This many calls wait for the computation's result.
    Waiting(usize),
    /// Every call that waited went away before the result came, at this time.
    Abandoned(Instant),
}

impl Networks {
    /// Serialises the calls of one network while one picks its computation.
    pub async fn lock(&self, network: &str) -> NetworkGuard<'_> {
        let lock = self
            .locks
            .lock()
            .expect("networks lock")
            .entry(network.to_string())
            .or_default()
            .clone();
        NetworkGuard {
            networks: self,
            guard: Some(lock.lock_owned().await),
        }
    }

    /// Records that a call waits for `id` until the returned guard is dropped (the call ended,
    /// or its client went away) or `delivered`.
    pub fn wait(&self, id: Uuid) -> Waiting<'_> {
        let mut calls = self.calls.lock().expect("calls lock");
        match calls.get_mut(&id) {
            Some(Call::Waiting(n)) => *n += 1,
            _ => {
                calls.insert(id, Call::Waiting(1));
            }
        }
        Waiting {
            networks: self,
            id,
            delivered: false,
        }
    }

    /// Whether some call waits for `id` now.
    pub fn is_awaited(&self, id: Uuid) -> bool {
        matches!(self.calls.lock().expect("calls lock").get(&id), Some(Call::Waiting(_)))
    }

    /// Whether every call that waited for `id` went away before its result came; if so, `id`
    /// is handed to the caller, once.
    pub fn take_abandoned(&self, id: Uuid) -> bool {
        let mut calls = self.calls.lock().expect("calls lock");
        match calls.get(&id) {
            Some(Call::Abandoned(at)) if at.elapsed() < ABANDONED_FOR => {
                calls.remove(&id);
                true
            }
            _ => false,
        }
    }
}

/// Held while a call picks its network's computation.
pub struct NetworkGuard<'a> {
    networks: &'a Networks,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for NetworkGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        // Forget the locks nobody holds or waits for.
        self.networks
            .locks
            .lock()
            .expect("networks lock")
            .retain(|_, lock| Arc::strong_count(lock) > 1);
    }
}

/// A call waiting for a computation's result.
pub struct Waiting<'a> {
    networks: &'a Networks,
    id: Uuid,
    delivered: bool,
}

impl Waiting<'_> {
    /// The result reached the call's client.
    pub fn delivered(mut self) {
        self.delivered = true;
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut calls = self.networks.calls.lock().expect("calls lock");
        let now = Instant::now();
        calls.retain(|_, call| !matches!(call, Call::Abandoned(at) if now.duration_since(*at) >= ABANDONED_FOR));
        if let Some(Call::Waiting(n)) = calls.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                if self.delivered {
                    calls.remove(&self.id);
                } else {
                    calls.insert(self.id, Call::Abandoned(now));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_computation_is_abandoned_when_its_last_caller_leaves_undelivered() {
        let networks = Networks::default();
        let id = Uuid::new_v4();
        let first = networks.wait(id);
        let second = networks.wait(id);
        drop(first);
        assert!(networks.is_awaited(id), "the second call still waits");
        drop(second);
        assert!(!networks.is_awaited(id));
        assert!(networks.take_abandoned(id));
        assert!(!networks.take_abandoned(id), "handed over once");

        let delivered = Uuid::new_v4();
        networks.wait(delivered).delivered();
        assert!(!networks.take_abandoned(delivered));
        assert!(networks.calls.lock().unwrap().is_empty());
    }
}
