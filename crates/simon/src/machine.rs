//! The engine's entry point for a runtime: microprotocols by name, with validated parameters,
//! as one serialisable [`Machine`] type whose messages are opaque bytes.
//!
//! A runtime calls [`Spec::new`] when a computation is defined (unknown names and bad parameters
//! are rejected here), [`Spec::machine`] (or [`Spec::machine_for`]) with the local input (bad input is rejected here, before
//! anything is sent), then [`Machine::start`] and [`Machine::receive`], persisting the machine
//! between steps. This module must not grow protocol logic: it only dispatches.

use crate::dp::DpParameters;
use crate::fixed_point::EncodingError;
use crate::input::Input;
use crate::masks::Masks;
use crate::matrix::projected_product::ProjectedProduct;
use crate::matrix::regression_ols_vertical;
use crate::matrix::secure_matrix_multiplication::{
    MatrixParameters, ResultKey, SecureMatrixMultiplication, float_input,
};
use crate::order::kth_element::{KthElement, RankParameters};
use crate::order::minimum_maximum::{Extremes, MinimumMaximum, MinimumMaximumParameters};
use crate::order::secure_median::SecureMedian;
use crate::protocol::{Io, Limits, Microprotocol, PartyIndex, Progress, ProtocolError, never};
use crate::psi::Wire;
use crate::psi::contingency_vertical::{self, ContingencyVertical};
use crate::psi::ot::Items;
use crate::psi::ot::intersection::OtSetIntersection;
use crate::psi::set_intersection::{Reveal, SetIntersection};
use crate::psi::{Method, SetIntersectionParameters};
use crate::statistics::bivariate::StatisticsBivariate;
use crate::statistics::contingency::{self, ContingencyParameters, StatisticsContingency};
use crate::statistics::frequency::{FrequencyParameters, StatisticsFrequency};
use crate::statistics::noisy_univariate::{NoisyUnivariate, UnivariateParameters};
use crate::statistics::univariate::StatisticsUnivariate;
use crate::sum::additive_sum::SumMessage;
use crate::sum::secure_sum::{self, Encoded, SecureSum, SecureSumParameters};
use crate::sum::total::{self, Framed, TotalCheck};
use crate::z2k::WIDE_LIMBS;
use rand_core::RngCore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::atomic::AtomicBool;

/// The most parties a computation may have (keeps ring sums far from wrapping, see `z2k`).
pub const MAX_PARTIES: usize = 1 << 14;

/// Microprotocols this engine runs.
pub const AVAILABLE: &[&str] = &[
    "SecureSum",
    "MinimumMaximum",
    "KthElement",
    "SecureMedian",
    "StatisticsUnivariate",
    "StatisticsBivariate",
    "StatisticsFrequency",
    "StatisticsContingency",
    "SecureMatrixMultiplication",
    "StatisticsRegressionOLSVertical",
    "SetIntersection",
    "SetIntersectionSize",
    "StatisticsContingencyVertical",
];

/// Microprotocols that take a `dp` parameter ([`crate::dp`]).
pub const WITH_DP: &[&str] = &[
    "SecureSum",
    "StatisticsUnivariate",
    "StatisticsFrequency",
    "StatisticsContingency",
];

/// Microprotocols without a total of records: their parties hold different columns of the same
/// records (the products, StatisticsContingencyVertical) or sets that overlap (the set
/// intersections), where a sum of the parties' counts counts nobody.
const WITHOUT_TOTAL: &[&str] = &[
    "SecureMatrixMultiplication",
    "StatisticsRegressionOLSVertical",
    "SetIntersection",
    "SetIntersectionSize",
    "StatisticsContingencyVertical",
];

/// Whether `microprotocol` takes a `min_total_samples` parameter ([`crate::sum::total`]): every
/// protocol whose parties each hold records of their own (horizontally partitioned data), so
/// that the records in all are the sum of the parties' counts.
pub fn with_total(microprotocol: &str) -> bool {
    AVAILABLE.contains(&microprotocol) && !WITHOUT_TOTAL.contains(&microprotocol)
}

