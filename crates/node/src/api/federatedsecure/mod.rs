//! The federatedsecure API: the original project's 7 "representation" routes (REFERENCE.md §1),
//! so that the unmodified `federatedsecure-client` and its tutorial work against an fsc node.
//!
//! Requests carry `{"args": [...], "kwargs": {...}}`; answers are `{"type": "uuid" | "none" |
//! "object" | "list", ...}`, and errors a JSON string with the original's status codes (unknown
//! microprotocol 501, bad input 400, unknown representation 404, private attribute 403). Only
//! the documented methods are reachable. Computations run on the same runtime as `/v1`.

mod bus;
mod call;
mod simon;

pub use bus::Bus;
pub use call::SyncObjects;
pub use simon::Simon;

use super::AppState;
use crate::caller::Caller;
use crate::error::Error;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use bus::Repr;
use bytes::Bytes;
use call::Arguments;
use serde_json::{Map, Value, json};
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
    Object(Value),
    List(Vec<Value>),
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let body = match self {
            Reply::Uuid(uuid) => json!({"type": "uuid", "uuid": uuid}),
            Reply::None => json!({"type": "none"}),
            Reply::Object(object) => json!({"type": "object", "object": object}),
            Reply::List(list) => json!({"type": "list", "list": list}),
        };
        ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
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

/// `{"args": [...], "kwargs": {...}}`, both optional; anything but an object is refused.
fn arguments(body: &Bytes) -> Result<(Vec<Value>, Map<String, Value>), Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((Vec::new(), Map::new()));
    }
    let invalid = |why: &str| Error::bad_request("invalid_body", format!("invalid parameter: body = {why}"));
    let mut object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err(invalid("an object {\"args\": [...], \"kwargs\": {...}} is required")),
        Err(e) => return Err(invalid(&format!("not JSON: {e}"))),
    };
    let args = match object.remove("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(args)) => args,
        Some(_) => return Err(invalid("args must be a list")),
    };
    let kwargs = match object.remove("kwargs") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(kwargs)) => kwargs,
        Some(_) => return Err(invalid("kwargs must be an object")),
    };
    Ok((args, kwargs))
}

async fn list(State(state): State<AppState>) -> Reply {
    Reply::List(state.federatedsecure.bus.list())
}

async fn create(State(state): State<AppState>, body: Bytes) -> Answer {
    let bus = &state.federatedsecure.bus;
    let (_, kwargs) = arguments(&body)?;
    let requirements: Map<String, Value> = kwargs.into_iter().map(|(k, v)| (k, bus.resolve(v))).collect();
    Ok(Reply::Uuid(bus.find_root(&requirements)?))
}

async fn upload(State(state): State<AppState>, body: Bytes) -> Answer {
    let (args, _) = arguments(&body)?;
    let value = args
        .into_iter()
        .next()
        .ok_or_else(|| Error::bad_request("missing_parameter", "missing parameter: args[0]"))?;
    Ok(Reply::Uuid(state.federatedsecure.bus.insert(Repr::Value(value))?))
}

async fn call(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Answer {
    let fs = &state.federatedsecure;
    let Repr::Method(target, method) = fs.bus.get(&uuid)? else {
        return Err(Error::bad_request(
            "not_callable",
            format!("invalid parameter: representation {uuid} is not a method"),
        )
        .into());
    };
    let (args, kwargs) = arguments(&body)?;
    let kwargs = kwargs.into_iter().map(|(k, v)| (k, fs.bus.resolve(v))).collect();
    let arguments = Arguments::new(args, kwargs);
    match call::call(&fs.simon, &fs.objects, &target, method, arguments, &caller).await? {
        Some(result) => Ok(Reply::Uuid(fs.bus.insert(result)?)),
        None => Ok(Reply::None),
    }
}

async fn download(State(state): State<AppState>, Path(uuid): Path<String>) -> Answer {
    match state.federatedsecure.bus.get(&uuid)? {
        Repr::Value(value) => Ok(Reply::Object(value)),
        _ => Err(Error::bad_request(
            "not_downloadable",
            format!("invalid parameter: representation {uuid} is an object with methods, not data"),
        )
        .into()),
    }
}

async fn release(State(state): State<AppState>, Path(uuid): Path<String>) -> Answer {
    state.federatedsecure.bus.release(&uuid)?;
    Ok(Reply::None)
}

async fn attribute(State(state): State<AppState>, Path((uuid, name)): Path<(String, String)>) -> Answer {
    if name.starts_with('_') {
        return Err(Error::Forbidden(format!("attribute not public: {name}")).into());
    }
    let bus = &state.federatedsecure.bus;
    let repr = bus.get(&uuid)?;
    let (target, methods) = repr
        .target()
        .ok_or_else(|| Error::NotFound(format!("attribute not available: {name}")))?;
    let method = methods
        .iter()
        .find(|m| **m == name)
        .ok_or_else(|| Error::NotFound(format!("attribute not available: {name}")))?;
    Ok(Reply::Uuid(bus.insert(Repr::Method(target, method))?))
}
