//! The `Simon` root object of the federatedsecure API, on fsc's engine, store and transport.
//!
//! `compute(microprotocol, data, network)` submits a computation exactly as `/v1` does and waits
//! for its end; the k-th `compute` with one network uuid at a node is the computation
//! `uuid5(network uuid, "compute/k")`, so the k-th of every party pairs up and a network uuid can
//! be reused (the original hung, W12). A `compute` that finds the same client's earlier one of
//! its network still running (its caller gave up: an interrupted run) takes it over, whether
//! another party has joined it yet or not: its input stands, as for any retry. So after an
//! interrupted run the next complete run pairs up again. The parameterised path `create_task` /
//! `join_task` / `input` / `start` / `result` keeps a task here until `start` submits it; its
//! inputs are data charged to the node's byte budget until then. `network.nodes` is mapped to
//! parties through the roster; an unknown URL is an error and is never contacted.

use super::bus::{Bus, Repr};
use super::call::Arguments;
use super::networks::Networks;
use super::task::Task;
use crate::caller::Caller;
use crate::config::roster::Roster;
use crate::datasets::Datasets;
use crate::error::Error;
use crate::runtime::{RuntimeHandle, Submission};
use crate::store::{self, ComputationRow};
use fsc_simon::{Input, Spec};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sqlx::SqlitePool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// The SIMON microservice of one node.
pub struct Simon {
    me: String,
    roster: Arc<Roster>,
    runtime: RuntimeHandle,
    read: SqlitePool,
    /// What an input naming a dataset reads (`crate::datasets`), as through `/v1`.
    datasets: Arc<Datasets>,
    /// The `compute` calls of each network uuid.
    networks: Networks,
}

impl Simon {
    pub fn new(
        me: String,
        roster: Arc<Roster>,
        runtime: RuntimeHandle,
        read: SqlitePool,
        datasets: Arc<Datasets>,
    ) -> Simon {
        Simon {
            me,
            roster,
            runtime,
            read,
            datasets,
            networks: Networks::default(),
        }
    }

