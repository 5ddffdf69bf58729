//! Proposals: a computation that another party has started becomes visible here before this
//! node's client submits it, with its definition, and a client here may decline it.
//!
//! Propagation adds no message in the common case: when a client submits, the first message
//! the computation's first step sends to each peer is an `opening` (the definition, then the data
//! message it would have sent anyway). A peer that first step sends nothing to (a sum through an
//! aggregator, a long first step off the loop) gets an `invite` with the definition instead, but
//! only if the computation is still running here [`INVITE_AFTER_MS`] later, and only from a party
//! that had heard from no other party for it when its client submitted (the one that starts it,
//! as far as it knows), to the parties it has still not heard from. Computations whose parties
//! all submit at about the same time (a batch) end before that and send no invite: sent at once,
//! by every party that had heard from nobody yet, invites cost a batch of sums among n parties
//! through an aggregator up to n(n − 2) messages a sum. An invite not yet sent when the node
//! stops is not sent after the restart; its peers then learn of the computation from the
//! messages that reach them.
//!
//! Receiving: an opening, or an invite that names this node among the parties, for a computation
//! not submitted here stores a proposal: the definition, the authenticated sender as proposer,
//! the deadline (counted from its arrival, no later than `max_deadline_s` allows). It is checked
//! against the sender's `max_unsolicited_bytes` together with the message before anything is
//! stored, and stored only if it is a definition this node could be a party of (the sender and
//! this node among the parties, every party in the roster, once each, and for an opening the
//! digest its data message carries). Its message waits like any other for the submission, which
//! checks everything (clients, policy, budget): a proposal admits nothing, and shows nothing but
//! a definition, never an input. A party has joined when one of its messages has reached this
//! node (`store::senders_pool`).
//!
//! Declining: a client of this node fails a proposal here (`declined`), which sends every other
//! participant a signed abort; the proposer's computation fails with `declined`, naming this
//! node. This module must not start a computation: only a submission does.

use super::*;
use crate::store::ProposalRow;

/// The error code of a proposal a client declined.
pub const DECLINED: &str = "declined";

/// What a message for a computation not submitted here proposes.
pub(super) enum Proposed {
    /// Nothing: a data message, an abort, or an invite to this node as a helper.
    Nothing,
    /// The computation, with this node among its parties: a proposal if its definition is one
    /// this node could be a party of. An invite of this kind never makes this node a helper.
    AsParty(Option<ProposalRow>),
}

/// What a decline did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declined {
    /// The proposal has failed here; every other party is told.
    Now,
    /// There is no proposal of that id here: unknown, expired, submitted here, or ended.
    NotProposed,
}

/// How long a computation started here may wait for its parties before those its first step
/// did not reach get an invite (see the module's documentation).
pub(super) const INVITE_AFTER_MS: i64 = 2_000;

/// An invite to send if its computation is still running when it is due.
pub(super) struct DueInvite {
    due_at: i64,
    id: Uuid,
    invitation: Invitation,
    /// The parties the computation's first step sent nothing to.
    silent: Vec<String>,
}

/// The definition an opening or a party's invite carries.
pub(super) fn definition_bytes(invitation: &Invitation) -> Vec<u8> {
    serde_json::to_vec(invitation).expect("invitations serialise")
}

/// An opening's body: the definition's length (4 bytes, big-endian), the definition, then `data`.
pub(super) fn opening_body(definition: &[u8], data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + definition.len() + data.len());
    body.extend_from_slice(&(definition.len() as u32).to_be_bytes());
    body.extend_from_slice(definition);
    body.extend_from_slice(data);
    body
}

