//! docker-compose.yml cannot run here (no Docker engine), so this keeps it honest: it runs the
//! federation service's own `fsc federation init` command and checks that the broker and node
//! services point at the files, ports and URLs that command generates, that the stream is
//! provisioned between the broker and the nodes, that their healthchecks
//! and `depends_on` conditions chain them (the broker's healthcheck is asked of a real
//! nats-server run from the generated config), and that the Dockerfile caches dependencies and
//! declares its healthcheck.

use fsc_e2e::fsc_bin;
use fsc_node::config::NodeConfig;
use fsc_node::config::roster::Roster;
use fsc_tools::broker::find_nats_server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use yaml_rust2::{Yaml, YamlLoader};

const VOLUME_PATH: &str = "/federation";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn strings(yaml: &Yaml) -> Vec<String> {
    yaml.as_vec()
        .unwrap_or_else(|| panic!("expected a list, got {yaml:?}"))
        .iter()
        .map(|y| y.as_str().unwrap().to_string())
        .collect()
}

fn flag(command: &[String], name: &str) -> String {
    let at = command
        .iter()
        .position(|a| a == name)
        .unwrap_or_else(|| panic!("{name} missing in {command:?}"));
    command[at + 1].clone()
}

/// Maps a path inside the compose volume to the local directory standing in for it.
fn local(path: &str, volume: &Path) -> PathBuf {
    volume.join(path.strip_prefix(VOLUME_PATH).unwrap().trim_start_matches('/'))
}

