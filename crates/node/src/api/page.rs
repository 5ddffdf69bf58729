//! The operator page, `GET /`: what a person running a node wants to see at a glance, as one
//! server-rendered HTML page (no scripts; a `<meta http-equiv=refresh>` reloads it).
//!
//! It shows the node (party id, version), its peers and when each was last heard from, the
//! broker connection and the stream's state, the node's policy and privacy budget (spent, caps
//! and what remains: the caller's own, or every client's for admins and monitors), the
//! computations peers proposed that wait for a client here ("waiting for your input", see
//! `runtime::proposals`: their definitions, never an input), the caller's running and pending
//! computations with the parties each still waits for, and
//! all of them, newest first, a page at a time (`?status=` filters, `?before=` pages on), with
//! status, duration and failure reason; admins also see which API client submitted each one
//! ("submitted by"). Admins get a cancel button on every computation that
//! has not ended: a form POSTed to `/cancel` with a token only this page gives out (an HMAC, under
//! a key drawn at start, of the client's name and the computation's id), so that another site
//! cannot make a signed-in browser cancel anything (the browser would send the credentials). It
//! is behind the API's tokens like everything else (see `auth::authenticate_browser` for how a
//! browser presents one). Rendered with maud, which escapes every interpolated value: party ids,
//! URLs and failure messages come from the roster, peers and clients, and never reach the page
//! as markup. What rows hold (a peer's invitation names the microprotocol and parties) is cut to
//! [`SHOWN_BYTES`] a field, so no row makes the page large. [`security_headers`] keeps browsers
//! from running anything else on it or framing it.

use super::AppState;
use super::v1::{proposal_view, timestamp, view, waiting_for_pool};
use crate::budget::{self, Spent};
use crate::caller::Caller;
use crate::config::policy::Policy;
use crate::error::Error;
use crate::store::{self, ComputationRow};
use crate::transport::StreamHealth;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use maud::{DOCTYPE, Markup, html};
use ring::hmac;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// How often the page reloads itself.
const REFRESH_S: u64 = 10;
/// How long the page waits for the broker's stream state before showing it as unavailable.
const BROKER_TIMEOUT: Duration = Duration::from_secs(2);
/// Most computations listed per section (and per status among the active ones), and per page.
const LISTED: i64 = 50;
/// The statuses the list can be filtered by.
const STATUSES: [&str; 4] = [store::PENDING, store::RUNNING, store::SUCCEEDED, store::FAILED];
/// Failure reasons longer than this (two lines of the reason column in a 1280 px window, beside
/// the admin's "submitted by" column and a vertical scrollbar once the policy and budget sections
/// make the page tall) show their first `REASON_SUMMARY` characters, the rest one
/// click away.
const SHORT_REASON: usize = 96;
const REASON_SUMMARY: usize = 40;

