//! Delivery: authenticated messages from peers, deduplicated by the store's unique key and applied
//! to their computations, or kept until the local client submits (with the proposal an opening or
//! a party's invite makes, see `proposals`); aborts of computations not submitted here leave a
//! tombstone.

use super::proposals::Proposed;
use super::*;

impl Runtime {
    /// Takes the acknowledgements of `deliveries` into the batch and returns their messages,
    /// chunks stored until their message is complete (then reassembled and opened).
    pub(super) fn reassemble(
        &mut self,
        conn: &Connection,
        deliveries: Vec<Delivery>,
        now: i64,
        batch: &mut Batch,
    ) -> Result<Vec<Opened>, Error> {
        let mut messages = Vec::new();
        for delivery in deliveries {
            if let Some(ack) = delivery.ack {
                batch.acks.push(ack);
            }
            match delivery.incoming {
                Incoming::Message(opened) => messages.push(opened),
                Incoming::Chunk {
                    computation,
                    sender,
                    id,
                    data,
                } => {
                    // A chunk of a computation that has ended here (redelivered, or sent after
                    // the end) is dropped: its computation's chunks were deleted when it ended,
                    // and this one would wait for the orphan sweep.
                    if !self.active.contains_key(&computation) && store::has_ended(conn, &computation.to_string())? {
                        tracing::debug!(%computation, %sender, "chunk of an ended computation dropped");
                        Metrics::add(&self.metrics.messages_late, 1);
                        continue;
                    }
                    // Bounded per sender: even an authenticated peer cannot fill this disk, nor
                    // with whole messages for computations nobody here submitted.
                    let pending = store::pending_chunk_bytes(conn, &sender)? as u64;
                    if pending + data.len() as u64 > self.config.max_pending_chunk_bytes {
                        tracing::warn!(
                            %computation, %sender, pending,
                            "chunk dropped: the sender's pending chunks would exceed max_pending_chunk_bytes"
                        );
                        self.metrics.reject(Rejection::OverQuota);
                        continue;
                    }
                    if !self.active.contains_key(&computation) {
                        let stored = store::unsolicited_bytes(conn, &sender)? as u64;
                        if stored + data.len() as u64 > self.config.max_unsolicited_bytes {
                            tracing::warn!(
                                %computation, %sender, stored,
                                "chunk dropped: what the sender stored here for computations not submitted here would exceed max_unsolicited_bytes"
                            );
                            self.metrics.reject(Rejection::OverQuota);
                            continue;
                        }
                    }
                    batch.chunks_changed = true;
                    let chunk = store::ChunkRow {
                        computation: computation.to_string(),
                        sender: sender.clone(),
                        seq: id.seq as i64,
                        idx: id.idx as i64,
                        total: id.total as i64,
                        data,
                        received_at: now,
                    };
                    if let Some(parts) = store::add_chunk(conn, &chunk)? {
                        batch
                            .assembled
                            .push((chunk.computation.clone(), sender.clone(), chunk.seq));
                        // Slices, not a byte-by-byte iterator: messages run to tens of megabytes.
                        let wire = parts.iter().map(|p| p.data.as_slice()).collect::<Vec<_>>().concat();
                        match self.envelopes.open(&chunk.computation, &sender, &wire) {
                            Ok(opened) if opened.header.seq == id.seq => messages.push(opened),
                            Ok(_) => self.metrics.reject(Rejection::Misrouted),
                            Err(rejection) => {
                                tracing::warn!(%computation, %sender, %rejection, "reassembled message rejected");
                                self.metrics.reject(rejection);
                            }
                        }
                    }
                }
            }
        }
        Ok(messages)
    }

    pub(super) fn receive_all(
        &mut self,
        conn: &Connection,
        messages: Vec<Opened>,
        now: i64,
        batch: &mut Batch,
    ) -> Result<(), Error> {
        let (receipts, messages): (Vec<Opened>, Vec<Opened>) =
            messages.into_iter().partition(|m| m.header.kind == Kind::Receipt);
        self.receive_messages(conn, messages, now, batch)?;
        // After the others: an abort in this batch may have made the computation known here.
        self.store_receipts(conn, receipts, now, batch)
    }

    fn receive_messages(
        &mut self,
        conn: &Connection,
        messages: Vec<Opened>,
        now: i64,
        batch: &mut Batch,
    ) -> Result<(), Error> {
        if messages.is_empty() {
            return Ok(());
        }
        // Which computations that are not active here exist (and so are final or tombstones), or
        // existed (retired)?
        let inactive: Vec<String> = messages
            .iter()
            .map(|m| m.header.computation)
            .filter(|c| !self.active.contains_key(c))
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|c| c.to_string())
            .collect();
        let mut settled: HashSet<String> = store::get_computations(conn, &inactive)?
            .into_iter()
            .map(|row| row.id)
            .collect();
        settled.extend(store::retired(conn, &inactive)?);

