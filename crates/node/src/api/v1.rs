//! The native API, `/v1`: submit computations (one or a batch), read them (with long polling),
//! list them, list and decline the proposals peers sent (`runtime::proposals`), and describe the
//! node. Asynchronous by design: a submission returns at once with
//! the computation's id and status; clients poll or long-poll for the result. Showing a final
//! computation (a read, a listing) is recorded in the audit log, with the runtime's next
//! transaction.

use super::problem::retry_after;
use super::{AppState, JsonBody};
use crate::audit::{self, Event};
use crate::caller::Caller;
use crate::datasets::Datasets;
use crate::envelope::{Envelopes, Rejection};
use crate::error::Error;
use crate::failure::AbortReason;
use crate::receipt::{Receipt, Signed};
use crate::runtime::{Accepted, DECLINED, Submission};
use crate::store::{self, ComputationRow, ProposalRow, ReceiptRow};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// The error code of a computation a client cancelled.
const CANCELLED: &str = "cancelled";
/// Longest accepted `?wait=`.
const MAX_WAIT_S: f64 = 300.0;
/// Most computations in one batch request.
const MAX_BATCH: usize = 10_000;
const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    id: Option<Uuid>,
    microprotocol: String,
    parties: Vec<String>,
    #[serde(default)]
    parameters: Value,
    input: Value,
    deadline_s: Option<u64>,
}

impl SubmitRequest {
    /// The submission; an input naming a dataset is read now, into the value it stands for (or
    /// the reason it cannot be, for the runtime to fail the computation with everywhere).
    async fn submission(self, caller: &Caller, datasets: &Datasets, api: &'static str) -> Submission {
        let (input, dataset) = datasets
            .read_input(caller, &self.microprotocol, &self.parameters, self.input)
            .await;
        Submission {
            id: self.id,
            microprotocol: self.microprotocol,
            parties: self.parties,
            parameters: self.parameters,
            input,
            deadline_s: self.deadline_s,
            network: None,
            caller: caller.clone(),
            dataset,
            api,
        }
    }
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(request): JsonBody<SubmitRequest>,
) -> Result<(StatusCode, Json<Accepted>), Error> {
    let submission = request.submission(&caller, &state.datasets, "v1").await;
    let result = state.runtime.submit(vec![submission]).await?.pop();
    let accepted = result.ok_or_else(|| Error::Unavailable("the store is not available; retry".into()))??;
    let status = if accepted.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(accepted)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    computations: Vec<Value>,
}