// The computations' tables fit the window: only short cells keep to one line; parties and
// reasons wrap (anywhere, for long words), and long reasons are folded (`reason`).
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}\
    h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}\
    table{border-collapse:collapse;max-width:100%}\
    th,td{text-align:left;vertical-align:top;padding:.25rem .6rem;border-bottom:1px solid #ddd}\
    td{white-space:nowrap}td.wrap{white-space:normal;overflow-wrap:anywhere;min-width:8rem}\
    th{background:#f4f4f4}table.computations{font-size:.9rem;width:100%}td.reason{width:40%}\
    code{font-family:ui-monospace,monospace;font-size:1em}.ok{color:#176f2c}.bad{color:#b00020}\
    .succeeded{color:#176f2c}.failed{color:#b00020}.running,.pending{color:#8a5a00}\
    .muted{color:#777}nav a,nav strong{margin-right:.8rem}\
    details summary{cursor:pointer}form.cancel{margin:0}\
    .notice{background:#eef6ee;border:1px solid #9c9;padding:.4rem .7rem;display:inline-block}";

/// The most bytes of one field of a row (microprotocol, parties, failure reason) the page shows:
/// above a failure's stored detail ([`crate::failure::MAX_DETAIL`]), so that shows whole.
const SHOWN_BYTES: usize = 1024;

/// The page's policy: nothing but its own inline style (by its hash: the page has no scripts or
/// images), forms posted only to itself (the cancel buttons), no framing, no `<base>`.
static CONTENT_SECURITY_POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let style = ring::digest::digest(&ring::digest::SHA256, STYLE.as_bytes());
    let policy = format!(
        "default-src 'none'; style-src 'sha256-{}'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        crate::keys::encode_base64(style.as_ref())
    );
    HeaderValue::from_str(&policy).expect("base64 is a valid header value")
});

/// Adds to the page's answers (the sign-in page's too) the headers that keep a browser from
/// running or loading anything the page does not hold, from framing it (clickjacking), from
/// guessing another content type, and from sending its URL (with a token in it) as a referrer.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY.clone());
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// `GET /`'s query: which computations the list shows.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Only this status (`pending`, `running`, `succeeded`, `failed`); all if absent or empty.
    #[serde(default)]
    status: Option<String>,
    /// The page after this cursor (`created_at_id`, as the v1 API's `next_cursor`).
    #[serde(default)]
    before: Option<String>,
    /// The computation just cancelled from this page, to confirm it.
    #[serde(default)]
    cancelled: Option<Uuid>,
}

impl PageQuery {
    fn status(&self) -> Result<Option<&str>, Error> {
        match self.status.as_deref() {
            None | Some("") => Ok(None),
            Some(status) => STATUSES
                .iter()
                .copied()
                .find(|s| *s == status)
                .map(Some)
                .ok_or_else(|| {
                    Error::bad_request("invalid_query", "status must be pending, running, succeeded or failed")
                }),
        }
    }

    fn before(&self) -> Result<Option<(i64, String)>, Error> {
        let Some(cursor) = self.before.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        cursor
            .split_once('_')
            .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, Uuid::parse_str(id).ok()?.to_string())))
            .map(Some)
            .ok_or_else(|| Error::bad_request("invalid_query", "before is not a cursor this page gave"))
    }
}

/// The link to the list with `status` (`None`: all) from its first page.
fn list_link(status: Option<&str>) -> String {
    status.map_or_else(
        || "/#computations".to_string(),
        |s| format!("/?status={s}#computations"),
    )
}

