//! The federatedsecure API: the original project's 7 "representation" routes (REFERENCE.md §1),
//! so that the unmodified `federatedsecure-client` and its tutorial work against an fsc node.
//!
//! Requests carry `{"args": [...], "kwargs": {...}}`; answers are `{"type": "uuid" | "none" |
//! "object" | "list", ...}`, and errors a JSON string with the original's status codes (unknown
//! microprotocol 501, bad input 400, unknown representation 404, private attribute 403). Only
//! the documented methods are reachable. Computations run on the same runtime as `/v1`.
//!
//! Bodies are read as JSON text, not `Value` trees: an uploaded value is kept as the text the
//! client sent and costs about its size in memory (`budget`), within the node's
//! `max_representation_bytes`; past it a request is refused with 507.

mod budget;
mod bus;
mod call;
mod networks;
mod simon;
mod task;

pub use bus::Bus;
pub use call::SyncObjects;
pub use simon::Simon;

use super::AppState;
use crate::audit::{self, Event};
use crate::caller::Caller;
use crate::error::Error;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use budget::{Data, Json};
use bus::Repr;
use bytes::Bytes;
use call::Arguments;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// Everything the federatedsecure API keeps.
pub struct Federatedsecure {
    pub bus: Bus,
    pub simon: Simon,
    pub objects: SyncObjects,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/representations", get(list).post(create).put(upload))
        .route("/representation/{uuid}", get(download).patch(call).delete(release))
        .route("/representation/{uuid}/{attribute}", get(attribute))
        .layer(middleware::from_fn(cors))
}

/// The original sends these CORS headers on every response, and browsers' preflights need them.
async fn cors(request: Request, next: Next) -> Response {
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type,Authorization"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET,PUT,POST,PATCH,DELETE"),
    );
    response
}

/// A successful answer.
enum Reply {
    Uuid(Uuid),
    None,
    Object(Arc<Data>),
    List(Vec<Value>),
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let body = match self {
            Reply::Uuid(uuid) => json!({"type": "uuid", "uuid": uuid}).to_string(),
            Reply::None => json!({"type": "none"}).to_string(),
            // The held text as it is, without a tree in between.
            Reply::Object(data) => format!(r#"{{"type":"object","object":{}}}"#, data.text()),
            Reply::List(list) => json!({"type": "list", "list": list}).to_string(),
        };
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// An error in the original's format (a JSON string).
struct Failure(Error);

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        self.0.federatedsecure_response()
    }
}

type Answer = Result<Reply, Failure>;

/// A request's arguments, each as its JSON text.
type Raw = (Vec<Box<RawValue>>, BTreeMap<String, Box<RawValue>>);

/// Nesting a `Value` may have (serde_json's recursion limit): bodies are kept as text, which
/// serde_json reads without that limit, but their values must still parse when used.
const MAX_DEPTH: usize = 127;

/// `{"args": [...], "kwargs": {...}}`, both optional; anything but an object is refused. No
/// argument is parsed into a tree here: each is kept as its text.
fn arguments(body: &Bytes) -> Result<Raw, Error> {
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        args: Option<&'a RawValue>,
        #[serde(borrow)]
        kwargs: Option<&'a RawValue>,
    }
    let invalid = |why: &str| Error::bad_request("invalid_body", format!("invalid parameter: body = {why}"));
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Ok((Vec::new(), BTreeMap::new()));
    };
    if depth(body) > MAX_DEPTH {
        return Err(invalid("not JSON: recursion limit exceeded"));
    }
    // A struct also deserialises from a list; only an object is a body.
    if body[start] != b'{' {
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => invalid("an object {\"args\": [...], \"kwargs\": {...}} is required"),
            Err(e) => invalid(&format!("not JSON: {e}")),
        });
    }
    let object: Body = serde_json::from_slice(body).map_err(|e| invalid(&format!("not JSON: {e}")))?;
    let args = match object.args {
        None => Vec::new(),
        Some(args) if args.get().starts_with('[') => {
            serde_json::from_str(args.get()).map_err(|e| invalid(&format!("not JSON: {e}")))?
        }
        Some(_) => return Err(invalid("args must be a list")),
    };
    let kwargs = match object.kwargs {
        None => BTreeMap::new(),
        Some(kwargs) if kwargs.get().starts_with('{') => {
            serde_json::from_str(kwargs.get()).map_err(|e| invalid(&format!("not JSON: {e}")))?
        }
        Some(_) => return Err(invalid("kwargs must be an object")),
    };
    Ok((args, kwargs))
}

/// How deeply lists and objects nest in JSON text (strings skipped).
fn depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

async fn list(State(state): State<AppState>) -> Reply {
    Reply::List(state.federatedsecure.bus.list())
}

async fn create(State(state): State<AppState>, Extension(caller): Extension<Caller>, body: Bytes) -> Answer {
    let bus = &state.federatedsecure.bus;
    let (_, kwargs) = arguments(&body)?;
    let requirements = kwargs
        .into_iter()
        .map(|(k, v)| Ok((k, bus.resolve(v, &caller).value()?)))
        .collect::<Result<Map<String, Value>, Error>>()?;
    Ok(Reply::Uuid(bus.find_root(&requirements)?))
}

