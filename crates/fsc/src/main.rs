//! `fsc`: run a node, set up a federation, run the demo, or talk to a node's v1 API.
//! Thin: argument parsing here, the work in `commands` and the `fsc-node` library.

mod commands;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc keeps freed pages for a while (`purge_delay`, 10 ms) and, under a node's steady churn,
/// effectively never returns them: a node's memory stayed at its peak (fsc-bench: about 90 MB
/// after 20,000 computations, 60 MB with immediate purging, at the same throughput).
fn return_freed_memory_promptly() {
    // `mi_option_purge_delay` is option 15 of mimalloc 2.x and 3.x; other versions are left alone,
    // and so is an operator's own MIMALLOC_PURGE_DELAY.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: plain calls into the allocator's option API, which is thread-safe.
    unsafe {
        if matches!(libmimalloc_sys::mi_version() / 10_000, 2 | 3) {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "fsc", version, about = "Federated Secure Computing over NATS")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Set up a federation.
    Federation {
        #[command(subcommand)]
        command: FederationCommand,
    },
    /// Run one node until SIGINT or SIGTERM.
    Node {
        /// The node's node.toml; every key can be overridden by FSC_<KEY>.
        #[arg(long)]
        config: PathBuf,
    },
    /// Start a throw-away three-party federation and run the tutorial's secure sum.
    Demo {
        /// Leave the federation running and print the node URLs.
        #[arg(long)]
        keep: bool,
        /// Run the tutorial's sum against these running nodes (comma-separated API URLs) instead.
        #[arg(long, value_delimiter = ',')]
        against: Vec<String>,
        /// With --against: files holding each node's API token, in the same order (else the
        /// token in FSC_API_TOKEN, if any, for all).
        #[arg(long, value_delimiter = ',', requires = "against")]
        token_files: Vec<PathBuf>,
        /// With --against: PEM file of CA certificates to trust for https nodes, besides the
        /// system's.
        #[arg(long, env = "FSC_CA_FILE", requires = "against")]
        ca_file: Option<PathBuf>,
    },
    /// Prune finished computations from a node's store now (a node prunes those older than its
    /// retention_s by itself), and reset its WAL. Works beside a running node.
    Gc {
        /// The node's node.toml.
        #[arg(long)]
        config: PathBuf,
        /// Prune computations that finished more than this many seconds ago (default: the
        /// node's retention_s).
        #[arg(long)]
        older_than: Option<u64>,
        /// Also rewrite the database to its smallest size (holds the store's write lock while
        /// it runs: best with the node stopped).
        #[arg(long)]
        vacuum: bool,
    },
    /// Manage the API clients of a node.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Submit one computation with this party's input.
    Submit {
        #[command(flatten)]
        node: NodeArgs,
        #[arg(long, default_value = "SecureSum")]
        microprotocol: String,
        /// Party ids in protocol order, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        parties: Vec<String>,
        /// This party's input, as JSON.
        #[arg(long)]
        input: String,
        /// Parameters, as a JSON object.
        #[arg(long, default_value = "{}")]
        parameters: String,
        /// The computation's id; every party must use the same. A new one if omitted.
        #[arg(long)]
        id: Option<uuid::Uuid>,
        #[arg(long)]
        deadline_s: Option<u64>,
        /// Wait up to this many seconds for the result.
        #[arg(long, default_value_t = 0.0)]
        wait: f64,
    },
    /// Show a computation.
    Status {
        #[command(flatten)]
        node: NodeArgs,
        id: uuid::Uuid,
        /// Wait up to this many seconds for a final status.
        #[arg(long, default_value_t = 0.0)]
        wait: f64,
    },
    /// Cancel a pending or running computation: it fails here and at every other party.
    Cancel {
        #[command(flatten)]
        node: NodeArgs,
        id: uuid::Uuid,
    },
    /// Submit many computations from a file ({"computations": [...]} or one JSON object per line),
    /// then follow them to the end with a progress bar.
    Batch {
        #[command(flatten)]
        node: NodeArgs,
        file: PathBuf,
        /// Submit only; do not wait for the results.
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Subcommand)]
enum FederationCommand {
    /// Write a roster, node configs, keys and a broker config into a new directory.
    Init {
        #[arg(long)]
        out: PathBuf,
        /// Party ids, comma-separated; the i-th serves its API on api-port-base + i.
        #[arg(long, value_delimiter = ',', required = true)]
        parties: Vec<String>,
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        #[arg(long, default_value_t = 55501)]
        api_port_base: u16,
        /// API URLs of the parties (comma-separated, in party order) instead of 127.0.0.1 ports.
        #[arg(long, value_delimiter = ',')]
        api_urls: Vec<String>,
        /// Do nothing (and succeed) if the directory already holds a federation.
        #[arg(long)]
        if_missing: bool,
        /// Make a private CA (ca.crt) and a TLS certificate for every party's API host, for a
        /// test federation; API URLs are then https.
        #[arg(long)]
        tls: bool,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Add a client with a new token to a node.toml (the node stores only the token's SHA-256);
    /// prints the token once. Restart the node to use it.
    Add {
        /// The node's node.toml.
        #[arg(long)]
        config: PathBuf,
        /// The client's name ([a-z0-9._-]{1,64}); its computations belong to it.
        #[arg(long)]
        name: String,
        /// Let the client read, list and cancel every client's computations.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(clap::Args)]
struct NodeArgs {
    /// The node's API base URL.
    #[arg(long, env = "FSC_NODE", default_value = "http://127.0.0.1:55501")]
    node: String,
    /// Bearer token, if the node requires one.
    #[arg(long, env = "FSC_API_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM file of CA certificates to trust for an https node, besides the system's (e.g. the
    /// ca.crt of `fsc federation init --tls`).
    #[arg(long, env = "FSC_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// PEM file with a client certificate and its private key, for a node that requires one
    /// (its tls_client_ca).
    #[arg(long, env = "FSC_CLIENT_CERT")]
    client_cert: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    return_freed_memory_promptly();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FSC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(commands::default_log_filter(&cli.command))),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = runtime.block_on(commands::run(cli.command));
    // A node that stopped at its shutdown grace may leave tasks waiting on the broker: do not
    // wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