/// One status or problem per item; the items that are valid are accepted in one transaction.
/// Items beyond the node's capacity are refused (429 problems) and the answer carries a
/// `Retry-After` for them.
pub async fn submit_batch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(request): JsonBody<BatchRequest>,
) -> Result<Response, Error> {
    if request.computations.len() > MAX_BATCH {
        return Err(Error::bad_request(
            "batch_too_large",
            format!("at most {MAX_BATCH} computations per batch"),
        ));
    }
    let mut results: Vec<Option<Value>> = vec![None; request.computations.len()];
    let mut valid = Vec::new();
    let mut positions = Vec::new();
    for (i, item) in request.computations.into_iter().enumerate() {
        match serde_json::from_value::<SubmitRequest>(item) {
            Ok(item) => {
                valid.push(item.submission(&caller, &state.datasets, "v1_batch").await);
                positions.push(i);
            }
            Err(e) => {
                results[i] = Some(
                    json!({"error": Error::bad_request("invalid_body", format!("computation {i}: {e}")).problem()}),
                )
            }
        }
    }
    let mut retry = None;
    if !valid.is_empty() {
        let accepted = state.runtime.submit(valid).await?;
        if accepted.len() != positions.len() {
            return Err(Error::Unavailable("the store is not available; retry".into()));
        }
        for (position, outcome) in positions.into_iter().zip(accepted) {
            results[position] = Some(match outcome {
                Ok(accepted) => json!(accepted),
                Err(error) => {
                    retry = retry.max(error.retry_after_s());
                    json!({"error": error.problem()})
                }
            });
        }
    }
    let mut response = Json(json!({"results": results})).into_response();
    retry_after(&mut response, retry);
    Ok(response)
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, Error> {
    let id = parse_id(id)?;
    let query = query.map_err(|e| Error::bad_request("invalid_query", e.body_text()))?;
    let wait = match query.get("wait") {
        None => 0.0,
        Some(text) => text
            .parse::<f64>()
            .ok()
            .filter(|w| (0.0..=MAX_WAIT_S).contains(w))
            .ok_or_else(|| {
                Error::bad_request(
                    "invalid_query",
                    format!("wait must be a number of seconds from 0 to {MAX_WAIT_S}"),
                )
            })?,
    };
    let (state, caller) = (&state, &caller);
    let read = || readable(state, caller, id);
    if wait > 0.0 {
        let polled = state
            .runtime
            .waiters
            .poll(id, Duration::from_secs_f64(wait), |running| async move {
                match running {
                    // Running: only who may see it waits for it (a read would say the same).
                    Some(owner) if !caller.may_access(owner.as_deref()) => Err(not_found(id)),
                    Some(_) => Ok(None),
                    None => Ok(Some(read().await?).filter(|row| store::is_final(&row.status))),
                }
            })
            .await?;
        if let Some(row) = polled {
            let row = accessible(caller, id, Some(row))?;
            record_read(state, caller, &row);
            return Ok(Json(view(&row)));
        }
    }
    let row = read().await?;
    record_read(state, caller, &row);
    let mut shown = view(&row);
    if !store::is_final(&row.status) {
        shown["waiting_for"] = json!(waiting_for_pool(state, &row).await?);
    }
    Ok(Json(shown))
}

/// The parties of a computation that runs here whose messages have not reached this node yet:
/// those it waits for to join (read from the store, so only a computation that is not final
/// pays for it).
pub(super) async fn waiting_for_pool(state: &AppState, row: &ComputationRow) -> Result<Vec<String>, Error> {
    let mut joined = store::senders_pool(&state.read, &row.id).await?;
    joined.push(state.envelopes.me().to_string());
    let parties: Vec<String> = row
        .parties
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    Ok(waiting_for(&parties, &joined))
}

/// Those of `parties` that have not joined.
fn waiting_for(parties: &[String], joined: &[String]) -> Vec<String> {
    parties.iter().filter(|p| !joined.contains(p)).cloned().collect()
}

/// `GET /v1/proposals`: the computations peers have started with this node among the parties
/// that no client here has submitted (nor declined), soonest deadline first: their definitions,
/// proposer, and who has joined. Never an input: a proposal holds none.
pub async fn proposals(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let found = store::proposals_pool(&state.read, crate::runtime::now_ms(), MAX_PAGE).await?;
    let shown: Vec<Value> = found.iter().map(|(row, joined)| proposal_view(row, joined)).collect();
    Ok(Json(json!({"proposals": shown})))
}

/// A proposal as the API shows it.
pub fn proposal_view(row: &ProposalRow, joined: &[String]) -> Value {
    let parties: Vec<String> = serde_json::from_str(&row.parties).unwrap_or_default();
    json!({
        "id": row.computation,
        "microprotocol": row.microprotocol,
        "parties": parties,
        "parameters": parse_json(&Some(row.parameters.clone())),
        "proposer": row.proposer,
        "received_at": timestamp(row.received_at),
        "deadline_at": timestamp(row.deadline_at),
        "joined": joined,
        "waiting_for": waiting_for(&parties, joined),
    })
}

/// `POST /v1/proposals/{id}/decline`: fails a proposal here (`declined`) and sends every other
/// party a signed abort, so the proposer's computation fails naming this node. The failed
/// computation belongs to the declining client: declining it again answers the same, and a
/// submission of it finds the failure. A computation submitted here is cancelled, not declined
/// (409).
pub async fn decline(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, Error> {
    let id = parse_id(id)?;
    state.runtime.decline(id, &caller).await?;
    let row = store::get_computation_pool(&state.read, &id.to_string())
        .await?
        .filter(|r| caller.may_access(r.client.as_deref()))
        .ok_or_else(|| Error::NotFound(format!("no proposal {id} on this node")))?;
    let error = parse_json(&row.error);
    if error["code"] == DECLINED && error.get("party").is_none() {
        return Ok(Json(view(&row)));
    }
    Err(Error::Conflict(format!(
        "computation {id} is {} here: only a proposal can be declined (a submitted computation is cancelled: DELETE /v1/computations/{id})",
        row.status
    )))
}

/// A final computation's output or failure is shown to `caller`: the audit log records it with
/// the runtime's next transaction (a pending or running one shows nothing of the result, and is
/// not recorded, so polling costs nothing).
fn record_read(state: &AppState, caller: &Caller, row: &ComputationRow) {
    if !store::is_final(&row.status) {
        return;
    }
    let event = Event::new(
        Some(&caller.name),
        audit::READ,
        Some(row.id.clone()),
        json!({"status": row.status}),
    );
    state.runtime.record_reads(vec![event]);
}

/// `GET /v1/computations/{id}/receipt`: every participant's signature over how the computation
/// ended (`crate::receipt`), for whoever may read the computation; recorded as a read.
pub async fn receipt(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Receipt>, Error> {
    let id = parse_id(id)?;
    let row = readable(&state, &caller, id).await?;
    if !store::is_final(&row.status) {
        return Err(Error::Conflict(format!(
            "computation {id} is {}; it has a receipt once it has ended",
            row.status
        )));
    }
    let stored = verified(&state.envelopes, id, store::receipts_pool(&state.read, &row.id).await?);
    let receipt = Receipt::assemble(state.envelopes.me(), &row, &stored).ok_or_else(|| {
        Error::NotFound(format!(
            "computation {id} has no receipt on this node: it ended before a client here defined it, or this node only helped"
        ))
    })?;
    let event = Event::new(
        Some(&caller.name),
        audit::RECEIPT,
        Some(row.id.clone()),
        json!({"complete": receipt.complete}),
    );
    state.runtime.record_reads(vec![event]);
    Ok(Json(receipt))
}

/// The stored signatures of `computation` that hold: this node's own, and each peer's that
/// verifies by the roster key it names. Peers' are stored as their envelope authenticated them and
/// checked only here, as a receipt is read; one that does not verify (a peer's bug, or a key gone
/// from the roster) is left out, so the receipt shows it missing, never signed.
fn verified(envelopes: &Envelopes, computation: Uuid, stored: Vec<ReceiptRow>) -> Vec<ReceiptRow> {
    stored
        .into_iter()
        .filter(|row| {
            if row.party == envelopes.me() {
                return true;
            }
            let checked = Signed::from_row(row)
                .ok_or(Rejection::Malformed)
                .and_then(|signed| envelopes.verify_receipt(computation, &row.party, &signed));
            if let Err(rejection) = &checked {
                tracing::warn!(%computation, party = %row.party, %rejection, "stored receipt signature left out");
            }
            checked.is_ok()
        })
        .collect()
}

/// `DELETE /v1/computations/{id}`: cancels a pending or running computation of this client. It
/// fails here with `cancelled`, and every other party is told with a signed abort, so it fails
/// there too. Cancelling it again answers the same; a computation that has ended otherwise is 409.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, Error> {
    let id = parse_id(id)?;
    let row = readable(&state, &caller, id).await?;
    if !store::is_final(&row.status) {
        let reason = AbortReason {
            code: CANCELLED.into(),
            message: format!("cancelled by client {}", caller.name),
        };
        state.runtime.cancel(id, reason, &caller).await?;
    }
    let row = readable(&state, &caller, id).await?;
    let error = parse_json(&row.error);
    if error["code"] == CANCELLED && error.get("party").is_none() {
        return Ok(Json(view(&row)));
    }
    Err(Error::Conflict(format!(
        "computation {id} has {} already; only a pending or running computation can be cancelled",
        row.status
    )))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, Error> {
    let query = query.map_err(|e| Error::bad_request("invalid_query", e.body_text()))?;
    let status = query.get("status").map(String::as_str);
    if let Some(status) = status {
        if ![store::PENDING, store::RUNNING, store::SUCCEEDED, store::FAILED].contains(&status) {
            return Err(Error::bad_request(
                "invalid_query",
                "status must be pending, running, succeeded or failed",
            ));
        }
    }
    let limit = match query.get("limit") {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| Error::bad_request("invalid_query", format!("limit must be from 1 to {MAX_PAGE}")))?,
    };
    let after = match query.get("cursor") {
        None => None,
        Some(cursor) => Some(
            cursor
                .split_once('_')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, Uuid::parse_str(id).ok()?.to_string())))
                .ok_or_else(|| Error::bad_request("invalid_query", "cursor is not one this API returned"))?,
        ),
    };
    let rows = store::list_computations(&state.read, caller.listing_filter(), status, limit, after).await?;
    // A listing shows outputs too: one entry names the final computations it showed.
    let shown: Vec<&str> = rows
        .iter()
        .filter(|r| store::is_final(&r.status))
        .map(|r| r.id.as_str())
        .collect();
    if !shown.is_empty() {
        let event = Event::new(Some(&caller.name), audit::LIST, None, json!({"computations": shown}));
        state.runtime.record_reads(vec![event]);
    }
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| format!("{}_{}", r.created_at, r.id)))
        .flatten();
    Ok(Json(json!({
        "computations": rows.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

pub async fn node(State(state): State<AppState>) -> Json<Value> {
    let keys = state.envelopes.keys();
    let me = state.envelopes.me();
    let peers: Vec<Value> = state
        .roster
        .parties
        .iter()
        .filter(|p| p.id != me)
        .map(|p| json!({"id": p.id, "api_urls": p.api_urls}))
        .collect();
    let readiness = state.readiness.check();
    let names = state.readiness.names();
    let full_streams: Vec<Value> = state
        .metrics
        .full_streams()
        .into_iter()
        .map(|(party, full)| {
            let since = full
                .since
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            json!({
                "party": party,
                "stream": names.inbox_stream(&party),
                "since": timestamp(since),
                "waiting_messages": full.waiting,
            })
        })
        .collect();
    Json(json!({
        "id": me,
        "version": env!("CARGO_PKG_VERSION"),
        "microprotocols": fsc_simon::machine::AVAILABLE,
        "public_keys": {
            "x25519": crate::keys::encode_base64(&keys.x25519_public()),
            "ed25519": crate::keys::encode_base64(&keys.ed25519_public()),
        },
        "peers": peers,
        "broker_connected": readiness.is_ok(),
        "not_ready": readiness.err(),
        "full_streams": full_streams,
    }))
}

/// `GET /v1/budget`: the privacy budget spent in the current period, with the caps and what
/// remains: the caller's own entry, or (an admin's view) every client's and the node's.
pub async fn budget(State(state): State<AppState>, Extension(caller): Extension<Caller>) -> Result<Json<Value>, Error> {
    let now = crate::runtime::now_ms();
    let since = crate::budget::period_start(state.policy.budget.as_ref(), now);
    let spent = crate::budget::Spent::from_rows(store::spent_since_pool(&state.read, since).await?);
    let only = (!caller.admin).then_some(caller.name.as_str());
    let mut report = crate::budget::report(&state.policy, &spent, only);
    report["since"] = if since == i64::MIN {
        Value::Null
    } else {
        timestamp(since)
    };
    Ok(Json(report))
}

/// `GET /v1/datasets`: the datasets this client may name, their columns and row counts (read
/// now), never a value.
pub async fn datasets(State(state): State<AppState>, Extension(caller): Extension<Caller>) -> Json<Value> {
    Json(json!({"datasets": state.datasets.list(&caller).await}))
}

/// Computation `id` if `caller` may see it: another client's is as unknown as one that does not
/// exist.
async fn readable(state: &AppState, caller: &Caller, id: Uuid) -> Result<ComputationRow, Error> {
    accessible(
        caller,
        id,
        store::get_computation_pool(&state.read, &id.to_string()).await?,
    )
}

/// `row` if `caller` may see it; otherwise (and if there is none) not found.
fn accessible(caller: &Caller, id: Uuid, row: Option<ComputationRow>) -> Result<ComputationRow, Error> {
    row.filter(|r| caller.may_access(r.client.as_deref()))
        .ok_or_else(|| not_found(id))
}

fn not_found(id: Uuid) -> Error {
    Error::NotFound(format!("no computation {id} on this node"))
}

fn parse_id(id: Result<Path<String>, PathRejection>) -> Result<Uuid, Error> {
    let Path(id) = id.map_err(|e| Error::bad_request("invalid_id", e.body_text()))?;
    Uuid::parse_str(&id).map_err(|_| Error::bad_request("invalid_id", format!("{id:?} is not a UUID")))
}

pub(super) fn timestamp(ms: i64) -> Value {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

fn parse_json(text: &Option<String>) -> Value {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// A computation as the API shows it.
pub fn view(row: &ComputationRow) -> Value {
    json!({
        "id": row.id,
        "microprotocol": row.microprotocol,
        "parties": parse_json(&row.parties),
        "parameters": parse_json(&row.parameters),
        "status": row.status,
        "output": parse_json(&row.output),
        "error": parse_json(&row.error),
        "dataset": parse_json(&row.dataset),
        "created_at": timestamp(row.created_at),
        "deadline_at": timestamp(row.deadline_at),
        "finished_at": row.finished_at.map_or(Value::Null, timestamp),
    })
}