/// `GET /`.
pub async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Html<String>, Error> {
    let Query(query) = query.map_err(|e| Error::bad_request("invalid_query", e.body_text()))?;
    let (status, before) = (query.status()?, query.before()?);
    let me = state.envelopes.me();
    let now = SystemTime::now();
    let now_ms = unix_ms(now);
    let filter = caller.listing_filter();
    let mut active = Vec::new();
    for status in [store::RUNNING, store::PENDING] {
        active.extend(store::list_computations(&state.read, filter, Some(status), LISTED, None).await?);
    }
    let mut waiting = HashMap::new();
    for row in &active {
        waiting.insert(row.id.clone(), waiting_for_pool(&state, row).await?);
    }
    let proposals = store::proposals_pool(&state.read, now_ms, LISTED).await?;
    let listed = store::list_computations(&state.read, filter, status, LISTED, before.clone()).await?;
    let older = (listed.len() as i64 == LISTED)
        .then(|| listed.last().map(|r| format!("{}_{}", r.created_at, r.id)))
        .flatten();
    let list = Listing {
        rows: &listed,
        status,
        paged: before.is_some(),
        older,
    };
    let broker = state.readiness.check();
    let stream = match tokio::time::timeout(BROKER_TIMEOUT, state.readiness.stream_health(me)).await {
        Ok(Ok(health)) => Ok(health),
        Ok(Err(error)) => {
            tracing::warn!(%error, "operator page: no stream state from the broker");
            Err("the broker did not tell; the node's log has the details")
        }
        Err(_) => Err("the broker did not answer in time"),
    };
    let since = budget::period_start(state.policy.budget.as_ref(), now_ms);
    let spent = Spent::from_rows(store::spent_since_pool(&state.read, since).await?);
    let budget = budget::report(&state.policy, &spent, filter);
    let seen = state.metrics.peers_seen();
    let full_streams = state.metrics.full_streams();
    let metrics = &state.metrics;
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
    let gauge = |gauge: &std::sync::atomic::AtomicI64| gauge.load(std::sync::atomic::Ordering::Relaxed);

    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(REFRESH_S);
                title { "fsc node " (me) }
                style { (STYLE) }
            }
            body {
                h1 { "fsc node " code #node { (me) } }
                p {
                    "Version " (env!("CARGO_PKG_VERSION")) " · signed in as " code { (caller.name) }
                    @if caller.admin { " (admin)" }
                    @if caller.monitor { " (monitor)" }
                    " · " span.muted { "updated " (clock(now)) ", every " (REFRESH_S) " s" }
                }

                h2 { "Peers" }
                table #peers {
                    tr { th { "party" } th { "API URLs" } th { "last message received" } }
                    @for party in state.roster.parties.iter().filter(|p| p.id != me) {
                        tr {
                            td { code { (party.id) } }
                            td { @for url in &party.api_urls { code { (url) } " " } }
                            td {
                                @match seen.get(&party.id) {
                                    Some(at) => { (ago(now, *at)) " ago " span.muted { "(" (clock(*at)) ")" } }
                                    None => span.muted { "not since this node started" },
                                }
                            }
                        }
                    }
                }

                h2 { "Broker" }
                table #broker {
                    tr {
                        th { "connection" }
                        td {
                            @match broker {
                                Ok(()) => span.ok { "connected, inbox consumer pulling" },
                                Err(missing) => span.bad { (bounded(&missing)) },
                            }
                        }
                    }
                    @match &stream {
                        Ok(health) => (stream_rows(&state.readiness.names().inbox_stream(me), health)),
                        Err(why) => tr { th { "stream " (state.readiness.names().inbox_stream(me)) } td.bad { (why) } },
                    }
                    @for (party, full) in &full_streams {
                        tr.full {
                            th { "stream " (state.readiness.names().inbox_stream(party)) }
                            td.bad {
                                "full for " (ago(now, full.since)) " (since " (clock(full.since)) "): "
                                code { (party) } " is away or behind; " (full.waiting) " messages to "
                                code { (party) } " wait here, the other parties' go on"
                            }
                        }
                    }
                    tr { th { "outbox" } td { (gauge(&metrics.outbox_pending)) " messages waiting for the broker" } }
                }

                (policy_section(&state.policy, &budget))

                h2 { "Computations" }
                @if let Some(id) = query.cancelled {
                    p.notice #notice { "Cancelled " code { (id) } ": it failed here and every other party is told." }
                }
                p {
                    (gauge(&metrics.computations_active)) " active · since start: "
                    (load(&metrics.computations_submitted)) " submitted here, "
                    (load(&metrics.computations_succeeded)) " succeeded, "
                    (load(&metrics.computations_failed)) " failed"
                }
                h2 { "Waiting for your input" }
                (proposals_table(&proposals))
                h2 { "Running and pending" }
                (computations("active", &active, Some(&waiting), now_ms, &caller))
                h2 #computations { "All computations, newest first" }
                (listing(&list, now_ms, &caller))
            }
        }
    };
    Ok(Html(markup.into_string()))
}

