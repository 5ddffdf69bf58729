//! Broker layouts that `fsc federation init --topology` writes: where the NATS servers listen,
//! how they reach each other, where JetStream runs, and which URLs (and JetStream domain) each
//! party's node uses.
//!
//! - `single`: one server with JetStream (`nats-server.conf`); every node connects to it.
//! - `cluster`: three servers (`nats-1.conf` … `nats-3.conf`), routed to each other (the routes
//!   authenticated by a generated password), JetStream on each with its own store; the roster asks
//!   for three replicas of the stream. Party i's node lists server `i mod 3` first, then the others.
//! - `supercluster`: two such clusters, `fsc-a` (`nats-a1.conf` … `nats-a3.conf`) and `fsc-b`
//!   (`nats-b1.conf` …), joined by gateways (authenticated like the routes); JetStream on every
//!   server, the stream's three replicas placed in `fsc-a` by a server tag. Party i's node lists a
//!   server of `fsc-a` first for even i, of `fsc-b` for odd i, then the rest of that cluster, then
//!   the other's.
//! - `leaf`: a hub (`nats-server.conf`) with JetStream in the domain `hub` and a leafnode listener,
//!   and per party `<id>/leaf.conf`: a server without JetStream that dials out to the hub as the
//!   party's user and serves only the party's node, which reaches the stream under
//!   `$JS.hub.API`. Only outgoing connections leave a party's network (the firewall shape).
//!
//! Who may do what on the broker (the users block) is not decided here: the layouts take it from
//! [`Users`], given the JetStream API prefix the users call. This module builds text; `federation`
//! writes it.

use crate::error::Error;

/// The JetStream domain of the hub of a `leaf` federation.
pub const HUB_DOMAIN: &str = "hub";
/// The default port of a server's cluster routes (NATS's convention).
const ROUTE_PORT: u16 = 6222;
/// The default port of the hub's leafnode listener (NATS's convention).
const LEAF_PORT: u16 = 7422;
/// The default port of a server's gateway listener (NATS's convention).
const GATEWAY_PORT: u16 = 7222;
/// The clusters of a `supercluster`; the first holds the stream.
const SUPERCLUSTER: [&str; 2] = ["fsc-a", "fsc-b"];
/// Servers of a `cluster` federation: the least that keeps a replicated stream available
/// (a majority of three survives the loss of one).
pub const CLUSTER_SERVERS: usize = 3;

/// The broker's users as config text, built by `federation` (which owns their permissions).
/// `domain` is the JetStream domain the parties call the stream's servers in, if any.
pub trait Users {
    /// Every party's user and the operator's.
    fn all(&self, domain: Option<&str>) -> String;
    /// Only `party`'s user (for the party's own leaf server).
    fn party(&self, party: &str, domain: Option<&str>) -> String;
    /// The hub's users: each party's leaf server's (calling JetStream for its node) and the
    /// operator's.
    fn leaves(&self, domain: Option<&str>) -> String;
}

/// Which layout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Topology {
    #[default]
    Single,
    Cluster,
    Supercluster,
    Leaf,
}

impl std::str::FromStr for Topology {
    type Err = String;

    fn from_str(text: &str) -> Result<Topology, String> {
        match text {
            "single" => Ok(Topology::Single),
            "cluster" => Ok(Topology::Cluster),
            "supercluster" => Ok(Topology::Supercluster),
            "leaf" => Ok(Topology::Leaf),
            other => Err(format!(
                "topology {other:?} is none of single, cluster, supercluster, leaf"
            )),
        }
    }
}

/// Where the servers of a layout listen, from `federation init`'s URLs.
#[derive(Debug, Clone)]
pub enum Layout {
    Single {
        url: String,
    },
    Cluster {
        /// Client URL and route URL of each server.
        servers: Vec<(String, String)>,
    },
    Supercluster {
        /// Client, route and gateway URL of each server: `fsc-a`'s three, then `fsc-b`'s.
        servers: Vec<(String, String, String)>,
    },
    Leaf {
        /// The hub's client URL (for operators) and leafnode URL (for the leaves).
        hub: String,
        hub_leaf: String,
        /// Each party's leaf server's client URL, in party order.
        leaves: Vec<String>,
    },
}

