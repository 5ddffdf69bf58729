//! Datasets: inputs that name data the node reads itself (`{"dataset": "labs", "column":
//! "hba1c"}`) instead of carrying values (README, "Datasets"). This module owns what such an
//! input may ask ([`Reference`]), who may ask it (the `datasets` grants of `[[clients]]`), and
//! how the rows read become the very input value a JSON submission of the same values would be:
//! the engine never knows where an input came from, so a result from a dataset equals the
//! result from JSON. One numeric column for a protocol that reads doubles becomes the doubles
//! themselves ([`Input::Doubles`], 8 bytes a value where a JSON value holds about 80), read by
//! the engine's own rule ([`fsc_simon::input::double`]) so that the result is still JSON's. Two
//! columns for StatisticsContingency become [`Input::Pairs`], each category kept once.
//! `csv`, `parquet` and `sql` read the sources, record by record.
//!
//! A dataset is read afresh at every submission that names it (the steward may replace the file
//! or the table at any time), at the submitting node only, before the policy is checked and
//! before the engine starts. Reading is blocking work (files, SQLite) and runs on a blocking
//! thread, off the node's loop; PostgreSQL is read through sqlx's async connection.
//!
//! Errors ([`DatasetError`]) name a row's number and a column, never a value: the submitting
//! client reads them, and the other parties are told only a reason code.

mod csv;
mod parquet;
mod sql;

use crate::caller::Caller;
use crate::config::datasets::{ColumnType, DatasetConfig};
use crate::config::{LOCAL_CLIENT, NodeConfig};
pub use crate::error::DatasetError;
use fsc_simon::fixed_point::EncodingError;
use fsc_simon::input::Pairs;
use fsc_simon::{EngineError, Input};
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The client may not read the dataset, a column, or filter on it (403).
pub const FORBIDDEN: &str = "dataset_forbidden";
/// The file or database cannot be read now (503): a steward's matter, not the client's.
pub const UNAVAILABLE: &str = "dataset_unavailable";
/// No column of that name in a dataset the client may read (400).
pub const UNKNOWN: &str = "unknown_dataset";
/// The reference itself is malformed, or does not fit the microprotocol (400).
pub const INVALID_REFERENCE: &str = "invalid_dataset_input";
/// A value is not of its column's type (400), named by row number.
pub const BAD_VALUE: &str = "invalid_dataset_value";
/// A value is missing and the input says `"missing": "refuse"` (the default) (400).
pub const MISSING: &str = "missing_value";
/// A read keeps more records than the node's `max_dataset_records` (400).
pub const TOO_LARGE: &str = "too_large";

impl DatasetError {
    fn new(code: &'static str, message: impl Into<String>) -> DatasetError {
        DatasetError {
            code,
            message: message.into(),
        }
    }

    /// The reason code the other parties are told: a bad or missing value, an unknown name or
    /// a malformed reference is an input error like any (`invalid_input`); refusals and outages
    /// keep their own codes.
    pub fn announced(&self) -> &'static str {
        match self.code {
            FORBIDDEN | UNAVAILABLE => self.code,
            _ => "invalid_input",
        }
    }
}

/// What to do with a row whose wanted column has no value (an empty CSV field, SQL NULL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    /// Refuse the input, naming the first such row.
    #[default]
    Refuse,
    /// Leave the row out, and count it (`skipped`).
    Skip,
}

/// An input that names a dataset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub dataset: String,
    /// One column: the input is the list of its values.
    #[serde(default)]
    pub column: Option<String>,
    /// Several columns: the input is the list of rows, each the list of their values.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Only the rows whose categorical columns hold these values (the dataset's `filters`).
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, Value>,
    #[serde(default)]
    pub missing: Missing,
    /// With `columns`: a leading 1 in every row (the intercept of a regression's design matrix).
    #[serde(default)]
    pub intercept: bool,
    /// KthElement's terms beside the column that is its `array`: the rank and the bounds, as
    /// its JSON input gives them.
    #[serde(default)]
    pub rank: Option<Value>,
    #[serde(default)]
    pub lower_bound: Option<Value>,
    #[serde(default)]
    pub upper_bound: Option<Value>,
}

impl Reference {
    /// Whether `input` names a dataset rather than carrying values: an object with a `dataset`
    /// key (no microprotocol takes such an object as its whole input).
    pub fn is_reference(input: &Value) -> bool {
        input.as_object().is_some_and(|o| o.contains_key("dataset"))
    }
}

/// What the submitting client is told of a dataset input it submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub dataset: String,
    /// The rows that became input records.
    pub records: u64,
    /// The rows left out for a missing value (`"missing": "skip"`).
    pub skipped: u64,
}

/// A resolved reference: the input value, and what it was made of.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub input: Input,
    pub summary: Summary,
}

/// The columns one read wants, in order: the reference's columns, then the filter's.
#[derive(Debug, Clone)]
struct Plan {
    columns: Vec<(String, ColumnType)>,
    /// How many of `columns` are the input's (the rest are filtered on).
    wanted: usize,
    /// (index in `columns`, the value it must hold).
    filter: Vec<(usize, Value)>,
    missing: Missing,
    /// The input is one list of values (`column`), not rows.
    flat: bool,
    /// The input is one numeric column for a protocol that reads doubles: kept as doubles.
    doubles: bool,
    /// Two columns for StatisticsContingency: kept as [`Pairs`], each category once.
    pairs: bool,
    intercept: bool,
    /// KthElement's rank and bounds: the input is `[{"array": the column, ...these}]`.
    kth: Option<serde_json::Map<String, Value>>,
    dataset: String,
    /// The node's `max_dataset_records`.
    max_records: u64,
}

