//! A local `nats-server` process, for `fsc demo`, the end-to-end tests and the benchmarks.
//!
//! The server is started from a federation's `nats-server.conf` on a port of the operating
//! system's choosing (`-p -1`), which it reports in a ports file; the guard reads it and kills
//! the process when dropped. A restart reuses the port, so connected nodes find it again. The
//! servers of a cluster or a leaf federation, whose configs name each other's ports, start on
//! the ports their configs give.
//! Production brokers are run by operators, not by this module.

use crate::error::Error;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The JetStream store a local server declares. Without it nats-server caps its store at 75 % of
/// the disk's free space when it starts and refuses a stream whose `max_bytes` the rest cannot
/// hold: a demo or a test (which store megabytes) would fail whenever the disk ran low (CI once
/// did, at `insufficient storage resources available`). A production broker keeps that check.
const LOCAL_MAX_FILE_STORE: &str = "1TB";

/// Declares [`LOCAL_MAX_FILE_STORE`] in a server config's JetStream block (a leaf has none).
pub fn declare_store(config: &Path) -> Result<(), Error> {
    let text = std::fs::read_to_string(config)?;
    let block = "jetstream {\n";
    let declared = format!("{block}    max_file_store: {LOCAL_MAX_FILE_STORE}\n");
    std::fs::write(config, text.replacen(block, &declared, 1))?;
    Ok(())
}

/// Where `nats-server` is: `$NATS_SERVER_BIN`, `.tools/bin` in this or a parent directory (where
/// `scripts/setup` puts it), or the `PATH`.
pub fn find_nats_server() -> Result<PathBuf, Error> {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let mut candidates = Vec::new();
    for start in [std::env::current_dir().ok(), std::env::current_exe().ok()]
        .into_iter()
        .flatten()
    {
        candidates.extend(start.ancestors().map(|dir| dir.join(".tools/bin/nats-server")));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("nats-server")));
    }
    candidates.into_iter().find(|c| c.is_file()).ok_or_else(|| {
        Error::Config(
            "nats-server not found: run scripts/setup (installs it into .tools/bin), install it from \
             https://github.com/nats-io/nats-server/releases, or set NATS_SERVER_BIN"
                .into(),
        )
    })
}

/// A running nats-server, killed on drop.
pub struct Broker {
    bin: PathBuf,
    config: PathBuf,
    ports_dir: PathBuf,
    child: Option<Child>,
    port: u16,
}

impl Broker {
    /// Starts nats-server with `config` on a free port; `work_dir` receives its ports file and log.
    pub fn start(bin: &Path, config: &Path, work_dir: &Path) -> Result<Broker, Error> {
        Broker::start_on(bin, config, work_dir, None)
    }

    /// Starts nats-server with `config` on `port` (a port other servers' configs name, as in a
    /// cluster's or a leaf's), or on a free port.
    pub fn start_on(bin: &Path, config: &Path, work_dir: &Path, port: Option<u16>) -> Result<Broker, Error> {
        let mut broker = Broker {
            bin: bin.to_path_buf(),
            // Absolute: the server runs in the config's directory (see `spawn`).
            config: std::path::absolute(config)?,
            ports_dir: work_dir.join("ports"),
            child: None,
            port: 0,
        };
        broker.spawn(port)?;
        Ok(broker)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same JetStream store.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.kill();
        self.spawn(Some(self.port))
    }

    fn spawn(&mut self, port: Option<u16>) -> Result<(), Error> {
        std::fs::create_dir_all(&self.ports_dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.ports_dir.with_file_name("nats-server.log"))?;
        let port_arg = port.map_or("-1".to_string(), |p| p.to_string());
        // The config's JetStream store_dir is relative to the directory the server runs in.
        let child = Command::new(&self.bin)
            .current_dir(self.config.parent().unwrap_or(Path::new(".")))
            .arg("-c")
            .arg(&self.config)
            .args(["-p", &port_arg, "--ports_file_dir"])
            .arg(&self.ports_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| Error::Config(format!("cannot start {}: {e}", self.bin.display())))?;
        let ports_file = self.ports_dir.join(format!("nats-server_{}.ports", child.id()));
        self.child = Some(child);
        self.port = self.wait_for_port(&ports_file)?;
        Ok(())
    }

    /// Waits until the server has written its ports file and accepts connections.
    fn wait_for_port(&mut self, ports_file: &Path) -> Result<u16, Error> {
        let started = Instant::now();
        loop {
            if let Some(port) = read_port(ports_file) {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(port);
                }
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(Error::Config(format!(
                    "nats-server exited at start ({status}); see its log in {}",
                    self.ports_dir.display()
                )));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(Error::Config("nats-server did not start within 20 s".into()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn read_port(ports_file: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(ports_file).ok()?;
    let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = ports["nats"].as_array()?.first()?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
