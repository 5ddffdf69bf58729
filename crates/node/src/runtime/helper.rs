//! Helpers: federation members that serve a two-party computation without a client of their own.
//!
//! The products among two parties (`fsc_simon::machine::wants_helper`) need a third party that
//! deals correlated randomness and learns only the shapes. The definition names it in
//! `parameters.helper`: the client may name one; else the node fills in its `helper` setting,
//! else the first roster member (in roster order) that is not a party. Every node holds the same
//! roster, so two parties that leave it to the default agree; the helper is part of the definition
//! digest, so parties that name different helpers fail with `definition_mismatch`. The engine runs
//! the helper as the last participant: index 2, after the two parties.
//!
//! Joining: each party, when the computation starts at its node, sends the helper an `invite`
//! message, sealed and authenticated like every message, carrying the definition and deadline.
//! The helper's node admits the computation on the first invite if it names this node as helper
//! and comes from one of the parties, if its policy (`[policy]`: microprotocols, parties,
//! `min_parties`) allows the computation, with a machine that takes no input, a deadline no later
//! than its own `max_deadline_s` allows, and no owning client; then it applies the messages that
//! arrived before the invite. Later invites must carry the same definition. From there on it is a
//! computation like any other: persisted with every step, resumed after a restart, ended by its
//! deadline or by an abort. An invite the helper refuses fails the computation at the parties,
//! with the reason.

use super::*;
use crate::config::policy::Proposal;

/// What a party sends its computation's helper: the definition, and how long it may run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub(super) struct Invitation {
    pub microprotocol: String,
    pub parties: Vec<String>,
    pub parameters: Value,
    pub deadline_s: u64,
}

impl Runtime {
    /// The submission's parameters with the helper named, if its protocol needs one and the
    /// federation has one (else the engine refuses the definition with `no_helper`).
    pub(super) fn name_helper(&self, item: &Submission) -> Result<Value, Error> {
        let mut parameters = match &item.parameters {
            _ if !fsc_simon::machine::wants_helper(&item.microprotocol, item.parties.len(), &item.parameters) => {
                return Ok(item.parameters.clone());
            }
            Value::Null => json!({}),
            Value::Object(_) => item.parameters.clone(),
            // Not an object: the engine says so.
            other => return Ok(other.clone()),
        };
        let is_party = |id: &str| item.parties.iter().any(|p| p == id);
        let helper = match parameters.get("helper") {
            Some(Value::String(named)) => {
                if is_party(named) {
                    return Err(Error::bad_request(
                        "invalid_parameters",
                        format!(
                            "the helper {named:?} is one of the parties; it must be a third member of the federation"
                        ),
                    ));
                }
                if self.roster.party(named).is_none() {
                    return Err(Error::bad_request(
                        "unknown_party",
                        format!("the helper {named:?} is not in the federation roster"),
                    ));
                }
                return Ok(parameters);
            }
            Some(Value::Null) | None => self
                .config
                .helper
                .clone()
                .filter(|h| !is_party(h) && self.roster.party(h).is_some())
                .or_else(|| {
                    self.roster
                        .parties
                        .iter()
                        .map(|p| p.id.clone())
                        .find(|id| !is_party(id))
                }),
            // Not a string: the engine says so.
            Some(_) => return Ok(parameters),
        };
        match helper {
            Some(helper) => parameters["helper"] = json!(helper),
            None => {
                if let Some(object) = parameters.as_object_mut() {
                    object.remove("helper");
                }
            }
        }
        Ok(parameters)
    }

    /// Sends computation `id`'s helper the invitation it joins on.
    pub(super) fn invite(&mut self, id: Uuid, helper: &str, invitation: &Invitation, now: i64, batch: &mut Batch) {
        let active = self
            .active
            .get_mut(&id)
            .expect("invitations belong to active computations");
        let body = proposals::definition_bytes(invitation);
        match enqueue(
            &self.envelopes,
            &mut self.rng,
            &mut active.row,
            helper,
            Kind::Invite,
            &body,
            now,
        ) {
            Ok(message) => batch.outbox.push(message),
            Err(error) => {
                let reason = AbortReason {
                    code: "internal".into(),
                    message: format!("cannot seal the helper's invitation: {error}"),
                };
                self.fail(id, Failure::ours(reason), now, batch);
            }
        }
    }

