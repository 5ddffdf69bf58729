//! AdditiveSum: the building block that sums a vector of ring elements over all parties, in
//! Z_2^256 or in the wide ring (the const parameter `L` is the number of 64-bit limbs).
//!
//! Round 1: each party splits its vector x into n additive shares, uniform in Z_2^256 subject to
//! summing to x, keeps one and sends share j to party j. Round 2: each party adds up the shares
//! it holds (its "partial") and sends that partial to everybody; the sum of all partials is
//! Σ x. Messages may arrive in any order; both rounds are commutative accumulations.
//!
//! What each party learns: the total Σ x and nothing else. Any n−1 shares of a vector are
//! independent and uniform; a party sees one share of every other party's vector and the n−1
//! partials of the others, which (given its own share and the total) are uniform subject to
//! summing to the total minus its own partial. With n = 2 the total and one's own input
//! determine the other input anyway. Nothing is revealed to the broker (messages are sealed).
//! Messages: 2·n·(n−1) per computation, two rounds.

use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::z2k::Zk;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SumMessage<const L: usize = 4> {
    /// This party's share of the sender's vector.
    Share(Vec<Zk<L>>),
    /// The sender's partial: the sum of all shares it holds.
    Partial(Vec<Zk<L>>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdditiveSum<const L: usize = 4> {
    /// The local vector until `start` splits it; never kept afterwards.
    input: Option<Vec<Zk<L>>>,
    len: usize,
    /// The sum of the shares received so far, own share included: the partial once complete.
    partial: Vec<Zk<L>>,
    shares_from: Vec<bool>,
    /// The sum of the partials received so far, own included.
    total: Vec<Zk<L>>,
    partials_from: Vec<bool>,
}

impl<const L: usize> AdditiveSum<L> {
    /// A sum over `parties` parties of vectors of `input.len()` elements (the same at every party).
    pub fn new(input: Vec<Zk<L>>, parties: usize) -> AdditiveSum<L> {
        let len = input.len();
        AdditiveSum {
            input: Some(input),
            len,
            partial: vec![Zk::ZERO; len],
            shares_from: vec![false; parties],
            total: vec![Zk::ZERO; len],
            partials_from: vec![false; parties],
        }
    }

    fn add_into(acc: &mut [Zk<L>], from: PartyIndex, values: &[Zk<L>]) -> Result<(), ProtocolError> {
        if values.len() != acc.len() {
            return Err(ProtocolError::Malformed {
                from,
                reason: format!("expected {} values, got {}", acc.len(), values.len()),
            });
        }
        acc.iter_mut().zip(values).for_each(|(a, v)| *a += *v);
        Ok(())
    }

    fn mark(seen: &mut [bool], from: PartyIndex, what: &str) -> Result<(), ProtocolError> {
        match seen.get_mut(from) {
            Some(flag) if !*flag => {
                *flag = true;
                Ok(())
            }
            _ => Err(ProtocolError::Unexpected {
                from,
                what: format!("a second {what}"),
            }),
        }
    }

    /// Sends our partial once every share is in; finishes once every partial is in.
    fn advance(&mut self, io: &mut Io<'_, SumMessage<L>>) -> Progress<Vec<Zk<L>>> {
        let me = io.me();
        if !self.partials_from[me] && self.shares_from.iter().all(|&seen| seen) {
            io.broadcast(SumMessage::Partial(self.partial.clone()));
            self.total.iter_mut().zip(&self.partial).for_each(|(t, p)| *t += *p);
            self.partials_from[me] = true;
        }
        if self.partials_from.iter().all(|&seen| seen) {
            Progress::Done(self.total.clone())
        } else {
            Progress::Continue
        }
    }
}

impl<const L: usize> Microprotocol for AdditiveSum<L> {
    type Message = SumMessage<L>;
    type Output = Vec<Zk<L>>;

    fn start(&mut self, io: &mut Io<'_, SumMessage<L>>) -> Result<Progress<Vec<Zk<L>>>, ProtocolError> {
        let me = io.me();
        let mut own = self.input.take().expect("start is called once");
        for to in (0..io.parties()).filter(|&to| to != me) {
            let share: Vec<Zk<L>> = (0..self.len).map(|_| Zk::random(io.rng())).collect();
            own.iter_mut().zip(&share).for_each(|(o, s)| *o -= *s);
            io.send(to, SumMessage::Share(share));
        }
        Self::add_into(&mut self.partial, me, &own)?;
        self.shares_from[me] = true;
        Ok(self.advance(io))
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: SumMessage<L>,
        io: &mut Io<'_, SumMessage<L>>,
    ) -> Result<Progress<Vec<Zk<L>>>, ProtocolError> {
        match message {
            SumMessage::Share(values) => {
                Self::mark(&mut self.shares_from, from, "share")?;
                Self::add_into(&mut self.partial, from, &values)?;
            }
            SumMessage::Partial(values) => {
                Self::mark(&mut self.partials_from, from, "partial sum")?;
                Self::add_into(&mut self.total, from, &values)?;
            }
        }
        Ok(self.advance(io))
    }
}
