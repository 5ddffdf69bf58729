//! A throw-away PostgreSQL cluster for the dataset tests: Debian's `postgresql` binaries
//! (`/usr/lib/postgresql/<version>/bin`, or `$FSC_PG_BIN`), a data directory in a temporary
//! directory, a port found free, a password for its one user. Stopped (and removed) when the
//! guard is dropped.
//!
//! PostgreSQL refuses to run as root; as root (CI, the setup's containers) the harness runs its
//! commands as `nobody` through `runuser`, in a directory `nobody` owns.

use fsc_tools::ca::Authority;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cluster's one user (a superuser) and its password.
pub const USER: &str = "fsc";
pub const PASSWORD: &str = "pg-test-password";

pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
    /// A file holding [`PASSWORD`], for a dataset's `password_file`.
    pub password_file: PathBuf,
    /// Whether the cluster takes TLS connections only.
    tls: bool,
    _dir: tempfile::TempDir,
}

/// The directory of `initdb` and `pg_ctl`: `$FSC_PG_BIN`, else the newest Debian version.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FSC_PG_BIN") {
        return dir.into();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin/initdb): run scripts/setup, or set FSC_PG_BIN")
    })
}

/// `program args…`, as `nobody` when this process is root.
fn run(program: &Path, args: &[&str]) -> std::process::Output {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut command = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    command.args(args).output().expect("run a PostgreSQL command")
}

/// Gives `path` to `nobody` when this process is root (the server runs as `nobody` then).
fn give_to_server(path: &Path) {
    // SAFETY: geteuid has no preconditions; chown on a path the harness created.
    if unsafe { libc::geteuid() } == 0 {
        let c_path = std::ffi::CString::new(path.to_str().expect("a UTF-8 path")).expect("no NUL");
        assert_eq!(
            unsafe { libc::chown(c_path.as_ptr(), 65534, 65534) },
            0,
            "chown {} to nobody",
            path.display()
        );
    }
}

impl Postgres {
    /// A cluster that takes plain TCP connections.
    pub fn start() -> Postgres {
        Postgres::start_with(None)
    }

    /// A cluster that takes TLS connections only (`hostssl` in pg_hba.conf), its certificate
    /// for 127.0.0.1 signed by `authority`.
    pub fn start_tls(authority: &Authority) -> Postgres {
        Postgres::start_with(Some(authority))
    }

    fn start_with(authority: Option<&Authority>) -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("the data directory");
        give_to_server(&data);
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("the password file");
        std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let init = run(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().expect("a UTF-8 path"),
                "-U",
                USER,
                "--pwfile",
                password_file.to_str().expect("a UTF-8 path"),
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(init.status.success(), "initdb: {}", crate::output_text(&init));
        let mut server_options = String::new();
        if let Some(authority) = authority {
            let (cert, key) = (data.join("server.crt"), data.join("server.key"));
            authority
                .issue_server("127.0.0.1", &cert, &key)
                .expect("the server's certificate");
            give_to_server(&cert);
            give_to_server(&key);
            let hba = data.join("pg_hba.conf");
            let rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
            let rules: Vec<String> = rules
                .lines()
                .map(|line| match line.strip_prefix("host ") {
                    Some(rest) => format!("hostssl {rest}"),
                    None => line.to_string(),
                })
                .collect();
            std::fs::write(&hba, rules.join("\n") + "\n").expect("pg_hba.conf");
            server_options = " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key".into();
        }
        // A port found free may be taken before the server binds it: then try another.
        for attempt in 1.. {
            let port = crate::free_ports(1)[0];
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off{server_options}",
                data.display()
            );
            let log = data.join("server.log");
            let started = run(
                &bin.join("pg_ctl"),
                &[
                    "-D",
                    data.to_str().expect("a UTF-8 path"),
                    "-l",
                    log.to_str().expect("a UTF-8 path"),
                    "-w",
                    "-o",
                    &options,
                    "start",
                ],
            );
            if started.status.success() {
                return Postgres {
                    bin,
                    data,
                    port,
                    password_file,
                    tls: authority.is_some(),
                    _dir: dir,
                };
            }
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                attempt < 3,
                "PostgreSQL did not start: {}\n{log}",
                crate::output_text(&started)
            );
        }
        unreachable!()
    }

    /// The URL a dataset names (without the password).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The URL with the password, for the test's own connection (over TLS if the cluster
    /// takes nothing else).
    pub fn url_with_password(&self, database: &str) -> String {
        let tls = if self.tls { "?sslmode=require" } else { "" };
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{database}{tls}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.to_str().expect("a UTF-8 path").to_string();
        let stopped = run(
            &self.bin.join("pg_ctl"),
            &["-D", &data, "-m", "immediate", "-w", "stop"],
        );
        if !stopped.status.success() {
            eprintln!("pg_ctl stop: {}", crate::output_text(&stopped));
        }
    }
}