/// What a node of one party needs to reach the broker.
pub struct NodeBroker {
    pub nats_url: String,
    pub jetstream_domain: Option<String>,
}

/// One file of a layout: its path in the federation directory, its text, and whether it holds
/// a secret (a route password or a party's seed), to be written with mode 0600.
pub struct ConfigFile {
    pub path: String,
    pub text: String,
    pub secret: bool,
}

impl Layout {
    /// The layout of `topology` from the URLs given to `federation init`: `nats_urls` (the
    /// single server; the three servers of a cluster; the six of a supercluster, `fsc-a`'s
    /// first; the hub), `route_urls` (cluster, supercluster; default port 6222 on each server's
    /// host), `gateway_urls` (supercluster; default port 7222 on each server's host),
    /// `hub_leaf_url` (leaf; default port 7422 on the hub's host), `leaf_urls` (leaf; per party,
    /// default `nats://127.0.0.1:4222`, each party's own loopback).
    pub fn new(
        topology: Topology,
        nats_urls: &str,
        route_urls: &[String],
        gateway_urls: &[String],
        hub_leaf_url: Option<&str>,
        leaf_urls: &[String],
        parties: usize,
    ) -> Result<Layout, Error> {
        let urls: Vec<String> = nats_urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(String::from)
            .collect();
        for url in &urls {
            Address::parse(url, "nats")?;
        }
        let unused = |what: &str, given: bool| {
            if given {
                Err(Error::Config(format!("{what} applies to another topology")))
            } else {
                Ok(())
            }
        };
        let no_leaves = || {
            unused(
                "--hub-leaf-url / --leaf-urls",
                hub_leaf_url.is_some() || !leaf_urls.is_empty(),
            )
        };
        match topology {
            Topology::Single => {
                unused("--route-urls", !route_urls.is_empty())?;
                unused("--gateway-urls", !gateway_urls.is_empty())?;
                no_leaves()?;
                let [url] = urls.as_slice() else {
                    return Err(Error::Config("a single broker has one nats url".into()));
                };
                Ok(Layout::Single { url: url.clone() })
            }
            Topology::Cluster => {
                unused("--gateway-urls", !gateway_urls.is_empty())?;
                no_leaves()?;
                if urls.len() != CLUSTER_SERVERS {
                    return Err(Error::Config(format!(
                        "a cluster has {CLUSTER_SERVERS} servers: give --nats-url as {CLUSTER_SERVERS} comma-separated URLs"
                    )));
                }
                let routes = per_server(&urls, route_urls, "nats-route", ROUTE_PORT, "--route-urls")?;
                distinct(&[&urls, &routes])?;
                Ok(Layout::Cluster {
                    servers: urls.into_iter().zip(routes).collect(),
                })
            }
            Topology::Supercluster => {
                no_leaves()?;
                let servers = SUPERCLUSTER.len() * CLUSTER_SERVERS;
                if urls.len() != servers {
                    return Err(Error::Config(format!(
                        "a supercluster has {servers} servers, {CLUSTER_SERVERS} per cluster: give --nats-url as \
                         {servers} comma-separated URLs, those of {} (which holds the stream) first",
                        SUPERCLUSTER[0]
                    )));
                }
                let routes = per_server(&urls, route_urls, "nats-route", ROUTE_PORT, "--route-urls")?;
                let gateways = per_server(&urls, gateway_urls, "nats", GATEWAY_PORT, "--gateway-urls")?;
                distinct(&[&urls, &routes, &gateways])?;
                Ok(Layout::Supercluster {
                    servers: urls
                        .into_iter()
                        .zip(routes)
                        .zip(gateways)
                        .map(|((client, route), gateway)| (client, route, gateway))
                        .collect(),
                })
            }
            Topology::Leaf => {
                unused("--route-urls", !route_urls.is_empty())?;
                unused("--gateway-urls", !gateway_urls.is_empty())?;
                let [hub] = urls.as_slice() else {
                    return Err(Error::Config("the hub has one nats url".into()));
                };
                let hub_leaf = match hub_leaf_url {
                    Some(url) => url.to_string(),
                    None => format!("nats-leaf://{}:{LEAF_PORT}", Address::parse(hub, "nats")?.connect_host),
                };
                Address::parse(&hub_leaf, "nats-leaf")?;
                let leaves = if leaf_urls.is_empty() {
                    vec!["nats://127.0.0.1:4222".to_string(); parties]
                } else {
                    leaf_urls.to_vec()
                };
                if leaves.len() != parties {
                    return Err(Error::Config(format!(
                        "--leaf-urls lists {} URLs for {parties} parties",
                        leaves.len()
                    )));
                }
                for url in &leaves {
                    Address::parse(url, "nats")?;
                }
                Ok(Layout::Leaf {
                    hub: hub.clone(),
                    hub_leaf,
                    leaves,
                })
            }
        }
    }

