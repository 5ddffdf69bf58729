//! The engine's entry point for a runtime: microprotocols by name, with validated parameters,
//! as one serialisable [`Machine`] type whose messages are opaque bytes.
//!
//! A runtime calls [`Spec::new`] when a computation is defined (unknown names and bad parameters
//! are rejected here), [`Spec::machine`] with the local input (bad input is rejected here, before
//! anything is sent), then [`Machine::start`] and [`Machine::receive`], persisting the machine
//! between steps. This module must not grow protocol logic: it only dispatches.

use crate::fixed_point::EncodingError;
use crate::projected_product::ProjectedProduct;
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::regression_ols_vertical;
use crate::secure_matrix_multiplication::{MatrixParameters, ResultKey, SecureMatrixMultiplication, float_input};
use crate::secure_sum::{SecureSum, SecureSumParameters};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The most parties a computation may have (keeps ring sums far from wrapping, see `z2k`).
pub const MAX_PARTIES: usize = 1 << 14;

/// Microprotocols this engine runs.
pub const AVAILABLE: &[&str] = &[
    "SecureSum",
    "SecureMatrixMultiplication",
    "StatisticsRegressionOLSVertical",
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
    #[error(
        "{microprotocol} between two parties needs a helper, a third member of the federation (parameters.helper); none is available"
    )]
    NoHelper { microprotocol: String },
    #[error("invalid input: {0}")]
    InvalidInput(#[from] EncodingError),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

impl EngineError {
    /// A stable, machine-readable name for API clients and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::UnknownMicroprotocol(_) => "unknown_microprotocol",
            EngineError::InvalidParameters { .. } => "invalid_parameters",
            EngineError::NoHelper { .. } => "no_helper",
            EngineError::InvalidPartyCount(_) => "invalid_parties",
            EngineError::InvalidInput(_) | EngineError::Protocol(ProtocolError::Input(_)) => "invalid_input",
            EngineError::Protocol(_) => "protocol_error",
        }
    }
}

/// The parameters of one microprotocol, validated and with defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "microprotocol", content = "parameters")]
pub enum Parameters {
    SecureSum(SecureSumParameters),
    SecureMatrixMultiplication(MatrixParameters),
    StatisticsRegressionOLSVertical(MatrixParameters),
}

/// Whether `microprotocol` among `parties` parties needs a helper from outside the computation:
/// the products do with two (with three or more, the third party is the helper), unless the
/// parties opt in to the original's method that reveals inputs instead. A runtime names
/// one in the parameters (`helper`) before [`Spec::new`].
pub fn wants_helper(microprotocol: &str, parties: usize, parameters: &Value) -> bool {
    parties == 2
        && matches!(
            microprotocol,
            "SecureMatrixMultiplication" | "StatisticsRegressionOLSVertical"
        )
        && parameters.get("reveal_inputs_without_helper") != Some(&Value::Bool(true))
}

/// What every party must agree on before running a microprotocol (except the computation id and
/// the party names, which the runtime owns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub parameters: Parameters,
    pub parties: usize,
}

impl Spec {
    /// Resolves a microprotocol name and its parameters (a JSON object, or null for defaults).
    pub fn new(microprotocol: &str, parameters: &Value, parties: usize) -> Result<Spec, EngineError> {
        if !(2..=MAX_PARTIES).contains(&parties) {
            return Err(EngineError::InvalidPartyCount(parties));
        }
        let matrix_parameters = |parameters: Value| {
            serde_json::from_value::<MatrixParameters>(parameters)
                .map_err(|e| e.to_string())
                .and_then(|p| p.validate(parties))
                .map_err(|reason| EngineError::InvalidParameters {
                    microprotocol: microprotocol.to_string(),
                    reason,
                })
        };
        let invalid = |reason: String| EngineError::InvalidParameters {
            microprotocol: microprotocol.to_string(),
            reason,
        };
        let parameters = match parameters {
            Value::Null => json!({}),
            Value::Object(_) => parameters.clone(),
            other => return Err(invalid(format!("expected a JSON object, got {other}"))),
        };
        let parameters = match microprotocol {
            "SecureSum" => Parameters::SecureSum(
                serde_json::from_value::<SecureSumParameters>(parameters)
                    .map_err(|e| invalid(e.to_string()))?
                    .validate()
                    .map_err(invalid)?,
            ),
            "SecureMatrixMultiplication" => Parameters::SecureMatrixMultiplication(matrix_parameters(parameters)?),
            "StatisticsRegressionOLSVertical" => {
                Parameters::StatisticsRegressionOLSVertical(matrix_parameters(parameters)?)
            }
            other => return Err(EngineError::UnknownMicroprotocol(other.to_string())),
        };
        Ok(Spec { parameters, parties })
    }