/// The values a read keeps.
enum Values {
    Json(Vec<Value>),
    Doubles(Vec<f64>),
    Pairs(Pairs),
}

/// The rows a read keeps, as it goes: filtered, missing values skipped or refused.
struct Collector {
    plan: Plan,
    values: Values,
    skipped: u64,
}

impl Collector {
    /// Refuses row `number` (1-based) if keeping it would take more than the plan's records.
    fn room(&self, number: u64) -> Result<(), DatasetError> {
        let kept = match &self.values {
            Values::Json(values) => values.len(),
            Values::Doubles(doubles) => doubles.len(),
            Values::Pairs(pairs) => pairs.len(),
        };
        if kept as u64 >= self.plan.max_records {
            return Err(DatasetError::new(
                TOO_LARGE,
                format!(
                    "dataset {:?} gives more than {} records (row {number}), this node's max_dataset_records: a filter can select fewer",
                    self.plan.dataset, self.plan.max_records
                ),
            ));
        }
        Ok(())
    }

    fn new(plan: Plan) -> Collector {
        let values = if plan.pairs {
            Values::Pairs(Pairs::default())
        } else if plan.doubles {
            Values::Doubles(Vec::new())
        } else {
            Values::Json(Vec::new())
        };
        Collector {
            plan,
            values,
            skipped: 0,
        }
    }

    fn keep(&mut self, value: Value) {
        if let Values::Doubles(doubles) = &mut self.values {
            match fsc_simon::input::double(&value) {
                Some(x) => return doubles.push(x),
                // The engine refuses this value: it goes as JSON, for the engine to refuse it as
                // it refuses JSON (the doubles before it are their numbers' doubles).
                None => self.values = Values::Json(doubles.iter().map(|&x| fsc_simon::input::json_number(x)).collect()),
            }
        }
        if let Values::Json(values) = &mut self.values {
            values.push(value);
        }
    }

    /// Takes row `number` (1-based), its cells in the plan's column order (`None`: missing).
    fn push(&mut self, number: u64, mut cells: Vec<Option<Value>>) -> Result<(), DatasetError> {
        if !self
            .plan
            .filter
            .iter()
            .all(|(index, expected)| cells[*index].as_ref() == Some(expected))
        {
            return Ok(());
        }
        cells.truncate(self.plan.wanted);
        if let Some(index) = cells.iter().position(Option::is_none) {
            return self.skip(number, index);
        }
        self.room(number)?;
        let mut cells = cells.into_iter().flatten();
        if self.plan.flat {
            self.keep(cells.next().expect("no cell is missing"));
        } else if let Values::Pairs(pairs) = &mut self.values {
            let (row, column) = (cells.next(), cells.next());
            pairs.push(row.expect("two columns"), column.expect("two columns"));
        } else {
            let mut row = Vec::with_capacity(self.plan.wanted + 1);
            if self.plan.intercept {
                row.push(Value::Number(1.into()));
            }
            row.extend(cells);
            self.keep(Value::Array(row));
        }
        Ok(())
    }

    /// Row `number` has no value in wanted column `index`: refused or skipped, as the input says.
    fn skip(&mut self, number: u64, index: usize) -> Result<(), DatasetError> {
        if self.plan.missing == Missing::Refuse {
            return Err(DatasetError::new(
                MISSING,
                format!(
                    "row {number} of dataset {:?} has no value in column {:?} (\"missing\": \"skip\" leaves such rows out)",
                    self.plan.dataset, self.plan.columns[index].0
                ),
            ));
        }
        self.skipped += 1;
        Ok(())
    }

    /// Whether a reader may hand over each row as one double ([`Collector::push_double`]), without
    /// making a JSON value of it: the plan keeps one numeric column as doubles and filters nothing.
    fn takes_doubles(&self) -> bool {
        self.plan.doubles && self.plan.filter.is_empty()
    }

    /// Takes row `number` (1-based) of a plan that [`Collector::takes_doubles`]: its one cell as
    /// the double [`from_text`] and the engine's [`fsc_simon::input::double`] would make of it
    /// (`None`: missing).
    fn push_double(&mut self, number: u64, cell: Option<f64>) -> Result<(), DatasetError> {
        debug_assert!(self.takes_doubles());
        if cell.is_some() {
            self.room(number)?;
        }
        match (cell, &mut self.values) {
            (None, _) => self.skip(number, 0),
            (Some(x), Values::Doubles(doubles)) => {
                doubles.push(x);
                Ok(())
            }
            // An earlier value sent the column down the JSON path (the engine will refuse it).
            (Some(x), Values::Json(values)) => {
                values.push(fsc_simon::input::json_number(x));
                Ok(())
            }
            (Some(_), Values::Pairs(_)) => unreachable!("a plan of one column keeps no pairs"),
        }
    }

