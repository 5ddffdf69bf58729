//! Admission: local clients' submissions become computations here. Checks a submission against
//! the roster, the engine and this node's policy (`config::policy`, before the engine starts),
//! answers idempotent retries and conflicts, starts the engine and applies the messages peers
//! sent before the submission arrived. A computation that starts here is charged to its client's
//! privacy budget in the same transaction (`crate::budget`), after every other check. A new
//! computation beyond
//! `max_active_computations` is refused with a retry hint, unless another party has started it;
//! nothing waits here for room.

use super::*;
use crate::budget::{self, Cost, Spent};
use crate::config::policy::Proposal;
use crate::store::ChargeRow;

/// What a refused submission is told to wait before retrying.
const RETRY_AFTER_S: u64 = 1;

/// What the store knows of the ids of one batch of submissions that are not active here.
struct Known {
    /// Final computations and tombstones.
    stored: HashMap<Uuid, ComputationRow>,
    /// Ids of computations pruned after the retention: never used again.
    retired: HashSet<Uuid>,
    /// Ids for which peers have sent messages: another party has started them.
    started_elsewhere: HashSet<Uuid>,
}

impl Runtime {
    pub(super) fn submit_all(
        &mut self,
        conn: &Connection,
        items: Vec<Submission>,
        now: i64,
        batch: &mut Batch,
    ) -> Result<Vec<Result<Accepted, Error>>, Error> {
        let ids: Vec<Uuid> = items.iter().map(|item| item.id.unwrap_or_else(Uuid::new_v4)).collect();
        let unknown: Vec<String> = ids
            .iter()
            .filter(|id| !self.active.contains_key(id) && !batch.settled.contains_key(id))
            .map(Uuid::to_string)
            .collect();
        let mut stored: HashMap<Uuid, ComputationRow> = HashMap::new();
        for row in store::get_computations(conn, &unknown)? {
            stored.insert(parse_uuid(&row.id)?, row);
        }
        let ids_of = |ids: Vec<String>| ids.iter().map(|id| parse_uuid(id)).collect::<Result<HashSet<_>, _>>();
        let (retired, waiting) = store::retired_and_waiting(conn, &unknown)?;
        let known = Known {
            stored,
            retired: ids_of(retired)?,
            started_elsewhere: ids_of(waiting)?,
        };
        let mut results = Vec::with_capacity(items.len());
        let mut created = Vec::new();
        for (item, id) in items.into_iter().zip(ids) {
            let (client, api) = (item.caller.name.clone(), item.api);
            let result = self.submit_one(conn, item, id, &known, now, batch);
            if matches!(result, Ok(Accepted { created: true, .. })) && self.active.contains_key(&id) {
                created.push(id);
            }
            // Refusals too: who tried what is part of the record (the code, never the input).
            let detail = match &result {
                Ok(accepted) => json!({"api": api, "status": accepted.status, "created": accepted.created}),
                Err(error) => json!({"api": api, "refused": error.classify().1}),
            };
            batch
                .audit
                .push(Event::new(Some(&client), audit::SUBMIT, Some(id.to_string()), detail));
            results.push(result);
        }
        // Messages that peers sent before our client submitted, in arrival order. Only the
        // computations found with some are looked up again (usually none: one query less).
        let created: Vec<String> = created
            .iter()
            .filter(|id| known.started_elsewhere.contains(id))
            .map(Uuid::to_string)
            .collect();
        // No longer proposals: deleted now, else every quota check would count them until the
        // next sweep.
        store::delete_proposals(conn, &created)?;
        self.apply_pending(conn, &created, now, batch)?;
        Ok(results)
    }

    /// Applies the messages stored for computations that have just started here.
    pub(super) fn apply_pending(
        &mut self,
        conn: &Connection,
        ids: &[String],
        now: i64,
        batch: &mut Batch,
    ) -> Result<(), Error> {
        let pending = self.pending_inbox(conn, ids)?;
        // Those of long-running machines stay until their steps consume them (see `offload`).
        batch.consumed.extend(
            pending
                .iter()
                .filter(|row| {
                    parse_uuid(&row.computation)
                        .map(|id| !self.active.get(&id).is_some_and(|a| a.machine.runs_long()))
                        .unwrap_or(true)
                })
                .map(|row| row.computation.clone())
                .collect::<HashSet<_>>(),
        );
        for row in pending {
            let id = parse_uuid(&row.computation)?;
            let kind = Kind::from_label(&row.kind);
            let body = row.body.unwrap_or_default();
            self.apply_message(id, (&row.sender, row.seq), kind, body, now, batch);
        }
        Ok(())
    }

