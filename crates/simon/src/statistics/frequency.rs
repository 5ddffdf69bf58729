//! StatisticsFrequency: how often each value occurs over all parties, and the most frequent.
//!
//! Input: a list of categories (JSON scalars; a bare scalar is one item). Parameter
//! `categories` (optional): the values to count; when given, no party's values travel, only
//! the summed counts ([`crate::statistics::categorical`]). Output: `{"histogram": {value: count},
//! "mode": value}`: counts are ints; keys as [`categorical::display_names`] writes them; the
//! mode keeps its JSON type and is, on ties, the first in canonical order, the same at every
//! party (the reference returned strings for every key and party-dependent modes, W17).
//!
//! Rounds: the exchange of category sets (one hop; none with `categories`), then one sum round.
//! What each party learns: every count, and without `categories` the set of values each other
//! party has.
//!
//! With `dp` (needs `categories`; [`crate::dp`], [`crate::statistics::categorical`]): the counts
//! open noisy and signed, the result adds `"dp"` (the mechanism) and `"suppressed"` (the cells
//! this party's `min_cell_count` hides, shown as null).

use crate::dp::DpParameters;
use crate::fixed_point::EncodingError;
use crate::protocol::{Io, Limits, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::statistics::categorical::{self, Categorical, CategoricalMessage, Table, disclosure};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrequencyParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<Value>>,
    /// Differential privacy of the counts ([`crate::dp`]); needs `categories`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<DpParameters>,
}

impl FrequencyParameters {
    pub fn validate(self, parties: usize) -> Result<Self, String> {
        let given = [self.categories.is_some()];
        let categories = self
            .categories
            .map(|c| categorical::given_categories("categories", &c))
            .transpose()?;
        let dp = categorical::validate_dp(self.dp, parties, &given)?;
        Ok(FrequencyParameters { categories, dp })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatisticsFrequency {
    counts: Categorical,
}

impl StatisticsFrequency {
    pub fn new(
        parameters: &FrequencyParameters,
        parties: usize,
        limits: Limits,
        min_cell_count: Option<u64>,
        input: &Value,
    ) -> Result<StatisticsFrequency, EncodingError> {
        let items = match input {
            Value::Array(items) => items.as_slice(),
            single => std::slice::from_ref(single),
        };
        let records: Vec<&[Value]> = items.iter().map(std::slice::from_ref).collect();
        Ok(StatisticsFrequency {
            counts: Categorical::new(
                &records,
                vec![parameters.categories.clone()],
                parties,
                limits,
                disclosure(parameters.dp.clone(), min_cell_count),
            )?,
        })
    }
}

fn output(progress: Progress<Table>) -> Progress<Value> {
    progress.map(|table| {
        let names = categorical::display_names(&table.dimensions[0]);
        let histogram: Map<String, Value> = names
            .into_iter()
            .zip(&table.counts)
            .map(|(k, c)| (k, json!(c)))
            .collect();
        let mode = table.mode().map(|cell| cell[0].value.clone());
        let suppressed: Vec<Value> = table
            .counts
            .iter()
            .zip(&table.dimensions[0])
            .filter(|(count, _)| count.is_none())
            .map(|(_, category)| category.value.clone())
            .collect();
        categorical::with_dp(json!({"histogram": histogram, "mode": mode}), table.dp, suppressed)
    })
}

impl Microprotocol for StatisticsFrequency {
    type Message = CategoricalMessage;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, CategoricalMessage>) -> Result<Progress<Value>, ProtocolError> {
        self.counts.start(io).map(output)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: CategoricalMessage,
        io: &mut Io<'_, CategoricalMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        self.counts.receive(from, message, io).map(output)
    }
}
