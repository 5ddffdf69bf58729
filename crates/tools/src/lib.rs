//! fsc-tools: the operator's tools, everything that sets a federation up or runs one locally,
//! and nothing a running node needs. Built on the node crate's shared types
//! (`fsc_node::config`: node config, roster, stream spec and names, broker login); the node
//! never depends on this crate.
//!
//! - [`federation`]: `fsc federation init` (roster, node configs, keys, broker users and
//!   permissions) and `fsc client add`; [`topology`]: the broker layouts it writes (one server,
//!   a cluster, leaf servers behind a hub);
//! - [`provision`]: `fsc federation provision`, the operator creating the stream;
//! - [`ca`]: the private CA and certificates of a test federation (`--tls`); [`secrets`]: secret
//!   files written with mode 0600;
//! - [`broker`]: a local nats-server process (for the demo, the tests and the benchmarks);
//!   [`demo`]: `fsc demo`.

pub mod broker;
pub mod ca;
pub mod demo;
pub mod error;
pub mod federation;
pub mod provision;
pub mod secrets;
pub mod topology;

pub use error::{Error, Result};