    fn submit_one(
        &mut self,
        conn: &Connection,
        item: Submission,
        id: Uuid,
        known: &Known,
        now: i64,
        batch: &mut Batch,
    ) -> Result<Accepted, Error> {
        self.check_parties(&item.parties)?;
        let deadline_s = item.deadline_s.unwrap_or(self.config.default_deadline_s);
        if deadline_s == 0 || deadline_s > self.config.max_deadline_s {
            return Err(Error::bad_request(
                "invalid_deadline",
                format!(
                    "deadline_s must be between 1 and {}, got {deadline_s}",
                    self.config.max_deadline_s
                ),
            ));
        }
        let requested = self.name_helper(&item)?;
        let spec = Spec::new(&item.microprotocol, &requested, item.parties.len());
        // The cost as the parties agreed on it (the normalised `dp`), or as the client asked for
        // it if normalising dropped it: charging what was asked never charges less.
        let asked = Cost::of(&requested);
        let parameters = spec.as_ref().map(Spec::parameters_json).unwrap_or(requested);
        let cost = if parameters.get("dp").is_some() {
            Cost::of(&parameters)
        } else {
            asked
        };
        let digest = definition_digest(id, &item.microprotocol, &item.parties, &parameters);
        let spec = spec.map(|spec| {
            spec.bound_to(digest)
                .limited(self.config.limits)
                .suppressing(self.config.policy.min_cell_count)
        });
        let me = item
            .parties
            .iter()
            .position(|p| *p == self.me)
            .expect("checked: parties include this node");

        if known.retired.contains(&id) {
            return Err(Error::Conflict(format!(
                "the id {id} was used before on this node; choose another"
            )));
        }
        let existing = self
            .active
            .get(&id)
            .map(|a| &a.row)
            .or_else(|| batch.settled.get(&id))
            .or_else(|| known.stored.get(&id));
        // What is wrong with this request itself (its definition, or its input for this
        // party), or what this node's policy refuses in it, if anything: it depends on nothing
        // stored.
        let refusal = |spec: &Spec| {
            let proposal = Proposal {
                microprotocol: &item.microprotocol,
                parties: &item.parties,
                helper: spec.helper(),
                parameters: &parameters,
                dp: spec.dp(),
                min_total_samples: spec.min_total_samples,
            };
            self.config
                .policy
                .check_party(&self.me, &item.caller.name, &proposal, me, &item.input)
        };
        let unreadable = item.dataset.as_ref().and_then(|d| d.as_ref().err()).cloned();
        let summary = item.dataset.as_ref().and_then(|d| d.as_ref().ok()).cloned();
        // This party's machine; an input read from a dataset is refused without a value.
        let machine_for = |spec: &Spec| {
            spec.machine_for(me, &item.input).map_err(|error| match &summary {
                Some(summary) => crate::datasets::withhold_values(&summary.dataset, error),
                None => error,
            })
        };
        let own_error = || {
            if let Some(error) = &unreadable {
                return Some(Error::Dataset(error.clone()));
            }
            match spec.as_ref().map_err(Clone::clone).and_then(machine_for) {
                Err(error) => Some(Error::Engine(error)),
                Ok(_) => refusal(spec.as_ref().expect("a machine")).err().map(refused),
            }
        };
        if let Some(row) = existing {
            if row.microprotocol.is_none() {
                // A tombstone: a peer aborted before our client submitted. Keep the failure, but
                // tell our client first about what is wrong with its own request, if anything.
                let own_error = own_error();
                let mut row = row.clone();
                row.microprotocol = Some(item.microprotocol.clone());
                row.parties = Some(json!(item.parties).to_string());
                row.parameters = Some(parameters.to_string());
                row.digest = Some(digest.to_vec());
                row.network = item.network.clone();
                row.client = Some(item.caller.name.clone());
                let status = row.status.clone();
                batch.settled.insert(id, row);
                if let Some(error) = own_error {
                    return Err(error);
                }
                return Ok(Accepted {
                    id,
                    status,
                    created: false,
                    // The first input stands: what this request read is not it.
                    dataset: None,
                });
            }
            // The answer depends on who asks and on the definition, never on the input: the first
            // input stands, and a guess at it learns nothing.
            if !item.caller.may_access(row.client.as_deref()) {
                return Err(Error::Conflict(format!(
                    "the id {id} is taken on this node; choose another"
                )));
            }
            if row.digest.as_deref() == Some(&digest[..]) {
                // A request refused once is refused on every try (an unknown microprotocol,
                // invalid parameters or input), not answered with the failure it recorded:
                // checked only for failed computations, where the answer cannot tell anything
                // new, and on this request alone, never on the input that stands.
                if row.status == store::FAILED {
                    if let Some(error) = own_error().or_else(|| budget_refusal(row)) {
                        return Err(error);
                    }
                }
                return Ok(Accepted {
                    id,
                    status: row.status.clone(),
                    created: false,
                    // The first input stands: what this request read is not it.
                    dataset: None,
                });
            }
            return Err(Error::Conflict(format!(
                "computation {id} already exists here with a different definition"
            )));
        }

        // A new computation needs room; the client retries later. Refusing at once, rather than
        // holding the request until room is made, keeps this loop free for the messages and
        // deadlines that make room. One that another party has started is joined all the same:
        // else parties whose clients submit in different orders could each fill up with
        // computations the others refuse, and wait for each other until the deadlines. Such
        // computations are bounded by what the peers run.
        if self.active.len() >= self.config.max_active && !known.started_elsewhere.contains(&id) {
            return Err(Error::Busy {
                message: format!(
                    "this node runs {} computations, its max_active_computations; retry in {RETRY_AFTER_S} s",
                    self.active.len()
                ),
                retry_after_s: RETRY_AFTER_S,
            });
        }
        batch.submitted += 1;
        let invitation = Invitation {
            microprotocol: item.microprotocol.clone(),
            parties: item.parties.clone(),
            parameters: parameters.clone(),
            deadline_s,
        };
        let mut row = defined_row(id, &invitation, now + deadline_s as i64 * 1000, now);
        row.network = item.network.clone();
        row.client = Some(item.caller.name.clone());
        row.dataset = summary.as_ref().map(|summary| json!(summary).to_string());
        let helper = spec.as_ref().ok().and_then(Spec::helper).map(str::to_string);
        // The policy is checked before the engine starts: nothing derived from the input has
        // left this node when it refuses. The budget last: only a computation that starts is
        // charged.
        let machine = match unreadable.map_or_else(
            || spec.as_ref().map_err(Clone::clone).and_then(machine_for).map_err(Ok),
            |error| Err(Err(error)),
        ) {
            // The dataset could not be read: the input error of this party, told as a code.
            Err(Err(error)) => Err((Failure::dataset(&error), Error::Dataset(error))),
            Ok(machine) => match refusal(spec.as_ref().expect("a machine")) {
                Ok(()) => self.charge(conn, &item.caller.name, id, cost, now, batch)?,
                Err(refusal) => Err(refusal),
            }
            .map(|()| machine)
            .map_err(|refusal| (Failure::refused(refusal.clone()), refused(refusal))),
            Err(Ok(error)) => {
                let everyone = participants(&item.parties, &parameters);
                Err((Failure::engine(&error, &everyone), Error::Engine(error)))
            }
        };
        let mut machine = match machine {
            Ok(machine) => machine,
            Err((failure, error)) => {
                // Tell every other party, so that nobody waits for this one.
                // The helper too: another party may have invited it already.
                let everyone = participants(&item.parties, &parameters);
                self.settle_failed(&mut row, &everyone, failure, now, batch);
                batch.settled.insert(id, row);
                batch.started.push(id);
                batch.finished.push(id);
                return Err(error);
            }
        };
        let everyone = participants(&item.parties, &parameters);
        let masks = self.masks(id, &digest, &everyone);
        let step = (!machine.runs_long()).then(|| machine.start(&mut self.rng, &masks));
        self.active.insert(
            id,
            Active {
                row,
                parties: everyone,
                machine: Arc::new(machine),
                digest,
                masks,
                offload: Offload::default(),
                expiring: false,
            },
        );
        batch.touched.insert(id);
        batch.started.push(id);
        if let Some(helper) = helper {
            self.invite(id, &helper, &invitation, now, batch);
        }
        // The peers this first step reaches get the definition with their first message; the
        // others an invite, from the party that starts the computation (`proposals`).
        let reached: HashSet<String> = match &step {
            Some(Ok(step)) => step
                .outgoing
                .iter()
                .map(|(to, _)| self.active[&id].parties[*to].clone())
                .collect(),
            _ => HashSet::new(),
        };
        match step {
            Some(step) => {
                let definition = proposals::definition_bytes(&invitation);
                self.handle_step(id, step, Some(&definition), now, batch);
            }
            None => self.defer(id, Work::Start, batch),
        }
        if !known.started_elsewhere.contains(&id) {
            self.propose(id, &invitation, &reached, now);
        }
        let status = self.status_of(id, batch);
        Ok(Accepted {
            id,
            status,
            created: true,
            dataset: summary,
        })
    }

