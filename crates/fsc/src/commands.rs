//! What each `fsc` subcommand does, on top of the `fsc-node`, `fsc-tools` and `fsc-client`
//! libraries.

use crate::batch;
use crate::error::Error;
use crate::outcome::Outcome;
use crate::{AuditCommand, ClientCommand, Command, FederationCommand, NodeArgs, StoreArgs};
use fsc_client::Client;
use fsc_node::audit;
use fsc_node::config::roster::Roster;
use fsc_node::config::stream::StreamSpec;
use fsc_node::config::{LogFormat, NodeConfig};
use fsc_node::receipt;
use fsc_tools::demo;
use fsc_tools::federation::{self, BrokerOptions, InitOptions};
use fsc_tools::provision::{Provisioned, provision_federation};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

/// The log level and format a command starts with: nodes log at info, in their config's
/// `log_format`; client commands only warnings, so their output stays readable. A node whose
/// config cannot be read logs as text; `run_node` then reports what is wrong.
pub fn log_defaults(command: &Command) -> (&'static str, Option<LogFormat>) {
    match command {
        Command::Node { config } => (
            "info",
            NodeConfig::load(config, |key| std::env::var(key).ok())
                .ok()
                .map(|config| config.log_format),
        ),
        _ => ("warn", None),
    }
}