    /// `compute(microprotocol, data, network)`: runs a computation with default parameters and
    /// returns its output once it has finished.
    pub async fn compute(&self, bus: &Bus, mut args: Arguments, caller: &Caller) -> Result<Option<Repr>, Error> {
        let microprotocol = args.string("microprotocol", 0)?;
        let data = args.value("data", 1)?;
        let network = args.value("network", 2)?;
        args.finish()?;
        let parties = self.parties(&network)?;
        let network_id = match network.get("uuid") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            _ => {
                return Err(invalid(
                    "network.uuid",
                    "a string naming this computation's network is required",
                ));
            }
        };
        // Read once, as for a `/v1` submission: every `compute` of this call computes over it.
        let parameters = as_the_original(&microprotocol, Value::Null);
        let (data, dataset) = self
            .datasets
            .read_input(caller, &microprotocol, &parameters, data)
            .await;
        let id = {
            let _serialised = self.networks.lock(&network_id).await;
            // Under the lock nothing adds to the network's computations here.
            let record = store::network_record(&self.read, &network_id).await?;
            let uses = record.uses;
            match self.take_over_earlier(&network_id, record, caller).await? {
                Some(earlier) => earlier,
                None => {
                    let id = Uuid::new_v5(&namespace(&network_id), format!("compute/{uses}").as_bytes());
                    let submission = Submission {
                        id: Some(id),
                        microprotocol,
                        parties,
                        parameters,
                        input: data,
                        deadline_s: None,
                        network: Some(network_id.clone()),
                        caller: caller.clone(),
                        dataset,
                        api: "federatedsecure",
                    };
                    self.submit(submission).await?;
                    id
                }
            }
        };
        // Dropped with this call if its client goes away before the result comes.
        let waiting = self.networks.wait(id);
        let row = self.wait_final(id).await?;
        let reply = bus.hold_result(outcome(row)?, id)?;
        waiting.delivered();
        Ok(Some(Repr::Value(reply)))
    }

    /// The computation this client's new `compute` of `network` continues, if an earlier call
    /// of the same network left it without anyone to collect it (its client went away: an
    /// interrupted run); else the network's k-th `compute` here would pair with the others'
    /// (k-1)-th. The earliest still running is taken over, whether another party has joined it
    /// yet or not: this call returns its result, and its input stands, as for any retry. (It
    /// used to be superseded when nobody had joined it yet, by an abort, so that this call's
    /// input counted; but a peer whose own `compute` came just before the abort could finish it
    /// with the input already sent, while the others moved on to the next computation and waited
    /// for that peer until their deadline.) One that ended after its caller left is taken over
    /// as well. Computations that another call still waits for are left alone.
    async fn take_over_earlier(
        &self,
        network: &str,
        record: store::NetworkRecord,
        caller: &Caller,
    ) -> Result<Option<Uuid>, Error> {
        let mut left = Vec::new();
        for row in record.unfinished {
            let id = Uuid::parse_str(&row.id).map_err(|e| Error::Config(format!("stored id: {e}")))?;
            if caller.may_access(row.client.as_deref()) && !self.networks.is_awaited(id) {
                left.push((row.created_at, id));
            }
        }
        let mut taken = left.into_iter().min().map(|(_, id)| id);
        if taken.is_none() {
            if let Some(row) = record.latest {
                let id = Uuid::parse_str(&row.id).map_err(|e| Error::Config(format!("stored id: {e}")))?;
                let finished = store::is_final(&row.status);
                if finished && caller.may_access(row.client.as_deref()) && self.networks.take_abandoned(id) {
                    taken = Some(id);
                }
            }
        }
        if let Some(id) = taken {
            tracing::info!(computation = %id, %network, "taking over an earlier compute of this network");
        }
        Ok(taken)
    }

    /// `create_task(microprotocol, network, parameters=None, task_id=None, parent=None)`.
    pub fn create_task(&self, mut args: Arguments) -> Result<Option<Repr>, Error> {
        let microprotocol = args.string("microprotocol", 0)?;
        let network = args.value("network", 1)?;
        let parameters = args.optional_value("parameters", 2)?.unwrap_or(Value::Null);
        let task_id = args.optional_value("task_id", 3)?;
        let parent = args.optional_value("parent", 4)?;
        args.finish()?;
        if parent.is_some_and(|p| !p.is_null()) {
            return Err(invalid(
                "parent",
                "sub-tasks run inside the engine; a client cannot start one",
            ));
        }
        let task_id = match task_id {
            None | Some(Value::Null) => Uuid::new_v4().to_string(),
            Some(Value::String(id)) if !id.is_empty() => id,
            Some(other) => return Err(invalid("task_id", &format!("{other} is not a string"))),
        };
        self.task(task_id, microprotocol, parameters, &network)
    }

    /// `join_task(invitation, network)`: the task another party created, from its invitation.
    pub fn join_task(&self, mut args: Arguments) -> Result<Option<Repr>, Error> {
        let invitation = args.value("invitation", 0)?;
        let network = args.value("network", 1)?;
        args.finish()?;
        let field = |name: &str| invitation.get(name).cloned().unwrap_or(Value::Null);
        let (Value::String(task_id), Value::String(microprotocol)) = (field("task_id"), field("microprotocol")) else {
            return Err(invalid(
                "invitation",
                "an invitation from create_task(...).invite() is required",
            ));
        };
        if !field("parent").is_null() {
            return Err(invalid(
                "invitation.parent",
                "sub-tasks run inside the engine; a client cannot join one",
            ));
        }
        self.task(task_id, microprotocol, field("parameters"), &network)
    }

    fn task(
        &self,
        task_id: String,
        microprotocol: String,
        parameters: Value,
        network: &Value,
    ) -> Result<Option<Repr>, Error> {
        let parties = self.parties(network)?;
        // Unknown microprotocols and bad parameters fail here, before any invitation is sent.
        let parameters = as_the_original(&microprotocol, parameters);
        let spec = Spec::new(&microprotocol, &parameters, parties.len())?;
        let computation =
            Uuid::parse_str(&task_id).unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_OID, task_id.as_bytes()));
        let task = Task {
            task_id,
            computation,
            microprotocol,
            parameters: spec.parameters_json(),
            parties,
            inputs: Vec::new(),
            started: false,
        };
        Ok(Some(Repr::Task(Arc::new(Mutex::new(task)))))
    }

    /// The methods of a task.
    pub async fn call_task(
        &self,
        bus: &Bus,
        task: &Arc<Mutex<Task>>,
        method: &str,
        mut args: Arguments,
        caller: &Caller,
    ) -> Result<Option<Repr>, Error> {
        match method {
            "invite" => {
                args.finish()?;
                let invitation = {
                    let task = task.lock().expect("task lock");
                    json!({
                        "task_id": task.task_id,
                        "microprotocol": task.microprotocol,
                        "invitation_id": null,
                        "parameters": task.parameters,
                        "parent": null,
                    })
                };
                Ok(Some(Repr::Value(bus.hold_value(&invitation)?)))
            }
            "input" => {
                let data = args.required("data", 0)?;
                args.finish()?;
                let data = bus.keep(data)?;
                let mut task = task.lock().expect("task lock");
                if task.started {
                    return Err(invalid("data", "the task has started; input comes before start()"));
                }
                task.inputs.push(data);
                Ok(None)
            }
            "start" => {
                args.finish()?;
                let (mut submission, inputs) = {
                    let mut task = task.lock().expect("task lock");
                    if task.started {
                        return Ok(None);
                    }
                    task.started = true;
                    let submission = Submission {
                        id: Some(task.computation),
                        microprotocol: task.microprotocol.clone(),
                        parties: task.parties.clone(),
                        parameters: task.parameters.clone(),
                        input: Input::Json(Value::Null),
                        deadline_s: None,
                        network: None,
                        caller: caller.clone(),
                        dataset: None,
                        api: "federatedsecure",
                    };
                    (submission, std::mem::take(&mut task.inputs))
                };
                // Parsed for the runtime, which keeps its input from here on; each text (and its
                // charge, unless a representation shares it) goes as it is parsed.
                let mut inputs = inputs
                    .into_iter()
                    .map(|data| data.value())
                    .collect::<Result<Vec<_>, _>>()?;
                let input = if inputs.len() == 1 {
                    inputs.remove(0)
                } else {
                    Value::Array(inputs)
                };
                let microprotocol = submission.microprotocol.clone();
                (submission.input, submission.dataset) = self
                    .datasets
                    .read_input(caller, &microprotocol, &submission.parameters, input)
                    .await;
                self.submit(submission).await.map(|_| None)
            }
            "result" => {
                args.finish()?;
                let computation = task.lock().expect("task lock").computation;
                let row = store::get_computation_pool(&self.read, &computation.to_string()).await?;
                match row.filter(|r| caller.may_access(r.client.as_deref())) {
                    Some(row) if store::is_final(&row.status) => {
                        Ok(Some(Repr::Value(bus.hold_result(outcome(row)?, computation)?)))
                    }
                    _ => Ok(None),
                }
            }
            "progress" => {
                args.finish()?;
                Ok(None)
            }
            other => Err(Error::NotFound(format!("attribute not available: {other}"))),
        }
    }

    async fn submit(&self, submission: Submission) -> Result<(), Error> {
        let result = self.runtime.submit(vec![submission]).await?.pop();
        result
            .ok_or_else(|| Error::Unavailable("the store is not available; retry".into()))?
            .map(|_| ())
    }

    async fn wait_final(&self, id: Uuid) -> Result<ComputationRow, Error> {
        loop {
            // Every computation ends (deadlines); the timeout only re-checks, it never gives up.
            let polled = self
                .runtime
                .waiters
                .poll(id, Duration::from_secs(5), |running| async move {
                    // A running computation's end wakes this poll: nothing to read until then.
                    if running.is_some() {
                        return Ok(None);
                    }
                    let row = store::get_computation_pool(&self.read, &id.to_string()).await?;
                    Ok::<_, Error>(row.filter(|row| store::is_final(&row.status)))
                })
                .await?;
            if let Some(row) = polled {
                return Ok(row);
            }
        }
    }

    /// The parties of `network.nodes`, checked against `network.myself`.
    fn parties(&self, network: &Value) -> Result<Vec<String>, Error> {
        let nodes = network
            .get("nodes")
            .and_then(Value::as_array)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("network.nodes", "a list of the parties' node URLs is required"))?;
        let mut parties = Vec::with_capacity(nodes.len());
        for node in nodes {
            let node = node
                .as_str()
                .ok_or_else(|| invalid("network.nodes", &format!("{node} is not a URL")))?;
            parties.push(self.party_of(node).ok_or_else(|| {
                invalid(
                    "network.nodes",
                    &format!("{node} is not the API URL of a party of this federation"),
                )
            })?);
        }
        let myself = network
            .get("myself")
            .and_then(Value::as_u64)
            .filter(|&i| (i as usize) < parties.len())
            .ok_or_else(|| invalid("network.myself", "the index of this node in network.nodes is required"))?;
        if parties[myself as usize] != self.me {
            return Err(invalid(
                "network.myself",
                &format!(
                    "{myself} names {}, but this node is {}",
                    parties[myself as usize], self.me
                ),
            ));
        }
        Ok(parties)
    }

    fn party_of(&self, node: &str) -> Option<String> {
        if self.roster.party(node).is_some() {
            return Some(node.to_string());
        }
        let wanted = normalise_url(node);
        self.roster
            .parties
            .iter()
            .find(|p| p.api_urls.iter().any(|url| normalise_url(url) == wanted))
            .map(|p| p.id.clone())
    }
}

