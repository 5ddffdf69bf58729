//! The node crate's one error type. `api::problem` is the one place that turns it into an HTTP
//! response; everything else just propagates it.

use fsc_simon::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("store: {0}")]
    Store(#[from] sqlx::Error),
    /// From the runtime's writing connection (`store::write`).
    #[error("store: {0}")]
    StoreWrite(#[from] rusqlite::Error),
    #[error("store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("broker: {0}")]
    Broker(String),
    #[error("crypto: {0}")]
    Crypto(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A request that cannot be valid, with a machine-readable code.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// A definition the engine rejects (unknown microprotocol, bad parameters or input).
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A request whose body did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    Forbidden(String),
    /// A computation this node's policy refuses (`[policy]`), naming the rule it broke.
    #[error("{message} (policy rule {rule})")]
    PolicyRefused { rule: &'static str, message: String },
    /// A computation that ended in failure, as a caller waiting for it sees it.
    #[error("the computation failed ({code}): {message}")]
    Failed { code: String, message: String },
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// The node runs as many computations as it may; the same request succeeds later.
    #[error("{message}")]
    Busy { message: String, retry_after_s: u64 },
    /// Holding what the request asks for would pass a memory budget (the federatedsecure API's
    /// `max_representation_bytes`); the message says what is held and how to free some.
    #[error("{0}")]
    InsufficientStorage(String),
    /// The node cannot serve the request now (shutting down, store failing); retrying may work.
    #[error("{0}")]
    Unavailable(String),
    /// An input naming a dataset that cannot be read as it asks (`crate::datasets`); the
    /// message names rows and columns, never a value.
    #[error("{0}")]
    Dataset(DatasetError),
}

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Error {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }
}

/// Why an input naming a dataset cannot be resolved (`crate::datasets`, whose constants the
/// codes are). Kept apart from [`Error`] because a submission carries it to the runtime, which
/// fails the computation with it (so it is `Clone`). The message never quotes a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetError {
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for DatasetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
