//! `fsc demo`: a throw-away three-party federation (broker plus three in-process nodes on free
//! ports) running the seed tutorial's secure sum (inputs 19, 5, 61) through each node's HTTP API.
//! Also the tutorial sum against nodes that run elsewhere (`--against`, used by docker compose).

use crate::broker::{Broker, declare_store, find_nats_server};
use crate::error::Error;
use crate::federation::{self, InitOptions};
use crate::provision::provision_federation;
use fsc_client::Client;
use fsc_node::config::NodeConfig;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use uuid::Uuid;

pub const PARTIES: [&str; 3] = ["alice", "bob", "carol"];
pub const TUTORIAL_INPUTS: [i64; 3] = [19, 5, 61];
/// The first party's API port in the tutorial (docs/secure_sum.py); the others follow.
pub const TUTORIAL_PORT: u16 = 55501;
const RESULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A running demo federation; dropping it stops the nodes and the broker.
pub struct Federation {
    pub urls: Vec<String>,
    pub dir: tempfile::TempDir,
    stop: watch::Sender<bool>,
    nodes: Vec<tokio::task::JoinHandle<Result<(), fsc_node::Error>>>,
    _broker: Broker,
}

impl Federation {
    /// Creates and starts the three-party federation; `policies` gives parties a `[policy]`
    /// (each a party and a TOML file holding the table, appended to its node.toml). With `csv`,
    /// each node also offers the dataset `tutorial`: a CSV file beside its node.toml holding its
    /// tutorial input in the column `value` ([`tutorial_dataset`] names it).
    pub async fn start(policies: &[(String, std::path::PathBuf)], csv: bool) -> Result<Federation, Error> {
        let bin = find_nats_server()?;
        let dir = tempfile::Builder::new().prefix("fsc-demo-").tempdir()?;
        // The tutorial's ports (55501..55503) if they are free, so its script runs as written.
        let mut listeners = Vec::new();
        for (i, _) in PARTIES.iter().enumerate() {
            match TcpListener::bind(("127.0.0.1", TUTORIAL_PORT + i as u16)).await {
                Ok(listener) => listeners.push(listener),
                Err(_) => break,
            }
        }
        if listeners.len() < PARTIES.len() {
            listeners.clear();
            for _ in PARTIES {
                listeners.push(TcpListener::bind("127.0.0.1:0").await?);
            }
        }
        let urls: Vec<String> = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| format!("http://{a}")))
            .collect::<Result<_, _>>()?;
        federation::init(&InitOptions {
            out: dir.path().to_path_buf(),
            parties: PARTIES.map(String::from).to_vec(),
            nats_url: "nats://127.0.0.1:4222".into(),
            api_urls: urls.clone(),
            tls: false,
            broker: Default::default(),
            stream: Default::default(),
        })?;
        for (party, file) in policies {
            if !PARTIES.contains(&party.as_str()) {
                return Err(Error::Config(format!(
                    "--policy {party}=…: the demo's parties are {}",
                    PARTIES.join(", ")
                )));
            }
            let policy = std::fs::read_to_string(file)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", file.display())))?;
            let node_toml = dir.path().join(party).join("node.toml");
            let mut text = std::fs::read_to_string(&node_toml)?;
            text.push_str(&format!("\n# from {}\n{policy}\n", file.display()));
            std::fs::write(&node_toml, text)?;
        }
        if csv {
            for (party, input) in PARTIES.iter().zip(TUTORIAL_INPUTS) {
                let home = dir.path().join(party);
                std::fs::write(home.join("tutorial.csv"), format!("value\n{input}\n"))?;
                let mut text = std::fs::read_to_string(home.join("node.toml"))?;
                text.push_str(
                    "\n[[datasets]]\nname = \"tutorial\"\ncolumns = [{name = \"value\", type = \"number\"}]\n\
                     csv = {path = \"tutorial.csv\"}\n",
                );
                std::fs::write(home.join("node.toml"), text)?;
            }
        }
        declare_store(&dir.path().join("nats-server.conf"))?;
        let broker = Broker::start(&bin, &dir.path().join("nats-server.conf"), dir.path())?;
        provision_federation(dir.path(), Some(&broker.url()), false).await?;
        let (stop, stopped) = watch::channel(false);
        let mut nodes = Vec::new();
        for (party, listener) in PARTIES.iter().zip(listeners) {
            let url = broker.url();
            let config = NodeConfig::load(&dir.path().join(party).join("node.toml"), |key| {
                (key == "FSC_NATS_URL").then(|| url.clone())
            })?;
            let mut stopped = stopped.clone();
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            nodes.push(tokio::spawn(fsc_node::node::run(config, listener, shutdown)));
        }
        for (url, node) in urls.iter().zip(nodes.iter_mut()) {
            // A node that stops at start (a port taken, a bad configuration) says why at once.
            let client = Client::new(url, None);
            tokio::select! {
                ready = client.wait_ready(Duration::from_secs(30)) => ready?,
                ended = node => {
                    ended.map_err(|e| Error::Config(format!("a node panicked: {e}")))??;
                    return Err(Error::Config(format!("the node at {url} stopped at start")));
                }
            }
        }
        Ok(Federation {
            urls,
            dir,
            stop,
            nodes,
            _broker: broker,
        })
    }

    /// Stops the nodes (draining) and then the broker.
    pub async fn stop(self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        for node in self.nodes {
            node.await
                .map_err(|e| Error::Config(format!("a node panicked: {e}")))??;
        }
        Ok(())
    }
}

