//! AdditiveSum: the building block that sums a vector of ring elements over all parties, in
//! Z_2^64, Z_2^256 or the wide ring (the const parameter `L` is the number of 64-bit limbs).
//!
//! Each party i masks its vector once with the pairwise masks of [`crate::masks`]:
//! `y_i = x_i + Σ_{j>i} m_ij − Σ_{j<i} m_ji`, and the masks cancel in `Σ y_i = Σ x_i`. No shares
//! are exchanged, so the sum travels in one of two ways ([`crate::masks::Masks::aggregator`]):
//! - below [`AGGREGATE_FROM`] parties, all-to-all: every party sends y_i to every other and adds
//!   up what it receives. One hop, n(n−1) messages.
//! - from [`AGGREGATE_FROM`] on, through an aggregator (rotating with the computation): every
//!   other party sends it y_i; it adds them up and sends the total to all. Two hops, 2(n−1)
//!   messages.
//!
//! Messages may arrive in any order (accumulation commutes). Every masked vector carries the
//! masks' agreement value, so a party that derived its seeds from other keys fails the sum
//! instead of making it wrong.
//!
//! What each party learns: the total Σ x and nothing else. A party (or the aggregator) sees the
//! other parties' y_j; each is masked by the PRF outputs of j's pairs, and to any coalition that
//! misses one of j's pairs y_j is indistinguishable from uniform: computationally hiding, on the
//! PRF (ChaCha20) and the key derivation, the same assumptions as the envelope. The y_j of all
//! parties together determine only Σ x. With n = 2 the total and one's own input determine the
//! other input anyway. Nothing is revealed to the broker (messages are sealed).

use crate::masks::{AGGREGATE_FROM, Instance};
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::z2k::Zk;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SumMessage<const L: usize = 4> {
    /// The sender's masked vector y_i, and the agreement of the masks it used.
    Masked { values: Vec<Zk<L>>, agreement: u64 },
    /// The aggregator's total.
    Total(Vec<Zk<L>>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdditiveSum<const L: usize = 4> {
    /// The local vector until `start` masks it; never kept afterwards.
    input: Option<Vec<Zk<L>>>,
    instance: Instance,
    /// The sum of the masked vectors received so far, own included.
    total: Vec<Zk<L>>,
    masked_from: Vec<bool>,
}

impl<const L: usize> AdditiveSum<L> {
    /// A sum over `parties` parties of vectors of `input.len()` elements (the same at every
    /// party), masked for `instance`, which no other sum of the computation may have.
    pub fn new(input: Vec<Zk<L>>, parties: usize, instance: Instance) -> AdditiveSum<L> {
        let len = input.len();
        AdditiveSum {
            input: Some(input),
            instance,
            total: vec![Zk::ZERO; len],
            masked_from: vec![false; parties],
        }
    }

    /// The local vector, until `start` masks it: where a protocol with `dp` adds its noise shares
    /// (it draws them from `start`'s rng, so the state before `start` holds no noise to leak).
    pub fn input_mut(&mut self) -> Option<&mut [Zk<L>]> {
        self.input.as_deref_mut()
    }

    fn add(&mut self, from: PartyIndex, values: &[Zk<L>]) -> Result<(), ProtocolError> {
        if values.len() != self.total.len() {
            return Err(ProtocolError::Malformed {
                from,
                reason: format!("expected {} values, got {}", self.total.len(), values.len()),
            });
        }
        match self.masked_from.get_mut(from) {
            Some(seen) if !*seen => *seen = true,
            _ => {
                return Err(ProtocolError::Unexpected {
                    from,
                    what: "a second masked vector".into(),
                });
            }
        }
        self.total.iter_mut().zip(values).for_each(|(t, v)| *t += *v);
        Ok(())
    }

    /// Finishes once every masked vector is in; the aggregator then announces the total.
    fn advance(&mut self, io: &mut Io<'_, SumMessage<L>>) -> Progress<Vec<Zk<L>>> {
        if !self.masked_from.iter().all(|&seen| seen) {
            return Progress::Continue;
        }
        if io.masks().aggregator(io.parties()) == Some(io.me()) {
            io.broadcast(SumMessage::Total(self.total.clone()));
        }
        Progress::Done(std::mem::take(&mut self.total))
    }
}

impl<const L: usize> Microprotocol for AdditiveSum<L> {
    type Message = SumMessage<L>;
    type Output = Vec<Zk<L>>;

    fn start(&mut self, io: &mut Io<'_, SumMessage<L>>) -> Result<Progress<Vec<Zk<L>>>, ProtocolError> {
        let (me, parties, masks) = (io.me(), io.parties(), io.masks());
        if !masks.covers(parties) {
            return Err(ProtocolError::Failed(
                "no mask seeds for this computation's parties".into(),
            ));
        }
        let mut masked = self.input.take().expect("start is called once");
        masks.apply(me, parties, self.instance, &mut masked);
        let message = SumMessage::Masked {
            values: masked.clone(),
            agreement: masks.agreement(),
        };
        match masks.aggregator(parties) {
            None => io.broadcast(message),
            Some(aggregator) if aggregator != me => {
                io.send(aggregator, message);
                // Only the total is awaited: nothing is added here.
                self.masked_from.iter_mut().for_each(|seen| *seen = true);
                self.masked_from[aggregator] = false;
                return Ok(Progress::Continue);
            }
            Some(_) => {}
        }
        self.add(me, &masked)?;
        Ok(self.advance(io))
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: SumMessage<L>,
        io: &mut Io<'_, SumMessage<L>>,
    ) -> Result<Progress<Vec<Zk<L>>>, ProtocolError> {
        let aggregator = io.masks().aggregator(io.parties());
        match message {
            SumMessage::Masked { values, agreement } if aggregator.is_none_or(|a| a == io.me()) => {
                if agreement != io.masks().agreement() {
                    return Err(ProtocolError::Failed(
                        "the parties derived their masks from different keys or definitions (are all rosters the same?)"
                            .into(),
                    ));
                }
                self.add(from, &values)?;
                Ok(self.advance(io))
            }
            SumMessage::Total(values) if aggregator == Some(from) && from != io.me() => {
                self.add(from, &values)?;
                Ok(Progress::Done(std::mem::take(&mut self.total)))
            }
            _ => Err(ProtocolError::Unexpected {
                from,
                what: "a sum message for another role".into(),
            }),
        }
    }
}

/// How many messages one sum among `parties` parties costs (for documentation and benchmarks).
pub fn messages_per_sum(parties: usize) -> usize {
    if parties >= AGGREGATE_FROM {
        2 * (parties - 1)
    } else {
        parties * (parties - 1)
    }
}