    /// Charges computation `id`'s `cost` to `client`'s budget in this batch, if it fits the
    /// policy's caps for the client and for the node, with what the ledger holds (read in this
    /// write transaction) and what this batch has charged before it. A computation without `dp`
    /// costs nothing and always fits.
    fn charge(
        &self,
        conn: &Connection,
        client: &str,
        id: Uuid,
        cost: Cost,
        now: i64,
        batch: &mut Batch,
    ) -> Result<Result<(), Refusal>, Error> {
        if cost.is_free() {
            return Ok(Ok(()));
        }
        let policy = &self.config.policy;
        let since = budget::period_start(policy.budget.as_ref(), now);
        let mut spent = Spent::from_rows(store::spent_since(conn, since)?);
        for charge in &batch.charges {
            let cost = Cost {
                epsilon: charge.epsilon,
                delta: charge.delta,
                rho: charge.rho,
            };
            spent.add(&charge.client, cost);
        }
        let client_caps = policy.client(client).and_then(|c| c.budget.as_ref());
        let checked = client_caps
            .map_or(Ok(()), |caps| {
                budget::check(caps, spent.client(client).0, cost, &format!("client {client:?}'s"))
            })
            .and_then(|()| {
                policy.budget.as_ref().map_or(Ok(()), |node| {
                    budget::check(node, spent.node().0, cost, &format!("{}'s", self.me))
                })
            });
        if let Err(message) = checked {
            return Ok(Err(Refusal {
                rule: Rule::Budget,
                message,
            }));
        }
        batch.charges.push(ChargeRow {
            computation: id.to_string(),
            client: client.to_string(),
            epsilon: cost.epsilon,
            delta: cost.delta,
            rho: cost.rho,
            charged_at: now,
        });
        batch.audit.push(Event::new(
            Some(client),
            audit::BUDGET_CHARGE,
            Some(id.to_string()),
            json!({"epsilon": cost.epsilon, "delta": cost.delta, "rho": cost.rho}),
        ));
        Ok(Ok(()))
    }

