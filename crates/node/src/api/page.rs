//! The operator page, `GET /`: what a person running a node wants to see at a glance, as one
//! server-rendered HTML page (no scripts; a `<meta http-equiv=refresh>` reloads it).
//!
//! It shows the node (party id, version), its peers and when each was last heard from, the
//! broker connection and the stream's state, and the caller's running and recent computations
//! with status, duration and failure reason. It is behind the API's tokens like everything
//! else (see `auth::authenticate_browser` for how a browser presents one). Rendered with maud,
//! which escapes every interpolated value: party ids, URLs and failure messages come from the
//! roster, peers and clients, and never reach the page as markup. What rows hold (a peer's
//! invitation names the microprotocol and parties) is cut to [`SHOWN_BYTES`] a field, so no row
//! makes the page large. [`security_headers`] keeps browsers from running anything else on it
//! or framing it.

use super::AppState;
use super::v1::{timestamp, view};
use crate::caller::Caller;
use crate::error::Error;
use crate::store::{self, ComputationRow};
use crate::transport::StreamHealth;
use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{Html, Response};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

/// How often the page reloads itself.
const REFRESH_S: u64 = 10;
/// How long the page waits for the broker's stream state before showing it as unavailable.
const BROKER_TIMEOUT: Duration = Duration::from_secs(2);
/// Most computations listed per section (and per status among the active ones).
const LISTED: i64 = 50;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}\
    h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}\
    table{border-collapse:collapse}th,td{text-align:left;padding:.25rem .7rem;border-bottom:1px solid #ddd}\
    td{white-space:nowrap}td:last-child{white-space:normal}th{background:#f4f4f4}\
    code{font-family:ui-monospace,monospace;font-size:1em}.ok{color:#176f2c}.bad{color:#b00020}\
    .succeeded{color:#176f2c}.failed{color:#b00020}.running,.pending{color:#8a5a00}\
    .muted{color:#777}";

/// The most bytes of one field of a row (microprotocol, parties, failure reason) the page shows:
/// above a failure's stored detail ([`crate::failure::MAX_DETAIL`]), so that shows whole.
const SHOWN_BYTES: usize = 1024;

/// The page's policy: nothing but its own inline style (by its hash: the page has no scripts,
/// images or forms), no framing, no `<base>`.
static CONTENT_SECURITY_POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let style = ring::digest::digest(&ring::digest::SHA256, STYLE.as_bytes());
    let policy = format!(
        "default-src 'none'; style-src 'sha256-{}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
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

/// `GET /`.
pub async fn page(State(state): State<AppState>, Extension(caller): Extension<Caller>) -> Result<Html<String>, Error> {
    let me = state.envelopes.me();
    let now = SystemTime::now();
    let now_ms = unix_ms(now);
    let filter = caller.listing_filter();
    let mut active = Vec::new();
    for status in [store::RUNNING, store::PENDING] {
        active.extend(store::list_computations(&state.read, filter, Some(status), LISTED, None).await?);
    }
    let recent: Vec<ComputationRow> = store::list_computations(&state.read, filter, None, LISTED, None)
        .await?
        .into_iter()
        .filter(|row| store::is_final(&row.status))
        .collect();
    let broker = state.readiness.check();
    let stream = match tokio::time::timeout(BROKER_TIMEOUT, state.readiness.stream_health(me)).await {
        Ok(Ok(health)) => Ok(health),
        Ok(Err(error)) => {
            tracing::warn!(%error, "operator page: no stream state from the broker");
            Err("the broker did not tell; the node's log has the details")
        }
        Err(_) => Err("the broker did not answer in time"),
    };
    let seen = state.metrics.peers_seen();
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
                        Ok(health) => (stream_rows(state.readiness.names().stream(), health)),
                        Err(why) => tr { th { "stream " (state.readiness.names().stream()) } td.bad { (why) } },
                    }
                    tr { th { "outbox" } td { (gauge(&metrics.outbox_pending)) " messages waiting for the broker" } }
                }

                h2 { "Computations" }
                p {
                    (gauge(&metrics.computations_active)) " active · since start: "
                    (load(&metrics.computations_submitted)) " submitted here, "
                    (load(&metrics.computations_succeeded)) " succeeded, "
                    (load(&metrics.computations_failed)) " failed"
                }
                h2 { "Running and pending" }
                (computations("active", &active, now_ms))
                h2 { "Recently ended" }
                (computations("recent", &recent, now_ms))
            }
        }
    };
    Ok(Html(markup.into_string()))
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

fn computations(id: &str, rows: &[ComputationRow], now_ms: i64) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted id=(id) { "none" }
        } @else {
            table id=(id) {
                tr { th { "id" } th { "microprotocol" } th { "parties" } th { "status" } th { "started" } th { "duration" } th { "reason" } }
                @for row in rows {
                    @let shown = view(row);
                    tr {
                        td { code { (row.id) } }
                        td { (bounded(row.microprotocol.as_deref().unwrap_or(""))) }
                        td { (bounded(&list(&shown["parties"]))) }
                        td class=(row.status) { (row.status) }
                        td { (shown["created_at"].as_str().unwrap_or("")) }
                        td { (millis(row.finished_at.unwrap_or(now_ms) - row.created_at)) }
                        td { (bounded(&reason(&shown["error"]))) }
                    }
                }
            }
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

/// `text` as the page shows a field of a row: at most [`SHOWN_BYTES`].
fn bounded(text: &str) -> String {
    crate::failure::cut(text, SHOWN_BYTES)
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
