//! A task of the federatedsecure API's parameterised path (`create_task` / `join_task` /
//! `input` / `start` / `result`): held by the representation [`Bus`](super::bus::Bus), driven by
//! [`Simon`](super::simon::Simon).

use super::budget::Data;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// A task of the parameterised path, before and after `start`.
pub struct Task {
    /// The id clients see (and pass on in invitations).
    pub(super) task_id: String,
    pub(super) computation: Uuid,
    pub(super) microprotocol: String,
    pub(super) parameters: Value,
    pub(super) parties: Vec<String>,
    /// What `input` received, in order; summed or combined by the microprotocol.
    pub(super) inputs: Vec<Arc<Data>>,
    pub(super) started: bool,
}