    fn status_of(&self, id: Uuid, batch: &Batch) -> String {
        self.active
            .get(&id)
            .map(|a| a.row.status.clone())
            .or_else(|| batch.settled.get(&id).map(|r| r.status.clone()))
            .unwrap_or_else(|| store::PENDING.to_string())
    }

    fn check_parties(&self, parties: &[String]) -> Result<(), Error> {
        let mut seen = HashSet::new();
        for party in parties {
            if self.roster.party(party).is_none() {
                return Err(Error::bad_request(
                    "unknown_party",
                    format!("party {party:?} is not in the federation roster"),
                ));
            }
            if !seen.insert(party) {
                return Err(Error::bad_request(
                    "invalid_parties",
                    format!("party {party:?} is listed twice"),
                ));
            }
        }
        if !seen.contains(&self.me) {
            return Err(Error::bad_request(
                "invalid_parties",
                format!(
                    "parties must include this node ({:?}), whose client submits the input",
                    self.me
                ),
            ));
        }
        Ok(())
    }
}

/// The budget's refusal of a computation this node failed for it, told again to a client that
/// re-submits it (a request refused once is refused on every try; a recheck could pass later,
/// when charges leave the period, and answer a failed computation with success).
fn budget_refusal(row: &ComputationRow) -> Option<Error> {
    let error: Value = serde_json::from_str(row.error.as_deref()?).ok()?;
    let ours = error.get("party").is_none();
    (ours && error["code"] == "policy_refused" && error["rule"] == Rule::Budget.token()).then(|| Error::PolicyRefused {
        rule: Rule::Budget.token(),
        message: error["message"].as_str().unwrap_or_default().to_string(),
    })
}

/// What the submitting client is told of a refusal: the rule and the detail.
fn refused(refusal: Refusal) -> Error {
    Error::PolicyRefused {
        rule: refusal.rule.token(),
        message: refusal.message,
    }
}