/// The input that names a demo node's tutorial dataset (`fsc demo --csv`).
pub fn tutorial_dataset() -> Value {
    json!({"dataset": "tutorial", "column": "value"})
}

/// Runs the tutorial's sum through three nodes' clients (each gets one input, in order) and
/// returns every party's output, `{"inputs": 3, "result": {"samples": 3, "sum": 85.0}}`.
pub async fn tutorial_sum(clients: &[Client]) -> Result<Vec<Value>, Error> {
    tutorial_sum_of(clients, &TUTORIAL_INPUTS.map(Value::from)).await
}

/// [`tutorial_sum`] with these inputs (e.g. [`tutorial_dataset`] at every node).
pub async fn tutorial_sum_of(clients: &[Client], inputs: &[Value]) -> Result<Vec<Value>, Error> {
    let mut parties = Vec::new();
    for client in clients {
        let node = client.node().await?;
        parties.push(
            node["id"]
                .as_str()
                .ok_or_else(|| Error::Unexpected(format!("{}: node without id", client.base())))?
                .to_string(),
        );
    }
    let id = Uuid::new_v4();
    for (client, input) in clients.iter().zip(inputs) {
        let answer = client
            .submit(&json!({"id": id, "microprotocol": "SecureSum", "parties": parties, "input": input}))
            .await?;
        if !answer.status.is_success() {
            return Err(Error::Unexpected(format!(
                "{} refused the submission: {}",
                client.base(),
                answer.body
            )));
        }
    }
    let mut outputs = Vec::new();
    for client in clients {
        let computation = client.wait_final(id, RESULT_TIMEOUT).await?;
        if computation["status"] != "succeeded" {
            return Err(Error::Unexpected(format!(
                "{}: computation {id} did not succeed: {}",
                client.base(),
                computation
            )));
        }
        outputs.push(computation["output"].clone());
    }
    Ok(outputs)
}

/// JSON as Python's `json.dumps` prints it (`", "` and `": "` separators), as the tutorial shows.
pub fn python_style(value: &Value) -> String {
    match value {
        Value::Array(items) => format!("[{}]", items.iter().map(python_style).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_style(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_python() {
        let value = json!({"inputs": 3, "result": {"samples": 3, "sum": 85.0}});
        assert_eq!(
            python_style(&value),
            r#"{"inputs": 3, "result": {"samples": 3, "sum": 85.0}}"#
        );
    }
}