fn compose_file() -> Yaml {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// What a compose service's `federation init` wrote.
struct Init {
    /// Stands for the service's volume.
    volume: tempfile::TempDir,
    command: Vec<String>,
    parties: Vec<String>,
    api_urls: Vec<String>,
}

/// Runs the command of the service `name` (a `federation init`), with a temporary directory as
/// its volume.
fn run_init(services: &Yaml, name: &str) -> Init {
    let volume = tempfile::tempdir().unwrap();
    let command = strings(&services[name]["command"]);
    let args: Vec<String> = command
        .iter()
        .map(|a| a.replace(VOLUME_PATH, volume.path().to_str().unwrap()))
        .collect();
    let output = Command::new(fsc_bin()).args(&args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let list = |flag_name: &str| flag(&command, flag_name).split(',').map(String::from).collect();
    Init {
        parties: list("--parties"),
        api_urls: list("--api-urls"),
        volume,
        command,
    }
}

#[test]
fn the_compose_file_matches_what_federation_init_generates() {
    let compose = compose_file();
    let services = &compose["services"];

    let Init {
        volume,
        command: init,
        parties,
        api_urls,
    } = run_init(services, "federation");
    let nats_url = flag(&init, "--nats-url");

    // The broker: the official image, the generated config, listening where nodes connect.
    let nats_host = nats_url
        .trim_start_matches("nats://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let nats = &services[nats_host.as_str()];
    assert!(
        nats["image"].as_str().unwrap().starts_with("nats:"),
        "the official nats image"
    );
    let nats_command = strings(&nats["command"]);
    let conf_path = local(&flag(&nats_command, "-c"), volume.path());
    let conf = std::fs::read_to_string(&conf_path).unwrap_or_else(|e| panic!("{}: {e}", conf_path.display()));
    let nats_port = nats_url.rsplit(':').next().unwrap();
    assert!(conf.contains(&format!("listen: \"0.0.0.0:{nats_port}\"")), "{conf}");
    assert!(conf.contains("jetstream"), "{conf}");
    // The store is relative to the broker's working directory, which is the volume.
    assert!(conf.contains("store_dir: \"nats\""), "{conf}");
    assert_eq!(nats["working_dir"].as_str(), Some(VOLUME_PATH));
    assert_eq!(strings(&nats["volumes"]), vec![format!("federation:{VOLUME_PATH}")]);
    assert_eq!(
        nats["depends_on"]["federation"]["condition"].as_str(),
        Some("service_completed_successfully")
    );
    the_broker_healthcheck_passes(nats, &conf_path, volume.path());

    // The operator's one-shot provisioning: the federation directory, once the broker is healthy,
    // with the broker URL init wrote for the admin user.
    let provision = &services["provision"];
    assert_eq!(provision["image"].as_str(), Some("fsc:local"));
    assert_eq!(strings(&provision["command"]), ["federation", "provision", VOLUME_PATH]);
    assert_eq!(
        strings(&provision["volumes"]),
        vec![format!("federation:{VOLUME_PATH}")]
    );
    assert_eq!(
        provision["depends_on"][nats_host.as_str()]["condition"].as_str(),
        Some("service_healthy")
    );
    let admin = fsc_tools::federation::AdminConfig::load(volume.path()).unwrap();
    assert_eq!(admin.nats_url, nats_url);

    let roster = Roster::load(&volume.path().join("federation.toml")).unwrap();
    for (party, url) in parties.iter().zip(&api_urls) {
        let service = &services[party.as_str()];
        assert!(!service.is_badvalue(), "a service for party {party}");
        assert_eq!(service["image"].as_str(), Some("fsc:local"));
        assert_eq!(strings(&service["volumes"]), vec![format!("federation:{VOLUME_PATH}")]);
        let command = strings(&service["command"]);
        assert_eq!(command[0], "node");
        let config_path = local(&flag(&command, "--config"), volume.path());
        let config = NodeConfig::load(&config_path, |_| None).unwrap();
        assert_eq!(config.id, *party);
        assert_eq!(config.nats_url, nats_url);
        let port = url.rsplit(':').next().unwrap();
        assert_eq!(
            config.listen,
            format!("0.0.0.0:{port}"),
            "{party} listens where its URL points"
        );
        assert!(
            config.allow_plain_http && config.tls_cert.is_none(),
            "{party} serves plain HTTP in the compose network, as node.toml says"
        );
        assert_eq!(strings(&service["ports"]), vec![format!("127.0.0.1:{port}:{port}")]);
        // Healthy once ready, asked where the node listens; started once the broker is healthy.
        assert_eq!(
            strings(&service["healthcheck"]["test"]),
            [
                "CMD",
                "fsc",
                "healthcheck",
                "--node",
                &format!("http://127.0.0.1:{port}")
            ]
        );
        let depends = &service["depends_on"];
        assert_eq!(
            depends[nats_host.as_str()]["condition"].as_str(),
            Some("service_healthy")
        );
        assert_eq!(
            depends["federation"]["condition"].as_str(),
            Some("service_completed_successfully")
        );
        assert_eq!(
            depends["provision"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{party} starts once the stream is provisioned"
        );
        assert_eq!(
            services["tutorial"]["depends_on"][party.as_str()]["condition"].as_str(),
            Some("service_healthy"),
            "the tutorial waits for {party} to be ready"
        );
        assert_eq!(url, &format!("http://{party}:{port}"), "the URL names the service");
        assert_eq!(roster.party(party).unwrap().api_urls, vec![url.clone()]);
        let names = fsc_node::config::stream::Names::new(&roster.stream);
        assert!(
            conf.contains(&format!("\"{}.>\"", names.inbox_prefix(party))),
            "a broker user for {party}"
        );
    }
    let tutorial = strings(&services["tutorial"]["command"]);
    assert_eq!(flag(&tutorial, "--against").split(',').collect::<Vec<_>>(), api_urls);
    // Nodes beyond loopback need API tokens: the tutorial reads the ones init wrote.
    let token_files: Vec<String> = flag(&tutorial, "--token-files").split(',').map(String::from).collect();
    assert_eq!(
        strings(&services["tutorial"]["volumes"]),
        vec![format!("federation:{VOLUME_PATH}")]
    );
    for (party, file) in parties.iter().zip(&token_files) {
        let token = std::fs::read_to_string(local(file, volume.path())).unwrap();
        let config = NodeConfig::load(&volume.path().join(party).join("node.toml"), |_| None).unwrap();
        assert_eq!(
            config.clients[0].token_sha256,
            fsc_node::keys::api_token_sha256(token.trim()),
            "{party}'s token file holds its admin client's token"
        );
        assert!(config.clients[0].admin);
    }
    // One-shot services have no healthcheck (the image's would never pass).
    for one_shot in ["federation", "provision", "tutorial"] {
        assert_eq!(
            services[one_shot]["healthcheck"]["disable"].as_bool(),
            Some(true),
            "{one_shot}"
        );
    }
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    assert!(text.contains("Compose v2"), "the file says what it needs");

    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("ENTRYPOINT [\"fsc\"]"));
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("CMD [\"fsc\", \"healthcheck\"]"));
    assert!(dockerfile.contains("EXPOSE 55501"));
    // The dependencies are built in a layer of their own, before the sources are copied.
    let at = |what: &str| {
        dockerfile
            .find(what)
            .unwrap_or_else(|| panic!("{what} in the Dockerfile"))
    };
    assert!(at("COPY Cargo.toml Cargo.lock") < at("cargo build --release --locked -p fsc"));
    assert!(at("cargo build --release --locked -p fsc") < at("COPY . ."));
    assert!(dockerfile.matches("cargo build --release --locked -p fsc").count() == 2);
    // Cargo refuses a workspace with a member missing: the stub layer copies every member's
    // manifest and gives it a stub source.
    let workspace: toml::Table = toml::from_str(&std::fs::read_to_string(repo().join("Cargo.toml")).unwrap()).unwrap();
    let stub_layer = &dockerfile[..at("COPY . .")];
    for member in workspace["workspace"]["members"].as_array().unwrap() {
        let member = member.as_str().unwrap();
        assert!(
            stub_layer.contains(&format!("COPY {member}/Cargo.toml {member}/")),
            "{member}'s manifest in the Dockerfile's dependency layer"
        );
        assert!(
            stub_layer.contains(&format!("{member}/src")) || member == "tests",
            "{member}'s stub source"
        );
    }
}

/// Kills the broker when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs nats-server as the compose service does (the generated config, the volume as working
/// directory; ports of its own choosing), and asks it what the service's healthcheck asks.
fn the_broker_healthcheck_passes(service: &Yaml, conf: &Path, volume: &Path) {
    let command = strings(&service["command"]);
    assert_eq!(flag(&command, "-m"), "8222", "monitoring on");
    let test = strings(&service["healthcheck"]["test"]);
    let url = test.last().unwrap();
    let path = url
        .strip_prefix("http://127.0.0.1:8222")
        .unwrap_or_else(|| panic!("{url}"));
    let ports = tempfile::tempdir().unwrap();
    let nats = find_nats_server().expect("nats-server (run scripts/setup)");
    let _broker = Killed(
        Command::new(nats)
            .current_dir(volume)
            .arg("-c")
            .arg(conf)
            .args(["-p", "-1", "-m", "-1", "--ports_file_dir"])
            .arg(ports.path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let monitoring = std::fs::read_dir(ports.path())
            .unwrap()
            .filter_map(|f| std::fs::read_to_string(f.ok()?.path()).ok())
            .find_map(|text| {
                let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
                Some(
                    ports["monitoring"][0]
                        .as_str()?
                        .trim_start_matches("http://")
                        .to_string(),
                )
            });
        if let Some(answer) = monitoring.and_then(|address| http_get(&address, path)) {
            if answer.starts_with("HTTP/1.1 200") {
                break answer;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the broker's healthcheck did not pass within 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(answer.contains("ok"), "{answer}");
    assert!(
        volume.join("nats/jetstream").is_dir(),
        "the store in the working directory"
    );
}

fn http_get(address: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(address).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// The `leaf` profile: its own init (the leaf topology, its own volume), a hub, and per party a
/// leaf server and a node that connects only to that leaf; every service of the profile is in it.
#[test]
fn the_leaf_profile_matches_what_federation_init_generates() {
    let compose = compose_file();
    let services = &compose["services"];
    let Init {
        volume,
        command: init,
        parties,
        api_urls,
    } = run_init(services, "federation-leaf");
    assert_eq!(flag(&init, "--topology"), "leaf");
    let mount = vec![format!("federation-leaf:{VOLUME_PATH}")];
    let in_profile = |name: &str| {
        let service = &services[name];
        assert!(!service.is_badvalue(), "a service {name}");
        assert_eq!(
            strings(&service["profiles"]),
            ["leaf"],
            "{name} is in the leaf profile only"
        );
        assert_eq!(strings(&service["volumes"]), mount, "{name} mounts the leaf federation");
        service
    };
    in_profile("federation-leaf");
    in_profile("tutorial-leaf");
    // The operator provisions the stream on the hub, where admin/admin.toml says it is.
    let provision = in_profile("provision-leaf");
    assert_eq!(strings(&provision["command"]), ["federation", "provision", VOLUME_PATH]);
    assert_eq!(
        provision["depends_on"]["hub"]["condition"].as_str(),
        Some("service_healthy")
    );
    let admin = std::fs::read_to_string(volume.path().join("admin/admin.toml")).unwrap();
    assert!(
        admin.contains(&format!("nats_url = \"{}\"", flag(&init, "--nats-url"))),
        "{admin}"
    );

    // The hub: JetStream in the domain the nodes use, a leafnode listener where leaves dial.
    let hub = in_profile("hub");
    assert!(hub["image"].as_str().unwrap().starts_with("nats:"));
    let hub_conf = std::fs::read_to_string(local(&flag(&strings(&hub["command"]), "-c"), volume.path())).unwrap();
    assert!(hub_conf.contains("domain: \"hub\""), "{hub_conf}");
    let hub_leaf_url = flag(&init, "--hub-leaf-url");
    let hub_leaf_port = hub_leaf_url.rsplit(':').next().unwrap();
    assert!(
        hub_conf.contains(&format!("listen: \"0.0.0.0:{hub_leaf_port}\"")),
        "{hub_conf}"
    );
    assert_eq!(hub_leaf_url, "nats-leaf://hub:7422", "the leaves dial the hub service");

    for ((party, url), leaf_url) in parties.iter().zip(&api_urls).zip(flag(&init, "--leaf-urls").split(',')) {
        let leaf_name = format!("leaf-{party}");
        let leaf = in_profile(&leaf_name);
        let leaf_conf = std::fs::read_to_string(local(&flag(&strings(&leaf["command"]), "-c"), volume.path())).unwrap();
        assert!(leaf_conf.contains(&format!("url: \"{hub_leaf_url}\"")), "{leaf_conf}");
        assert!(!leaf_conf.contains("jetstream"), "no JetStream on a leaf: {leaf_conf}");
        assert_eq!(leaf["depends_on"]["hub"]["condition"].as_str(), Some("service_healthy"));
        assert_eq!(
            leaf_url,
            format!("nats://{leaf_name}:4222"),
            "the URL names the leaf service"
        );

        let node = in_profile(&format!("node-{party}"));
        let config_path = local(&flag(&strings(&node["command"]), "--config"), volume.path());
        let config = NodeConfig::load(&config_path, |_| None).unwrap();
        assert_eq!(config.nats_url, leaf_url, "{party} connects to its own leaf only");
        assert_eq!(config.jetstream_domain.as_deref(), Some("hub"));
        let port = url.rsplit(':').next().unwrap();
        assert_eq!(url, &format!("http://node-{party}:{port}"));
        assert_eq!(strings(&node["ports"]), vec![format!("127.0.0.1:{port}:{port}")]);
        assert_eq!(
            node["depends_on"][leaf_name.as_str()]["condition"].as_str(),
            Some("service_healthy")
        );
        assert_eq!(
            node["depends_on"]["provision-leaf"]["condition"].as_str(),
            Some("service_completed_successfully")
        );
        assert_eq!(
            services["tutorial-leaf"]["depends_on"][format!("node-{party}").as_str()]["condition"].as_str(),
            Some("service_healthy")
        );
    }
    assert_eq!(
        flag(&strings(&services["tutorial-leaf"]["command"]), "--against")
            .split(',')
            .collect::<Vec<_>>(),
        api_urls
    );
    assert!(!compose["volumes"]["federation-leaf"].is_badvalue());
}