/// The parameter that asks for the check of the records in all, in any protocol's parameters.
const MIN_TOTAL_SAMPLES: &str = "min_total_samples";

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
    /// The policy rule a `policy_refused` of the engine's applies (the definition's, which every
    /// party checks alike).
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            EngineError::Protocol(ProtocolError::TooFewRecords { .. }) => Some(MIN_TOTAL_SAMPLES),
            _ => None,
        }
    }

    /// A stable, machine-readable name for API clients and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::UnknownMicroprotocol(_) => "unknown_microprotocol",
            EngineError::InvalidParameters { .. } => "invalid_parameters",
            EngineError::NoHelper { .. } => "no_helper",
            EngineError::InvalidPartyCount(_) => "invalid_parties",
            EngineError::InvalidInput(_) => "invalid_input",
            EngineError::Protocol(ProtocolError::Failed(_)) => "no_result",
            EngineError::Protocol(ProtocolError::Refused { code, .. }) => code,
            EngineError::Protocol(ProtocolError::Stopped) => "stopped",
            EngineError::Protocol(ProtocolError::TooFewRecords { .. }) => "policy_refused",
            EngineError::Protocol(_) => "protocol_violation",
        }
    }

    /// The party (engine index) whose message broke the protocol, if one did.
    pub fn culprit(&self) -> Option<PartyIndex> {
        match self {
            EngineError::Protocol(error) => error.culprit(),
            _ => None,
        }
    }
}

