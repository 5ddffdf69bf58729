//! fsc-node: the service library behind `fsc node`.
//!
//! - [`config`]: typed `node.toml` and roster; [`keys`]: secret key files;
//! - [`federation`]: `fsc federation init` (roster, node configs, keys, broker config);
//! - [`envelope`]: sealing and opening messages between parties;
//! - [`store`]: SQLite (sqlx) persistence; [`runtime`]: persist-then-act application of the engine;
//! - [`stream`]: the federation's stream: names, spec, verification, provisioning;
//! - [`transport`]: the NATS connection, inbox consumer and publisher, which sends the small
//!   messages queued for one peer together ([`bundle`]);
//! - [`api`]: the HTTP APIs, served with [`tls`] where configured; [`node`]: all of it
//!   assembled; [`client`]: a client of the v1 API;
//! - [`caller`]: which API client asks, and what it may touch;
//! - [`broker`]: a local nats-server process (for the demo and the tests); [`demo`]: `fsc demo`.

pub mod api;
pub mod broker;
pub mod bundle;
pub mod caller;
pub mod client;
pub mod config;
pub mod demo;
pub mod envelope;
pub mod error;
pub mod federation;
pub mod keys;
pub mod metrics;
pub mod node;
pub mod runtime;
pub mod store;
pub mod stream;
pub mod tls;
pub mod topology;
pub mod transport;

pub use error::{Error, Result};