    pub fn microprotocol(&self) -> &'static str {
        match self.parameters {
            Parameters::SecureSum(_) => "SecureSum",
            Parameters::SecureMatrixMultiplication(_) => "SecureMatrixMultiplication",
            Parameters::StatisticsRegressionOLSVertical(_) => "StatisticsRegressionOLSVertical",
        }
    }

    /// The normalised parameters as JSON (defaults filled in): what parties compare.
    pub fn parameters_json(&self) -> Value {
        match &self.parameters {
            Parameters::SecureSum(p) => serde_json::to_value(p),
            Parameters::SecureMatrixMultiplication(p) | Parameters::StatisticsRegressionOLSVertical(p) => {
                serde_json::to_value(p)
            }
        }
        .expect("parameters serialise")
    }

    /// The helper from outside the computation named in the parameters, if the protocol has one.
    pub fn helper(&self) -> Option<&str> {
        match &self.parameters {
            Parameters::SecureMatrixMultiplication(p) | Parameters::StatisticsRegressionOLSVertical(p) => {
                p.helper.as_deref()
            }
            Parameters::SecureSum(_) => None,
        }
    }

    /// How many parties run the protocol: the computation's parties and a helper from outside.
    /// The helper is the last; its machine takes no input.
    pub fn participants(&self) -> usize {
        self.parties + usize::from(self.helper().is_some())
    }

    /// The state machine of party `me` (an index below [`Spec::participants`]), with its input
    /// validated and encoded.
    pub fn machine(&self, me: PartyIndex, input: &Value) -> Result<Machine, EngineError> {
        assert!(me < self.participants(), "party index out of range");
        let helper_is_party = self.helper().is_none();
        let protocol = match &self.parameters {
            Parameters::SecureSum(p) => Protocol::SecureSum(SecureSum::new(*p, self.parties, input)?),
            Parameters::SecureMatrixMultiplication(p) if p.reveal_inputs_without_helper => {
                let matrix = float_input(me, input)?.expect("two parties, both data owners");
                Protocol::Projected(ProjectedProduct::new(&matrix, ResultKey::Product))
            }
            Parameters::StatisticsRegressionOLSVertical(p) if p.reveal_inputs_without_helper => {
                Protocol::Projected(regression_ols_vertical::regression_revealing(me, input)?)
            }
            Parameters::SecureMatrixMultiplication(_) | Parameters::StatisticsRegressionOLSVertical(_)
                if self.participants() < 3 =>
            {
                return Err(EngineError::NoHelper {
                    microprotocol: self.microprotocol().to_string(),
                });
            }
            Parameters::SecureMatrixMultiplication(p) => {
                Protocol::Product(SecureMatrixMultiplication::new(p, me, helper_is_party, input)?)
            }
            Parameters::StatisticsRegressionOLSVertical(p) => {
                Protocol::Product(regression_ols_vertical::regression(p, me, helper_is_party, input)?)
            }
        };
        Ok(Machine {
            me,
            parties: self.participants(),
            protocol,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Protocol {
    SecureSum(SecureSum),
    /// SecureMatrixMultiplication and StatisticsRegressionOLSVertical.
    Product(SecureMatrixMultiplication),
    /// The same by the original's method, for two parties that opt in to what it reveals.
    Projected(ProjectedProduct),
}

/// One party's running microprotocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    me: PartyIndex,
    parties: usize,
    protocol: Protocol,
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

    pub fn start(&mut self, rng: &mut dyn RngCore) -> Result<Step, EngineError> {
        match &mut self.protocol {
            Protocol::SecureSum(p) => run(self.me, self.parties, rng, |io| p.start(io)),
            Protocol::Product(p) => run(self.me, self.parties, rng, |io| p.start(io)).map(two_inputs),
            Protocol::Projected(p) => run(self.me, self.parties, rng, |io| p.start(io)),
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
            Protocol::Product(p) => {
                let message = decode(from, message)?;
                run(self.me, self.parties, rng, |io| p.receive(from, message, io)).map(two_inputs)
            }
            Protocol::Projected(p) => {
                let message = decode(from, message)?;
                run(self.me, self.parties, rng, |io| p.receive(from, message, io))
            }
        }
    }
}

/// The products report `"inputs": 2` as the reference does: two matrices went in, whoever else
/// took part.
fn two_inputs(mut step: Step) -> Step {
    if let Some(output) = step.output.as_mut() {
        output["inputs"] = json!(2);
    }
    step
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
    let mut io = Io::new(me, parties, rng);
    let progress = step(&mut io)?;
    let outgoing = io
        .into_outgoing()
        .into_iter()
        .map(|(to, message)| (to, serde_json::to_vec(&message).expect("messages serialise")))
        .collect();
    let output = match progress {
        Progress::Continue => None,
        Progress::Done(result) => Some(json!({"inputs": parties, "result": result})),
    };
    Ok(Step { outgoing, output })
}
