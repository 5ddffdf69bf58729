//! What a command that did its work reports, for `main` to turn into the exit code.

use serde_json::Value;

/// How a command ended, when it did its work: `main` turns it into the exit code.
pub enum Outcome {
    /// Exit code 0.
    Done,
    /// A computation failed, or a batch item failed or was rejected: exit code 3.
    Failed,
    /// `--wait` ran out before a computation was final: exit code 4.
    NotFinal,
}

impl Outcome {
    /// What a computation's view says.
    pub fn of(computation: &Value) -> Outcome {
        match computation["status"].as_str() {
            Some("succeeded") => Outcome::Done,
            Some("failed") => Outcome::Failed,
            _ => Outcome::NotFinal,
        }
    }
}