/// The policy's rules, and the privacy budget of the report `budget` (`budget::report`).
fn policy_section(policy: &Policy, budget: &Value) -> Markup {
    let names = |list: &Option<Vec<String>>| list.as_ref().map(|l| l.join(", "));
    let rules = [
        ("microprotocols", names(&policy.microprotocols)),
        ("parties", names(&policy.parties)),
        ("helpers", names(&policy.helpers)),
        ("min_parties", policy.min_parties.map(|n| n.to_string())),
        ("min_local_samples", policy.min_local_samples.map(|n| n.to_string())),
        ("min_total_samples", policy.min_total_samples.map(|n| n.to_string())),
        (
            "budget",
            policy
                .budget
                .map(|_| "the node's caps: see the privacy budget below".into()),
        ),
    ];
    let kinds = ["epsilon", "delta", "rho"];
    let cell = |entry: &Value, kind: &str| {
        let number = |v: &Value| v.as_f64().map_or("-".to_string(), |x| x.to_string());
        match entry["cap"][kind].as_f64() {
            Some(cap) => format!(
                "{} of {cap} ({} left)",
                number(&entry["spent"][kind]),
                number(&entry["remaining"][kind])
            ),
            None => format!("{} (no cap)", number(&entry["spent"][kind])),
        }
    };
    let node = (!budget["node"].is_null()).then_some(&budget["node"]);
    let clients = budget["clients"].as_array().map(Vec::as_slice).unwrap_or_default();
    html! {
        h2 { "Policy" }
        @if policy.is_open() {
            p #policy { "No " code { "[policy]" } ": this node computes whatever its clients submit." }
        } @else {
            table #policy {
                @for (rule, value) in &rules {
                    @if let Some(value) = value { tr { th { code { (rule) } } td.wrap { (value) } } }
                }
                @for client in &policy.clients {
                    tr {
                        th { "client " code { (client.name) } }
                        td.wrap {
                            @match &client.microprotocols {
                                Some(list) => { "microprotocols: " (list.join(", ")) }
                                None => span.muted { "the node's microprotocols" },
                            }
                        }
                    }
                }
            }
        }
        h2 { "Privacy budget" }
        p {
            @match budget["period_days"].as_u64() {
                Some(days) => { "Spent in the last " (days) " days" }
                None => { "Spent since this node's store began (no period)" }
            }
            " by computations with a " code { "dp" } " parameter: ε, δ and ρ each summed."
        }
        table #budget {
            tr { th { "who" } th { "computations" } @for kind in kinds { th { (kind) } } }
            @if let Some(node) = node {
                tr { th { "the node" } td { (node["computations"]) } @for kind in kinds { td { (cell(node, kind)) } } }
            }
            @for client in clients {
                tr {
                    th { "client " code { (client["name"].as_str().unwrap_or_default()) } }
                    td { (client["computations"]) }
                    @for kind in kinds { td { (cell(client, kind)) } }
                }
            }
        }
    }
}

fn stream_rows(name: &str, health: &StreamHealth) -> Markup {
    html! {
        tr {
            th { "stream " (name) }
            td { (health.messages) " messages (" (health.bytes) " bytes) not yet consumed, " (health.consumers) " inbox consumers" }
        }
        tr {
            th { "this node's inbox" }
            td {
                (health.inbox_pending) " waiting, " (health.inbox_unacknowledged) " being stored, "
                (health.inbox_redelivered) " redelivered"
            }
        }
    }
}

/// One page of the list of computations, and how to move on from it.
struct Listing<'a> {
    rows: &'a [ComputationRow],
    status: Option<&'a str>,
    /// Not the first page.
    paged: bool,
    /// The cursor of the next (older) page, if this one is full.
    older: Option<String>,
}

/// The list's status filter, its page and its paging links.
fn listing(list: &Listing, now_ms: i64, caller: &Caller) -> Markup {
    let choices = std::iter::once(None).chain(STATUSES.iter().copied().map(Some));
    html! {
        nav #filter {
            "Show: "
            @for choice in choices {
                @let label = choice.unwrap_or("all");
                @if choice == list.status {
                    strong { (label) }
                } @else {
                    a href=(list_link(choice)) { (label) }
                }
            }
        }
        (computations("list", list.rows, None, now_ms, caller))
        nav #paging {
            @if list.paged {
                a href=(list_link(list.status)) { "← newest" }
            }
            @if let Some(cursor) = &list.older {
                @let status = list.status.map(|s| format!("status={s}&")).unwrap_or_default();
                a href={ "/?" (status) "before=" (cursor) "#computations" } { "older →" }
            }
        }
    }
}

