//! The tools crate's one error type. What the node crate or the client reports passes through
//! unchanged, so a message reads the same whichever side found the problem.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting, file or option the tools cannot use.
    #[error("configuration: {0}")]
    Config(String),
    #[error("broker: {0}")]
    Broker(String),
    #[error("crypto: {0}")]
    Crypto(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A node of the demo answered what the v1 API does not (no id, a refused submission, a
    /// failed computation).
    #[error("http: {0}")]
    Unexpected(String),
    #[error(transparent)]
    Node(#[from] fsc_node::Error),
    #[error(transparent)]
    Client(#[from] fsc_client::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
