//! fsc-node: the service library behind `fsc node`, and nothing that only setting a federation
//! up needs (that is the tools crate, built on this one's [`config`] types).
//!
//! - [`config`]: what a node and the tools share: typed `node.toml`, the roster, the stream's
//!   spec and names, the broker login; [`keys`]: reading secret key files;
//! - [`definition`]: what the parties of a computation agree on (its digest, its participants);
//!   [`envelope`]: sealing and opening messages between parties; [`failure`]: what a failure
//!   records here and what the other parties are told of it;
//! - [`datasets`]: reading the steward's files and databases that inputs name;
//! - [`store`]: SQLite persistence; [`runtime`]: persist-then-act application of the engine;
//!   [`audit`]: the hash-chained log of who did what, written in the runtime's transactions;
//!   [`receipt`]: every party's signature over how a computation ended;
//! - [`transport`]: the NATS connection, inbox consumer and publisher, which sends the small
//!   messages queued for one peer together ([`bundle`]);
//! - [`api`]: the HTTP APIs, served with [`tls`] where configured; [`caller`]: which API client
//!   asks, and what it may touch; [`metrics`]: Prometheus counters;
//! - [`budget`]: the privacy budget's costs, spending and caps (its ledger is in the store);
//! - [`node`]: all of it assembled.

pub mod api;
pub mod audit;
pub mod budget;
pub mod bundle;
pub mod caller;
pub mod config;
pub mod datasets;
pub mod definition;
pub mod envelope;
pub mod error;
pub mod failure;
pub mod keys;
pub mod metrics;
pub mod node;
pub mod receipt;
pub mod runtime;
pub mod store;
pub mod tls;
pub mod transport;

pub use error::{Error, Result};
