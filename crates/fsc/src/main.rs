//! `fsc`: run a node, set up a federation, run the demo, or talk to a node's v1 API.
//! Thin: argument parsing here, the work in `commands` and the libraries (`fsc-node`, `fsc-tools`,
//! `fsc-client`).

mod batch;
mod commands;
mod error;
mod outcome;

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
use fsc_node::config::LogFormat;
use std::io::IsTerminal;
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

#[derive(Parser)]
#[command(name = "fsc", version, about = "Federated Secure Computing over NATS")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: text or json (default: a node's log_format, else text). The log's
    /// level is set by FSC_LOG.
    #[arg(long, global = true, env = "FSC_LOG_FORMAT")]
    log_format: Option<LogFormat>,
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
        /// PARTY=FILE: give a demo node a disclosure-control policy, a TOML file holding a
        /// `[policy]` table (README, "Disclosure control"), appended to its node.toml.
        /// Repeatable. The tutorial sum then runs under the policies; with --keep, a refusal of
        /// it is reported and the federation keeps running.
        #[arg(long, value_parser = parse_policy, conflicts_with = "against")]
        policy: Vec<(String, PathBuf)>,
        /// Read the tutorial's inputs from a CSV file at each node (the dataset `tutorial`,
        /// README "Datasets") instead of sending them in the requests.
        #[arg(long, conflicts_with = "against")]
        csv: bool,
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
    /// Read or check a node's audit log (README, "Accountability"), from its store file (the
    /// node's own, or a copy); fetch and check computations' receipts.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage the API clients of a node.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Submit one computation with this party's input: --microprotocol (default SecureSum),
    /// --parties, --input and --parameters (JSON). Prints the node's answer (with --wait, the
    /// computation as it ended). Exit code 3 if it failed, 4 if --wait ran out first, 2 if
    /// --input or --parameters is not JSON.
    Submit {
        #[command(flatten)]
        node: NodeArgs,
        /// The microprotocol to run (SecureSum, StatisticsUnivariate, ...; see the README).
        #[arg(long, default_value = "SecureSum")]
        microprotocol: String,
        /// Party ids in protocol order, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        parties: Vec<String>,
        /// This party's input, as JSON (e.g. 19, [1.5, 2], '[["a", "x"]]').
        #[arg(long)]
        input: String,
        /// The microprotocol's parameters, as a JSON object (e.g. '{"digits_after": 6}').
        #[arg(long, default_value = "{}")]
        parameters: String,
        /// The computation's id; every party must use the same. A new one if omitted.
        #[arg(long)]
        id: Option<uuid::Uuid>,
        /// Seconds the computation may take before it fails (default: the node's
        /// default_deadline_s).
        #[arg(long)]
        deadline_s: Option<u64>,
        /// Wait up to this many seconds for the result.
        #[arg(long, default_value_t = 0.0)]
        wait: f64,
    },
    /// Show a computation; while it is pending or running, stderr says which parties it waits
    /// for ("waiting for carol"). Exit code 3 if it failed, 4 if --wait ran out before it was
    /// final.
    Status {
        #[command(flatten)]
        node: NodeArgs,
        /// The computation's id.
        id: uuid::Uuid,
        /// Wait up to this many seconds for a final status.
        #[arg(long, default_value_t = 0.0)]
        wait: f64,
    },
    /// List the datasets this client may name in its inputs (`{"dataset": NAME, "column": C}`):
    /// one JSON object per line with the name, source, columns and their types, the columns
    /// inputs may filter on, and the row count now. Never a value.
    Datasets {
        #[command(flatten)]
        node: NodeArgs,
    },
    /// List the computations other parties have started with this node among the parties, that
    /// no client here has submitted or declined: one JSON object per line with the id,
    /// microprotocol, parties, parameters, proposer, deadline, and who has joined. Submit one
    /// with `fsc submit --id ID` (the same definition, this party's input) or decline it.
    Proposals {
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Decline a proposal: it fails here with `declined`, and at every other party, naming
    /// this node.
    Decline {
        #[command(flatten)]
        node: NodeArgs,
        /// The computation's id.
        id: uuid::Uuid,
    },
    /// Cancel a pending or running computation: it fails here and at every other party.
    Cancel {
        #[command(flatten)]
        node: NodeArgs,
        /// The computation's id.
        id: uuid::Uuid,
    },
    /// Submit many computations from a file, then follow them to the end. Prints one JSON line per
    /// item, in file order: {"item", "id", "status", "output" | "error" | "problem"}, where status
    /// is succeeded (with output), failed (with error), rejected (the node refused the item, with
    /// its problem), or pending or running: not final within --wait (with --no-wait, as the node
    /// accepted it). Progress goes to stderr. Exit code 3 if any item failed or was rejected, 4
    /// if any was not final within --wait.
    Batch {
        #[command(flatten)]
        node: NodeArgs,
        /// The computations: {"computations": [...]}, or one JSON object per line.
        file: PathBuf,
        /// Submit only; print what the node accepted, without waiting for the results.
        #[arg(long)]
        no_wait: bool,
        /// Wait up to this many seconds for each computation's result; items still pending or
        /// running then are printed so.
        #[arg(long, default_value_t = 3600.0)]
        wait: f64,
    },
    /// List this client's computations (an admin client's: all), newest first, one JSON object
    /// per line, following the node's pages. Stops after --limit (and says so on stderr if
    /// there are more), or lists every one with --all.
    List {
        #[command(flatten)]
        node: NodeArgs,
        /// Only computations with this status.
        #[arg(long, value_parser = ["pending", "running", "succeeded", "failed"])]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100, conflicts_with = "all")]
        limit: usize,
        /// Every computation, however many.
        #[arg(long)]
        all: bool,
    },
    /// Show the privacy budget: what computations with a `dp` parameter have cost in the
    /// policy's period (ε, δ, ρ, each summed), the caps and what remains; this client's own, or
    /// with an admin client every client's and the node's total.
    Budget {
        #[command(flatten)]
        node: NodeArgs,
        /// Print the node's JSON answer instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 if the node is ready (its store readable, connected to the broker), else 1: for
    /// container and service healthchecks. Needs no token.
    Healthcheck {
        /// The node's API base URL.
        #[arg(long, env = "FSC_NODE", default_value = "http://127.0.0.1:55501")]
        node: String,
        /// PEM file of CA certificates to trust for an https node, besides the system's.
        #[arg(long, env = "FSC_CA_FILE")]
        ca_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum FederationCommand {
    /// Write a roster, node configs, keys and a broker config into a new directory.
    Init {
        /// The directory to write the federation into.
        #[arg(long)]
        out: PathBuf,
        /// Party ids, comma-separated; the i-th serves its API on api-port-base + i.
        #[arg(long, value_delimiter = ',', required = true)]
        parties: Vec<String>,
        /// Where the nodes reach the broker; the broker config listens on its port. With
        /// `--topology cluster`: the three servers' URLs, comma-separated; with `supercluster`:
        /// the six servers', the three of the cluster that holds the stream first; with `leaf`:
        /// the hub's.
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        /// The broker's layout: `single` (one server), `cluster` (three routed servers, the
        /// stream replicated three times), `supercluster` (two such clusters joined by gateways,
        /// the stream in the first) or `leaf` (a hub with JetStream, and per party a leaf server
        /// that dials out to it and serves only that party's node).
        #[arg(long, default_value = "single")]
        topology: fsc_tools::topology::Topology,
        /// `cluster`, `supercluster`: the servers' route URLs (`nats-route://host:port`,
        /// comma-separated, in --nats-url order); default port 6222 on each server's host.
        #[arg(long, value_delimiter = ',')]
        route_urls: Vec<String>,
        /// `supercluster`: the servers' gateway URLs (`nats://host:port`, comma-separated, in
        /// --nats-url order); default port 7222 on each server's host.
        #[arg(long, value_delimiter = ',')]
        gateway_urls: Vec<String>,
        /// `leaf`: where the leaves reach the hub (`nats-leaf://host:port`); default port 7422
        /// on the hub's host.
        #[arg(long)]
        hub_leaf_url: Option<String>,
        /// `leaf`: each party's leaf server URL, where its node connects (comma-separated, in
        /// party order); default nats://127.0.0.1:4222 (each party's own host).
        #[arg(long, value_delimiter = ',')]
        leaf_urls: Vec<String>,
        /// The first party's API port on 127.0.0.1 (without --api-urls).
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
        /// The JetStream stream's name (the roster's [stream] name); federations sharing a
        /// broker account need different ones.
        #[arg(long, default_value = "FSC")]
        stream_name: String,
        /// The first token(s) of every subject (the roster's [stream] subject_prefix);
        /// federations sharing a broker account need different ones.
        #[arg(long, default_value = "fsc")]
        subject_prefix: String,
    },
    /// Create the federation's stream on the broker as the roster's [stream] specifies, with
    /// the operator's admin user that init wrote to DIR/admin/. Run once the broker is up;
    /// running it again changes nothing, and it fails, naming the field, on a stream that
    /// differs.
    Provision {
        /// The federation's directory (federation.toml and admin/).
        dir: PathBuf,
        /// The broker's URL(s), comma-separated, instead of the one in admin/admin.toml.
        #[arg(long)]
        nats_url: Option<String>,
        /// Change a stream that differs to the roster's [stream], keeping its messages (the
        /// broker refuses some changes, e.g. of retention or storage).
        #[arg(long)]
        update: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print the audit log's entries, oldest first, one JSON object per line.
    Log {
        #[command(flatten)]
        store: StoreArgs,
        /// Only entries from this time on: RFC 3339 (2026-12-07T04:00:00Z) or unix milliseconds.
        #[arg(long)]
        since: Option<String>,
        /// Only entries of this API client.
        #[arg(long)]
        client: Option<String>,
    },
    /// Check the hash chain of the whole log; exit code 3, naming the first broken entry, if
    /// an entry was changed, removed or inserted.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print a computation's receipt (JSON): how it ended and every party's signature.
    Receipt {
        /// The computation's id.
        id: uuid::Uuid,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Check a receipt offline against the roster's public keys: prints who signed what; exit
    /// code 3, naming the problem, if a signature is missing, forged or disagrees, or the
    /// output or definition was changed.
    VerifyReceipt {
        /// A receipt, as `fsc audit receipt` printed it.
        receipt: PathBuf,
        /// The federation's roster (federation.toml).
        #[arg(long)]
        roster: PathBuf,
    },
}

/// Which store file: a node's (from its node.toml) or any copy.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct StoreArgs {
    /// The node's node.toml (its `store`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A store file (e.g. a copy handed to a data protection officer).
    #[arg(long)]
    store: Option<PathBuf>,
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
        /// A monitoring client (e.g. Prometheus): it may read /metrics and the operator page
        /// (every computation, without actions), and nothing else.
        #[arg(long, conflicts_with = "admin")]
        monitor: bool,
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
    end_quietly_on_a_closed_pipe(&cli.command);
    init_logging(&cli);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = runtime.block_on(commands::run(cli.command));
    // A node that stopped at its shutdown grace may leave tasks waiting on the broker: do not
    // wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    // The exit codes are documented in the README ("Exit codes"); clap exits 2 on usage errors.
    match outcome {
        Ok(outcome::Outcome::Done) => std::process::ExitCode::SUCCESS,
        Ok(outcome::Outcome::Failed) => std::process::ExitCode::from(3),
        Ok(outcome::Outcome::NotFinal) => std::process::ExitCode::from(4),
        Err(error @ error::Error::Usage(_)) => {
            eprintln!("error: {error}\n\nFor more information, try '--help'.");
            std::process::ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A client command piped into `head` ends quietly when the pipe closes, as Unix tools do,
/// instead of panicking in `println!` (Rust ignores SIGPIPE). Nodes keep ignoring it: a client
/// closing its socket must not kill them.
fn end_quietly_on_a_closed_pipe(command: &Command) {
    if !matches!(command, Command::Node { .. } | Command::Demo { .. }) {
        // SAFETY: sets a signal disposition to its default, before any other thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
}

/// Logs to stderr, coloured only on a terminal (and without `NO_COLOR`): colour codes have no
/// place in files and journald.
fn init_logging(cli: &Cli) {
    let (level, configured) = commands::log_defaults(&cli.command);
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter(level))
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match cli.log_format.or(configured).unwrap_or_default() {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// `FSC_LOG` (else `default_level`) as a bare level (`debug`) applies to fsc's own crates (the
/// directive `fsc` covers `fsc_node`, `fsc_simon`, `fsc_tools` and `fsc_client` too, by prefix) and keeps the libraries at
/// warn: their debug lines (async-nats, sqlx, hyper) are about their internals and drown the
/// node's. Anything else is a full filter (`FSC_LOG=debug,sqlx=debug`).
fn log_filter(default_level: &str) -> EnvFilter {
    let wanted = std::env::var("FSC_LOG").unwrap_or_else(|_| default_level.to_string());
    let own_level = |level: LevelFilter| EnvFilter::new(format!("warn,fsc={level}"));
    match wanted.parse::<LevelFilter>() {
        Ok(level) => own_level(level),
        Err(_) => EnvFilter::try_new(&wanted).unwrap_or_else(|error| {
            eprintln!("FSC_LOG={wanted:?} is not a log filter ({error}); logging at {default_level}");
            own_level(default_level.parse().unwrap_or(LevelFilter::INFO))
        }),
    }
}

/// `--policy PARTY=FILE`.
fn parse_policy(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((party, file)) if !party.is_empty() && !file.is_empty() => Ok((party.to_string(), PathBuf::from(file))),
        _ => Err(format!("{text:?} is not PARTY=FILE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// `fsc help` documents every subcommand and argument.
    #[test]
    fn every_argument_has_help() {
        fn check(command: &clap::Command, path: &str) {
            let path = format!("{path} {}", command.get_name()).trim().to_string();
            assert!(command.get_about().is_some() || path == "fsc", "{path} has no help");
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" {
                    assert!(arg.get_help().is_some(), "{path} {id} has no help");
                }
            }
            for sub in command.get_subcommands() {
                check(sub, &path);
            }
        }
        check(&Cli::command(), "");
    }
}