    /// Copies of the stream this layout keeps.
    pub fn replicas(&self) -> usize {
        match self {
            Layout::Cluster { .. } | Layout::Supercluster { .. } => CLUSTER_SERVERS,
            _ => 1,
        }
    }

    /// The server tags the stream must be placed on: a supercluster's first cluster's.
    pub fn placement_tags(&self) -> Vec<String> {
        match self {
            Layout::Supercluster { .. } => vec![cluster_tag(SUPERCLUSTER[0])],
            _ => Vec::new(),
        }
    }

    /// How the i-th party's node reaches the broker.
    pub fn node(&self, party: usize) -> NodeBroker {
        match self {
            Layout::Single { url } => NodeBroker {
                nats_url: url.clone(),
                jetstream_domain: None,
            },
            Layout::Cluster { servers } => {
                let own = party % servers.len();
                let order = (0..servers.len()).map(|k| servers[(own + k) % servers.len()].0.as_str());
                NodeBroker {
                    nats_url: order.collect::<Vec<_>>().join(","),
                    jetstream_domain: None,
                }
            }
            Layout::Supercluster { servers } => {
                // Parties alternate between the clusters and, within one, between its servers.
                let clusters = SUPERCLUSTER.len();
                let (home, own) = (party % clusters, (party / clusters) % CLUSTER_SERVERS);
                let order = (0..clusters).flat_map(|c| {
                    let cluster = (home + c) % clusters;
                    (0..CLUSTER_SERVERS).map(move |k| cluster * CLUSTER_SERVERS + (own + k) % CLUSTER_SERVERS)
                });
                NodeBroker {
                    nats_url: order.map(|i| servers[i].0.as_str()).collect::<Vec<_>>().join(","),
                    jetstream_domain: None,
                }
            }
            Layout::Leaf { leaves, .. } => NodeBroker {
                nats_url: leaves[party].clone(),
                jetstream_domain: Some(HUB_DOMAIN.to_string()),
            },
        }
    }

