//! What each `fsc` subcommand does, on top of the `fsc-node` library.

use crate::{ClientCommand, Command, FederationCommand, NodeArgs};
use fsc_node::client::Client;
use fsc_node::config::NodeConfig;
use fsc_node::federation::{self, InitOptions};
use fsc_node::{Error, demo};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

/// Items per batch request when submitting a file.
const BATCH_CHUNK: usize = 1000;

/// Nodes log at info; client commands only warnings, so their output stays readable.
pub fn default_log_filter(command: &Command) -> &'static str {
    match command {
        Command::Node { .. } => "info",
        _ => "warn",
    }
}

pub async fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Federation {
            command:
                FederationCommand::Init {
                    out,
                    parties,
                    nats_url,
                    api_port_base,
                    api_urls,
                    if_missing,
                    tls,
                },
        } => {
            if if_missing && out.join("federation.toml").exists() {
                println!("{} already holds a federation; left as it is", out.display());
                return Ok(());
            }
            let api_urls = if api_urls.is_empty() {
                InitOptions::local_api_urls(api_port_base, parties.len(), tls)?
            } else {
                api_urls
            };
            federation::init(&InitOptions {
                out: out.clone(),
                parties: parties.clone(),
                nats_url,
                api_urls,
                tls,
            })?;
            println!("federation written to {}:", out.display());
            println!("  federation.toml     roster for every party");
            println!(
                "  nats-server.conf    broker: nats-server -c {}",
                out.join("nats-server.conf").display()
            );
            for party in &parties {
                println!(
                    "  {party}/node.toml    fsc node --config {}",
                    out.join(party).join("node.toml").display()
                );
            }
            if tls {
                println!("  ca.crt              the CA clients trust (--ca-file, REQUESTS_CA_BUNDLE)");
            }
            Ok(())
        }
        Command::Node { config } => run_node(&config).await,
        Command::Demo {
            keep,
            against,
            token_files,
            ca_file,
        } => run_demo(keep, against, token_files, ca_file.as_deref()).await,
        Command::Gc {
            config,
            older_than,
            vacuum,
        } => {
            let config = NodeConfig::load(&config, |key| std::env::var(key).ok())?;
            let older_than = older_than.unwrap_or(config.retention_s);
            let cutoff = fsc_node::runtime::now_ms() - older_than as i64 * 1000;
            let report = fsc_node::store::collect_garbage(&config.store, cutoff, vacuum).await?;
            println!(
                "pruned {} computations finished more than {older_than} s ago; {} now {} bytes (was {})",
                report.pruned,
                config.store.display(),
                report.bytes_after,
                report.bytes_before
            );
            Ok(())
        }
        Command::Client {
            command: ClientCommand::Add { config, name, admin },
        } => {
            let token = federation::add_client(&config, &name, admin)?;
            eprintln!(
                "client {name:?} added to {}; restart the node to use it. Its token, shown only now:",
                config.display()
            );
            println!("{token}");
            Ok(())
        }
        Command::Submit {
            node,
            microprotocol,
            parties,
            input,
            parameters,
            id,
            deadline_s,
            wait,
        } => {
            let client = client(&node)?;
            let input: Value = parse_json_arg("--input", &input)?;
            let parameters: Value = parse_json_arg("--parameters", &parameters)?;
            let id = id.unwrap_or_else(Uuid::new_v4);
            let mut body = json!({"id": id, "microprotocol": microprotocol, "parties": parties, "parameters": parameters, "input": input});
            if let Some(deadline_s) = deadline_s {
                body["deadline_s"] = json!(deadline_s);
            }
            let answer = client.submit(&body).await?;
            if !answer.status.is_success() {
                return Err(Error::Http(format!(
                    "{} answered {}: {}",
                    client.base(),
                    answer.status,
                    answer.body
                )));
            }
            let shown = if wait > 0.0 {
                client.wait_final(id, Duration::from_secs_f64(wait)).await?
            } else {
                answer.body
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&shown).expect("JSON values serialise")
            );
            Ok(())
        }
        Command::Status { node, id, wait } => {
            let computation = client(&node)?.get(id, Duration::from_secs_f64(wait)).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&computation).expect("JSON values serialise")
            );
            Ok(())
        }
        Command::Cancel { node, id } => {
            let computation = client(&node)?.cancel(id).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&computation).expect("JSON values serialise")
            );
            Ok(())
        }
        Command::Batch { node, file, no_wait } => run_batch(&client(&node)?, &file, no_wait).await,
    }
}

