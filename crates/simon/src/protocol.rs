//! The shape every microprotocol has: a serialisable state machine driven by its local input and
//! by messages from the other parties, producing messages and, at the end, a result.
//!
//! A microprotocol never does I/O, never reads a clock and draws randomness only from the RNG it
//! is handed ([`Io`]). That makes every protocol runnable for n parties inside one test (see
//! [`crate::simulate`]) and lets the node persist a protocol's state between steps. What a
//! protocol can express: any number of rounds (state plus messages arriving in any order),
//! all-to-all or ring messaging (`send` to any index, `broadcast`), per-party roles (`me`), and
//! sub-protocols running inside one computation ([`Io::child`] wraps a child's messages into the
//! parent's message type, so nesting is just composition of types).

use crate::masks::{Masks, NO_MASKS};
use rand_core::RngCore;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::sync::atomic::{AtomicBool, Ordering};

/// The position of a party in a computation's ordered party list.
pub type PartyIndex = usize;

/// A protocol's verdict after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress<T> {
    /// More messages are needed.
    Continue,
    /// The protocol finished at this party with this output.
    Done(T),
}

impl<T> Progress<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Progress<U> {
        match self {
            Progress::Continue => Progress::Continue,
            Progress::Done(output) => Progress::Done(f(output)),
        }
    }
}

/// Why a protocol step failed. Reported to every party of the computation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("party {from} sent a malformed message: {reason}")]
    Malformed { from: PartyIndex, reason: String },
    #[error("party {from} sent a message this protocol does not expect at this point: {what}")]
    Unexpected { from: PartyIndex, what: String },
    /// The parties' inputs together admit no result (a rank beyond the number of values,
    /// incompatible matrix shapes): every party finds it.
    #[error("{0}")]
    Failed(String),
    /// This party will not go on, for a reason of its own that the definition allows it to
    /// waive (shapes that would reveal its input): `code` names the reason.
    #[error("{reason}")]
    Refused { code: &'static str, reason: String },
    /// The parties hold fewer records in all than the definition's `min_total_samples`: every
    /// party finds it from the same opened count ([`crate::sum::total`]). The count itself is not
    /// told: below the minimum it is what the refusal protects.
    #[error("the parties hold fewer records in all than the definition's min_total_samples ({min})")]
    TooFewRecords { min: u64 },
    /// The runtime stopped the step (its computation failed or was cancelled meanwhile): its
    /// result is not wanted.
    #[error("the step was stopped")]
    Stopped,
}

impl ProtocolError {
    /// The party whose message broke the protocol, if one did.
    pub fn culprit(&self) -> Option<PartyIndex> {
        match self {
            ProtocolError::Malformed { from, .. } | ProtocolError::Unexpected { from, .. } => Some(*from),
            ProtocolError::Failed(_)
            | ProtocolError::Refused { .. }
            | ProtocolError::TooFewRecords { .. }
            | ProtocolError::Stopped => None,
        }
    }
}

/// What one party's node lets a computation make it hold, whatever the others allow: each party
/// checks the output's size against its own limits from what it knows (parameters, shapes, set
/// sizes) before it allocates it, and refuses with `too_large`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Cells of a frequency or contingency table, entries of a product, members of an
    /// intersection.
    pub max_output_cells: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_output_cells: 1_000_000,
        }
    }
}

impl Limits {
    /// Refuses an output of `cells` (of `what`) beyond [`Limits::max_output_cells`].
    pub fn check(&self, cells: u64, what: &str) -> Result<(), ProtocolError> {
        if cells <= self.max_output_cells {
            return Ok(());
        }
        Err(ProtocolError::Refused {
            code: "too_large",
            reason: format!(
                "{what} would have {cells} cells; this node takes at most {} (max_output_cells)",
                self.max_output_cells
            ),
        })
    }
}

/// The context of one step: who we are, how many parties there are, where randomness and the
/// pairwise mask seeds come from, and where outgoing messages go.
pub struct Io<'a, M> {
    me: PartyIndex,
    parties: usize,
    rng: &'a mut dyn RngCore,
    masks: &'a Masks,
    /// Set by the runtime when the step's result is no longer wanted; long loops check it.
    stop: &'a AtomicBool,
    outgoing: Vec<(PartyIndex, M)>,
}

/// A stop flag nobody sets: for steps that run to their end.
pub fn never() -> &'static AtomicBool {
    static NEVER: AtomicBool = AtomicBool::new(false);
    &NEVER
}

/// Fails with [`ProtocolError::Stopped`] once `stop` is set: what long loops call between
/// pieces of their work.
pub fn check_stop(stop: &AtomicBool) -> Result<(), ProtocolError> {
    if stop.load(Ordering::Relaxed) {
        Err(ProtocolError::Stopped)
    } else {
        Ok(())
    }
}