    fn finish(self, microprotocol: &str) -> Resolved {
        let (records, input) = match self.values {
            Values::Doubles(doubles) => (doubles.len() as u64, Input::Doubles(doubles)),
            Values::Pairs(pairs) => (pairs.len() as u64, Input::Pairs(pairs)),
            Values::Json(values) => {
                let records = values.len() as u64;
                let list = Value::Array(values);
                // A party's set is the intersection of its lists: one column is one list.
                let input = match (microprotocol, self.plan.kth) {
                    (_, Some(mut terms)) => {
                        terms.insert("array".into(), list);
                        Value::Array(vec![Value::Object(terms)])
                    }
                    ("SetIntersection" | "SetIntersectionSize", None) if self.plan.flat => Value::Array(vec![list]),
                    _ => list,
                };
                (records, Input::Json(input))
            }
        };
        Resolved {
            input,
            summary: Summary {
                dataset: self.plan.dataset,
                records,
                skipped: self.skipped,
            },
        }
    }
}

/// A CSV field or a database's text as a value of `kind`: `Ok(None)` if empty, `Err(())` if it
/// is not of the type. A number keeps its text where it is JSON (so `42` stays an integer and
/// `0.1` the same decimal a JSON input would give).
fn from_text(text: &str, kind: ColumnType) -> Result<Option<Value>, ()> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match kind {
        ColumnType::String => Ok(Some(Value::String(text.to_string()))),
        ColumnType::Integer => text
            .parse::<i64>()
            .map(|i| Some(Value::Number(i.into())))
            .map_err(|_| ()),
        ColumnType::Number => {
            if let Ok(number) = serde_json::from_str::<Number>(text) {
                // arbitrary_precision keeps any JSON number's text; only finite doubles pass.
                return match number.as_f64() {
                    Some(f) if f.is_finite() => Ok(Some(Value::Number(number))),
                    _ => Err(()),
                };
            }
            // Forms JSON lacks but CSV files hold (`+1`, `.5`, `1.`): the double they denote.
            let f: f64 = text.parse().map_err(|_| ())?;
            Number::from_f64(f)
                .filter(|_| f.is_finite())
                .map(|n| Some(Value::Number(n)))
                .ok_or(())
        }
    }
}

/// An engine error about an input read from dataset `dataset`, as its submitting client and
/// the computation's record are told it. For a posted input the engine's description may quote
/// a value (a category outside the given ones, an integer without an exact double), which its
/// client sent; a dataset's values are the steward's, and its reader may learn aggregates only.
/// So an input error keeps its code and says what kind of problem it is, never a value.
pub fn withhold_values(dataset: &str, error: EngineError) -> EngineError {
    let EngineError::InvalidInput(encoding) = error else {
        return error;
    };
    let kind = match encoding {
        EncodingError::NotANumber(found) => format!("a value is {found}, not a number"),
        EncodingError::NotFinite(_) => "a value is beyond the range of doubles".to_string(),
        EncodingError::OutOfRange(_) => "the values' sum is beyond the range the microprotocol takes".to_string(),
        EncodingError::Invalid(_) => {
            "the microprotocol refuses a value or their shape (its description is withheld: it can quote a value)"
                .to_string()
        }
    };
    EngineError::InvalidInput(EncodingError::Invalid(format!(
        "the records read from dataset {dataset:?} are no input for this computation: {kind}"
    )))
}

/// The double that [`from_text`] and then the engine's [`fsc_simon::input::double`] make of a
/// field of a numeric column, parsed straight from the text (a dataset's column of millions of
/// numbers is read without a JSON value per number): `Some(None)` if empty, `None` where only
/// those two can say (a long text, a form that is no plain number, a value they refuse), for the
/// caller to take their path.
fn double_from_text(text: &str, kind: ColumnType) -> Option<Option<f64>> {
    let text = text.trim_ascii();
    if text.is_empty() {
        return Some(None);
    }
    // A JSON number's text longer than this goes to the engine as text, which refuses it.
    let plain = |b: u8| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E');
    if text.len() > fsc_simon::fixed_point::MAX_NUMBER_CHARS || !text.bytes().all(plain) {
        return None;
    }
    match kind {
        // `from_text` keeps a JSON number's text and the engine parses it as here; another form
        // (`+1`, `.5`) becomes its double's shortest text, which parses back to that double.
        ColumnType::Number => text.parse::<f64>().ok().filter(|x| x.is_finite()).map(Some),
        // An i64's text parses to the double nearest to it, as `as` rounds it.
        ColumnType::Integer => text.parse::<i64>().ok().map(|i| Some(i as f64)),
        ColumnType::String => None,
    }
}

fn bad_value(dataset: &str, row: u64, column: &str, kind: ColumnType) -> DatasetError {
    DatasetError::new(
        BAD_VALUE,
        format!(
            "row {row} of dataset {dataset:?}: the value in column {column:?} is not a{} {}",
            if kind == ColumnType::Integer { "n" } else { "" },
            kind.name()
        ),
    )
}

/// Runs reading work (files, SQLite) on a blocking thread: a large dataset takes seconds, which
/// the node's loop must not wait through.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DatasetError> + Send + 'static,
) -> Result<T, DatasetError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|_| Err(DatasetError::new(UNAVAILABLE, "reading the dataset stopped")))
}

