//! docker-compose.yml cannot run here (no Docker engine), so this keeps it honest: it runs the
//! federation service's own `fsc federation init` command and checks that the broker and node
//! services point at the files, ports and URLs that command generates.

use fsc_e2e::fsc_bin;
use fsc_node::config::{NodeConfig, Roster};
use std::path::{Path, PathBuf};
use std::process::Command;
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

#[test]
fn the_compose_file_matches_what_federation_init_generates() {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    let compose = &YamlLoader::load_from_str(&text).unwrap()[0];
    let services = &compose["services"];

    // Run the federation service's command, with a temporary directory as the volume.
    let volume = tempfile::tempdir().unwrap();
    let init = strings(&services["federation"]["command"]);
    let args: Vec<String> = init
        .iter()
        .map(|a| a.replace(VOLUME_PATH, volume.path().to_str().unwrap()))
        .collect();
    let output = Command::new(fsc_bin()).args(&args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let parties: Vec<String> = flag(&init, "--parties").split(',').map(String::from).collect();
    let api_urls: Vec<String> = flag(&init, "--api-urls").split(',').map(String::from).collect();
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
    assert!(
        conf.contains(&format!("store_dir: \"{}/nats\"", volume.path().display())),
        "{conf}"
    );
    assert_eq!(strings(&nats["volumes"]), vec![format!("federation:{VOLUME_PATH}")]);

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
        assert_eq!(url, &format!("http://{party}:{port}"), "the URL names the service");
        assert_eq!(roster.party(party).unwrap().api_urls, vec![url.clone()]);
        assert!(
            conf.contains(&format!("\"fsc.*.*.{party}\"")),
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
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo build --release --locked -p fsc"));
    assert!(dockerfile.contains("ENTRYPOINT [\"fsc\"]"));
}