pub async fn run(command: Command) -> Result<Outcome, Error> {
    match command {
        Command::Federation {
            command:
                FederationCommand::Init {
                    out,
                    parties,
                    nats_url,
                    topology,
                    route_urls,
                    gateway_urls,
                    hub_leaf_url,
                    leaf_urls,
                    api_port_base,
                    api_urls,
                    if_missing,
                    tls,
                    stream_name,
                    subject_prefix,
                },
        } => {
            if if_missing && out.join("federation.toml").exists() {
                println!("{} already holds a federation; left as it is", out.display());
                return Ok(Outcome::Done);
            }
            let api_urls = if api_urls.is_empty() {
                InitOptions::local_api_urls(api_port_base, parties.len(), tls)?
            } else {
                api_urls
            };
            let servers = federation::init(&InitOptions {
                out: out.clone(),
                parties: parties.clone(),
                nats_url,
                api_urls,
                tls,
                broker: BrokerOptions {
                    topology,
                    route_urls,
                    gateway_urls,
                    hub_leaf_url,
                    leaf_urls,
                },
                stream: StreamSpec {
                    name: stream_name,
                    subject_prefix,
                    ..Default::default()
                },
            })?;
            println!("federation written to {}:", out.display());
            println!("  federation.toml     roster for every party");
            for server in servers {
                println!("  {server:<19} broker: cd {} && nats-server -c {server}", out.display());
            }
            println!(
                "  admin/              operator's broker user: once the broker runs, fsc federation provision {}",
                out.display()
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
            Ok(Outcome::Done)
        }
        Command::Federation {
            command: FederationCommand::Provision { dir, nats_url, update },
        } => {
            for (stream, done) in provision_federation(&dir, nats_url.as_deref(), update).await? {
                match done {
                    Provisioned::Created => println!("stream {stream} created"),
                    Provisioned::Found => println!("stream {stream} exists as the roster specifies"),
                    Provisioned::Updated => println!("stream {stream} updated to the roster's [stream]"),
                }
            }
            Ok(Outcome::Done)
        }
        Command::Node { config } => run_node(&config).await.map(|()| Outcome::Done),
        Command::Demo {
            keep,
            against,
            token_files,
            ca_file,
            policy,
            csv,
        } => run_demo(keep, against, token_files, ca_file.as_deref(), &policy, csv)
            .await
            .map(|()| Outcome::Done),
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
            Ok(Outcome::Done)
        }
        Command::Audit {
            command: AuditCommand::Log { store, since, client },
        } => {
            let conn = audit::open_read_only(&store_path(&store)?)?;
            let since = since.as_deref().map(audit::parse_time).transpose()?;
            for entry in audit::entries(&conn, since, client.as_deref())? {
                println!("{}", entry.json());
            }
            Ok(Outcome::Done)
        }
        Command::Audit {
            command: AuditCommand::Verify { store },
        } => {
            let conn = audit::open_read_only(&store_path(&store)?)?;
            match audit::verify(&conn)? {
                Ok(audit::Verified { anchor, head }) => {
                    let entries = head.seq - anchor.seq;
                    if anchor.seq == 0 {
                        println!(
                            "audit log intact: {entries} entries, last hash {}",
                            audit::hex(&head.hash)
                        );
                    } else {
                        println!(
                            "audit log intact: {entries} entries after entry {} (pruned; its hash {}), last hash {}",
                            anchor.seq,
                            audit::hex(&anchor.hash),
                            audit::hex(&head.hash)
                        );
                    }
                    Ok(Outcome::Done)
                }
                Err(broken) => {
                    println!("audit log broken at entry {}: {}", broken.seq, broken.why);
                    Ok(Outcome::Failed)
                }
            }
        }
        Command::Audit {
            command: AuditCommand::Receipt { id, node },
        } => {
            let receipt = client(&node)?.receipt(id).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&receipt).expect("JSON values serialise")
            );
            Ok(Outcome::Done)
        }
        Command::Audit {
            command: AuditCommand::VerifyReceipt { receipt, roster },
        } => {
            let (signed, problems) = receipt::read(&receipt)?.verify(&Roster::load(&roster)?);
            for line in signed {
                println!("{line}");
            }
            if problems.is_empty() {
                println!("receipt verified: every party signed the same statement");
                return Ok(Outcome::Done);
            }
            for problem in problems {
                println!("problem: {problem}");
            }
            Ok(Outcome::Failed)
        }
        Command::Client {
            command:
                ClientCommand::Add {
                    config,
                    name,
                    admin,
                    monitor,
                },
        } => {
            let token = federation::add_client(&config, &name, admin, monitor)?;
            eprintln!(
                "client {name:?} added to {}; restart the node to use it. Its token, shown only now:",
                config.display()
            );
            println!("{token}");
            Ok(Outcome::Done)
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
                return Err(Error::Refused(format!(
                    "{} answered {}: {}",
                    client.base(),
                    answer.status,
                    answer.body
                )));
            }
            if wait > 0.0 {
                let computation = client.wait_final(id, Duration::from_secs_f64(wait)).await?;
                print_pretty(&computation);
                Ok(Outcome::of(&computation))
            } else {
                print_pretty(&answer.body);
                Ok(Outcome::Done)
            }
        }
        Command::Status { node, id, wait } => {
            let computation = client(&node)?.get(id, Duration::from_secs_f64(wait)).await?;
            print_pretty(&computation);
            if let Some(waiting) = waiting_for(&computation) {
                eprintln!("{waiting}");
            }
            Ok(match Outcome::of(&computation) {
                Outcome::NotFinal if wait == 0.0 => Outcome::Done,
                outcome => outcome,
            })
        }
        Command::Datasets { node } => {
            let listed = client(&node)?.datasets().await?;
            for dataset in listed["datasets"].as_array().into_iter().flatten() {
                println!("{dataset}");
            }
            Ok(Outcome::Done)
        }
        Command::Proposals { node } => {
            let listed = client(&node)?.proposals().await?;
            for proposal in listed["proposals"].as_array().into_iter().flatten() {
                println!("{proposal}");
            }
            Ok(Outcome::Done)
        }
        Command::Decline { node, id } => {
            print_pretty(&client(&node)?.decline(id).await?);
            Ok(Outcome::Done)
        }
        Command::Cancel { node, id } => {
            print_pretty(&client(&node)?.cancel(id).await?);
            Ok(Outcome::Done)
        }
        Command::Batch {
            node,
            file,
            no_wait,
            wait,
        } => batch::run(&client(&node)?, &file, no_wait, Duration::from_secs_f64(wait)).await,
        Command::List {
            node,
            status,
            limit,
            all,
        } => {
            let client = client(&node)?;
            let limit = if all { usize::MAX } else { limit };
            let mut cursor = None;
            let mut listed = 0;
            while listed < limit {
                let page = client
                    .list_page(status.as_deref(), (limit - listed).min(1000), cursor.as_deref())
                    .await?;
                for computation in page["computations"].as_array().into_iter().flatten() {
                    println!("{computation}");
                    listed += 1;
                }
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_string()),
                    None => return Ok(Outcome::Done),
                }
            }
            // The limit was reached with a cursor in hand: there may be more. One more request
            // tells (a full last page gives a cursor whether or not anything follows).
            let more = client.list_page(status.as_deref(), 1, cursor.as_deref()).await?;
            if more["computations"].as_array().is_some_and(|c| !c.is_empty()) {
                eprintln!("listed the newest {listed}; there are more: --all lists every one, --limit N more");
            }
            Ok(Outcome::Done)
        }
        Command::Budget { node, json } => {
            let budget = client(&node)?.budget().await?;
            if json {
                print_pretty(&budget);
            } else {
                print!("{}", budget_table(&budget));
            }
            Ok(Outcome::Done)
        }
        Command::Healthcheck { node, ca_file } => {
            let client = Client::with_ca(&node, None, ca_file.as_deref())?;
            if client.ready().await {
                Ok(Outcome::Done)
            } else {
                Err(Error::NotReady(format!("{node} is not ready")))
            }
        }
    }
}