/// The datasets of a node and who may read them.
pub struct Datasets {
    sets: Vec<DatasetConfig>,
    /// Per client, its grants (`labs`, `labs.hba1c`); `None` on a node without clients, whose
    /// one local client reads every dataset.
    grants: Option<HashMap<String, Vec<String>>>,
    /// The most records one read keeps (`max_dataset_records`).
    max_records: u64,
}

impl Datasets {
    pub fn new(config: &NodeConfig) -> Arc<Datasets> {
        let grants = (!config.clients.is_empty()).then(|| {
            config
                .clients
                .iter()
                .map(|c| (c.name.clone(), c.datasets.clone()))
                .collect()
        });
        Arc::new(Datasets {
            sets: config.datasets.clone(),
            grants,
            max_records: config.max_dataset_records,
        })
    }

    fn may_read(&self, client: &str, dataset: &str, column: &str) -> bool {
        let Some(grants) = &self.grants else {
            return client == LOCAL_CLIENT;
        };
        grants.get(client).is_some_and(|grants| {
            grants
                .iter()
                .any(|g| g == dataset || g.split_once('.').is_some_and(|(d, c)| d == dataset && c == column))
        })
    }

    /// A submission's input as the runtime takes it: an input naming a dataset read now into
    /// the value it stands for, with what was read (or the reason it cannot be, for the runtime
    /// to fail the computation with everywhere; the value is then null); any other input as it
    /// is, without a summary. `parameters` are the computation's: they say whether the
    /// microprotocol reads doubles.
    pub async fn read_input(
        &self,
        caller: &Caller,
        microprotocol: &str,
        parameters: &Value,
        input: Value,
    ) -> (Input, Option<Result<Summary, DatasetError>>) {
        if !Reference::is_reference(&input) {
            return (Input::Json(input), None);
        }
        match self.resolve(caller, microprotocol, parameters, &input).await {
            Ok(resolved) => (resolved.input, Some(Ok(resolved.summary))),
            Err(error) => (Input::Json(Value::Null), Some(Err(error))),
        }
    }

    /// The input value `input` (a [`Reference`]) stands for, read now.
    pub async fn resolve(
        &self,
        caller: &Caller,
        microprotocol: &str,
        parameters: &Value,
        input: &Value,
    ) -> Result<Resolved, DatasetError> {
        let reference: Reference = serde_json::from_value(input.clone()).map_err(|e| {
            DatasetError::new(
                INVALID_REFERENCE,
                format!("an input naming a dataset is {{\"dataset\", \"column\" or \"columns\", \"where\"?, \"missing\"?, \"intercept\"?}}: {e}"),
            )
        })?;
        let doubles = fsc_simon::input::reads_doubles(microprotocol, parameters);
        let (dataset, plan) = self.plan(&caller.name, microprotocol, doubles, reference)?;
        let dataset = dataset.clone();
        let collector = Collector::new(plan);
        let collector = match (&dataset.csv, &dataset.sql) {
            (Some(source), _) => {
                let source = source.clone();
                let name = dataset.name.clone();
                let all: Vec<String> = dataset.columns.iter().map(|c| c.name.clone()).collect();
                blocking(move || csv::read(&name, &source, &all, collector)).await?
            }
            (None, Some(source)) => sql::read(&dataset.name, source, collector).await?,
            (None, None) => {
                let source = dataset
                    .parquet
                    .clone()
                    .expect("checked at start: every dataset has a source");
                let name = dataset.name.clone();
                blocking(move || parquet::read(&name, &source, collector)).await?
            }
        };
        Ok(collector.finish(microprotocol))
    }