/// An opening's definition and data message, if it has both.
pub(super) fn split_opening(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let length = u32::from_be_bytes(body.get(..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(length)?;
    Some((body.get(4..end)?, body.get(end..)?))
}

impl Runtime {
    /// Remembers to invite the parties that `reached` (the recipients of the computation's first
    /// step) leaves out, if computation `id` is still running here after [`INVITE_AFTER_MS`].
    pub(super) fn propose(&mut self, id: Uuid, invitation: &Invitation, reached: &HashSet<String>, now: i64) {
        let silent: Vec<String> = invitation
            .parties
            .iter()
            .filter(|p| **p != self.me && !reached.contains(*p))
            .cloned()
            .collect();
        if !silent.is_empty() {
            self.invites.push_back(DueInvite {
                due_at: now + INVITE_AFTER_MS,
                id,
                invitation: invitation.clone(),
                silent,
            });
        }
    }

    /// Whether an invite is due (the loop's tick then opens a transaction).
    pub(super) fn invites_due(&self, now: i64) -> bool {
        self.invites.front().is_some_and(|invite| invite.due_at <= now)
    }

    /// Sends the invites that are due, for computations still running here, to the parties not
    /// heard from yet, with the deadline that is left.
    pub(super) fn send_invites(&mut self, conn: &Connection, now: i64, batch: &mut Batch) -> Result<(), Error> {
        let mut later = Vec::new();
        while self.invites_due(now) {
            let due = self.invites.pop_front().expect("an invite is due");
            let Some(active) = self.active.get_mut(&due.id) else {
                continue;
            };
            if active.offload.is_running() {
                // A long step (a PSI's) numbers its messages itself: ask again after a while.
                later.push(DueInvite {
                    due_at: now + INVITE_AFTER_MS,
                    ..due
                });
                continue;
            }
            let DueInvite {
                id,
                mut invitation,
                silent,
                ..
            } = due;
            let joined: HashSet<String> = store::senders(conn, &id.to_string())?.into_iter().collect();
            invitation.deadline_s = ((active.row.deadline_at - now).max(1000) / 1000) as u64;
            let body = definition_bytes(&invitation);
            for peer in silent.iter().filter(|p| !joined.contains(*p)) {
                match enqueue(
                    &self.envelopes,
                    &mut self.rng,
                    &mut active.row,
                    peer,
                    Kind::Invite,
                    &body,
                    now,
                ) {
                    Ok(message) => {
                        batch.outbox.push(message);
                        batch.invites_sent += 1;
                        batch.touched.insert(id);
                    }
                    Err(error) => tracing::error!(%error, %peer, computation = %id, "cannot seal a proposal"),
                }
            }
        }
        // Due no earlier than any invite queued so far (each was queued at most
        // `INVITE_AFTER_MS` before it falls due): the queue stays in the order invites fall due.
        self.invites.extend(later);
        Ok(())
    }

    /// What `message`, for a computation not submitted here, proposes.
    pub(super) fn proposed(&self, message: &Opened, now: i64) -> Proposed {
        let (definition, digest) = match message.header.kind {
            Kind::Opening => match split_opening(&message.plaintext) {
                Some((definition, data)) if data.len() >= 32 => (definition, Some(&data[..32])),
                _ => return Proposed::AsParty(None),
            },
            Kind::Invite => (&message.plaintext[..], None),
            _ => return Proposed::Nothing,
        };
        let opening = message.header.kind == Kind::Opening;
        let Ok(invitation) = serde_json::from_slice::<Invitation>(definition) else {
            return if opening {
                Proposed::AsParty(None)
            } else {
                Proposed::Nothing
            };
        };
        let is_party = |id: &str| invitation.parties.iter().any(|p| p == id);
        if !is_party(&self.me) {
            return if opening {
                Proposed::AsParty(None)
            } else {
                Proposed::Nothing
            };
        }
        let id = message.header.computation;
        let sender = &message.header.from;
        let distinct = invitation.parties.iter().collect::<HashSet<_>>().len() == invitation.parties.len();
        let known = invitation.parties.iter().all(|p| self.roster.party(p).is_some());
        let agreed = digest.is_none_or(|digest| {
            definition_digest(
                id,
                &invitation.microprotocol,
                &invitation.parties,
                &invitation.parameters,
            )[..]
                == *digest
        });
        if !(is_party(sender) && distinct && known && agreed) {
            tracing::warn!(computation = %id, %sender, "a proposal that this node cannot be a party of; not listed");
            return Proposed::AsParty(None);
        }
        Proposed::AsParty(Some(ProposalRow {
            computation: id.to_string(),
            proposer: sender.clone(),
            microprotocol: invitation.microprotocol,
            parties: json!(invitation.parties).to_string(),
            parameters: invitation.parameters.to_string(),
            deadline_at: now + invitation.deadline_s.clamp(1, self.config.max_deadline_s) as i64 * 1000,
            received_at: now,
        }))
    }

    /// Declines proposal `id` for client `by`: it fails here with `declined`, and every other
    /// participant is sent a signed abort. The failed computation belongs to `by`, so a later
    /// submission of it finds the failure.
    pub(super) fn decline(
        &mut self,
        conn: &Connection,
        id: Uuid,
        by: &str,
        now: i64,
        batch: &mut Batch,
    ) -> Result<Declined, Error> {
        if self.active.contains_key(&id) || batch.settled.contains_key(&id) {
            return Ok(Declined::NotProposed);
        }
        let Some(proposal) = store::proposal(conn, &id.to_string())? else {
            return Ok(Declined::NotProposed);
        };
        let unreadable = |e: serde_json::Error| Error::Config(format!("stored proposal {id} is unreadable: {e}"));
        let definition = Invitation {
            microprotocol: proposal.microprotocol,
            parties: serde_json::from_str(&proposal.parties).map_err(unreadable)?,
            parameters: serde_json::from_str(&proposal.parameters).map_err(unreadable)?,
            deadline_s: ((proposal.deadline_at - now) / 1000).max(0) as u64,
        };
        let mut row = defined_row(id, &definition, proposal.deadline_at, now);
        row.client = Some(by.to_string());
        let reason = AbortReason {
            code: DECLINED.into(),
            message: format!("declined by client {by}"),
        };
        let everyone = participants(&definition.parties, &definition.parameters);
        self.settle_failed(&mut row, &everyone, Failure::ours(reason), now, batch);
        batch.settled.insert(id, row);
        batch.finished.push(id);
        Ok(Declined::Now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opening_splits_into_its_definition_and_its_data() {
        let body = opening_body(b"{\"d\":1}", b"data");
        assert_eq!(split_opening(&body), Some((&b"{\"d\":1}"[..], &b"data"[..])));
        assert_eq!(split_opening(&body[..5]), None);
        assert_eq!(split_opening(&[0, 0]), None);
        assert_eq!(split_opening(&[255, 255, 255, 255, 1]), None);
    }
}
