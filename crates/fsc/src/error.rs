//! The `fsc` command's one error type: what the node, the tools or the client report passes
//! through unchanged; the command adds only what is its own (arguments, files, answers).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Node(#[from] fsc_node::Error),
    #[error(transparent)]
    Tools(#[from] fsc_tools::Error),
    #[error(transparent)]
    Client(#[from] fsc_client::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A batch file (or another input file) the command cannot use: exit code 1.
    #[error("{0}")]
    Invalid(String),
    /// An argument the command cannot use (not JSON where JSON is asked for, lists of unequal
    /// length): a usage error, exit code 2, like clap's own.
    #[error("{0}")]
    Usage(String),
    /// A node that refused what the command sent, with its answer.
    #[error("http: {0}")]
    Refused(String),
    /// `fsc healthcheck` of a node that is not ready.
    #[error("{0}")]
    NotReady(String),
}