/// `fsc budget`'s table: one line for the node (an admin's view) and one per client, each kind
/// of cost as `spent / cap (remaining)`, `-` where nothing caps it.
fn budget_table(budget: &Value) -> String {
    let period = match (budget["period_days"].as_u64(), budget["since"].as_str()) {
        (Some(days), Some(since)) => format!("the last {days} days (since {since})"),
        _ => "the node's whole life (no period)".to_string(),
    };
    let mut out = format!("privacy budget spent in {period}\n");
    let kind = |entry: &Value, name: &str| {
        let number = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x}"));
        let spent = number(&entry["spent"][name]);
        match entry["cap"][name].as_f64() {
            Some(cap) => format!("{spent} / {cap} ({} left)", number(&entry["remaining"][name])),
            None => format!("{spent} / -"),
        }
    };
    let header = format!(
        "{:<16} {:>12}  {:<28} {:<28} {:<28}",
        "", "computations", "epsilon", "delta", "rho"
    );
    out.push_str(header.trim_end());
    out.push('\n');
    let node = (!budget["node"].is_null()).then(|| ("(node)".to_string(), &budget["node"]));
    let clients = budget["clients"].as_array().into_iter().flatten();
    for (name, entry) in node
        .into_iter()
        .chain(clients.map(|c| (c["name"].as_str().unwrap_or("?").to_string(), c)))
    {
        let line = format!(
            "{name:<16} {:>12}  {:<28} {:<28} {:<28}",
            entry["computations"],
            kind(entry, "epsilon"),
            kind(entry, "delta"),
            kind(entry, "rho")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// "waiting for bob and carol": the parties a pending or running computation has not heard from.
fn waiting_for(computation: &Value) -> Option<String> {
    let parties: Vec<&str> = computation["waiting_for"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let (last, rest) = parties.split_last()?;
    Some(if rest.is_empty() {
        format!("waiting for {last}")
    } else {
        format!("waiting for {} and {last}", rest.join(", "))
    })
}

fn print_pretty(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values serialise")
    );
}

fn client(node: &NodeArgs) -> Result<Client, Error> {
    Ok(Client::with_tls(
        &node.node,
        node.token.clone(),
        node.ca_file.as_deref(),
        node.client_cert.as_deref(),
    )?)
}

fn parse_json_arg(name: &str, text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::Usage(format!(
            "{name} is not JSON ({e}); a string is quoted, e.g. --input '\"a\"'"
        ))
    })
}

async fn run_node(config_path: &Path) -> Result<(), Error> {
    let config = NodeConfig::load(config_path, |key| std::env::var(key).ok())?;
    let listener = fsc_node::node::bind(&config).await?;
    Ok(fsc_node::node::run(config, listener, shutdown_signal()).await?)
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
    policies: &[(String, PathBuf)],
    csv: bool,
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
            return Err(Error::Usage("--token-files needs one file per URL of --against".into()));
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
    let federation = demo::Federation::start(policies, csv).await?;
    let clients: Vec<Client> = federation.urls.iter().map(|url| Client::new(url, None)).collect();
    let outcome = if csv {
        demo::tutorial_sum_of(
            &clients,
            &[
                demo::tutorial_dataset(),
                demo::tutorial_dataset(),
                demo::tutorial_dataset(),
            ],
        )
        .await
    } else {
        demo::tutorial_sum(&clients).await
    };
    match &outcome {
        Ok(outputs) => println!("{}", demo::python_style(&outputs[0])),
        // The policies may refuse the tutorial's sum; the federation is what was asked for.
        Err(error) if keep && !policies.is_empty() => eprintln!("the tutorial sum: {error}"),
        Err(_) => {
            federation.stop().await?;
            return Ok(outcome.map(|_| ())?);
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
    Ok(federation.stop().await?)
}

/// The store file `fsc audit` reads: given, or the one a node.toml names.
fn store_path(store: &StoreArgs) -> Result<PathBuf, Error> {
    match (&store.store, &store.config) {
        (Some(path), _) => Ok(path.clone()),
        (None, Some(config)) => Ok(NodeConfig::load(config, |key| std::env::var(key).ok())?.store),
        (None, None) => unreachable!("clap requires one of --store and --config"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_table_shows_spent_caps_and_what_is_left() {
        let budget = json!({
            "period_days": 30, "since": "2026-11-07T04:00:00Z",
            "node": {"spent": {"epsilon": 1.5, "delta": 0.0, "rho": 0.0}, "computations": 2,
                     "cap": {"epsilon": 10.0, "delta": null, "rho": null},
                     "remaining": {"epsilon": 8.5, "delta": null, "rho": null}},
            "clients": [{"name": "analyst", "spent": {"epsilon": 1.5, "delta": 0.0, "rho": 0.0},
                         "computations": 2, "cap": null, "remaining": null}]
        });
        let table = budget_table(&budget);
        assert!(
            table.starts_with("privacy budget spent in the last 30 days (since 2026-11-07T04:00:00Z)\n"),
            "{table}"
        );
        let node = table.lines().find(|l| l.starts_with("(node)")).unwrap();
        assert!(node.contains("1.5 / 10 (8.5 left)"), "{table}");
        let analyst = table.lines().find(|l| l.starts_with("analyst")).unwrap();
        assert!(analyst.contains("1.5 / -") && analyst.contains(" 2  "), "{table}");
        let lifetime = budget_table(&json!({"period_days": null, "since": null, "node": null, "clients": []}));
        assert!(lifetime.contains("no period"), "{lifetime}");
    }
}