/// A node URL as compared with the roster: scheme and host in lower case, without credentials
/// (a client may authenticate with `http://user:token@host`) and trailing slashes.
fn normalise_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let path = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    format!("{}://{}{path}", scheme.to_lowercase(), host.to_lowercase())
}

fn namespace(network_id: &str) -> Uuid {
    Uuid::parse_str(network_id).unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_OID, network_id.as_bytes()))
}

fn invalid(parameter: &str, why: &str) -> Error {
    Error::bad_request("invalid_parameter", format!("invalid parameter: {parameter} = {why}"))
}

/// The parameters of a computation as the original ran it: SecureSum in its fixed point (12
/// decimals unless the caller chose others; `/v1`'s default is the exact sum), and products of
/// any shapes, even those that hand an owner the other's matrix (`/v1` refuses them unless the
/// parties allow it). Every party's node adds the same, so the definitions still agree.
fn as_the_original(microprotocol: &str, parameters: Value) -> Value {
    let mut parameters = match parameters {
        Value::Null => json!({}),
        other => other,
    };
    let Value::Object(map) = &mut parameters else {
        return parameters;
    };
    match microprotocol {
        "SecureSum" => {
            // An explicit null is an absent value to the engine: the original's default too.
            let digits = map.entry("digits_after").or_insert(Value::Null);
            if digits.is_null() {
                *digits = json!(ORIGINAL_DIGITS_AFTER);
            }
        }
        "SecureMatrixMultiplication" | "StatisticsRegressionOLSVertical" => {
            map.entry("allow_revealing_shapes").or_insert(Value::Bool(true));
        }
        _ => {}
    }
    parameters
}