    /// Every server config of the layout. `parties` pairs each party id with its NKey seed (a
    /// leaf dials out to the hub as its party); `route_password` authenticates cluster routes.
    pub fn files(
        &self,
        users: &dyn Users,
        parties: &[(String, String)],
        route_password: &str,
    ) -> Result<Vec<ConfigFile>, Error> {
        match self {
            Layout::Single { url } => Ok(vec![ConfigFile {
                path: "nats-server.conf".into(),
                text: server_config(
                    "nats-server.conf",
                    &Address::parse(url, "nats")?,
                    "jetstream {\n    store_dir: \"nats\"\n}\n",
                    &users.all(None),
                ),
                secret: false,
            }]),
            Layout::Cluster { servers } => {
                let mut files = Vec::new();
                for (i, (client, _)) in servers.iter().enumerate() {
                    let n = i + 1;
                    let peers: Vec<&String> = servers.iter().map(|(_, route)| route).collect();
                    let body = format!(
                        "server_name: \"fsc-{n}\"\n\
                         jetstream {{\n    store_dir: \"nats-{n}\"\n}}\n\
                         # Routes to the other two servers; only they know the password.\n{}",
                        cluster_block("fsc", i, &peers, route_password)?
                    );
                    let name = format!("nats-{n}.conf");
                    files.push(ConfigFile {
                        text: server_config(&name, &Address::parse(client, "nats")?, &body, &users.all(None)),
                        path: name,
                        secret: true,
                    });
                }
                Ok(files)
            }
            Layout::Supercluster { servers } => {
                let clusters: Vec<&[(String, String, String)]> = servers.chunks(CLUSTER_SERVERS).collect();
                let mut gateways = Vec::new();
                for (cluster, members) in SUPERCLUSTER.iter().zip(&clusters) {
                    let urls = members
                        .iter()
                        .map(|(_, _, gateway)| {
                            let gateway = Address::parse(gateway, "nats")?;
                            Ok(format!(
                                "\"nats://fsc-gateway:{route_password}@{}:{}\"",
                                gateway.connect_host, gateway.port
                            ))
                        })
                        .collect::<Result<Vec<_>, Error>>()?;
                    gateways.push(format!(
                        "        {{ name: \"{cluster}\", urls: [{}] }}",
                        urls.join(", ")
                    ));
                }
                let mut files = Vec::new();
                for (cluster, members) in SUPERCLUSTER.iter().zip(&clusters) {
                    let letter = &cluster["fsc-".len()..];
                    for (i, (client, _, gateway)) in members.iter().enumerate() {
                        let name = format!("{letter}{}", i + 1);
                        let gateway = Address::parse(gateway, "nats")?;
                        let peers: Vec<&String> = members.iter().map(|(_, route, _)| route).collect();
                        let body = format!(
                            "server_name: \"fsc-{name}\"\n\
                             # The stream's replicas go to the servers with its placement tag.\n\
                             server_tags: [\"{tag}\"]\n\
                             jetstream {{\n    store_dir: \"nats-{name}\"\n}}\n\
                             # Routes to the other servers of {cluster}; only they know the password.\n{routes}\
                             # Gateways join the clusters; only their servers know the password.\n\
                             gateway {{\n    name: \"{cluster}\"\n    listen: \"{host}:{port}\"\n    \
                             authorization {{ user: \"fsc-gateway\", password: \"{route_password}\" }}\n    \
                             gateways: [\n{gateways}\n    ]\n}}\n",
                            tag = cluster_tag(cluster),
                            routes = cluster_block(cluster, i, &peers, route_password)?,
                            host = gateway.host,
                            port = gateway.port,
                            gateways = gateways.join(",\n"),
                        );
                        let path = format!("nats-{name}.conf");
                        files.push(ConfigFile {
                            text: server_config(&path, &Address::parse(client, "nats")?, &body, &users.all(None)),
                            path,
                            secret: true,
                        });
                    }
                }
                Ok(files)
            }
            Layout::Leaf { hub, hub_leaf, leaves } => {
                let leaf = Address::parse(hub_leaf, "nats-leaf")?;
                let body = format!(
                    "server_name: \"fsc-hub\"\n\
                     # The domain lets the leaves (which have no JetStream) call this JetStream as\n\
                     # $JS.{HUB_DOMAIN}.API.\n\
                     jetstream {{\n    store_dir: \"nats\"\n    domain: \"{HUB_DOMAIN}\"\n}}\n\
                     # Each party's leaf server dials in here as the party's user below.\n\
                     leafnodes {{\n    listen: \"{}:{}\"\n}}\n",
                    leaf.host, leaf.port
                );
                let mut files = vec![ConfigFile {
                    path: "nats-server.conf".into(),
                    text: server_config(
                        "nats-server.conf",
                        &Address::parse(hub, "nats")?,
                        &body,
                        &users.leaves(Some(HUB_DOMAIN)),
                    ),
                    secret: false,
                }];
                for ((id, seed), url) in parties.iter().zip(leaves) {
                    let body = format!(
                        "server_name: \"fsc-leaf-{id}\"\n\
                         # No JetStream here: the stream is the hub's. The one remote dials out to the\n\
                         # hub as {id}'s user (the seed is {id}'s nats.nk), so this file is secret.\n\
                         leafnodes {{\n    remotes: [\n        {{ url: \"nats-leaf://{}:{}\", nkey: \"{seed}\" }}\n    ]\n}}\n",
                        leaf.connect_host, leaf.port
                    );
                    let path = format!("{id}/leaf.conf");
                    files.push(ConfigFile {
                        text: server_config(
                            &path,
                            &Address::parse(url, "nats")?,
                            &body,
                            &users.party(id, Some(HUB_DOMAIN)),
                        ),
                        path,
                        secret: true,
                    });
                }
                Ok(files)
            }
        }
    }
}

/// The server tag of a supercluster's cluster.
fn cluster_tag(cluster: &str) -> String {
    format!("cluster:{cluster}")
}