    /// Checks `reference` against the datasets, the client's grants and the microprotocol
    /// (which reads doubles if `doubles`).
    fn plan(
        &self,
        client: &str,
        microprotocol: &str,
        doubles: bool,
        reference: Reference,
    ) -> Result<(&DatasetConfig, Plan), DatasetError> {
        let name = &reference.dataset;
        let dataset = self.sets.iter().find(|d| &d.name == name);
        // A dataset this client may not read at all is as unknown to it as one that is not: the
        // same answer for both, so that a client cannot probe which datasets exist.
        let Some(dataset) = dataset.filter(|d| d.columns.iter().any(|c| self.may_read(client, &d.name, &c.name)))
        else {
            return Err(DatasetError::new(
                FORBIDDEN,
                format!(
                    "client {client:?} may read no dataset {name:?} on this node (GET /v1/datasets lists those it may)"
                ),
            ));
        };
        let kth = match (
            microprotocol,
            reference.rank,
            reference.lower_bound,
            reference.upper_bound,
        ) {
            ("KthElement", Some(rank), Some(lower_bound), Some(upper_bound)) if reference.column.is_some() => Some(
                [
                    ("rank", rank),
                    ("lower_bound", lower_bound),
                    ("upper_bound", upper_bound),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ),
            ("KthElement", ..) => {
                return Err(DatasetError::new(
                    INVALID_REFERENCE,
                    "KthElement names a \"column\" (its array) with its \"rank\", \"lower_bound\" and \"upper_bound\"",
                ));
            }
            (_, None, None, None) => None,
            _ => {
                return Err(DatasetError::new(
                    INVALID_REFERENCE,
                    "\"rank\", \"lower_bound\" and \"upper_bound\" are KthElement's",
                ));
            }
        };
        let (wanted, flat) = match (reference.column, reference.columns) {
            (Some(column), None) => (vec![column], true),
            (None, Some(columns)) if !columns.is_empty() => (columns, false),
            _ => {
                return Err(DatasetError::new(
                    INVALID_REFERENCE,
                    "name either one \"column\" or a non-empty list of \"columns\"",
                ));
            }
        };
        if reference.intercept && flat {
            return Err(DatasetError::new(
                INVALID_REFERENCE,
                "\"intercept\" goes with \"columns\" (a design matrix)",
            ));
        }
        let find = |column: &str| {
            let config = dataset
                .column(column)
                .ok_or_else(|| DatasetError::new(UNKNOWN, format!("dataset {name:?} has no column {column:?}")))?;
            if !self.may_read(client, name, column) {
                return Err(DatasetError::new(
                    FORBIDDEN,
                    format!("client {client:?} may not read column {column:?} of dataset {name:?}"),
                ));
            }
            Ok((column.to_string(), config.kind))
        };
        let mut columns = wanted.iter().map(|c| find(c)).collect::<Result<Vec<_>, _>>()?;
        let mut filter = Vec::new();
        for (column, value) in reference.filter {
            if !dataset.filters.contains(&column) {
                return Err(DatasetError::new(
                    FORBIDDEN,
                    format!(
                        "dataset {name:?} allows no filter on column {column:?} (its filters: {:?})",
                        dataset.filters
                    ),
                ));
            }
            let found = find(&column)?;
            if !(value.is_string() || value.is_i64()) {
                return Err(DatasetError::new(
                    INVALID_REFERENCE,
                    format!("the filter on column {column:?} must be a string or an integer"),
                ));
            }
            filter.push((columns.len(), value));
            columns.push(found);
        }
        let plan = Plan {
            doubles: doubles && flat && matches!(columns[0].1, ColumnType::Number | ColumnType::Integer),
            pairs: fsc_simon::input::reads_pairs(microprotocol) && wanted.len() == 2 && !reference.intercept,
            wanted: wanted.len(),
            columns,
            filter,
            missing: reference.missing,
            flat,
            intercept: reference.intercept,
            kth,
            dataset: name.clone(),
            max_records: self.max_records,
        };
        Ok((dataset, plan))
    }

    /// `GET /v1/datasets`: the datasets `caller` may read, with the columns it may read and
    /// their row counts now (never a value); a dataset that cannot be read says why.
    pub async fn list(&self, caller: &Caller) -> Vec<Value> {
        let mut listed = Vec::new();
        for dataset in &self.sets {
            let columns: Vec<Value> = dataset
                .columns
                .iter()
                .filter(|c| self.may_read(&caller.name, &dataset.name, &c.name))
                .map(|c| json!({"name": c.name, "type": c.kind.name()}))
                .collect();
            if columns.is_empty() {
                continue;
            }
            let rows = match (&dataset.csv, &dataset.sql) {
                (Some(source), _) => {
                    let (source, name) = (source.clone(), dataset.name.clone());
                    blocking(move || csv::count(&name, &source)).await
                }
                (None, Some(source)) => sql::count(&dataset.name, source).await,
                (None, None) => {
                    let source = dataset
                        .parquet
                        .clone()
                        .expect("checked at start: every dataset has a source");
                    let name = dataset.name.clone();
                    blocking(move || parquet::count(&name, &source)).await
                }
            };
            let (rows, error) = match rows {
                Ok(rows) => (json!(rows), Value::Null),
                Err(e) => (Value::Null, json!({"code": e.code, "message": e.message})),
            };
            listed.push(json!({
                "name": dataset.name,
                "source": dataset.source_kind(),
                "columns": columns,
                "filters": dataset.filters,
                "rows": rows,
                "error": error,
            }));
        }
        listed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::datasets::{ColumnConfig, CsvSource};

    fn labs(dir: &std::path::Path, text: &str, grants: Option<&[&str]>) -> Datasets {
        let path = dir.join("labs.csv");
        std::fs::write(&path, text).unwrap();
        let column = |name: &str, kind| ColumnConfig {
            name: name.into(),
            kind,
        };
        Datasets {
            sets: vec![DatasetConfig {
                name: "labs".into(),
                columns: vec![
                    column("age", ColumnType::Integer),
                    column("hba1c", ColumnType::Number),
                    column("sex", ColumnType::String),
                ],
                filters: vec!["sex".into()],
                csv: Some(CsvSource {
                    path,
                    header: true,
                    delimiter: ",".into(),
                }),
                sql: None,
                parquet: None,
            }],
            grants: grants.map(|g| HashMap::from([("analyst".to_string(), g.iter().map(|s| s.to_string()).collect())])),
            max_records: u64::MAX,
        }
    }

    fn caller(name: &str) -> Caller {
        Caller {
            name: name.into(),
            admin: false,
            monitor: false,
        }
    }

    #[tokio::test]
    async fn a_reference_becomes_the_list_json_would_be_with_rows_filtered_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let text = "sex,age,hba1c\nF,34,5.4\nM,51,\nF,47,6.25\n";
        let sets = labs(dir.path(), text, None);
        let local = Caller::local();
        let resolve_for = |microprotocol: &'static str, input: Value| {
            let (sets, local) = (&sets, &local);
            async move { sets.resolve(local, microprotocol, &Value::Null, &input).await }
        };
        let resolve = |input: Value| resolve_for("SecureSum", input);
        let all = resolve(json!({"dataset": "labs", "column": "hba1c", "missing": "skip"}))
            .await
            .unwrap();
        assert_eq!(all.input, json!([5.4, 6.25]).into());
        assert_eq!((all.summary.records, all.summary.skipped), (2, 1));
        let refused = resolve(json!({"dataset": "labs", "column": "hba1c"}))
            .await
            .unwrap_err();
        assert_eq!(refused.code, MISSING);
        assert!(refused.message.contains("row 2"), "{refused}");
        let women =
            resolve(json!({"dataset": "labs", "columns": ["age", "hba1c"], "where": {"sex": "F"}, "intercept": true}))
                .await
                .unwrap();
        assert_eq!(women.input, json!([[1, 34, 5.4], [1, 47, 6.25]]).into());
        let filter = resolve(json!({"dataset": "labs", "column": "sex", "where": {"age": 34}}))
            .await
            .unwrap_err();
        assert_eq!(filter.code, FORBIDDEN);
        let set = sets
            .resolve(
                &local,
                "SetIntersectionSize",
                &Value::Null,
                &json!({"dataset": "labs", "column": "sex"}),
            )
            .await
            .unwrap();
        assert_eq!(set.input, json!([["F", "M", "F"]]).into());
        let terms = json!({"rank": 2, "lower_bound": 0, "upper_bound": 100});
        let mut kth = json!({"dataset": "labs", "column": "age"});
        kth.as_object_mut().unwrap().extend(terms.as_object().unwrap().clone());
        let mut expected = terms.clone();
        expected["array"] = json!([34, 51, 47]);
        let read = resolve_for("KthElement", kth.clone()).await.unwrap();
        assert_eq!(read.input, json!([expected]).into());
        // The terms go with KthElement only, and KthElement needs them all.
        for (microprotocol, mut reference) in [("SecureSum", kth.clone()), ("KthElement", kth)] {
            reference
                .as_object_mut()
                .unwrap()
                .remove(if microprotocol == "SecureSum" { "x" } else { "rank" });
            let refused = resolve_for(microprotocol, reference).await.unwrap_err();
            assert_eq!(refused.code, INVALID_REFERENCE, "{microprotocol}");
        }
    }

