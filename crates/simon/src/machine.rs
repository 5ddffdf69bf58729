//! The engine's entry point for a runtime: microprotocols by name, with validated parameters,
//! as one serialisable [`Machine`] type whose messages are opaque bytes.
//!
//! A runtime calls [`Spec::new`] when a computation is defined (unknown names and bad parameters
//! are rejected here), [`Spec::machine`] with the local input (bad input is rejected here, before
//! anything is sent), then [`Machine::start`] and [`Machine::receive`], persisting the machine
//! between steps. This module must not grow protocol logic: it only dispatches.

use crate::contingency_vertical::ContingencyVertical;
use crate::fixed_point::EncodingError;
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::psi::{NoParameters, PsiMessage};
use crate::secure_sum::{SecureSum, SecureSumParameters};
use crate::set_intersection::{Reveal, SetIntersection};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The most parties a computation may have (keeps ring sums far from wrapping, see `z2k`).
pub const MAX_PARTIES: usize = 1 << 14;

/// Microprotocols this engine runs.
pub const AVAILABLE: &[&str] = &[
    "SecureSum",
    "SetIntersection",
    "SetIntersectionSize",
    "StatisticsContingencyVertical",
];

/// The reference's microprotocols (REFERENCE.md §4): names a client may legitimately ask for.
pub const REFERENCE_MICROPROTOCOLS: [&str; 13] = [
    "SecureSum",
    "MinimumMaximum",
    "KthElement",
    "SecureMedian",
    "SecureMatrixMultiplication",
    "SetIntersection",
    "SetIntersectionSize",
    "StatisticsUnivariate",
    "StatisticsBivariate",
    "StatisticsFrequency",
    "StatisticsContingency",
    "StatisticsContingencyVertical",
    "StatisticsRegressionOLSVertical",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("microprotocol {0:?} is not available on this node (available: {list})", list = AVAILABLE.join(", "))]
    UnknownMicroprotocol(String),
    #[error("invalid parameters for {microprotocol}: {reason}")]
    InvalidParameters { microprotocol: String, reason: String },
    #[error("a computation needs between 2 and {MAX_PARTIES} parties, got {0}")]
    InvalidPartyCount(usize),
    #[error("invalid input: {0}")]
    InvalidInput(#[from] EncodingError),
    #[error("invalid input: {0}")]
    InvalidItems(String),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

impl EngineError {
    /// A stable, machine-readable name for API clients and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::UnknownMicroprotocol(_) => "unknown_microprotocol",
            EngineError::InvalidParameters { .. } => "invalid_parameters",
            EngineError::InvalidPartyCount(_) => "invalid_parties",
            EngineError::InvalidInput(_) | EngineError::InvalidItems(_) => "invalid_input",
            EngineError::Protocol(_) => "protocol_error",
        }
    }
}

/// The parameters of one microprotocol, validated and with defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "microprotocol", content = "parameters")]
pub enum Parameters {
    SecureSum(SecureSumParameters),
    SetIntersection(NoParameters),
    SetIntersectionSize(NoParameters),
    StatisticsContingencyVertical(NoParameters),
}

/// What every party must agree on before running a microprotocol (except the computation id and
/// the party names, which the runtime owns).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub parameters: Parameters,
    pub parties: usize,
    /// What binds a computation's values to it (the runtime's definition digest, which covers
    /// its id): PSI hashes items under it, so points of two computations cannot be linked.
    #[serde(default)]
    pub context: [u8; 32],
}

