//! The client's one error type: what went wrong talking to a node, as text a CLI can print.

use reqwest::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting the client cannot use: a CA file or client certificate that does not load.
    #[error("configuration: {0}")]
    Config(String),
    /// No answer: DNS, the connection or TLS failed; the message lists the causes.
    #[error("http: {0}")]
    Transport(String),
    /// The node answered with a status other than 2xx.
    #[error("http: {base} answered {status}: {detail}")]
    Status {
        base: String,
        status: StatusCode,
        /// The problem document's `detail`, else the whole body.
        detail: String,
    },
    /// An answer without what the API documents in it (a batch without results, a metric that
    /// is not exported).
    #[error("http: {0}")]
    Unexpected(String),
    /// A node that did not report ready in time.
    #[error("http: {0}")]
    NotReady(String),
}