    #[tokio::test]
    async fn a_numeric_column_for_a_protocol_that_reads_doubles_becomes_its_doubles() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("0.{}1", "0".repeat(fsc_simon::fixed_point::MAX_NUMBER_CHARS));
        let sets = labs(dir.path(), "age,hba1c,sex\n34,0.1,F\n9007199254740993,+.5,M\n", None);
        let local = Caller::local();
        let read = |microprotocol: &'static str, parameters: Value, column: &'static str| {
            let (sets, local) = (&sets, &local);
            async move {
                let reference = json!({"dataset": "labs", "column": column});
                sets.resolve(local, microprotocol, &parameters, &reference)
                    .await
                    .unwrap()
            }
        };
        let hba1c = read("StatisticsUnivariate", json!({}), "hba1c").await;
        assert_eq!(hba1c.input, Input::Doubles(vec![0.1, 0.5]));
        assert_eq!(hba1c.summary.records, 2);
        let age = read("StatisticsUnivariate", Value::Null, "age").await;
        assert_eq!(age.input, Input::Doubles(vec![34.0, 9007199254740992.0]));
        // With dp the integers stay exact; other protocols and columns take JSON.
        let dp = read("StatisticsUnivariate", json!({"dp": {"epsilon": 1}}), "age").await;
        assert_eq!(dp.input, json!([34, 9007199254740993u64]).into());
        assert_eq!(
            read("SecureSum", json!({}), "age").await.input,
            json!([34, 9007199254740993u64]).into()
        );
        assert_eq!(
            read("StatisticsUnivariate", json!({}), "sex").await.input,
            json!(["F", "M"]).into()
        );
        // A number the engine refuses goes as JSON, for the engine to refuse as it refuses JSON.
        let sets = labs(dir.path(), &format!("age,hba1c,sex\n1,2.5,F\n1,{long},M\n"), None);
        let refused = sets
            .resolve(
                &local,
                "StatisticsUnivariate",
                &json!({}),
                &json!({"dataset": "labs", "column": "hba1c"}),
            )
            .await
            .unwrap();
        let text: Value = serde_json::from_str(&long).unwrap();
        assert_eq!(refused.input, json!([2.5, text]).into());
    }

    #[tokio::test]
    async fn two_columns_for_a_contingency_table_become_pairs_that_are_their_list() {
        let dir = tempfile::tempdir().unwrap();
        let sets = labs(dir.path(), "sex,age,hba1c\nF,34,5.4\nM,51,\nF,34,6.25\n", None);
        let read = |columns: Value| {
            let sets = &sets;
            async move {
                let reference = json!({"dataset": "labs", "columns": columns, "missing": "skip"});
                sets.resolve(&Caller::local(), "StatisticsContingency", &Value::Null, &reference)
                    .await
                    .unwrap()
            }
        };
        let pairs = read(json!(["sex", "age"])).await;
        assert!(matches!(pairs.input, Input::Pairs(_)), "{:?}", pairs.input);
        assert_eq!(
            pairs.input.json().into_owned(),
            json!([["F", 34], ["M", 51], ["F", 34]])
        );
        assert_eq!(pairs.summary.records, 3);
        // Three columns are no pairs: JSON, for the engine to refuse as it refuses JSON.
        let three = read(json!(["sex", "age", "hba1c"])).await;
        assert_eq!(three.input, json!([["F", 34, 5.4], ["F", 34, 6.25]]).into());
    }

    #[tokio::test]
    async fn a_bad_value_is_named_by_its_row_and_grants_limit_columns() {
        let dir = tempfile::tempdir().unwrap();
        let sets = labs(dir.path(), "age,hba1c,sex\n1,2,F\n3,SECRET,M\n", Some(&["labs.age"]));
        let analyst = caller("analyst");
        let bad = sets
            .resolve(
                &analyst,
                "SecureSum",
                &Value::Null,
                &json!({"dataset": "labs", "column": "age"}),
            )
            .await
            .unwrap();
        assert_eq!(bad.input, json!([1, 3]).into());
        let forbidden = sets
            .resolve(
                &analyst,
                "SecureSum",
                &Value::Null,
                &json!({"dataset": "labs", "column": "hba1c"}),
            )
            .await
            .unwrap_err();
        assert_eq!(forbidden.code, FORBIDDEN);
        let stranger = sets
            .resolve(
                &caller("other"),
                "SecureSum",
                &Value::Null,
                &json!({"dataset": "labs", "column": "age"}),
            )
            .await
            .unwrap_err();
        let unknown = sets
            .resolve(
                &analyst,
                "SecureSum",
                &Value::Null,
                &json!({"dataset": "nope", "column": "age"}),
            )
            .await
            .unwrap_err();
        // Who may not read a dataset cannot tell it from one that does not exist.
        assert_eq!((stranger.code, unknown.code), (FORBIDDEN, FORBIDDEN));
        let open = labs(dir.path(), "age,hba1c,sex\n1,2,F\n3,SECRET,M\n", None);
        let bad = open
            .resolve(
                &Caller::local(),
                "SecureSum",
                &Value::Null,
                &json!({"dataset": "labs", "column": "hba1c"}),
            )
            .await
            .unwrap_err();
        assert_eq!(bad.code, BAD_VALUE);
        assert!(
            bad.message.contains("row 2") && !bad.message.contains("SECRET"),
            "{bad}"
        );
        std::fs::remove_file(dir.path().join("labs.csv")).unwrap();
        let gone = open
            .resolve(
                &Caller::local(),
                "SecureSum",
                &Value::Null,
                &json!({"dataset": "labs", "column": "age"}),
            )
            .await
            .unwrap_err();
        assert_eq!(gone.code, UNAVAILABLE);
    }

    /// A numeric CSV field: a double's text in any of the forms files hold, an integer beyond
    /// the doubles' exact range or beyond i64, a long text, padding, or something else.
    fn field() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let finite = any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("finite", |x| x.is_finite());
        let extreme = prop::sample::select(vec![
            0.0,
            -0.0,
            f64::MAX,
            f64::MIN,
            1e300,
            -1e300,
            5e-324,
            2.2250738585072014e-308,
        ]);
        let number = prop_oneof![finite, extreme];
        // A double's text as Rust writes it, plainly or with an exponent or three decimals,
        // between padding and signs a file may hold.
        let style = prop::sample::select(vec![0u8, 1, 2, 3]);
        let padding = prop::sample::select(vec![("", ""), ("+", ""), (" ", " "), ("", "\t"), ("\u{a0}", "")]);
        let formatted = (number, style, padding).prop_map(|(x, style, (before, after))| {
            let text = match style {
                0 => format!("{x}"),
                1 => format!("{x:e}"),
                2 => format!("{x:E}"),
                _ => format!("{x:.3}"),
            };
            format!("{before}{text}{after}")
        });
        let integer = any::<i128>().prop_map(|i| i.to_string());
        let decimal = "[-+]?[0-9]{0,30}\\.?[0-9]{0,30}([eE][-+]?[0-9]{1,4})?";
        let long = (1usize..3, any::<u8>()).prop_map(|(k, d)| format!("0.{}{}", "3".repeat(200 * k), d));
        prop_oneof![formatted, integer, decimal, long, "[ -~]{0,12}"]
    }

    proptest::proptest! {
        /// The straight parse gives what `from_text` and the engine's rule give, or leaves the
        /// field to them.
        #[test]
        fn a_field_parsed_straight_is_the_double_json_would_give(text in field()) {
            for kind in [ColumnType::Number, ColumnType::Integer] {
                let Some(straight) = double_from_text(&text, kind) else { continue };
                let slow = from_text(&text, kind).expect("a field parsed straight is a value");
                let slow = slow.map(|v| fsc_simon::input::double(&v).expect("the engine takes it"));
                proptest::prop_assert_eq!(straight.map(f64::to_bits), slow.map(f64::to_bits), "{:?} {:?}", text, kind);
            }
        }
    }

    /// Asserts that `reference` read for StatisticsUnivariate (which keeps doubles) gives the
    /// doubles of the JSON values it gives SecureSum (which takes JSON), bit for bit, and the
    /// same counts.
    pub(super) async fn doubles_are_the_json_inputs_doubles(sets: &Datasets, reference: &Value) {
        let local = Caller::local();
        let doubles = sets
            .resolve(&local, "StatisticsUnivariate", &json!({}), reference)
            .await
            .unwrap();
        let json = sets.resolve(&local, "SecureSum", &json!({}), reference).await.unwrap();
        let Input::Json(Value::Array(values)) = &json.input else {
            panic!("{json:?}")
        };
        let expected: Vec<u64> = values
            .iter()
            .map(|v| fsc_simon::input::double(v).unwrap().to_bits())
            .collect();
        let Input::Doubles(read) = &doubles.input else {
            panic!("{reference}: {doubles:?}")
        };
        assert_eq!(
            read.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            expected,
            "{reference}"
        );
        assert_eq!(
            (doubles.summary.records, doubles.summary.skipped),
            (json.summary.records, json.summary.skipped)
        );
    }

    #[tokio::test]
    async fn a_csv_column_read_as_doubles_is_what_its_json_values_give() {
        let dir = tempfile::tempdir().unwrap();
        let text = "age,hba1c,sex\n1,+.5,F\n2,,M\n 3 ,1e300,F\n9223372036854775807,-0,M\n4,\u{a0}7,F\n";
        let sets = labs(dir.path(), text, None);
        let local = Caller::local();
        for column in ["age", "hba1c"] {
            let reference = json!({"dataset": "labs", "column": column, "missing": "skip"});
            doubles_are_the_json_inputs_doubles(&sets, &reference).await;
        }
        let refused = sets
            .resolve(
                &local,
                "StatisticsUnivariate",
                &json!({}),
                &json!({"dataset": "labs", "column": "hba1c"}),
            )
            .await
            .unwrap_err();
        assert!(
            refused.code == MISSING && refused.message.contains("row 2"),
            "{refused}"
        );
        let bad = labs(dir.path(), "age,hba1c,sex\n1,2,F\n2,1e999,M\n", None)
            .resolve(
                &local,
                "StatisticsUnivariate",
                &json!({}),
                &json!({"dataset": "labs", "column": "hba1c"}),
            )
            .await
            .unwrap_err();
        assert!(
            bad.code == BAD_VALUE && bad.message.contains("row 2") && !bad.message.contains("1e999"),
            "{bad}"
        );
    }

    #[tokio::test]
    async fn a_read_keeps_at_most_max_dataset_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut sets = labs(dir.path(), "sex,age,hba1c\nF,1,2.5\nM,2,\nF,3,4.5\nM,4,5.5\n", None);
        sets.max_records = 2;
        let local = Caller::local();
        // Two records kept (a skipped row and filtered ones do not count), on either path.
        for (microprotocol, reference) in [
            (
                "StatisticsUnivariate",
                json!({"dataset": "labs", "column": "hba1c", "missing": "skip", "where": {"sex": "F"}}),
            ),
            (
                "StatisticsUnivariate",
                json!({"dataset": "labs", "column": "age", "where": {"sex": "F"}}),
            ),
            (
                "SecureSum",
                json!({"dataset": "labs", "column": "age", "where": {"sex": "M"}}),
            ),
        ] {
            let read = sets
                .resolve(&local, microprotocol, &json!({}), &reference)
                .await
                .unwrap();
            assert_eq!(read.summary.records, 2, "{reference}");
        }
        for (microprotocol, reference, row) in [
            (
                "StatisticsUnivariate",
                json!({"dataset": "labs", "column": "hba1c", "missing": "skip"}),
                4,
            ),
            ("StatisticsUnivariate", json!({"dataset": "labs", "column": "age"}), 3),
            ("SecureSum", json!({"dataset": "labs", "columns": ["age", "sex"]}), 3),
            (
                "StatisticsContingency",
                json!({"dataset": "labs", "columns": ["age", "sex"]}),
                3,
            ),
        ] {
            let refused = sets
                .resolve(&local, microprotocol, &json!({}), &reference)
                .await
                .unwrap_err();
            assert_eq!(refused.code, TOO_LARGE, "{reference}");
            assert_eq!(refused.announced(), "invalid_input");
            assert!(refused.message.contains(&format!("(row {row})")), "{refused}");
        }
    }

    #[test]
    fn text_becomes_the_value_json_would_give() {
        let number = |t: &str| from_text(t, ColumnType::Number);
        assert_eq!(number("42").unwrap(), Some(json!(42)));
        assert_eq!(number(" 0.1 ").unwrap().unwrap().to_string(), "0.1");
        assert_eq!(number("1e3").unwrap(), Some(serde_json::from_str("1e3").unwrap()));
        assert_eq!(number("+1.5").unwrap(), Some(json!(1.5)));
        assert_eq!(number("").unwrap(), None);
        for bad in ["abc", "NaN", "inf", "1e999", "1,5"] {
            assert!(number(bad).is_err(), "{bad}");
        }
        assert_eq!(from_text("7", ColumnType::Integer).unwrap(), Some(json!(7)));
        assert!(from_text("7.5", ColumnType::Integer).is_err());
        assert_eq!(from_text("F", ColumnType::String).unwrap(), Some(json!("F")));
        // Parsed straight, a padded −0 stays −0 (the case that caught a wrong straight parse).
        let zero = double_from_text(" -0 ", ColumnType::Number).unwrap().unwrap();
        assert_eq!(zero.to_bits(), (-0.0f64).to_bits());
    }
}