/// The computations peers proposed that no client here has submitted or declined, with their
/// definitions and who has joined: a client here submits (or declines) them with the v1 API.
fn proposals_table(proposals: &[(store::ProposalRow, Vec<String>)]) -> Markup {
    html! {
        @if proposals.is_empty() {
            p.muted #proposals { "none: no other party has proposed a computation to this node" }
        } @else {
            table.computations #proposals {
                tr {
                    th { "id" } th { "microprotocol" } th { "parties" } th { "parameters" } th { "proposed by" }
                    th { "joined" } th { "waiting for" } th { "deadline" }
                }
                @for (row, joined) in proposals {
                    @let shown = proposal_view(row, joined);
                    tr {
                        td { code { (row.computation) } }
                        td { (bounded(&row.microprotocol)) }
                        td.wrap { (bounded(&list(&shown["parties"]))) }
                        td.wrap { code { (bounded(&shown["parameters"].to_string())) } }
                        td { code { (row.proposer) } }
                        td.wrap { (list(&shown["joined"])) }
                        td.wrap.waiting { (list(&shown["waiting_for"])) }
                        td title=(shown["deadline_at"].as_str().unwrap_or("")) { (shown["deadline_at"].as_str().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

/// A table of computations; with `waiting` (the parties each has not heard from, by id), a
/// "waiting for" column.
fn computations(
    id: &str,
    rows: &[ComputationRow],
    waiting: Option<&HashMap<String, Vec<String>>>,
    now_ms: i64,
    caller: &Caller,
) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted id=(id) { "none" }
        } @else {
            table.computations id=(id) {
                tr {
                    th { "id" } th { "microprotocol" } th { "parties" } th { "status" } th { "started" }
                    th { "duration" } th { "reason" }
                    @if waiting.is_some() { th { "waiting for" } }
                    // Who asked: an admin sees every client's computations.
                    @if caller.admin { th { "submitted by" } th {} }
                }
                @for row in rows {
                    @let shown = view(row);
                    tr {
                        td { code { (row.id) } }
                        td { (bounded(row.microprotocol.as_deref().unwrap_or(""))) }
                        td.wrap { (bounded(&list(&shown["parties"]))) }
                        td class=(row.status) { (row.status) }
                        td title=(shown["created_at"].as_str().unwrap_or("")) { (started(row.created_at, now_ms)) }
                        td { (millis(row.finished_at.unwrap_or(now_ms) - row.created_at)) }
                        td.wrap.reason { (folded(&bounded(&reason(&shown["error"])))) }
                        @if let Some(waiting) = waiting {
                            td.wrap.waiting {
                                @match waiting.get(&row.id).filter(|w| !w.is_empty()) {
                                    Some(parties) => { "waiting for " (bounded(&parties.join(", "))) }
                                    None => span.muted { "—" },
                                }
                            }
                        }
                        @if caller.admin {
                            td.client { (bounded(row.client.as_deref().unwrap_or("—"))) }
                            td { @if !store::is_final(&row.status) { (cancel_button(caller, &row.id)) } }
                        }
                    }
                }
            }
        }
    }
}

/// When a computation started: the time of day (UTC) if today, else the date and time; the
/// cell's title has the whole timestamp.
fn started(created_ms: i64, now_ms: i64) -> String {
    let at = timestamp(created_ms);
    let text = at.as_str().unwrap_or_default();
    let today = timestamp(now_ms);
    let (date, time) = text.split_once('T').unwrap_or((text, ""));
    let time = time.get(..8).unwrap_or(time);
    if today.as_str().is_some_and(|t| t.starts_with(date)) {
        time.to_string()
    } else {
        format!("{date} {}", time.get(..5).unwrap_or(time))
    }
}

/// A reason as text; a long one shows its start, and the rest when opened.
fn folded(reason: &str) -> Markup {
    if reason.chars().count() <= SHORT_REASON {
        return html! { (reason) };
    }
    let start: String = reason.chars().take(REASON_SUMMARY).collect();
    html! { details { summary { (start) "…" } (reason) } }
}

/// An admin's button that cancels computation `id`: a form POSTed to `/cancel` with this page's
/// token for it.
fn cancel_button(caller: &Caller, id: &str) -> Markup {
    html! {
        form.cancel method="post" action={ "/cancel/" (id) } {
            input type="hidden" name="token" value=(cancel_token(caller, id));
            button type="submit" { "cancel" }
        }
    }
}

/// The key of the cancel forms' tokens, drawn when the first page is rendered: a page from
/// before the node restarted asks to be reloaded.
fn page_key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| {
        hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .expect("the system's random number generator")
    })
}

fn cancel_message(caller: &Caller, id: &str) -> String {
    format!("fsc/page/cancel/v1\n{}\n{id}", caller.name)
}

/// This page's token for `caller` to cancel `id` (hex of an HMAC).
fn cancel_token(caller: &Caller, id: &str) -> String {
    let tag = hmac::sign(page_key(), cancel_message(caller, id).as_bytes());
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// The form of a cancel button.
#[derive(Debug, Deserialize)]
pub struct CancelForm {
    token: String,
}

/// `POST /cancel/{id}`: an admin's cancel button. With this page's token for the caller and
/// the computation, cancels it as `DELETE /v1/computations/{id}` does and sends the browser back
/// to the page (303), which confirms it; anything else is a page that says what went wrong.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    form: Result<Form<CancelForm>, FormRejection>,
) -> Response {
    let refused = |status: StatusCode, why: &str| {
        let page = html! {
            (DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; title { "fsc node " (state.envelopes.me()) } style { (STYLE) } }
                body { h1 { "Not cancelled" } p.bad #error { (why) } p { a href="/" { "back to the page" } } }
            }
        };
        (status, Html(page.into_string())).into_response()
    };
    if !caller.admin {
        return refused(StatusCode::FORBIDDEN, "only an admin client may cancel from this page");
    }
    let Ok(Path(id)) = id else {
        return refused(StatusCode::BAD_REQUEST, "no computation id");
    };
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return refused(StatusCode::BAD_REQUEST, "the computation id is not a UUID");
    };
    let id = uuid.to_string();
    let genuine = form
        .ok()
        .and_then(|Form(form)| from_hex(&form.token))
        .is_some_and(|tag| hmac::verify(page_key(), cancel_message(&caller, &id).as_bytes(), &tag).is_ok());
    if !genuine {
        return refused(
            StatusCode::FORBIDDEN,
            "this form was not made by this node's page for you (or the node restarted since): reload the page and try again",
        );
    }
    match super::v1::cancel(State(state.clone()), Extension(caller.clone()), Ok(Path(id.clone()))).await {
        Ok(Json(_)) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/?cancelled={id}#notice"))],
        )
            .into_response(),
        Err(error) => {
            let (status, _) = error.classify();
            refused(status, error.problem()["detail"].as_str().unwrap_or_default())
        }
    }
}