    /// An invitation to a computation that is not known here: join it as its helper, or tell the
    /// parties why not.
    pub(super) fn join_as_helper(
        &mut self,
        conn: &Connection,
        id: Uuid,
        sender: &str,
        body: &[u8],
        now: i64,
        batch: &mut Batch,
    ) -> Result<(), Error> {
        let Ok(invitation) = serde_json::from_slice::<Invitation>(body) else {
            tracing::warn!(computation = %id, %sender, "unreadable invitation dropped");
            return Ok(());
        };
        let parameters = invitation.parameters.clone();
        let deadline_at = now + invitation.deadline_s.clamp(1, self.config.max_deadline_s) as i64 * 1000;
        let mut row = defined_row(id, &invitation, deadline_at, now);
        // A party has started it: it runs.
        row.status = store::RUNNING.to_string();
        let participants = participants(&invitation.parties, &parameters);
        let machine = self
            .admit_invitation(sender)
            .and_then(|()| self.helper_machine(&invitation, sender))
            .map_err(Failure::ours)
            .and_then(|machine| {
                let proposal = Proposal {
                    microprotocol: &invitation.microprotocol,
                    parties: &invitation.parties,
                    helper: Some(&self.me),
                    // A helper holds no data: the dp rules guard a party's records.
                    parameters: &parameters,
                    dp: None,
                    min_total_samples: None,
                };
                self.config
                    .policy
                    .check_helper(&self.me, &proposal)
                    .map(|()| machine)
                    .map_err(Failure::refused)
            });
        let mut machine = match machine {
            Ok(machine) => machine,
            Err(failure) => {
                let parties: Vec<String> = invitation
                    .parties
                    .into_iter()
                    .filter(|p| self.roster.party(p).is_some())
                    .collect();
                self.settle_failed(&mut row, &parties, failure, now, batch);
                batch.settled.insert(id, row);
                batch.started.push(id);
                batch.finished.push(id);
                return Ok(());
            }
        };
        let digest = row.digest.clone().and_then(|d| d.try_into().ok()).expect("32 bytes");
        let masks = self.masks(id, &digest, &participants);
        let step = machine.start(&mut self.rng, &masks);
        self.active.insert(
            id,
            Active {
                row,
                parties: participants,
                machine: Arc::new(machine),
                digest,
                masks,
                offload: Offload::default(),
                expiring: false,
            },
        );
        batch.touched.insert(id);
        batch.started.push(id);
        self.handle_step(id, step, None, now, batch);
        self.apply_pending(conn, &[id.to_string()], now, batch)
    }

    /// Whether `sender` may invite this node now: it is one of `helper_for`, and neither
    /// `max_active_computations` nor `max_helper_computations` is reached. An invitation is
    /// admitted like a submission, so that no party can make this node run more than it takes.
    fn admit_invitation(&self, sender: &str) -> Result<(), AbortReason> {
        if self
            .config
            .helper_for
            .as_ref()
            .is_some_and(|allowed| !allowed.iter().any(|p| p == sender))
        {
            return Err(helper_refused(format!(
                "{sender} may not invite {} as a helper (helper_for)",
                self.me
            )));
        }
        // Helper computations are the active ones without a client of this node.
        let helping = self.active.values().filter(|a| a.row.client.is_none()).count();
        if self.active.len() >= self.config.max_active || helping >= self.config.max_helper_computations {
            return Err(AbortReason {
                code: "helper_busy".into(),
                message: format!(
                    "{} runs {} computations, {helping} of them as a helper (max_active_computations {}, \
                     max_helper_computations {})",
                    self.me,
                    self.active.len(),
                    self.config.max_active,
                    self.config.max_helper_computations
                ),
            });
        }
        Ok(())
    }

    /// The helper's machine for an invitation, if this node is its helper and `sender` a party.
    fn helper_machine(&self, invitation: &Invitation, sender: &str) -> Result<Machine, AbortReason> {
        if !invitation.parties.iter().any(|p| p == sender) {
            return Err(helper_refused(format!(
                "{sender} invited {} to a computation it is not a party of",
                self.me
            )));
        }
        if let Some(unknown) = invitation.parties.iter().find(|p| self.roster.party(p).is_none()) {
            return Err(helper_refused(format!(
                "party {unknown:?} is not in {}'s roster",
                self.me
            )));
        }
        let cannot_help = |e: EngineError| AbortReason {
            code: e.code().to_string(),
            message: format!("{} cannot help: {e}", self.me),
        };
        let spec = Spec::new(
            &invitation.microprotocol,
            &invitation.parameters,
            invitation.parties.len(),
        )
        .map_err(cannot_help)?;
        if spec.helper() != Some(self.me.as_str()) || spec.parameters_json() != invitation.parameters {
            return Err(helper_refused(format!(
                "{} is not the helper this definition names",
                self.me
            )));
        }
        let spec = spec.limited(self.config.limits);
        spec.machine(spec.participants() - 1, &Value::Null).map_err(cannot_help)
    }

    /// A further invitation to a computation that runs here: it must define it the same way.
    pub(super) fn check_invitation(&mut self, id: Uuid, sender: &str, body: &[u8], now: i64, batch: &mut Batch) {
        let Some(active) = self.active.get(&id) else {
            return;
        };
        let same = serde_json::from_slice::<Invitation>(body).is_ok_and(|invitation| {
            definition_digest(
                id,
                &invitation.microprotocol,
                &invitation.parties,
                &invitation.parameters,
            ) == active.digest
        });
        if !same {
            self.fail(id, Failure::mismatch(sender), now, batch);
        }
    }
}

fn helper_refused(message: String) -> AbortReason {
    AbortReason {
        code: "helper_refused".into(),
        message,
    }
}