impl<'a, M> Io<'a, M> {
    /// A step without mask seeds: for protocols that sum nothing (a sum refuses to run).
    pub fn new(me: PartyIndex, parties: usize, rng: &'a mut dyn RngCore) -> Self {
        Io::with_masks(me, parties, rng, &NO_MASKS)
    }

    pub fn with_masks(me: PartyIndex, parties: usize, rng: &'a mut dyn RngCore, masks: &'a Masks) -> Self {
        Io {
            me,
            parties,
            rng,
            masks,
            stop: never(),
            outgoing: Vec::new(),
        }
    }

    /// The same context, stopped when `stop` is set.
    pub fn stoppable(self, stop: &'a AtomicBool) -> Self {
        Io { stop, ..self }
    }

    pub fn stop(&self) -> &'a AtomicBool {
        self.stop
    }

    pub fn me(&self) -> PartyIndex {
        self.me
    }

    pub fn parties(&self) -> usize {
        self.parties
    }

    pub fn rng(&mut self) -> &mut dyn RngCore {
        self.rng
    }

    pub fn masks(&self) -> &'a Masks {
        self.masks
    }

    /// Queues `message` for party `to`; the runtime seals and delivers it.
    pub fn send(&mut self, to: PartyIndex, message: M) {
        debug_assert!(to < self.parties, "recipient index out of range");
        self.outgoing.push((to, message));
    }

    /// Queues `message` for every party except this one.
    pub fn broadcast(&mut self, message: M)
    where
        M: Clone,
    {
        for to in (0..self.parties).filter(|&to| to != self.me) {
            self.outgoing.push((to, message.clone()));
        }
    }

    /// Runs a step of a sub-protocol: `step` sees an `Io` of the child's message type, and what
    /// it sends is wrapped into the parent's message type with `wrap`.
    pub fn child<C, R>(&mut self, wrap: impl Fn(C) -> M, step: impl FnOnce(&mut Io<'_, C>) -> R) -> R {
        let mut child = Io::with_masks(self.me, self.parties, &mut *self.rng, self.masks).stoppable(self.stop);
        let result = step(&mut child);
        let sent = child.into_outgoing();
        self.outgoing
            .extend(sent.into_iter().map(|(to, message)| (to, wrap(message))));
        result
    }

    pub fn into_outgoing(self) -> Vec<(PartyIndex, M)> {
        self.outgoing
    }
}

/// A microprotocol's state machine at one party. The state must be serialisable: the node stores
/// it after every step and resumes from it after a restart.
pub trait Microprotocol: Serialize + DeserializeOwned {
    /// What parties send each other. Serialised with serde, sealed by the runtime.
    type Message: Serialize + DeserializeOwned;
    /// What the protocol computes: the reference's `result` object for a top-level protocol, any
    /// type for a building block used inside another protocol.
    type Output;

    /// Called once, after the local input is in: typically sends the first round.
    fn start(&mut self, io: &mut Io<'_, Self::Message>) -> Result<Progress<Self::Output>, ProtocolError>;

    /// Called for every message from another party, in arrival order (which need not be the
    /// order in which they were sent). Each `(from, message)` is delivered exactly once.
    fn receive(
        &mut self,
        from: PartyIndex,
        message: Self::Message,
        io: &mut Io<'_, Self::Message>,
    ) -> Result<Progress<Self::Output>, ProtocolError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::masks::{Instance, Masks};
    use crate::sum::additive_sum::{AdditiveSum, SumMessage};
    use crate::z2k::Z256;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// A parent protocol's message type carrying a sub-protocol's messages under a name.
    #[derive(Debug, PartialEq)]
    enum Parent {
        Sub(&'static str, SumMessage),
    }

    #[test]
    fn a_child_protocol_sends_through_its_parent() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let masks = Masks::dealt(3, &mut rng);
        let mut io: Io<'_, Parent> = Io::with_masks(0, 3, &mut rng, &masks[0]);
        let mut child = AdditiveSum::new(vec![Z256::from_u64(5)], 3, Instance::default());
        let progress = io
            .child(|m| Parent::Sub("count", m), |child_io| child.start(child_io))
            .unwrap();
        assert_eq!(progress, Progress::Continue);
        let sent = io.into_outgoing();
        assert_eq!(sent.iter().map(|(to, _)| *to).collect::<Vec<_>>(), [1, 2]);
        assert!(
            sent.iter().all(
                |(_, m)| matches!(m, Parent::Sub("count", SumMessage::Masked { values, .. }) if values.len() == 1)
            )
        );
    }
}