async fn upload(State(state): State<AppState>, Extension(caller): Extension<Caller>, body: Bytes) -> Answer {
    let bus = &state.federatedsecure.bus;
    let (args, _) = arguments(&body)?;
    let value = args
        .into_iter()
        .next()
        .ok_or_else(|| Error::bad_request("missing_parameter", "missing parameter: args[0]"))?;
    Ok(Reply::Uuid(bus.insert(Repr::Value(bus.hold(value)?), &caller)?))
}

async fn call(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Answer {
    let fs = &state.federatedsecure;
    let Repr::Method(target, method) = fs.bus.get(&uuid, &caller)? else {
        return Err(Error::bad_request(
            "not_callable",
            format!("invalid parameter: representation {uuid} is not a method"),
        )
        .into());
    };
    let (args, kwargs) = arguments(&body)?;
    let args = args.into_iter().map(Json::Sent).collect();
    let kwargs = kwargs
        .into_iter()
        .map(|(k, v)| (k, fs.bus.resolve(v, &caller)))
        .collect();
    match call::call(fs, &target, method, Arguments::new(args, kwargs), &caller).await? {
        Some(result) => Ok(Reply::Uuid(fs.bus.insert(result, &caller)?)),
        None => Ok(Reply::None),
    }
}

async fn download(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uuid): Path<String>,
) -> Answer {
    match state.federatedsecure.bus.get(&uuid, &caller)? {
        Repr::Value(value) => {
            if let Some(computation) = value.computation {
                let event = Event::new(
                    Some(&caller.name),
                    audit::DOWNLOAD,
                    Some(computation.to_string()),
                    json!({"representation": uuid}),
                );
                state.runtime.record_reads(vec![event]);
            }
            Ok(Reply::Object(value))
        }
        _ => Err(Error::bad_request(
            "not_downloadable",
            format!("invalid parameter: representation {uuid} is an object with methods, not data"),
        )
        .into()),
    }
}

async fn release(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uuid): Path<String>,
) -> Answer {
    state.federatedsecure.bus.release(&uuid, &caller)?;
    Ok(Reply::None)
}

async fn attribute(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((uuid, name)): Path<(String, String)>,
) -> Answer {
    if name.starts_with('_') {
        return Err(Error::Forbidden(format!("attribute not public: {name}")).into());
    }
    let bus = &state.federatedsecure.bus;
    let repr = bus.get(&uuid, &caller)?;
    let (target, methods) = repr
        .target()
        .ok_or_else(|| Error::NotFound(format!("attribute not available: {name}")))?;
    let method = methods
        .iter()
        .find(|m| **m == name)
        .ok_or_else(|| Error::NotFound(format!("attribute not available: {name}")))?;
    Ok(Reply::Uuid(bus.insert(Repr::Method(target, method), &caller)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Raw, String> {
        arguments(&Bytes::from(body.to_string())).map_err(|e| e.to_string())
    }

    #[test]
    fn bodies_are_split_into_argument_texts() {
        let (args, kwargs) = parse(r#" {"args": [[1, 2.0], "x"], "kwargs": {"b": {"c": 1e400}}, "other": 1}"#).unwrap();
        let args: Vec<&str> = args.iter().map(|a| a.get()).collect();
        assert_eq!(args, ["[1, 2.0]", r#""x""#]);
        assert_eq!(kwargs["b"].get(), r#"{"c": 1e400}"#);
        for empty in ["", " \n", "{}", r#"{"args": null, "kwargs": null}"#] {
            let (args, kwargs) = parse(empty).unwrap();
            assert!(args.is_empty() && kwargs.is_empty(), "{empty:?}");
        }
    }

    #[test]
    fn bad_bodies_are_refused_as_before() {
        let refused = |body: &str| parse(body).unwrap_err();
        assert!(refused("[1]").contains("an object {\"args\": [...], \"kwargs\": {...}} is required"));
        assert!(refused("[1").contains("not JSON"));
        assert!(refused("{\"args\": [1}").contains("not JSON"));
        assert!(refused("{} {}").contains("not JSON"));
        assert!(refused(r#"{"args": {}}"#).contains("args must be a list"));
        assert!(refused(r#"{"kwargs": []}"#).contains("kwargs must be an object"));
        let deep = |n: usize| format!(r#"{{"args": [{}{}]}}"#, "[".repeat(n), "]".repeat(n));
        assert!(refused(&deep(126)).contains("recursion limit"));
        assert!(parse(&deep(125)).is_ok(), "127 levels, as many as a Value may have");
        let (args, _) = parse(&deep(125)).unwrap();
        assert!(serde_json::from_str::<Value>(args[0].get()).is_ok());
        assert!(
            parse(r#"{"args": ["[[[[\"]"]}"#).is_ok(),
            "brackets in strings do not count"
        );
    }
}