        let mut rows = Vec::with_capacity(messages.len());
        let mut bodies = HashMap::new();
        // Per sender: bytes stored for computations not submitted here, this batch's included.
        let mut unsolicited: HashMap<String, u64> = HashMap::new();
        // Messages that invite this node as a party, with the proposal each makes, if valid.
        let mut as_party: HashMap<MessageKey, Option<store::ProposalRow>> = HashMap::new();
        for message in messages {
            let computation = message.header.computation;
            let known_final = batch.settled.contains_key(&computation) || settled.contains(&computation.to_string());
            if known_final && !self.active.contains_key(&computation) {
                Metrics::add(&self.metrics.messages_late, 1);
                continue;
            }
            let key = (
                computation.to_string(),
                message.header.from.clone(),
                message.header.seq as i64,
            );
            let kind = message.header.kind.label();
            // Aborts are checked before anything is stored.
            if message.header.kind == Kind::Abort {
                if let Err(rejection) = self.envelopes.verify_abort(&message) {
                    tracing::warn!(%computation, from = %message.header.from, %rejection, "abort rejected");
                    self.metrics.reject(rejection);
                    continue;
                }
            }
            // Consumed right away if the computation runs here, unless a long step (off the loop)
            // will consume it; kept until it is submitted otherwise.
            let consumed_now = self.active.get(&computation).is_some_and(|a| !a.machine.runs_long());
            // A large message that must wait keeps its body in the chunks it came in (see
            // migration 0008): no second copy is written in this transaction.
            let body_in_chunks = !consumed_now && batch.assembled.contains(&key);
            let proposed = if self.active.contains_key(&computation) {
                Proposed::Nothing
            } else {
                self.proposed(&message, now)
            };
            let kept = !self.active.contains_key(&computation)
                && (matches!(message.header.kind, Kind::Data | Kind::Opening)
                    || matches!(proposed, Proposed::AsParty(_)));
            // A proposal counts with its message: both are checked before either is stored.
            let proposal_size = match &proposed {
                Proposed::AsParty(Some(proposal)) => proposal.bytes(),
                _ => 0,
            };
            let size = if body_in_chunks {
                0
            } else {
                message.plaintext.len() as u64
            } + proposal_size;
            if kept && size > 0 && !self.within_unsolicited_quota(conn, &mut unsolicited, computation, &key.1, size)? {
                continue;
            }
            if let Proposed::AsParty(proposal) = proposed {
                as_party.insert(key.clone(), proposal);
            }
            rows.push(InboxRow {
                computation: key.0.clone(),
                sender: key.1.clone(),
                seq: key.2,
                kind: kind.to_string(),
                body: match (consumed_now, body_in_chunks) {
                    (true, _) => None,
                    (false, true) => Some(Vec::new()),
                    (false, false) => Some(message.plaintext.clone()),
                },
                received_at: now,
                body_in_chunks,
            });
            bodies.insert(key, (message.header.kind, message.plaintext));
        }
        let fresh = store::insert_inbox(conn, &rows)?;
        let duplicates = rows.len() - fresh.len();
        if duplicates > 0 {
            Metrics::add(&self.metrics.messages_duplicate, duplicates as u64);
            for _ in 0..duplicates {
                self.metrics.reject(Rejection::Replay);
            }
        }
        batch.received += fresh.len() as u64;
        // Apply in arrival order (RETURNING gives no order guarantee).
        let fresh: HashSet<MessageKey> = fresh.into_iter().collect();
        // Computations this node joined as a helper in this batch: joining applied all their
        // stored messages, this batch's included.
        let mut joined = HashSet::new();
        for row in rows {
            let key = (row.computation, row.sender, row.seq);
            if !fresh.contains(&key) || joined.contains(&key.0) {
                continue;
            }
            let Some((kind, body)) = bodies.remove(&key) else {
                continue;
            };
            let computation = parse_uuid(&key.0)?;
            let party_invite = match as_party.remove(&key) {
                Some(proposal) => {
                    batch.proposals.extend(proposal);
                    true
                }
                None => false,
            };
            if self.active.contains_key(&computation) {
                self.apply_message(computation, (&key.1, key.2), kind, body, now, batch);
            } else if kind == Kind::Abort {
                self.tombstone(computation, &key.1, &body, now, batch);
            } else if kind == Kind::Expire && !batch.settled.contains_key(&computation) {
                self.refuse_late(computation, &key.1, &body, now, batch);
            } else if kind == Kind::Invite && !party_invite && !batch.settled.contains_key(&computation) {
                self.join_as_helper(conn, computation, &key.1, &body, now, batch)?;
                joined.insert(key.0);
            }
        }
        Ok(())
    }

    /// Whether `sender` may store `size` more bytes for computations not submitted here
    /// (`max_unsolicited_bytes`), counting what this batch stored already (`unsolicited`, per
    /// sender, updated if so). If not, the caller drops the message: this logs and counts it.
    pub(super) fn within_unsolicited_quota(
        &self,
        conn: &Connection,
        unsolicited: &mut HashMap<String, u64>,
        computation: Uuid,
        sender: &str,
        size: u64,
    ) -> Result<bool, Error> {
        let stored = match unsolicited.get(sender) {
            Some(stored) => *stored,
            None => store::unsolicited_bytes(conn, sender)? as u64,
        };
        if stored + size > self.config.max_unsolicited_bytes {
            tracing::warn!(
                %computation, %sender, stored,
                "message dropped: what the sender stored here for computations not submitted here would exceed max_unsolicited_bytes"
            );
            self.metrics.reject(Rejection::OverQuota);
            return Ok(false);
        }
        unsolicited.insert(sender.to_string(), stored + size);
        Ok(true)
    }

    /// The messages waiting for these computations (see `store::pending_inbox`), with the bodies
    /// of those kept in their chunks reassembled and opened again.
    pub(super) fn pending_inbox(&self, conn: &Connection, computations: &[String]) -> Result<Vec<InboxRow>, Error> {
        let mut rows = store::pending_inbox(conn, computations)?;
        for row in &mut rows {
            if !row.body_in_chunks {
                continue;
            }
            let key = (row.computation.clone(), row.sender.clone(), row.seq);
            let wire = store::message_in_chunks(conn, &key)?;
            match self.envelopes.open(&row.computation, &row.sender, &wire) {
                Ok(opened) => row.body = Some(opened.plaintext),
                Err(rejection) => {
                    // It opened when it arrived: only a key removed from the roster since can
                    // refuse it now. The computation then fails by its deadline.
                    tracing::warn!(computation = %row.computation, sender = %row.sender, %rejection, "stored message no longer opens");
                    row.body = None;
                }
            }
        }
        rows.retain(|row| row.body.is_some());
        Ok(rows)
    }

    /// Applies one authenticated, deduplicated message (from `sender`, its `seq`) to an active
    /// computation, or queues it for a long step.
    pub(super) fn apply_message(
        &mut self,
        id: Uuid,
        (sender, seq): (&str, i64),
        kind: Kind,
        body: Vec<u8>,
        now: i64,
        batch: &mut Batch,
    ) {
        let Some(active) = self.active.get_mut(&id) else {
            return;
        };
        let Some(from) = active.parties.iter().position(|p| p == sender) else {
            tracing::warn!(computation = %id, %sender, "message from a roster member that is not a party; dropped");
            return self.metrics.reject(Rejection::UnknownSender);
        };
        if kind == Kind::Invite {
            return self.check_invitation(id, sender, &body, now, batch);
        }
        if kind == Kind::Expire {
            // Joined here: our messages are on their way, and the computation goes on.
            return;
        }
        let mut body = body;
        if kind == Kind::Opening {
            // The definition it carries is the one the digest below stands for.
            match proposals::split_opening(&body).map(|(definition, _)| 4 + definition.len()) {
                Some(offset) => drop(body.drain(..offset)),
                None => return self.fail(id, Failure::mismatch(sender), now, batch),
            }
        }
        if kind == Kind::Abort {
            let (reason, party, rule) = announced(&body).received(sender, &active.parties);
            return self.fail(
                id,
                Failure {
                    reason,
                    culprit: Some(party),
                    announce: Announce::No,
                    rule,
                },
                now,
                batch,
            );
        }
        if body.len() < 32 || body[..32] != active.digest {
            return self.fail(id, Failure::mismatch(sender), now, batch);
        }
        if active.row.status == store::PENDING {
            active.row.status = store::RUNNING.to_string();
        }
        batch.touched.insert(id);
        if active.machine.runs_long() {
            let key = (id.to_string(), sender.to_string(), seq);
            // In place: a long step's message can be a whole matrix, and a copy is fresh memory.
            body.drain(..32);
            return self.defer(id, Work::Message { key, from, body }, batch);
        }
        let step = Arc::make_mut(&mut active.machine).receive(from, &body[32..], &mut self.rng, &active.masks);
        self.handle_step(id, step, None, now, batch);
    }

    /// A peer aborted a computation not submitted here: remember, so a later submission fails fast.
    pub(super) fn tombstone(&mut self, id: Uuid, sender: &str, body: &[u8], now: i64, batch: &mut Batch) {
        if batch.settled.contains_key(&id) {
            return;
        }
        let (reason, party, rule) = announced(body).received(sender, &[]);
        let mut error = json!({"code": reason.code, "message": reason.message, "party": party});
        if let Some(rule) = rule {
            error["rule"] = json!(rule.token());
        }
        let mut row = tombstone_row(id, now);
        row.error = Some(error.to_string());
        batch.settled.insert(id, row);
        batch.finished.push(id);
    }
}

/// The row of a computation that failed before a client here submitted it: no definition, a
/// failure (set by the caller), final.
pub(super) fn tombstone_row(id: Uuid, now: i64) -> ComputationRow {
    ComputationRow {
        id: id.to_string(),
        microprotocol: None,
        parties: None,
        parameters: None,
        digest: None,
        status: store::FAILED.to_string(),
        machine: None,
        next_seq: 0,
        output: None,
        error: None,
        deadline_at: now,
        created_at: now,
        finished_at: Some(now),
        network: None,
        client: None,
        dataset: None,
    }
}
