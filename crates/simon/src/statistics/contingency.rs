//! StatisticsContingency: the contingency table of pairs `[row, column]` over all parties.
//!
//! Input: a list of pairs of categories (JSON scalars). Parameters `rows` and `columns`
//! (optional, independently): the categories of that dimension; when given, no party's categories
//! of it travel ([`crate::statistics::categorical`]). Output: `{"table": {row: {column:
//! count}}, "mode": [row, column]}`: every cell of rows × columns, zero cells included, counts
//! ints, keys as [`categorical::display_names`] writes them, the mode the first greatest cell in
//! canonical order (the reference's `"sum_{}_{}"` tags collided for `a_b`/`c` and `a`/`b_c`,
//! W17).
//!
//! Rounds: the exchange of category sets (one hop; none when both are given), then one sum
//! round of rows × columns counts. What each party learns: every cell's count, and for
//! exchanged dimensions the set of categories each other party has.
//!
//! With `dp` (needs `rows` and `columns`; [`crate::dp`], [`crate::statistics::categorical`]): the counts
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
pub struct ContingencyParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<Value>>,
    /// Differential privacy of the counts ([`crate::dp`]); needs `rows` and `columns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<DpParameters>,
}

impl ContingencyParameters {
    pub fn validate(self, parties: usize) -> Result<Self, String> {
        let check =
            |name, given: Option<Vec<Value>>| given.map(|g| categorical::given_categories(name, &g)).transpose();
        let given = [self.rows.is_some(), self.columns.is_some()];
        Ok(ContingencyParameters {
            rows: check("rows", self.rows)?,
            columns: check("columns", self.columns)?,
            dp: categorical::validate_dp(self.dp, parties, &given)?,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatisticsContingency {
    counts: Categorical,
}

/// The pairs of a JSON input, each standing for one record.
pub fn records(input: &Value) -> Result<Vec<(&[Value], u64)>, EncodingError> {
    let pairs = match input {
        Value::Array(items) => items,
        _ => {
            return Err(EncodingError::Invalid(
                "StatisticsContingency takes a list of pairs [row, column]".into(),
            ));
        }
    };
    pairs
        .iter()
        .map(|pair| match pair {
            Value::Array(cell) if cell.len() == 2 => Ok((cell.as_slice(), 1)),
            other => Err(EncodingError::Invalid(format!(
                "StatisticsContingency takes pairs [row, column], found {other}"
            ))),
        })
        .collect()
}

impl StatisticsContingency {
    /// `records`: pairs `[row, column]`, each standing for as many records as its count
    /// ([`records`] of a JSON input, or [`crate::input::Pairs::counted`]).
    pub fn new(
        parameters: &ContingencyParameters,
        parties: usize,
        limits: Limits,
        min_cell_count: Option<u64>,
        records: Vec<(&[Value], u64)>,
    ) -> Result<StatisticsContingency, EncodingError> {
        let given = vec![parameters.rows.clone(), parameters.columns.clone()];
        Ok(StatisticsContingency {
            counts: Categorical::weighted(
                records,
                given,
                parties,
                limits,
                disclosure(parameters.dp.clone(), min_cell_count),
            )?,
        })
    }
}

fn output(progress: Progress<Table>) -> Progress<Value> {
    progress.map(|table| {
        let (rows, columns) = (&table.dimensions[0], &table.dimensions[1]);
        let column_names = categorical::display_names(columns);
        let mut out = Map::new();
        for (r, row) in categorical::display_names(rows).into_iter().enumerate() {
            let cells: Map<String, Value> = column_names
                .iter()
                .enumerate()
                .map(|(c, column)| (column.clone(), json!(table.counts[r * columns.len() + c])))
                .collect();
            out.insert(row, Value::Object(cells));
        }
        let mode = table.mode().map(|cell| json!([cell[0].value, cell[1].value]));
        let suppressed: Vec<Value> = table
            .counts
            .iter()
            .enumerate()
            .filter(|(_, count)| count.is_none())
            .map(|(cell, _)| json!([rows[cell / columns.len()].value, columns[cell % columns.len()].value]))
            .collect();
        categorical::with_dp(json!({"table": out, "mode": mode}), table.dp, suppressed)
    })
}

impl Microprotocol for StatisticsContingency {
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
