//! The one place where errors become HTTP responses: `application/problem+json` (RFC 9457) with
//! a machine-readable `code`. Server-side failures are logged here and shown to clients only as
//! "internal error", never with their details.

use crate::error::Error;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fsc_simon::EngineError;
use serde_json::{Value, json};

impl Error {
    /// Status code and machine-readable code of this error.
    pub fn classify(&self) -> (StatusCode, &'static str) {
        match self {
            Error::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Error::Engine(EngineError::UnknownMicroprotocol(_)) => {
                (StatusCode::NOT_IMPLEMENTED, "unknown_microprotocol")
            }
            Error::Engine(e) => (StatusCode::BAD_REQUEST, e.code()),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Error::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::PolicyRefused { .. } => (StatusCode::FORBIDDEN, "policy_refused"),
            Error::Failed { code, .. } if code == "deadline_exceeded" => {
                (StatusCode::GATEWAY_TIMEOUT, "computation_failed")
            }
            Error::Failed { .. } => (StatusCode::BAD_GATEWAY, "computation_failed"),
            Error::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Busy { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_computations"),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Error::InsufficientStorage(_) => (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage"),
            Error::Dataset(e) => (
                match e.code {
                    crate::datasets::FORBIDDEN => StatusCode::FORBIDDEN,
                    crate::datasets::UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::BAD_REQUEST,
                },
                e.code,
            ),
            Error::Config(_)
            | Error::Store(_)
            | Error::StoreWrite(_)
            | Error::Migrate(_)
            | Error::Broker(_)
            | Error::Crypto(_)
            | Error::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The problem document (also used for per-item errors in batch responses).
    pub fn problem(&self) -> Value {
        let (status, code) = self.classify();
        let detail = if status.is_server_error()
            && status != StatusCode::SERVICE_UNAVAILABLE
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::INSUFFICIENT_STORAGE
        {
            tracing::error!(error = %self, "request failed");
            "internal error; the node's log has the details".to_string()
        } else {
            self.to_string()
        };
        let mut problem = json!({
            "type": format!("urn:fsc:problem:{code}"),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
            "code": code,
        });
        if let Some(seconds) = self.retry_after_s() {
            problem["retry_after_s"] = json!(seconds);
        }
        if let Error::PolicyRefused { rule, .. } = self {
            problem["rule"] = json!(rule);
        }
        problem
    }

    /// How long a client should wait before sending the same request again, if that will help.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            Error::Busy { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        }
    }
}

/// Adds `Retry-After` to a response whose request may be retried.
pub fn retry_after(response: &mut Response, seconds: Option<u64>) {
    if let Some(seconds) = seconds {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
}

impl Error {
    /// What a client may read: the error itself, except for internal failures, which are logged
    /// here and reported without details.
    fn public_message(&self) -> String {
        if self.classify().1 == "internal" {
            tracing::error!(error = %self, "request failed");
            "internal error; the node's log has the details".to_string()
        } else {
            self.to_string()
        }
    }

    /// The federatedsecure API's error format: the message as a JSON string, with the original's
    /// wording where clients may look for it (`not implemented / not available: Foo`).
    pub fn federatedsecure_response(self) -> Response {
        let (status, _) = self.classify();
        let retry = self.retry_after_s();
        let message = match &self {
            Error::Engine(EngineError::UnknownMicroprotocol(name)) => {
                format!("not implemented / not available: {name}")
            }
            _ => self.public_message(),
        };
        let mut response = (status, Value::String(message).to_string()).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"fsc\""),
            );
        }
        retry_after(&mut response, retry);
        response
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, _) = self.classify();
        let body = self.problem().to_string();
        let mut response = (status, body).into_response();
        retry_after(&mut response, self.retry_after_s());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