/// The `cluster` block of the `own`-th of the servers whose route URLs are `routes`: it listens
/// on its own route and dials the others', with the password only the servers know.
fn cluster_block(name: &str, own: usize, routes: &[&String], password: &str) -> Result<String, Error> {
    let listen = Address::parse(routes[own], "nats-route")?;
    let peers = routes
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != own)
        .map(|(_, url)| {
            let peer = Address::parse(url, "nats-route")?;
            Ok(format!(
                "\"nats-route://fsc-route:{password}@{}:{}\"",
                peer.connect_host, peer.port
            ))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(format!(
        "cluster {{\n    name: \"{name}\"\n    listen: \"{}:{}\"\n    \
         authorization {{ user: \"fsc-route\", password: \"{password}\" }}\n    \
         routes: [{}]\n}}\n",
        listen.host,
        listen.port,
        peers.join(", ")
    ))
}

/// Each server's URL of one kind (`scheme`): as `given`, one per server, or `default_port` on
/// each server's host.
fn per_server(
    servers: &[String],
    given: &[String],
    scheme: &str,
    default_port: u16,
    flag: &str,
) -> Result<Vec<String>, Error> {
    let urls = if given.is_empty() {
        servers
            .iter()
            .map(|url| {
                Ok(format!(
                    "{scheme}://{}:{default_port}",
                    Address::parse(url, "nats")?.connect_host
                ))
            })
            .collect::<Result<Vec<_>, Error>>()?
    } else {
        given.to_vec()
    };
    if urls.len() != servers.len() {
        return Err(Error::Config(format!(
            "{flag} needs {} URLs, one per server",
            servers.len()
        )));
    }
    for url in &urls {
        Address::parse(url, scheme)?;
    }
    Ok(urls)
}

/// Fails if two of the servers' listeners (clients, routes, gateways) share an address.
fn distinct(kinds: &[&[String]]) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::new();
    for url in kinds.iter().flat_map(|urls| urls.iter()) {
        let scheme = url.split("://").next().unwrap_or_default();
        let address = Address::parse(url, scheme)?;
        if !seen.insert((address.connect_host.clone(), address.port)) {
            return Err(Error::Config(format!(
                "{url}: two servers (or two listeners of one server) share an address; on one host, \
                 give each its own --nats-url, --route-urls (and --gateway-urls) ports"
            )));
        }
    }
    Ok(())
}

fn server_config(name: &str, listen: &Address, body: &str, users: &str) -> String {
    format!(
        "# nats-server config for an fsc federation, written by `fsc federation init`.\n\
         # Run: nats-server -c {name}\n\
         listen: \"{host}:{port}\"\n\
         # 8 MB, NATS's recommended ceiling: a matrix product's masked matrix runs to tens of MB,\n\
         # and each chunk of a message costs a store transaction at the receiver.\n\
         max_payload: 8MB\n\
         # Store directories are relative to the directory nats-server runs in (not to this file).\n\
         {body}\
         authorization {{\n  users: [\n{users}\n  ]\n}}\n",
        host = listen.host,
        port = listen.port,
    )
}

/// A server address from a URL: `host` where the server listens (an IP address as given, a
/// host name (as in a container network) on all interfaces), `connect_host` as others dial it.
#[derive(Debug)]
pub struct Address {
    pub host: String,
    pub connect_host: String,
    pub port: u16,
}

