//! Authentication: which configured API client (node.toml `[[clients]]`) sends a request, from
//! its token, for the APIs and for the operator page alike. Every request past this layer
//! carries a [`Caller`] extension. Tokens are compared by their SHA-256, the form node.toml
//! keeps, so the node never holds a client's token.

use super::AppState;
use crate::caller::Caller;
use crate::config::ApiClient;
use crate::error::Error;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;

/// The node's API clients by token digest; empty if none is configured.
pub struct Clients {
    by_digest: HashMap<String, Caller>,
}

impl Clients {
    pub fn new(clients: &[ApiClient]) -> Clients {
        let by_digest = clients
            .iter()
            .map(|c| {
                let caller = Caller {
                    name: c.name.clone(),
                    admin: c.admin,
                    monitor: c.monitor,
                };
                (c.token_sha256.to_ascii_lowercase(), caller)
            })
            .collect();
        Clients { by_digest }
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The caller presenting `authorization` (a header value), or `Unauthorized`.
    fn identify(&self, authorization: Option<&str>) -> Result<Caller, Error> {
        if self.is_empty() {
            return Ok(Caller::local());
        }
        let token = authorization.and_then(presented_token).ok_or(Error::Unauthorized)?;
        self.by_digest
            .get(&crate::keys::api_token_sha256(&token))
            .cloned()
            .ok_or(Error::Unauthorized)
    }
}

/// Middleware of the APIs: identifies the caller or answers 401; a monitoring client is
/// refused (403): it may read only what [`authenticate_monitoring`] guards and the page.
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match identified(&state, request) {
        Ok(request) if is_monitor(&request) => Error::Forbidden(
            "a monitoring client may read /metrics, /readyz and the operator page, nothing else".into(),
        )
        .into_response(),
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Middleware of what monitoring reads (`/metrics`): any client, monitoring clients included.
pub async fn authenticate_monitoring(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match identified(&state, request) {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

fn is_monitor(request: &Request) -> bool {
    request
        .extensions()
        .get::<Caller>()
        .is_some_and(|caller| caller.monitor)
}

/// Middleware of the pages a browser shows: as [`authenticate`], but a 401 is a page that asks
/// the browser for HTTP Basic credentials (any user name, the token as password), so that a
/// person gets the browser's login prompt. The browser then resends them with every request,
/// the page's auto-refresh included; nothing else (no cookie, no token in the URL) is needed.
pub async fn authenticate_browser(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match identified(&state, request) {
        Ok(request) => next.run(request).await,
        Err(_) => {
            let realm = format!("Basic realm=\"fsc node {}\", charset=\"UTF-8\"", state.envelopes.me());
            let mut response = (
                StatusCode::UNAUTHORIZED,
                Html(super::page::login_required(state.envelopes.me())),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&realm) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
    }
}

/// `request` with its [`Caller`] extension, or `Unauthorized`.
fn identified(state: &AppState, mut request: Request) -> Result<Request, Error> {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = state.clients.identify(authorization)?;
    request.extensions_mut().insert(caller);
    Ok(request)
}

/// The token of `Bearer <token>`, or the password of `Basic base64(user:password)`.
fn presented_token(authorization: &str) -> Option<String> {
    if let Some(token) = authorization.strip_prefix("Bearer ") {
        return Some(token.to_string());
    }
    let decoded = crate::keys::decode_base64(authorization.strip_prefix("Basic ")?, "basic credentials").ok()?;
    let credentials = String::from_utf8(decoded).ok()?;
    credentials.split_once(':').map(|(_, password)| password.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_identify_their_client_and_nothing_else() {
        let (token, digest) = crate::keys::new_api_token().unwrap();
        let clients = Clients::new(&[ApiClient {
            name: "app".into(),
            token_sha256: digest,
            admin: false,
            monitor: false,
            datasets: Vec::new(),
        }]);
        let app = Caller {
            name: "app".into(),
            admin: false,
            monitor: false,
        };
        assert_eq!(clients.identify(Some(&format!("Bearer {token}"))).unwrap(), app);
        let basic = crate::keys::encode_base64(format!("fsc:{token}").as_bytes());
        assert_eq!(clients.identify(Some(&format!("Basic {basic}"))).unwrap(), app);
        for wrong in [None, Some("Bearer guess"), Some("Bearer "), Some(token.as_str())] {
            assert!(matches!(clients.identify(wrong), Err(Error::Unauthorized)), "{wrong:?}");
        }
        assert_eq!(Clients::new(&[]).identify(None).unwrap(), Caller::local());
    }
}