/// The parameters of one microprotocol, validated and with defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "microprotocol", content = "parameters")]
pub enum Parameters {
    SecureSum(SecureSumParameters),
    MinimumMaximum(MinimumMaximumParameters),
    KthElement(RankParameters),
    SecureMedian(RankParameters),
    StatisticsUnivariate(UnivariateParameters),
    StatisticsBivariate(NoParameters),
    StatisticsFrequency(FrequencyParameters),
    StatisticsContingency(ContingencyParameters),
    SecureMatrixMultiplication(MatrixParameters),
    StatisticsRegressionOLSVertical(MatrixParameters),
    SetIntersection(SetIntersectionParameters),
    SetIntersectionSize(NoParameters),
    StatisticsContingencyVertical(NoParameters),
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

/// The parameters of a protocol that has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParameters {}

/// Parameters every reference client may send to any microprotocol, which the statistics and
/// order statistics have no use for (the reference ignored them there): dropped rather than refused.
const FIXED_POINT_ONLY: [&str; 2] = ["digits_before", "digits_after"];

/// The protocols whose parameters are the reference's fixed point; every other one computes on
/// exact doubles, counts or sets.
const WITH_FIXED_POINT: [&str; 3] = [
    "SecureSum",
    "SecureMatrixMultiplication",
    "StatisticsRegressionOLSVertical",
];

fn parse<P: DeserializeOwned>(parameters: Value) -> Result<P, String> {
    serde_json::from_value(parameters).map_err(|e| e.to_string())
}

/// What every party must agree on before running a microprotocol (except the computation id and
/// the party names, which the runtime owns), and this party's limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub parameters: Parameters,
    pub parties: usize,
    /// What binds a computation's values to it (the runtime's definition digest, which covers
    /// its id): PSI hashes items under it, so points of two computations cannot be linked.
    #[serde(default)]
    pub context: [u8; 32],
    #[serde(default)]
    pub limits: Limits,
    /// This party's policy's smallest cell of a table: noisy cells below it are suppressed in
    /// its output (with `dp` only). Its own, like `limits`, not agreed with the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cell_count: Option<u64>,
    /// The fewest records in all (the definition's `min_total_samples`, agreed by every party):
    /// counted in one sum before the protocol starts ([`crate::sum::total`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_total_samples: Option<u64>,
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
        let mut parameters = match parameters {
            Value::Null => json!({}),
            Value::Object(_) => parameters.clone(),
            other => return Err(invalid(format!("expected a JSON object, got {other}"))),
        };
        let fields = parameters.as_object_mut().expect("an object");
        if !WITH_FIXED_POINT.contains(&microprotocol) {
            // StatisticsUnivariate with `dp` clips its values on the grid 10^-digits_after, as
            // SecureSum's `dp` does.
            let grid = microprotocol == "StatisticsUnivariate" && fields.contains_key("dp");
            FIXED_POINT_ONLY
                .iter()
                .filter(|name| !(grid && **name == "digits_after"))
                .for_each(|name| {
                    fields.remove(*name);
                });
        }
        // Checked once the microprotocol is known: an unknown one is told as such.
        let min_total_samples = fields.remove(MIN_TOTAL_SAMPLES);
        let parsed = match microprotocol {
            "SecureSum" => parse::<SecureSumParameters>(parameters)
                .and_then(|p| p.validate(parties))
                .map(Parameters::SecureSum),
            "MinimumMaximum" => parse::<MinimumMaximumParameters>(parameters)
                .and_then(MinimumMaximumParameters::validate)
                .map(Parameters::MinimumMaximum),
            "KthElement" => parse::<RankParameters>(parameters)
                .and_then(RankParameters::validate)
                .map(Parameters::KthElement),
            "SecureMedian" => parse::<RankParameters>(parameters)
                .and_then(RankParameters::validate)
                .map(Parameters::SecureMedian),
            "StatisticsUnivariate" => parse::<UnivariateParameters>(parameters)
                .and_then(|p| p.validate(parties))
                .map(Parameters::StatisticsUnivariate),
            "StatisticsBivariate" => parse(parameters).map(Parameters::StatisticsBivariate),
            "StatisticsFrequency" => parse::<FrequencyParameters>(parameters)
                .and_then(|p| p.validate(parties))
                .map(Parameters::StatisticsFrequency),
            "StatisticsContingency" => parse::<ContingencyParameters>(parameters)
                .and_then(|p| p.validate(parties))
                .map(Parameters::StatisticsContingency),
            "SecureMatrixMultiplication" => parse::<MatrixParameters>(parameters)
                .and_then(|p| p.validate(parties))
                .map(Parameters::SecureMatrixMultiplication),
            "StatisticsRegressionOLSVertical" => parse::<MatrixParameters>(parameters)
                .and_then(|p| p.validate(parties))
                .map(Parameters::StatisticsRegressionOLSVertical),
            "SetIntersection" => parse::<SetIntersectionParameters>(parameters)
                .and_then(|p| p.validate(parties))
                .map(Parameters::SetIntersection),
            "SetIntersectionSize" => parse(parameters).map(Parameters::SetIntersectionSize),
            "StatisticsContingencyVertical" if parties != 2 => {
                Err(format!("it is a two-party protocol, got {parties} parties"))
            }
            "StatisticsContingencyVertical" if parameters.get("dp").is_some() => {
                Err(contingency_vertical::NO_DP.into())
            }
            "StatisticsContingencyVertical" => parse(parameters).map(Parameters::StatisticsContingencyVertical),
            other => return Err(EngineError::UnknownMicroprotocol(other.to_string())),
        };
        let parameters = parsed.map_err(invalid)?;
        let min_total_samples = min_total_samples
            .map(|min| min_total(microprotocol, min))
            .transpose()
            .map_err(invalid)?;
        let spec = Spec {
            parameters,
            parties,
            context: [0; 32],
            limits: Limits::default(),
            min_cell_count: None,
            min_total_samples,
        };
        if spec.min_total_samples.is_some() && spec.dp().is_some() {
            // The exact total would undo the noise on the count (SecureSum's `samples`, a
            // table's cells); with dp, the noise is what protects small totals.
            return Err(invalid(
                "min_total_samples opens the exact count of records, which dp protects: give one or the other".into(),
            ));
        }
        Ok(spec)
    }

    /// The same spec, for the computation whose context (definition digest) this is.
    pub fn bound_to(self, context: [u8; 32]) -> Spec {
        Spec { context, ..self }
    }

    /// The same spec, with this party's limits.
    pub fn limited(self, limits: Limits) -> Spec {
        Spec { limits, ..self }
    }

    /// The same spec, suppressing noisy cells below `min_cell_count` (its policy's).
    pub fn suppressing(self, min_cell_count: Option<u64>) -> Spec {
        Spec { min_cell_count, ..self }
    }

    /// The definition's differential privacy, for the protocols that take it.
    pub fn dp(&self) -> Option<&DpParameters> {
        match &self.parameters {
            Parameters::SecureSum(p) => p.dp.as_ref(),
            Parameters::StatisticsUnivariate(p) => p.dp.as_ref(),
            Parameters::StatisticsFrequency(p) => p.dp.as_ref(),
            Parameters::StatisticsContingency(p) => p.dp.as_ref(),
            _ => None,
        }
    }

    pub fn microprotocol(&self) -> &'static str {
        match self.parameters {
            Parameters::SecureSum(_) => "SecureSum",
            Parameters::MinimumMaximum(_) => "MinimumMaximum",
            Parameters::KthElement(_) => "KthElement",
            Parameters::SecureMedian(_) => "SecureMedian",
            Parameters::StatisticsUnivariate(_) => "StatisticsUnivariate",
            Parameters::StatisticsBivariate(_) => "StatisticsBivariate",
            Parameters::StatisticsFrequency(_) => "StatisticsFrequency",
            Parameters::StatisticsContingency(_) => "StatisticsContingency",
            Parameters::SecureMatrixMultiplication(_) => "SecureMatrixMultiplication",
            Parameters::StatisticsRegressionOLSVertical(_) => "StatisticsRegressionOLSVertical",
            Parameters::SetIntersection(_) => "SetIntersection",
            Parameters::SetIntersectionSize(_) => "SetIntersectionSize",
            Parameters::StatisticsContingencyVertical(_) => "StatisticsContingencyVertical",
        }
    }

    /// The normalised parameters as JSON (defaults filled in): what parties compare.
    pub fn parameters_json(&self) -> Value {
        let tagged = serde_json::to_value(&self.parameters).expect("parameters serialise");
        let mut parameters = tagged["parameters"].clone();
        if let Some(min) = self.min_total_samples {
            parameters[MIN_TOTAL_SAMPLES] = json!(min);
        }
        parameters
    }

    /// The helper from outside the computation named in the parameters, if the protocol has one.
    pub fn helper(&self) -> Option<&str> {
        match &self.parameters {
            Parameters::SecureMatrixMultiplication(p) | Parameters::StatisticsRegressionOLSVertical(p) => {
                p.helper.as_deref()
            }
            _ => None,
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
        let protocol = self.protocol(me, input)?;
        Ok(self.start(me, protocol, || crate::records::local(self.microprotocol(), me, input)))
    }

    /// [`Spec::machine`] for an [`Input`]: a list of doubles goes straight to a protocol that
    /// reads doubles ([`crate::input::reads_doubles`]), to any other as JSON.
    pub fn machine_for(&self, me: PartyIndex, input: &Input) -> Result<Machine, EngineError> {
        assert!(me < self.participants(), "party index out of range");
        match (input, &self.parameters) {
            (Input::Doubles(values), Parameters::StatisticsUnivariate(p)) if p.dp.is_none() => {
                let protocol = Protocol::StatisticsUnivariate(Box::new(StatisticsUnivariate::of(values)));
                Ok(self.start(me, protocol, || Some(values.len() as u64)))
            }
            // A category's number too long for the engine: refused as JSON refuses it.
            (Input::Pairs(pairs), Parameters::StatisticsContingency(p)) if pairs.numbers_fit() => {
                let counted = pairs.counted();
                let protocol = self.contingency(p, || {
                    Ok(counted.iter().map(|(cell, count)| (&cell[..], *count)).collect())
                })?;
                Ok(self.start(me, protocol, || Some(pairs.len() as u64)))
            }
            _ => self.machine(me, &input.json()),
        }
    }

    /// StatisticsContingency of the `records` ([`StatisticsContingency::new`]), after the check
    /// of the given table's size against the limits.
    fn contingency<'a>(
        &self,
        p: &ContingencyParameters,
        records: impl FnOnce() -> Result<Vec<(&'a [Value], u64)>, EncodingError>,
    ) -> Result<Protocol, EngineError> {
        let given = |d: &Option<Vec<Value>>| d.as_ref().map_or(0, Vec::len) as u64;
        self.limits
            .check(given(&p.rows).saturating_mul(given(&p.columns)), "the table")?;
        Ok(Protocol::StatisticsContingency(StatisticsContingency::new(
            p,
            self.parties,
            self.limits,
            self.min_cell_count,
            records()?,
        )?))
    }

    /// Party `me`'s protocol, its input validated and encoded.
    fn protocol(&self, me: PartyIndex, input: &Value) -> Result<Protocol, EngineError> {
        assert!(me < self.participants(), "party index out of range");
        crate::fixed_point::check_number_lengths(input)?;
        let n = self.parties;
        let helper_is_party = self.helper().is_none();
        let protocol = match &self.parameters {
            Parameters::SecureSum(p) => match secure_sum::encode(p.clone(), n, input)? {
                Encoded::Z256(sum) => Protocol::SecureSum(sum),
                Encoded::Wide(sum) => Protocol::ExactSecureSum(sum),
            },
            Parameters::MinimumMaximum(p) => Protocol::MinimumMaximum(MinimumMaximum::new(*p, input)?),
            Parameters::KthElement(p) => Protocol::KthElement(KthElement::new(*p, n, input)?),
            Parameters::SecureMedian(p) => Protocol::SecureMedian(SecureMedian::new(*p, input)?),
            Parameters::StatisticsUnivariate(p) if p.dp.is_some() => {
                Protocol::NoisyUnivariate(NoisyUnivariate::new(p, n, input)?)
            }
            Parameters::StatisticsUnivariate(_) => {
                Protocol::StatisticsUnivariate(Box::new(StatisticsUnivariate::new(input)?))
            }
            Parameters::StatisticsBivariate(_) => {
                Protocol::StatisticsBivariate(Box::new(StatisticsBivariate::new(input)?))
            }
            Parameters::StatisticsFrequency(p) => {
                let given = p.categories.as_ref().map_or(0, Vec::len);
                self.limits.check(given as u64, "the table")?;
                Protocol::StatisticsFrequency(StatisticsFrequency::new(p, n, self.limits, self.min_cell_count, input)?)
            }
            Parameters::StatisticsContingency(p) => self.contingency(p, || contingency::records(input))?,
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
            Parameters::SecureMatrixMultiplication(p) => Protocol::Product(SecureMatrixMultiplication::new(
                p,
                me,
                helper_is_party,
                self.limits,
                input,
            )?),
            Parameters::StatisticsRegressionOLSVertical(p) => Protocol::Product(regression_ols_vertical::regression(
                p,
                me,
                helper_is_party,
                self.limits,
                input,
            )?),
            Parameters::SetIntersection(p) if p.psi == Some(Method::Ot) => {
                Protocol::OtSetIntersection(OtSetIntersection::new(self.context, self.limits, input).map_err(items)?)
            }
            Parameters::SetIntersection(_) => Protocol::SetIntersection(
                SetIntersection::new(Reveal::Members, self.context, self.limits, input).map_err(items)?,
            ),
            Parameters::SetIntersectionSize(_) => Protocol::SetIntersection(
                SetIntersection::new(Reveal::Size, self.context, self.limits, input).map_err(items)?,
            ),
            Parameters::StatisticsContingencyVertical(_) => {
                Protocol::ContingencyVertical(ContingencyVertical::new(self.context, input).map_err(items)?)
            }
        };
        Ok(protocol)
    }

    /// The machine of party `me` running `protocol`, with `records` in its input (counted only
    /// for a definition's `min_total_samples`).
    fn start(&self, me: PartyIndex, protocol: Protocol, records: impl FnOnce() -> Option<u64>) -> Machine {
        let total = self
            .min_total_samples
            .map(|min| TotalCheck::new(min, records().unwrap_or(0), self.parties));
        Machine {
            me,
            parties: self.participants(),
            protocol,
            started: false,
            total,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Protocol {
    SecureSum(SecureSum),
    /// SecureSum's exact mode without a bound, in the wide ring.
    ExactSecureSum(SecureSum<WIDE_LIMBS>),
    MinimumMaximum(MinimumMaximum),
    KthElement(KthElement),
    SecureMedian(SecureMedian),
    // Boxed: their exact sums in the wide ring make them ten times the size of the others.
    StatisticsUnivariate(Box<StatisticsUnivariate>),
    /// StatisticsUnivariate with `dp`: one noisy masked sum, no extremes round.
    NoisyUnivariate(NoisyUnivariate),
    StatisticsBivariate(Box<StatisticsBivariate>),
    StatisticsFrequency(StatisticsFrequency),
    StatisticsContingency(StatisticsContingency),
    /// SecureMatrixMultiplication and StatisticsRegressionOLSVertical.
    Product(SecureMatrixMultiplication),
    /// The same by the original's method, for two parties that opt in to what it reveals.
    Projected(ProjectedProduct),
    SetIntersection(SetIntersection),
    /// Two-party SetIntersection by OT PSI.
    OtSetIntersection(OtSetIntersection),
    ContingencyVertical(ContingencyVertical),
}

/// The definition's `min_total_samples`: a positive integer, for a protocol [`with_total`].
fn min_total(microprotocol: &str, min: Value) -> Result<u64, String> {
    if !with_total(microprotocol) {
        let those: Vec<&str> = AVAILABLE.iter().copied().filter(|m| with_total(m)).collect();
        return Err(format!(
            "{MIN_TOTAL_SAMPLES}: {microprotocol} has no total of records to check (those that do: {})",
            those.join(", ")
        ));
    }
    min.as_u64()
        .filter(|min| *min >= 1)
        .ok_or_else(|| format!("{MIN_TOTAL_SAMPLES} must be a positive integer, got {min}"))
}

/// A PSI input's problem as an invalid input.
fn items(reason: String) -> EngineError {
    EngineError::InvalidInput(EncodingError::Invalid(reason))
}

/// Runs `$json` with `$p` bound to whichever protocol the machine holds, or `$psi` for the PSI
/// protocols, whose lists travel in a compact binary form instead of JSON ([`Wire`]).
macro_rules! each_protocol {
    ($protocol:expr, $p:ident => $body:expr, psi => $psi:expr) => {
        match $protocol {
            Protocol::SetIntersection($p) => $psi,
            Protocol::OtSetIntersection($p) => $psi,
            Protocol::ContingencyVertical($p) => $psi,
            Protocol::SecureSum($p) => $body,
            Protocol::ExactSecureSum($p) => $body,
            Protocol::MinimumMaximum($p) => $body,
            Protocol::KthElement($p) => $body,
            Protocol::SecureMedian($p) => $body,
            Protocol::StatisticsUnivariate($p) => $body,
            Protocol::NoisyUnivariate($p) => $body,
            Protocol::StatisticsBivariate($p) => $body,
            Protocol::StatisticsFrequency($p) => $body,
            Protocol::StatisticsContingency($p) => $body,
            Protocol::Product($p) => $body,
            Protocol::Projected($p) => $body,
        }
    };
}

/// A top-level protocol's output as the reference's `result` object.
trait ResultObject {
    fn into_result(self) -> Value;
}

impl ResultObject for Value {
    fn into_result(self) -> Value {
        self
    }
}

impl ResultObject for Extremes {
    fn into_result(self) -> Value {
        self.to_json()
    }
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
    /// The check of the records in all, where the definition sets `min_total_samples`: the
    /// protocol starts once it has passed, and every message then carries a tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    total: Option<TotalCheck>,
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

impl Step {
    /// This step's messages and then `next`'s, and the output of whichever has one.
    fn then(mut self, next: Step) -> Step {
        self.outgoing.extend(next.outgoing);
        Step {
            outgoing: self.outgoing,
            output: self.output.or(next.output),
        }
    }
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
            Protocol::SetIntersection(_)
                | Protocol::OtSetIntersection(_)
                | Protocol::ContingencyVertical(_)
                | Protocol::Product(_)
                | Protocol::StatisticsFrequency(_)
                | Protocol::StatisticsContingency(_)
        )
    }

    /// The machine's bulk in a store's bytes, if it has one: what it holds that is large and that
    /// no later step changes (an OT PSI's items, once started). Its serde form leaves the bulk
    /// out, so that a store writes it once, apart, instead of with every step's state; a state
    /// loaded from that form waits for it ([`Machine::lacks_bulk`], [`Machine::restore_bulk`]).
    pub fn bulk(&self) -> Option<Vec<u8>> {
        match &self.protocol {
            Protocol::OtSetIntersection(p) => p.set().get().filter(|items| !items.is_empty()).map(Items::to_bytes),
            _ => None,
        }
    }

    /// Whether this machine, loaded from its serde form, waits for its bulk: a step before that
    /// fails (rather than run on nothing).
    pub fn lacks_bulk(&self) -> bool {
        matches!(&self.protocol, Protocol::OtSetIntersection(p) if p.set().missing())
    }

    /// Gives a loaded machine its bulk back, as [`Machine::bulk`] gave it.
    pub fn restore_bulk(&mut self, bulk: &[u8]) -> Result<(), String> {
        match &mut self.protocol {
            Protocol::OtSetIntersection(p) => p.restore_set(bulk),
            _ => Err("this machine has no bulk".into()),
        }
    }

    /// Starts the protocol. `masks` are this party's mask seeds for the computation (the same
    /// at every step; see [`Masks`]).
    pub fn start(&mut self, rng: &mut dyn RngCore, masks: &Masks) -> Result<Step, EngineError> {
        self.start_stoppable(rng, masks, never())
    }

    /// [`Machine::start`], ending early with [`ProtocolError::Stopped`] once `stop` is set (a
    /// long step off the runtime's loop whose computation has ended meanwhile).
    pub fn start_stoppable(
        &mut self,
        rng: &mut dyn RngCore,
        masks: &Masks,
        stop: &AtomicBool,
    ) -> Result<Step, EngineError> {
        let context = Context {
            me: self.me,
            parties: self.parties,
            masks,
            stop,
        };
        self.started = true;
        match &mut self.total {
            // The count first: the protocol starts once every party's is in.
            Some(check) => count_step(check, context, rng, |check, io| check.start(io)).map(|(step, _)| step),
            None => self.start_protocol(context, rng),
        }
    }

    /// Applies one message from party `from` (never `me`).
    pub fn receive(
        &mut self,
        from: PartyIndex,
        message: &[u8],
        rng: &mut dyn RngCore,
        masks: &Masks,
    ) -> Result<Step, EngineError> {
        self.receive_stoppable(from, message, rng, masks, never())
    }

    /// [`Machine::receive`], ending early once `stop` is set (see [`Machine::start_stoppable`]).
    pub fn receive_stoppable(
        &mut self,
        from: PartyIndex,
        message: &[u8],
        rng: &mut dyn RngCore,
        masks: &Masks,
        stop: &AtomicBool,
    ) -> Result<Step, EngineError> {
        if from >= self.parties || from == self.me {
            return Err(ProtocolError::Unexpected {
                from,
                what: "a message from an invalid sender index".into(),
            }
            .into());
        }
        let context = Context {
            me: self.me,
            parties: self.parties,
            masks,
            stop,
        };
        let Some(check) = &mut self.total else {
            return self.receive_protocol(context, rng, from, message);
        };
        let count = match total::unframe(from, message)? {
            Framed::Protocol(message) if check.passed() => return self.receive_protocol(context, rng, from, message),
            Framed::Protocol(message) => {
                check.hold(from, message);
                return Ok(Step::default());
            }
            Framed::Count(count) => count,
        };
        let (mut step, passed) = count_step(check, context, rng, |check, io| check.receive(from, count, io))?;
        if passed {
            let early = check.take_early();
            step = step.then(self.start_protocol(context, rng)?);
            for (from, message) in early {
                step = step.then(self.receive_protocol(context, rng, from, &message)?);
            }
        }
        Ok(step)
    }

    fn start_protocol(&mut self, context: Context<'_>, rng: &mut dyn RngCore) -> Result<Step, EngineError> {
        let step = each_protocol!(&mut self.protocol,
            p => run(context, rng, json_bytes, |io| p.start(io)),
            psi => run(context, rng, Wire::to_bytes, |io| p.start(io)))?;
        Ok(self.framed(self.reported(step)))
    }

    fn receive_protocol(
        &mut self,
        context: Context<'_>,
        rng: &mut dyn RngCore,
        from: PartyIndex,
        message: &[u8],
    ) -> Result<Step, EngineError> {
        let step = each_protocol!(&mut self.protocol,
        p => {
            let message = decode(from, message)?;
            run(context, rng, json_bytes, |io| p.receive(from, message, io))
        },
        psi => {
            let message = Wire::from_bytes(from, message)?;
            run(context, rng, Wire::to_bytes, |io| p.receive(from, message, io))
        })?;
        Ok(self.framed(self.reported(step)))
    }

    /// A protocol step's messages, tagged as the protocol's where the total is checked.
    fn framed(&self, mut step: Step) -> Step {
        if self.total.is_some() {
            for (_, message) in &mut step.outgoing {
                *message = total::frame(total::PROTOCOL, std::mem::take(message));
            }
        }
        step
    }

    /// The products report `"inputs": 2` as the reference does: two matrices went in, whoever
    /// else took part.
    fn reported(&self, mut step: Step) -> Step {
        if let (Protocol::Product(_), Some(output)) = (&self.protocol, step.output.as_mut()) {
            output["inputs"] = json!(2);
        }
        step
    }
}

fn decode<M: serde::de::DeserializeOwned>(from: PartyIndex, bytes: &[u8]) -> Result<M, ProtocolError> {
    serde_json::from_slice(bytes).map_err(|e| ProtocolError::Malformed {
        from,
        reason: e.to_string(),
    })
}

/// A step of the count's sum: its messages tagged, and whether the total has passed.
fn count_step(
    check: &mut TotalCheck,
    context: Context<'_>,
    rng: &mut dyn RngCore,
    step: impl FnOnce(&mut TotalCheck, &mut Io<'_, SumMessage<1>>) -> Result<Progress<()>, ProtocolError>,
) -> Result<(Step, bool), EngineError> {
    let mut io = Io::with_masks(context.me, context.parties, rng, context.masks).stoppable(context.stop);
    let progress = step(check, &mut io)?;
    let outgoing = io
        .into_outgoing()
        .into_iter()
        .map(|(to, message)| (to, total::frame(total::COUNT, json_bytes(&message))))
        .collect();
    let step = Step { outgoing, output: None };
    Ok((step, progress == Progress::Done(())))
}

/// Most messages travel as JSON.
fn json_bytes<M: Serialize>(message: &M) -> Vec<u8> {
    serde_json::to_vec(message).expect("messages serialise")
}

/// Who runs a step, among how many, with which mask seeds.
#[derive(Clone, Copy)]
struct Context<'a> {
    me: PartyIndex,
    parties: usize,
    masks: &'a Masks,
    stop: &'a AtomicBool,
}

fn run<M, T: ResultObject>(
    context: Context<'_>,
    rng: &mut dyn RngCore,
    encode: impl Fn(&M) -> Vec<u8>,
    step: impl FnOnce(&mut Io<'_, M>) -> Result<Progress<T>, ProtocolError>,
) -> Result<Step, EngineError> {
    let Context {
        me,
        parties,
        masks,
        stop,
    } = context;
    let mut io = Io::with_masks(me, parties, rng, masks).stoppable(stop);
    let progress = step(&mut io)?;
    let outgoing = io
        .into_outgoing()
        .into_iter()
        .map(|(to, message)| (to, encode(&message)))
        .collect();
    let output = match progress {
        Progress::Continue => None,
        Progress::Done(result) => Some(json!({"inputs": parties, "result": result.into_result()})),
    };
    Ok(Step { outgoing, output })
}