fn client(node: &NodeArgs) -> Result<Client, Error> {
    Client::with_tls(
        &node.node,
        node.token.clone(),
        node.ca_file.as_deref(),
        node.client_cert.as_deref(),
    )
}

fn parse_json_arg(name: &str, text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::bad_request("invalid_argument", format!("{name} is not JSON: {e}")))
}

async fn run_node(config_path: &Path) -> Result<(), Error> {
    let config = NodeConfig::load(config_path, |key| std::env::var(key).ok())?;
    let listener = fsc_node::node::bind(&config).await?;
    fsc_node::node::run(config, listener, shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed at once, not at the first poll,
/// so a signal that arrives while the node starts is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
}

async fn run_demo(
    keep: bool,
    against: Vec<String>,
    token_files: Vec<PathBuf>,
    ca_file: Option<&Path>,
) -> Result<(), Error> {
    if !against.is_empty() {
        let tokens: Vec<Option<String>> = if token_files.is_empty() {
            vec![std::env::var("FSC_API_TOKEN").ok(); against.len()]
        } else if token_files.len() == against.len() {
            token_files
                .iter()
                .map(|file| fsc_node::keys::read_secret(file).map(|t| Some(t.trim().to_string())))
                .collect::<Result<_, _>>()?
        } else {
            return Err(Error::bad_request(
                "invalid_argument",
                "--token-files needs one file per URL of --against",
            ));
        };
        let clients: Vec<Client> = against
            .iter()
            .zip(tokens)
            .map(|(url, token)| Client::with_ca(url, token, ca_file))
            .collect::<Result<_, _>>()?;
        for client in &clients {
            client.wait_ready(Duration::from_secs(120)).await?;
        }
        let outputs = demo::tutorial_sum(&clients).await?;
        println!("{}", demo::python_style(&outputs[0]));
        return Ok(());
    }
    let federation = demo::Federation::start().await?;
    let clients: Vec<Client> = federation.urls.iter().map(|url| Client::new(url, None)).collect();
    let outcome = demo::tutorial_sum(&clients).await;
    match &outcome {
        Ok(outputs) => println!("{}", demo::python_style(&outputs[0])),
        Err(_) => {
            federation.stop().await?;
            return outcome.map(|_| ());
        }
    }
    if keep {
        println!(
            "the federation keeps running (Ctrl-C stops it); its files are in {}",
            federation.dir.path().display()
        );
        for (party, url) in demo::PARTIES.iter().zip(&federation.urls) {
            println!("  {party:<6} {url}");
        }
        shutdown_signal().await;
    }
    federation.stop().await
}

/// Reads computations from `file`, submits them in chunks, then follows them with a progress bar.
async fn run_batch(client: &Client, file: &Path, no_wait: bool) -> Result<(), Error> {
    let text = std::fs::read_to_string(file)?;
    let computations: Vec<Value> = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut object)) => match object.remove("computations") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(Error::bad_request("invalid_file", "expected {\"computations\": [...]}"));
            }
        },
        _ => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, line)| parse_json_arg(&format!("line {}", i + 1), line))
            .collect::<Result<_, _>>()?,
    };
    let bar = ProgressBar::new(computations.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("a valid template"),
    );
    bar.set_message("submitted");
    let mut pending = Vec::new();
    let mut rejected = 0;
    for chunk in computations.chunks(BATCH_CHUNK) {
        for result in client.submit_all(chunk).await? {
            match result["id"].as_str().and_then(|id| Uuid::parse_str(id).ok()) {
                Some(id) => pending.push(id),
                None => {
                    rejected += 1;
                    bar.println(format!("rejected: {}", result["error"]["detail"]));
                }
            }
            bar.inc(1);
        }
    }
    bar.finish();
    if no_wait {
        println!("{} submitted, {rejected} rejected", pending.len());
        return Ok(());
    }
    let bar = ProgressBar::new(pending.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("a valid template"),
    );
    bar.set_message("finished");
    let (mut succeeded, mut failed) = (0, 0);
    let mut seen = HashSet::new();
    for id in pending {
        if !seen.insert(id) {
            continue;
        }
        let computation = client.wait_final(id, Duration::from_secs(3600)).await?;
        match computation["status"].as_str() {
            Some("succeeded") => succeeded += 1,
            _ => {
                failed += 1;
                bar.println(format!("{id}: {} {}", computation["status"], computation["error"]));
            }
        }
        bar.inc(1);
    }
    bar.finish();
    println!("{succeeded} succeeded, {failed} failed, {rejected} rejected");
    Ok(())
}