impl Spec {
    /// Resolves a microprotocol name and its parameters (a JSON object, or null for defaults).
    pub fn new(microprotocol: &str, parameters: &Value, parties: usize) -> Result<Spec, EngineError> {
        if !(2..=MAX_PARTIES).contains(&parties) {
            return Err(EngineError::InvalidPartyCount(parties));
        }
        let invalid = |reason: String| EngineError::InvalidParameters {
            microprotocol: microprotocol.to_string(),
            reason,
        };
        let parameters = match parameters {
            Value::Null => json!({}),
            Value::Object(_) => parameters.clone(),
            other => return Err(invalid(format!("expected a JSON object, got {other}"))),
        };
        let none = |parameters| serde_json::from_value::<NoParameters>(parameters).map_err(|e| invalid(e.to_string()));
        let parameters = match microprotocol {
            "SecureSum" => Parameters::SecureSum(
                serde_json::from_value::<SecureSumParameters>(parameters)
                    .map_err(|e| invalid(e.to_string()))?
                    .validate()
                    .map_err(invalid)?,
            ),
            "SetIntersection" => Parameters::SetIntersection(none(parameters)?),
            "SetIntersectionSize" => Parameters::SetIntersectionSize(none(parameters)?),
            "StatisticsContingencyVertical" if parties != 2 => {
                return Err(invalid(format!("it is a two-party protocol, got {parties} parties")));
            }
            "StatisticsContingencyVertical" => Parameters::StatisticsContingencyVertical(none(parameters)?),
            other => return Err(EngineError::UnknownMicroprotocol(other.to_string())),
        };
        Ok(Spec {
            parameters,
            parties,
            context: [0; 32],
        })
    }

    /// The same spec, for the computation whose context (definition digest) this is.
    pub fn bound_to(self, context: [u8; 32]) -> Spec {
        Spec { context, ..self }
    }

