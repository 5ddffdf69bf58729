//! The store's rows as the node reads and writes them, and the computation statuses; shared by
//! the read pool ([`super`]) and the runtime's writer ([`super::write`]).

use sqlx::FromRow;

/// Computation status, as stored and as shown by the API.
pub const PENDING: &str = "pending";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

pub fn is_final(status: &str) -> bool {
    status == SUCCEEDED || status == FAILED
}

/// A computation row, complete.
#[derive(Debug, Clone, FromRow)]
pub struct ComputationRow {
    pub id: String,
    pub microprotocol: Option<String>,
    pub parties: Option<String>,
    pub parameters: Option<String>,
    pub digest: Option<Vec<u8>>,
    pub status: String,
    pub machine: Option<String>,
    pub next_seq: i64,
    pub output: Option<String>,
    pub error: Option<String>,
    pub deadline_at: i64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// The federatedsecure API's network uuid, for computations started by `compute`.
    pub network: Option<String>,
    /// The API client that submitted it; `None` for a tombstone no client has claimed.
    pub client: Option<String>,
    /// For an input read from a dataset: the read's summary (`datasets::Summary` as JSON), shown
    /// with the computation.
    pub dataset: Option<String>,
}

#[derive(Debug, Clone)]
pub struct InboxRow {
    pub computation: String,
    pub sender: String,
    pub seq: i64,
    pub kind: String,
    /// `None` once consumed. Empty if `body_in_chunks`.
    pub body: Option<Vec<u8>>,
    pub received_at: i64,
    /// The message is pending and its body is still in its chunks, sealed (see migration 0008).
    pub body_in_chunks: bool,
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Position in the outbox queue; assigned by `write::insert_outbox`.
    pub id: i64,
    pub computation: String,
    pub recipient: String,
    pub seq: i64,
    pub envelope: Vec<u8>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct ChunkRow {
    pub computation: String,
    pub sender: String,
    pub seq: i64,
    pub idx: i64,
    pub total: i64,
    pub data: Vec<u8>,
    pub received_at: i64,
}

/// One charge of the privacy budget's ledger (migration 0010).
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeRow {
    pub computation: String,
    pub client: String,
    pub epsilon: f64,
    pub delta: f64,
    pub rho: f64,
    pub charged_at: i64,
}

/// One entry of the audit log (migration 0011), its hash computed (`crate::audit`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub seq: i64,
    pub time: i64,
    pub client: Option<String>,
    pub action: &'static str,
    pub computation: Option<String>,
    pub detail: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// One party's signature of a computation's receipt (migration 0012), as `crate::receipt`
/// writes its fields.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ReceiptRow {
    pub computation: String,
    pub party: String,
    pub definition_digest: String,
    pub outcome: String,
    pub outcome_digest: String,
    pub key_id: String,
    pub signature: String,
    /// The statement's path to the signed root, space-separated (`receipt::Signed::path`).
    pub path: String,
    pub received_at: i64,
    /// Stored for a computation not stored here (yet): counted against the sender's quota.
    pub unsolicited: bool,
}

/// A computation a peer proposed to this node (migration 0015): its definition as the proposer's
/// first message carried it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ProposalRow {
    pub computation: String,
    pub proposer: String,
    pub microprotocol: String,
    /// JSON array of party ids.
    pub parties: String,
    /// JSON.
    pub parameters: String,
    pub deadline_at: i64,
    pub received_at: i64,
}

impl ProposalRow {
    /// What the row counts against its proposer's `max_unsolicited_bytes`: as
    /// `write::PROPOSAL_BYTES` counts it.
    pub fn bytes(&self) -> u64 {
        (self.microprotocol.len() + self.parties.len() + self.parameters.len()) as u64
    }
}

/// What one API client has spent since some time: the sums of its charges, and how many.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct SpentRow {
    pub client: String,
    pub epsilon: f64,
    pub delta: f64,
    pub rho: f64,
    pub computations: i64,
}

/// Identifies one message of one sender: `(computation, party, seq)`.
pub type MessageKey = (String, String, i64);