/// The 401 page of a browser without (valid) credentials.
pub fn login_required(me: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "fsc node " (me) }  style { (STYLE) } }
            body {
                h1 { "fsc node " code { (me) } }
                p { "This page needs an API token of this node: sign in with any user name and the token as password." }
            }
        }
    }
    .into_string()
}

/// `text` as the page shows a field of a row: at most [`SHOWN_BYTES`].
fn bounded(text: &str) -> String {
    crate::failure::cut(text, SHOWN_BYTES)
}

fn list(parties: &Value) -> String {
    parties
        .as_array()
        .map(|parties| parties.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// A failure's reason: `code: message`, or nothing.
fn reason(error: &Value) -> String {
    match (error["code"].as_str(), error["message"].as_str()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => String::new(),
    }
}

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// `at` in UTC, RFC 3339, as the API writes times.
fn clock(at: SystemTime) -> String {
    timestamp(unix_ms(at)).as_str().unwrap_or_default().to_string()
}

fn ago(now: SystemTime, at: SystemTime) -> String {
    millis(now.duration_since(at).unwrap_or_default().as_millis() as i64)
}

/// A duration for people: `850 ms`, `12.3 s`, `4 min 3 s`, `2 h 5 min`.
fn millis(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(millis(-5), "0 ms");
        assert_eq!(millis(850), "850 ms");
        assert_eq!(millis(12_345), "12.3 s");
        assert_eq!(millis(243_000), "4 min 3 s");
        assert_eq!(millis(7_500_000), "2 h 5 min");
    }

    #[test]
    fn reasons_and_login_page_are_escaped_text() {
        let error = serde_json::json!({"code": "input_invalid", "message": "<script>alert(1)</script>"});
        let markup = html! { td { (reason(&error)) } }.into_string();
        assert_eq!(markup, "<td>input_invalid: &lt;script&gt;alert(1)&lt;/script&gt;</td>");
        assert!(login_required("a<b").contains("a&lt;b"));
    }
}