impl Address {
    pub fn parse(url: &str, scheme: &str) -> Result<Address, Error> {
        let bad = || Error::Config(format!("url {url:?} must look like {scheme}://host:port"));
        let rest = url
            .strip_prefix(scheme)
            .and_then(|r| r.strip_prefix("://"))
            .ok_or_else(bad)?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let port = port.trim_end_matches('/').parse().map_err(|_| bad())?;
        if host.is_empty() || host.contains(['@', '/']) {
            return Err(bad());
        }
        let listen = if host.parse::<std::net::IpAddr>().is_ok() {
            host.to_string()
        } else {
            "0.0.0.0".to_string()
        };
        Ok(Address {
            host: listen,
            connect_host: host.to_string(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fsc_node::config::broker::api_prefix;

    struct Plain;

    impl Users for Plain {
        fn all(&self, domain: Option<&str>) -> String {
            format!("    # all {}", api_prefix(domain))
        }
        fn party(&self, party: &str, domain: Option<&str>) -> String {
            format!("    # {party} {}", api_prefix(domain))
        }
        fn leaves(&self, domain: Option<&str>) -> String {
            format!("    # leaves {}", api_prefix(domain))
        }
    }

    fn parties() -> Vec<(String, String)> {
        ["alice", "bob", "carol", "dave"]
            .iter()
            .map(|id| (id.to_string(), format!("SU-{id}")))
            .collect()
    }

    #[test]
    fn a_cluster_routes_three_servers_and_lists_each_partys_own_server_first() {
        let urls = "nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222";
        let layout = Layout::new(Topology::Cluster, urls, &[], &[], None, &[], 4).unwrap();
        assert_eq!(layout.replicas(), 3);
        assert_eq!(
            layout.node(1).nats_url,
            "nats://10.0.0.2:4222,nats://10.0.0.3:4222,nats://10.0.0.1:4222"
        );
        assert_eq!(layout.node(3).nats_url.split(',').next(), Some("nats://10.0.0.1:4222"));
        let files = layout.files(&Plain, &parties(), "pw").unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["nats-1.conf", "nats-2.conf", "nats-3.conf"]);
        let second = &files[1].text;
        assert!(second.contains("listen: \"10.0.0.2:6222\""), "{second}");
        assert!(second.contains("store_dir: \"nats-2\""), "{second}");
        assert!(
            second.contains("\"nats-route://fsc-route:pw@10.0.0.1:6222\""),
            "{second}"
        );
        assert!(!second.contains("@10.0.0.2:6222"), "no route to itself: {second}");
        assert!(second.contains("# all $JS.API"), "{second}");
        assert!(files.iter().all(|f| f.secret), "the route password is secret");
        let one_host = "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224";
        let error = Layout::new(Topology::Cluster, one_host, &[], &[], None, &[], 3).unwrap_err();
        assert!(error.to_string().contains("--route-urls"), "{error}");
        assert!(Layout::new(Topology::Cluster, "nats://a:4222", &[], &[], None, &[], 3).is_err());
        // Host names (as in a container network): each server on its own host, default ports.
        let named = Layout::new(
            Topology::Cluster,
            "nats://n1:4222,nats://n2:4222,nats://n3:4222",
            &[],
            &[],
            None,
            &[],
            3,
        )
        .unwrap();
        let files = named.files(&Plain, &parties(), "pw").unwrap();
        assert!(files[0].text.contains("listen: \"0.0.0.0:6222\""), "{}", files[0].text);
        assert!(files[0].text.contains("@n2:6222\""), "{}", files[0].text);
    }

    #[test]
    fn a_leaf_federation_has_a_hub_with_a_domain_and_a_leaf_per_party() {
        let leaves: Vec<String> = (0..4).map(|i| format!("nats://127.0.0.1:{}", 5000 + i)).collect();
        let layout = Layout::new(Topology::Leaf, "nats://hub.example:4222", &[], &[], None, &leaves, 4).unwrap();
        let node = layout.node(2);
        assert_eq!(node.nats_url, "nats://127.0.0.1:5002");
        assert_eq!(node.jetstream_domain.as_deref(), Some("hub"));
        let files = layout.files(&Plain, &parties(), "pw").unwrap();
        let hub = &files[0];
        assert_eq!(hub.path, "nats-server.conf");
        assert!(hub.text.contains("domain: \"hub\""), "{}", hub.text);
        assert!(hub.text.contains("listen: \"0.0.0.0:7422\""), "{}", hub.text);
        assert!(hub.text.contains("# leaves $JS.hub.API"), "{}", hub.text);
        let carol = files.iter().find(|f| f.path == "carol/leaf.conf").unwrap();
        assert!(carol.secret);
        assert!(carol.text.contains("listen: \"127.0.0.1:5002\""), "{}", carol.text);
        assert!(
            carol
                .text
                .contains("{ url: \"nats-leaf://hub.example:7422\", nkey: \"SU-carol\" }"),
            "{}",
            carol.text
        );
        assert!(carol.text.contains("# carol $JS.hub.API"), "{}", carol.text);
        assert!(!carol.text.contains("jetstream"), "{}", carol.text);
        assert!(Layout::new(Topology::Leaf, "nats://hub:4222", &[], &[], None, &leaves[..2], 4).is_err());
    }

    #[test]
    fn a_single_broker_is_what_init_always_wrote() {
        let layout = Layout::new(Topology::Single, "nats://nats:4222", &[], &[], None, &[], 2).unwrap();
        assert_eq!(layout.replicas(), 1);
        assert_eq!(layout.node(1).nats_url, "nats://nats:4222");
        let files = layout.files(&Plain, &parties(), "pw").unwrap();
        assert_eq!(files.len(), 1);
        assert!(files[0].text.contains("listen: \"0.0.0.0:4222\""));
        assert!(!files[0].secret);
        assert!(Layout::new(Topology::Single, "nats://a:1,nats://b:2", &[], &[], None, &[], 2).is_err());
        assert!(
            Layout::new(
                Topology::Single,
                "nats://a:1",
                &["nats-route://a:2".into()],
                &[],
                None,
                &[],
                2
            )
            .is_err()
        );
    }

    #[test]
    fn a_supercluster_joins_two_clusters_by_gateways_and_places_the_stream_in_the_first() {
        let urls: Vec<String> = (1..=6).map(|i| format!("nats://10.0.0.{i}:4222")).collect();
        let layout = Layout::new(Topology::Supercluster, &urls.join(","), &[], &[], None, &[], 4).unwrap();
        assert_eq!(layout.replicas(), 3);
        assert_eq!(layout.placement_tags(), ["cluster:fsc-a"]);
        let order = |party| layout.node(party).nats_url;
        assert_eq!(
            order(0),
            [1, 2, 3, 4, 5, 6].map(|i| format!("nats://10.0.0.{i}:4222")).join(",")
        );
        assert_eq!(
            order(1),
            [4, 5, 6, 1, 2, 3].map(|i| format!("nats://10.0.0.{i}:4222")).join(",")
        );
        assert_eq!(
            order(3),
            [5, 6, 4, 2, 3, 1].map(|i| format!("nats://10.0.0.{i}:4222")).join(",")
        );
        let files = layout.files(&Plain, &parties(), "pw").unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            names,
            [
                "nats-a1.conf",
                "nats-a2.conf",
                "nats-a3.conf",
                "nats-b1.conf",
                "nats-b2.conf",
                "nats-b3.conf"
            ]
        );
        assert!(
            files.iter().all(|f| f.secret),
            "the route and gateway password is secret"
        );
        let b2 = &files[4].text;
        for expected in [
            "server_name: \"fsc-b2\"",
            "server_tags: [\"cluster:fsc-b\"]",
            "store_dir: \"nats-b2\"",
            "name: \"fsc-b\"",
            "listen: \"10.0.0.5:6222\"",
            "\"nats-route://fsc-route:pw@10.0.0.4:6222\", \"nats-route://fsc-route:pw@10.0.0.6:6222\"]",
            "listen: \"10.0.0.5:7222\"",
            "{ name: \"fsc-a\", urls: [\"nats://fsc-gateway:pw@10.0.0.1:7222\", \"nats://fsc-gateway:pw@10.0.0.2:7222\", \"nats://fsc-gateway:pw@10.0.0.3:7222\"] }",
            "# all $JS.API",
        ] {
            assert!(b2.contains(expected), "{expected} in\n{b2}");
        }
        assert!(!b2.contains("@10.0.0.1:6222"), "routes stay within a cluster: {b2}");
        let too_few = Layout::new(Topology::Supercluster, &urls[..3].join(","), &[], &[], None, &[], 2);
        assert!(too_few.unwrap_err().to_string().contains("6 comma-separated"));
        let gateways: Vec<String> = (1..=6).map(|i| format!("nats://10.0.0.{i}:4222")).collect();
        let clash = Layout::new(Topology::Supercluster, &urls.join(","), &[], &gateways, None, &[], 2);
        assert!(clash.unwrap_err().to_string().contains("share an address"));
        let misplaced = Layout::new(
            Topology::Cluster,
            &urls[..3].join(","),
            &[],
            &gateways[..3],
            None,
            &[],
            2,
        );
        assert!(misplaced.unwrap_err().to_string().contains("--gateway-urls"));
    }
}