/// The original's default `digits_after` (REFERENCE.md §4.1).
const ORIGINAL_DIGITS_AFTER: u32 = 12;

/// The output of a final computation (its stored JSON text), or its failure as an error.
fn outcome(row: ComputationRow) -> Result<Box<RawValue>, Error> {
    if row.status == store::SUCCEEDED {
        return Ok(row
            .output
            .and_then(|o| RawValue::from_string(o).ok())
            .unwrap_or_else(|| RawValue::NULL.to_owned()));
    }
    let error: Value = row
        .error
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or(Value::Null);
    Err(Error::Failed {
        code: error["code"].as_str().unwrap_or("failed").to_string(),
        message: error["message"]
            .as_str()
            .unwrap_or("the computation failed")
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::{as_the_original, normalise_url};
    use fsc_simon::Spec;
    use serde_json::{Value, json};

    /// SecureSum keeps the original's fixed point through this API, whatever path builds its
    /// parameters (`compute` passes none, a task its own or an invitation's normalised ones).
    #[test]
    fn secure_sum_is_the_originals_fixed_point() {
        let normalised = |parameters: Value| {
            Spec::new("SecureSum", &as_the_original("SecureSum", parameters), 3)
                .unwrap()
                .parameters_json()
        };
        let original = json!({"digits_after": 12, "digits_before": 12});
        assert_eq!(normalised(Value::Null), original);
        assert_eq!(normalised(json!({})), original);
        assert_eq!(normalised(json!({"digits_after": null})), original);
        assert_eq!(normalised(original.clone()), original);
        assert_eq!(
            normalised(json!({"digits_before": 1, "digits_after": 1})),
            json!({"digits_after": 1, "digits_before": 1})
        );
        assert_eq!(
            normalised(json!({"digits_after": 0, "bound": 1e6})),
            json!({"digits_after": 0, "digits_before": 12, "bound": 1e6})
        );
        // Other protocols are left as they were asked for, but the products.
        assert_eq!(as_the_original("StatisticsUnivariate", Value::Null), json!({}));
        assert_eq!(
            as_the_original("SecureMatrixMultiplication", json!({})),
            json!({"allow_revealing_shapes": true})
        );
    }

    #[test]
    fn urls_compare_without_credentials_case_or_trailing_slash() {
        assert_eq!(
            normalise_url("HTTP://fsc:secret@LocalHost:55501/"),
            "http://localhost:55501"
        );
        assert_eq!(normalise_url("http://127.0.0.1:55501"), "http://127.0.0.1:55501");
        assert_eq!(
            normalise_url("https://node.example.org/fsc/"),
            "https://node.example.org/fsc"
        );
    }
}