    pub fn microprotocol(&self) -> &'static str {
        match self.parameters {
            Parameters::SecureSum(_) => "SecureSum",
            Parameters::SetIntersection(_) => "SetIntersection",
            Parameters::SetIntersectionSize(_) => "SetIntersectionSize",
            Parameters::StatisticsContingencyVertical(_) => "StatisticsContingencyVertical",
        }
    }

    /// The normalised parameters as JSON (defaults filled in): what parties compare.
    pub fn parameters_json(&self) -> Value {
        match self.parameters {
            Parameters::SecureSum(p) => serde_json::to_value(p).expect("parameters serialise"),
            Parameters::SetIntersection(p)
            | Parameters::SetIntersectionSize(p)
            | Parameters::StatisticsContingencyVertical(p) => serde_json::to_value(p).expect("parameters serialise"),
        }
    }

    /// The state machine of party `me`, with its input validated and encoded.
    pub fn machine(&self, me: PartyIndex, input: &Value) -> Result<Machine, EngineError> {
        assert!(me < self.parties, "party index out of range");
        let protocol = match self.parameters {
            Parameters::SecureSum(p) => Protocol::SecureSum(SecureSum::new(p, self.parties, input)?),
            Parameters::SetIntersection(_) => Protocol::SetIntersection(
                SetIntersection::new(Reveal::Members, self.context, input).map_err(EngineError::InvalidItems)?,
            ),
            Parameters::SetIntersectionSize(_) => Protocol::SetIntersection(
                SetIntersection::new(Reveal::Size, self.context, input).map_err(EngineError::InvalidItems)?,
            ),
            Parameters::StatisticsContingencyVertical(_) => Protocol::ContingencyVertical(
                ContingencyVertical::new(self.context, input).map_err(EngineError::InvalidItems)?,
            ),
        };
        Ok(Machine {
            me,
            parties: self.parties,
            protocol,
            started: false,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Protocol {
    SecureSum(SecureSum),
    SetIntersection(SetIntersection),
    ContingencyVertical(ContingencyVertical),
}

/// One party's running microprotocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    me: PartyIndex,
    parties: usize,
    protocol: Protocol,
    /// Whether `start` has run: a runtime that runs long steps off its loop persists the machine
    /// before its start, and must know after a restart whether to start it. (States stored
    /// before this field existed were all started.)
    #[serde(default = "started_before")]
    started: bool,
}

fn started_before() -> bool {
    true
}

/// What one step produced: messages to send (serialised) and, at the end, the output
/// `{"inputs": n, "result": {...}}` in the reference's shape.
#[derive(Debug, Default)]
pub struct Step {
    pub outgoing: Vec<(PartyIndex, Vec<u8>)>,
    pub output: Option<Value>,
}

impl Machine {
    pub fn me(&self) -> PartyIndex {
        self.me
    }

    pub fn started(&self) -> bool {
        self.started
    }

    /// Whether its steps do enough work (curve operations over whole lists) to hold up a
    /// runtime that runs them on its own loop; such steps belong on other threads.
    pub fn runs_long(&self) -> bool {
        matches!(
            self.protocol,
            Protocol::SetIntersection(_) | Protocol::ContingencyVertical(_)
        )
    }

    pub fn start(&mut self, rng: &mut dyn RngCore) -> Result<Step, EngineError> {
        self.started = true;
        match &mut self.protocol {
            Protocol::SecureSum(p) => run(self.me, self.parties, rng, |io| p.start(io)),
            Protocol::SetIntersection(p) => run_psi(self.me, self.parties, rng, |io| p.start(io)),
            Protocol::ContingencyVertical(p) => run_psi(self.me, self.parties, rng, |io| p.start(io)),
        }
    }

    /// Applies one message from party `from` (never `me`).
    pub fn receive(&mut self, from: PartyIndex, message: &[u8], rng: &mut dyn RngCore) -> Result<Step, EngineError> {
        if from >= self.parties || from == self.me {
            return Err(ProtocolError::Unexpected {
                from,
                what: "a message from an invalid sender index".into(),
            }
            .into());
        }
        match &mut self.protocol {
            Protocol::SecureSum(p) => {
                let message = decode(from, message)?;
                run(self.me, self.parties, rng, |io| p.receive(from, message, io))
            }
            Protocol::SetIntersection(p) => {
                let message = PsiMessage::from_bytes(from, message)?;
                run_psi(self.me, self.parties, rng, |io| p.receive(from, message, io))
            }
            Protocol::ContingencyVertical(p) => {
                let message = PsiMessage::from_bytes(from, message)?;
                run_psi(self.me, self.parties, rng, |io| p.receive(from, message, io))
            }
        }
    }
}

fn decode<M: serde::de::DeserializeOwned>(from: PartyIndex, bytes: &[u8]) -> Result<M, ProtocolError> {
    serde_json::from_slice(bytes).map_err(|e| ProtocolError::Malformed {
        from,
        reason: e.to_string(),
    })
}

fn run<M: Serialize>(
    me: PartyIndex,
    parties: usize,
    rng: &mut dyn RngCore,
    step: impl FnOnce(&mut Io<'_, M>) -> Result<Progress<Value>, ProtocolError>,
) -> Result<Step, EngineError> {
    run_with(
        me,
        parties,
        rng,
        |m| serde_json::to_vec(m).expect("messages serialise"),
        step,
    )
}

/// PSI lists travel in their compact binary form, not as JSON.
fn run_psi(
    me: PartyIndex,
    parties: usize,
    rng: &mut dyn RngCore,
    step: impl FnOnce(&mut Io<'_, PsiMessage>) -> Result<Progress<Value>, ProtocolError>,
) -> Result<Step, EngineError> {
    run_with(me, parties, rng, PsiMessage::to_bytes, step)
}

fn run_with<M>(
    me: PartyIndex,
    parties: usize,
    rng: &mut dyn RngCore,
    encode: impl Fn(&M) -> Vec<u8>,
    step: impl FnOnce(&mut Io<'_, M>) -> Result<Progress<Value>, ProtocolError>,
) -> Result<Step, EngineError> {
    let mut io = Io::new(me, parties, rng);
    let progress = step(&mut io)?;
    let outgoing = io
        .into_outgoing()
        .into_iter()
        .map(|(to, message)| (to, encode(&message)))
        .collect();
    let output = match progress {
        Progress::Continue => None,
        Progress::Done(result) => Some(json!({"inputs": parties, "result": result})),
    };
    Ok(Step { outgoing, output })
}
