//! fsc-client: a client of the fsc node's native HTTP API (`/v1`), the Rust SDK behind
//! `fsc submit/status/batch/list/cancel`, `fsc demo`, `fsc-bench` and the end-to-end tests.
//!
//! A [`Client`] talks to one node (http or https, with an optional bearer token, private CA and
//! client certificate). Methods that return an [`Answer`] give the status and body as they came;
//! the others turn a non-2xx answer into [`Error::Status`], carrying the status and the problem
//! document's `detail`. It knows the API's shapes only as JSON ([`serde_json::Value`]) and
//! depends on no other fsc crate, so it can be used (and published) on its own.

mod error;

pub use error::Error;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// A v1 answer: its status code and JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Client {
    /// A client of the node at `base` (http or https; https trusts the system's CAs).
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client::with_ca(base, token, None).expect("an HTTP client with the system's CAs builds")
    }

    /// A client that also trusts the CA certificates (PEM) in `ca_file`, e.g. the `ca.crt` of
    /// `fsc federation init --tls` or a private CA.
    pub fn with_ca(base: &str, token: Option<String>, ca_file: Option<&Path>) -> Result<Client, Error> {
        Client::with_tls(base, token, ca_file, None)
    }

    /// As [`Client::with_ca`], presenting the client certificate in `identity` (one PEM file
    /// with the certificate chain and its private key) to nodes that require one
    /// (`tls_client_ca`).
    pub fn with_tls(
        base: &str,
        token: Option<String>,
        ca_file: Option<&Path>,
        identity: Option<&Path>,
    ) -> Result<Client, Error> {
        // The system's CAs are read from disk at every build: only worth it for https.
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(16)
            .tls_built_in_root_certs(base.starts_with("https://"));
        if let Some(path) = ca_file {
            let bad = |e: &dyn std::fmt::Display| Error::Config(format!("CA file {}: {e}", path.display()));
            let pem = std::fs::read(path).map_err(|e| bad(&e))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(&e))?;
            if certificates.is_empty() {
                return Err(bad(&"no PEM certificate"));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some(path) = identity {
            let bad = |e: &dyn std::fmt::Display| Error::Config(format!("client certificate {}: {e}", path.display()));
            let pem = std::fs::read(path).map_err(|e| bad(&e))?;
            builder = builder.identity(reqwest::Identity::from_pem(&pem).map_err(|e| bad(&e))?);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, Error> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.map_err(|e| self.failed(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.failed(&e))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    /// A request that got no answer, with its causes: reqwest's own message ("error sending
    /// request") does not say whether DNS, the connection or the certificate failed.
    fn failed(&self, error: &reqwest::Error) -> Error {
        let mut message = format!("{}: {error}", self.base);
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Error::Transport(message)
    }

    /// Like `send`, but a non-2xx answer is an error.
    async fn send_ok(&self, request: reqwest::RequestBuilder) -> Result<Value, Error> {
        let answer = self.send(request).await?;
        if answer.status.is_success() {
            Ok(answer.body)
        } else {
            let detail = answer
                .body
                .get("detail")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| answer.body.to_string());
            Err(Error::Status {
                base: self.base.clone(),
                status: answer.status,
                detail,
            })
        }
    }

    /// `POST /v1/computations`; the answer as it is, errors included.
    pub async fn submit(&self, computation: &Value) -> Result<Answer, Error> {
        self.send(
            self.http
                .post(format!("{}/v1/computations", self.base))
                .json(computation),
        )
        .await
    }

    /// `POST /v1/computations/batch`; one result per item.
    pub async fn submit_batch(&self, computations: &[Value]) -> Result<Vec<Value>, Error> {
        let body = self
            .send_ok(
                self.http
                    .post(format!("{}/v1/computations/batch", self.base))
                    .json(&json!({"computations": computations})),
            )
            .await?;
        body["results"]
            .as_array()
            .cloned()
            .ok_or_else(|| Error::Unexpected(format!("{}: batch answer without results", self.base)))
    }

    /// Submits `computations` in one batch and again, after the node's `Retry-After`, those it
    /// refused for capacity, until every item is accepted or refused for another reason.
    pub async fn submit_all(&self, computations: &[Value]) -> Result<Vec<Value>, Error> {
        let mut results = self.submit_batch(computations).await?;
        loop {
            let busy: Vec<usize> = (0..results.len())
                .filter(|&i| results[i]["error"]["status"] == 429)
                .collect();
            let Some(wait) = busy
                .iter()
                .filter_map(|&i| results[i]["error"]["retry_after_s"].as_u64())
                .max()
            else {
                return Ok(results);
            };
            tokio::time::sleep(Duration::from_secs(wait)).await;
            let retried: Vec<Value> = busy.iter().map(|&i| computations[i].clone()).collect();
            for (i, result) in busy.into_iter().zip(self.submit_batch(&retried).await?) {
                results[i] = result;
            }
        }
    }

    /// `GET /v1/computations/{id}?wait=...`.
    pub async fn get(&self, id: Uuid, wait: Duration) -> Result<Value, Error> {
        let url = format!("{}/v1/computations/{id}?wait={}", self.base, wait.as_secs_f64());
        self.send_ok(self.http.get(url).timeout(wait + Duration::from_secs(30)))
            .await
    }

    /// Waits until the computation is final (or `timeout` passes) and returns it.
    pub async fn wait_final(&self, id: Uuid, timeout: Duration) -> Result<Value, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let computation = self.get(id, left.min(Duration::from_secs(60))).await?;
            let status = computation["status"].as_str().unwrap_or_default();
            if status == "succeeded" || status == "failed" || left.is_zero() {
                return Ok(computation);
            }
        }
    }

    /// `GET /v1/computations/{id}/receipt`: every party's signature over how it ended.
    pub async fn receipt(&self, id: Uuid) -> Result<Value, Error> {
        self.send_ok(self.http.get(format!("{}/v1/computations/{id}/receipt", self.base)))
            .await
    }

    /// `DELETE /v1/computations/{id}`: cancels the computation; its final view.
    pub async fn cancel(&self, id: Uuid) -> Result<Value, Error> {
        self.send_ok(self.http.delete(format!("{}/v1/computations/{id}", self.base)))
            .await
    }

    /// `GET /v1/proposals`: the computations peers started with this node among the parties.
    pub async fn proposals(&self) -> Result<Value, Error> {
        self.send_ok(self.http.get(format!("{}/v1/proposals", self.base))).await
    }

    /// `POST /v1/proposals/{id}/decline`: declines the proposal; its final view.
    pub async fn decline(&self, id: Uuid) -> Result<Value, Error> {
        self.send_ok(self.http.post(format!("{}/v1/proposals/{id}/decline", self.base)))
            .await
    }

    /// `GET /v1/computations`: the first page, newest first.
    pub async fn list(&self) -> Result<Value, Error> {
        self.list_page(None, 100, None).await
    }

    /// `GET /v1/computations?status=&limit=&cursor=`: one page, newest first.
    pub async fn list_page(&self, status: Option<&str>, limit: usize, cursor: Option<&str>) -> Result<Value, Error> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(status.map(|s| ("status", s.to_string())));
        query.extend(cursor.map(|c| ("cursor", c.to_string())));
        self.send_ok(self.http.get(format!("{}/v1/computations", self.base)).query(&query))
            .await
    }

    /// `GET /v1/budget`: the privacy budget spent in the period, the caps and what remains.
    pub async fn budget(&self) -> Result<Value, Error> {
        self.send_ok(self.http.get(format!("{}/v1/budget", self.base))).await
    }

    /// `GET /v1/datasets`: the datasets this client may name, with columns and row counts.
    pub async fn datasets(&self) -> Result<Value, Error> {
        self.send_ok(self.http.get(format!("{}/v1/datasets", self.base))).await
    }

    pub async fn node(&self) -> Result<Value, Error> {
        self.send_ok(self.http.get(format!("{}/v1/node", self.base))).await
    }

    pub async fn metrics(&self) -> Result<String, Error> {
        let value = self.send_ok(self.http.get(format!("{}/metrics", self.base))).await?;
        Ok(value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string()))
    }

    /// A single sample of a Prometheus metric, e.g. `fsc_computations_finished_total{status="succeeded"}`.
    pub async fn metric(&self, sample: &str) -> Result<f64, Error> {
        let text = self.metrics().await?;
        text.lines()
            .find_map(|line| line.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|value| value.trim().parse().ok())
            .ok_or_else(|| Error::Unexpected(format!("{}: no metric {sample}", self.base)))
    }

    pub async fn ready(&self) -> bool {
        matches!(self.send(self.http.get(format!("{}/readyz", self.base))).await, Ok(a) if a.status.is_success())
    }

    /// Waits until the node reports ready.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.ready().await {
            if tokio::time::Instant::now() > deadline {
                return Err(Error::NotReady(format!(
                    "{} did not become ready within {timeout:?}",
                    self.base
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}
