//! The node's HTTP API: routes, shared state and request-body parsing; `auth` identifies clients.
//!
//! `v1` is the native asynchronous API; operational endpoints (`/healthz`, `/readyz`,
//! `/metrics`, `/openapi.json`) live here too; `page` is the operator page at `/`. Handlers only
//! translate HTTP to runtime and store calls; every error leaves through `problem`.

pub mod auth;
pub mod federatedsecure;
mod page;
mod problem;
pub mod server;
mod v1;

use crate::config::policy::Policy;
use crate::config::roster::Roster;
use crate::envelope::Envelopes;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::runtime::RuntimeHandle;
use crate::store;
use crate::transport::Readiness;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::json;
use sqlx::SqlitePool;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

/// What every handler can reach.
pub struct Shared {
    pub runtime: RuntimeHandle,
    pub read: SqlitePool,
    pub metrics: Arc<Metrics>,
    pub roster: Arc<Roster>,
    pub envelopes: Arc<Envelopes>,
    pub clients: auth::Clients,
    /// Connected to the broker, with the inbox consumer pulling.
    pub readiness: Readiness,
    pub max_request_bytes: usize,
    pub federatedsecure: federatedsecure::Federatedsecure,
    /// The node's policy, for the budget's caps (`GET /v1/budget`, the operator page).
    pub policy: Policy,
    /// The datasets inputs may name, and who may read them.
    pub datasets: Arc<crate::datasets::Datasets>,
}

pub type AppState = Arc<Shared>;

pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router(state: AppState) -> Router {
    let max_request_bytes = state.max_request_bytes;
    let protected = Router::new()
        .route("/v1/computations", post(v1::submit).get(v1::list))
        .route("/v1/computations/batch", post(v1::submit_batch))
        .route("/v1/computations/{id}", get(v1::get).delete(v1::cancel))
        .route("/v1/computations/{id}/receipt", get(v1::receipt))
        .route("/v1/proposals", get(v1::proposals))
        .route("/v1/proposals/{id}/decline", post(v1::decline))
        .route("/v1/node", get(v1::node))
        .route("/v1/budget", get(v1::budget))
        .route("/v1/datasets", get(v1::datasets))
        .route("/openapi.json", get(openapi))
        .merge(federatedsecure::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::authenticate));
    // What a monitoring client may read, besides the page and the unguarded /readyz.
    let monitored = Router::new()
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate_monitoring,
        ));
    let browser = Router::new()
        .route("/", get(page::page))
        .route("/cancel/{id}", post(page::cancel))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate_browser,
        ))
        .route_layer(middleware::from_fn(page::security_headers));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(browser)
        .route("/readyz", get(readyz))
        .merge(monitored)
        .merge(protected)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_request_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), refuse_oversized))
        // Failures are logged where they are understood (`problem`), not again per response.
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The health listener's routes (`health_listen`): `/healthz` and `/readyz` only, without tokens
/// as on the API's listener.
pub fn health_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Times every request for `fsc_http_request_duration_seconds`, by the matched route's template
/// (`unmatched` if none), so that ids in paths do not make new series; likewise methods outside
/// the standard ones are `other`.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    state.metrics.http_request(
        method,
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Refuses a body whose announced length is over the limit before reading any of it (the body
/// limit itself only notices once that much has been read, and bodies without a length).
async fn refuse_oversized(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if announced.is_some_and(|length| length > state.max_request_bytes) {
        let limit = state.max_request_bytes;
        return Error::PayloadTooLarge(format!("request body exceeds this node's max_request_bytes ({limit})"))
            .into_response();
    }
    next.run(request).await
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, Error> {
    store::ping(&state.read)
        .await
        .map_err(|e| Error::Unavailable(format!("store not readable: {e}")))?;
    state.readiness.check().map_err(Error::Unavailable)?;
    Ok(Json(json!({"status": "ready"})))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Read here rather than counted as they change: both move with every federatedsecure call.
    let bus = &state.federatedsecure.bus;
    let metrics = &state.metrics;
    metrics.representations.store(bus.len() as i64, Ordering::Relaxed);
    metrics
        .representation_bytes
        .store(bus.held_bytes() as i64, Ordering::Relaxed);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render())
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn not_found(request: Request) -> Error {
    Error::NotFound(format!("no route for {} {}", request.method(), request.uri().path()))
}

/// A JSON request body whose errors are problem documents (axum's own `Json` answers in plain text).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge("request body exceeds this node's max_request_bytes".into())
            } else {
                Error::bad_request("invalid_body", rejection.body_text())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Error::bad_request("invalid_body", format!("request body is not valid: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::OPENAPI;
    use crate::config::policy::Rule;
    use serde_json::Value;

    /// The rule a refusal names, as the document lists it, is every rule the policy has: a new
    /// rule must be documented where clients read the refusal.
    #[test]
    fn the_documented_policy_rules_are_the_policys() {
        let document: Value = serde_json::from_str(OPENAPI).expect("the OpenAPI document");
        let documented = &document["components"]["schemas"]["PolicyRule"]["enum"];
        let rules: Vec<&str> = Rule::ALL.into_iter().map(Rule::token).collect();
        assert_eq!(documented, &serde_json::json!(rules));
    }
}
