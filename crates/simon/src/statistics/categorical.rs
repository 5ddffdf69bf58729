//! Categorical counts: the building block of StatisticsFrequency and StatisticsContingency. Each
//! party counts its records (tuples of categories, one per dimension) locally; the parties agree
//! on the categories of each dimension, then sum the counts of every cell of the table in one
//! sum round.
//!
//! Categories are JSON scalars (strings, numbers, booleans, null), compared by their canonical
//! JSON text, so that `1`, `1.0` (a float), `"1"` and `true` are four categories and no two
//! categories can collide (the reference keyed by a `"sum_{}"` tag string, W17). A dimension's
//! categories are either given as a parameter, and then no party's categories travel at all, or
//! exchanged: each party sends the set of categories it has to the others (as the reference did),
//! and the table spans their union.
//!
//! What each party learns: the count of every cell and, for exchanged dimensions, the set of
//! categories each other party has (not how often).
//!
//! With `dp` ([`crate::dp`]; the categories of every dimension must then be given, since an
//! exchanged set of categories is itself a disclosure no noise covers), each party adds its own
//! noise share to every cell of its vector before the sum masks it: the table opens noisy, and
//! no party sees an un-noised count. One record moves one cell by one: L1 = L2 = 1. Noisy cells
//! below this party's `min_cell_count` are then suppressed (post-processing, no privacy cost).

use crate::dp::{DpParameters, Sensitivity};
use crate::fixed_point::EncodingError;
use crate::order::doubles;
use crate::protocol::{Io, Limits, PartyIndex, Progress, ProtocolError};
use crate::sum::rounds::{self, RoundMessage, Rounds};
use crate::z2k::Z64;
use num_bigint::BigInt;
use num_traits::ToPrimitive;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A category: a JSON scalar and its canonical text, by which categories are ordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub text: String,
    pub value: Value,
}

/// Ordered by canonical text, which determines the value.
impl Ord for Category {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl PartialOrd for Category {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The canonical form of a category: integers exact, floats as the shortest round-trip double.
pub fn category(value: &Value) -> Result<Category, EncodingError> {
    let value = match value {
        Value::Number(n) => {
            let text = n.as_str();
            if text.contains(['.', 'e', 'E']) {
                json!(doubles::double(n)?)
            } else {
                let int: BigInt = text.parse().expect("JSON integers parse");
                serde_json::from_str(&int.to_string()).expect("an integer is a JSON number")
            }
        }
        Value::String(_) | Value::Bool(_) | Value::Null => value.clone(),
        other => {
            return Err(EncodingError::Invalid(format!(
                "categories are strings, numbers, booleans or null, found {}",
                doubles::kind(other)
            )));
        }
    };
    Ok(Category {
        text: value.to_string(),
        value,
    })
}

/// Validates a parameter listing a dimension's categories: scalars, no duplicates. Returns
/// them in canonical order, so that parties listing them in different orders agree.
pub fn given_categories(name: &str, values: &[Value]) -> Result<Vec<Value>, String> {
    if values.is_empty() {
        return Err(format!("{name} must list at least one category"));
    }
    let mut set = BTreeSet::new();
    for value in values {
        let category = category(value).map_err(|e| format!("{name}: {e}"))?;
        if !set.insert(category) {
            return Err(format!("{name} lists {value} twice"));
        }
    }
    Ok(set.into_iter().map(|c| c.value).collect())
}

/// How a table's keys are written as JSON object keys: a string as itself, anything else as its
/// JSON text, and a string that is the JSON text of another category of the same set (`"1"`
/// beside `1`, or the three characters `"1"` beside the string `1`) as its own JSON text.
/// Injective: JSON texts of distinct categories differ, strings shown as themselves differ from
/// one another, and a string is shown as itself only when no other category has that text.
pub fn display_names(categories: &[Category]) -> Vec<String> {
    let named: Vec<(&str, Option<&str>)> = categories.iter().map(|c| (c.text.as_str(), c.value.as_str())).collect();
    object_keys(&named)
}

/// [`display_names`] over (canonical JSON text, the string if the category is one) pairs of
/// distinct categories: the rule every table of categories is keyed by.
pub fn object_keys(categories: &[(&str, Option<&str>)]) -> Vec<String> {
    let texts: HashSet<&str> = categories.iter().map(|(text, _)| *text).collect();
    categories
        .iter()
        .map(|&(text, string)| match string {
            Some(s) if !texts.contains(s) => s.to_string(),
            _ => text.to_string(),
        })
        .collect()
}

/// A category as met in a record, before its canonical form is needed: strings borrowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key<'a> {
    Absent,
    Str(&'a str),
    Other(String),
}

impl<'a> Key<'a> {
    fn of(value: &'a Value) -> Result<Key<'a>, EncodingError> {
        Ok(match value {
            Value::String(s) => Key::Str(s),
            other => Key::Other(category(other)?.text),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CategoricalMessage {
    /// The sender's categories of every exchanged dimension (`None` for given ones).
    Categories(Vec<Option<Vec<Value>>>),
    Round(RoundMessage<1>),
}

/// The table: the categories of each dimension and the counts of all cells, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub dimensions: Vec<Vec<Category>>,
    /// Every cell's count; noisy (and possibly negative) with `dp`; `None` where suppressed.
    pub counts: Vec<Option<i64>>,
    /// With `dp`: the output's `"dp"` object naming the mechanism.
    pub dp: Option<Value>,
}

/// What a table may disclose: the definition's `dp` (every party's), and this party's own
/// `min_cell_count`, below which it suppresses noisy cells (its node's policy).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Disclosure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<DpParameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cell_count: Option<u64>,
}

/// The disclosure of a table from its definition's `dp` and this party's `min_cell_count`
/// (which only applies with `dp`: without, the node's policy checks it before it starts).
pub fn disclosure(dp: Option<DpParameters>, min_cell_count: Option<u64>) -> Disclosure {
    let min_cell_count = min_cell_count.filter(|_| dp.is_some());
    Disclosure { dp, min_cell_count }
}

/// A table's result object with, under `dp`, the mechanism (`"dp"`) and the cells suppressed
/// below `min_cell_count` (`"suppressed"`, shown as null in the table).
pub fn with_dp(mut result: Value, dp: Option<Value>, suppressed: Vec<Value>) -> Value {
    if let Some(dp) = dp {
        result["dp"] = dp;
        result["suppressed"] = Value::Array(suppressed);
    }
    result
}

/// Validates a table's `dp` parameter for `parties` parties: it needs every dimension's
/// categories given (`given`: whether each is).
pub fn validate_dp(dp: Option<DpParameters>, parties: usize, given: &[bool]) -> Result<Option<DpParameters>, String> {
    let Some(dp) = dp else { return Ok(None) };
    if !given.iter().all(|&g| g) {
        return Err(
            "dp needs the categories given as parameters: an exchanged set of categories discloses \
             each party's values, and no noise covers that"
                .into(),
        );
    }
    dp.validate(parties, false).map(Some)
}

impl Table {
    /// The cell with the greatest count, the first in canonical order on ties (the same at every
    /// party), as one category per dimension; `None` for an empty table.
    pub fn mode(&self) -> Option<Vec<&Category>> {
        let best = self
            .counts
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, c)| c.is_some())
            .max_by_key(|&(_, c)| *c)?
            .0;
        let mut rest = best;
        let mut cell = Vec::new();
        for dimension in self.dimensions.iter().rev() {
            cell.push(&dimension[rest % dimension.len()]);
            rest /= dimension.len();
        }
        cell.reverse();
        Some(cell)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Categorical {
    /// Per dimension: the categories, once known (given, or the union of all parties').
    dimensions: Vec<Option<BTreeSet<Category>>>,
    /// Per dimension: this party's own categories, for exchanged dimensions.
    own: Vec<Option<BTreeSet<Category>>>,
    /// This party's records as canonical texts, and how often each occurs.
    counts: Vec<(Vec<String>, u64)>,
    categories_from: Vec<bool>,
    rounds: Rounds<1>,
    /// This party refuses a table of more cells than its node takes, once the categories are
    /// known (given: at the start; exchanged: when every party's are in), before it builds it.
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    disclosure: Disclosure,
}

impl Categorical {
    /// `records`: one JSON scalar per dimension each (one or two dimensions); `given`: per
    /// dimension, the parameter's categories, if any (a record outside them is refused).
    pub fn new(
        records: &[&[Value]],
        given: Vec<Option<Vec<Value>>>,
        parties: usize,
        limits: Limits,
        disclosure: Disclosure,
    ) -> Result<Categorical, EncodingError> {
        Categorical::weighted(records.iter().map(|r| (*r, 1)), given, parties, limits, disclosure)
    }

    /// [`Categorical::new`] of records each standing for `count` equal records in a row: the
    /// same counts, and the same refusal (that of the first bad record).
    pub fn weighted<'a>(
        records: impl IntoIterator<Item = (&'a [Value], u64)>,
        given: Vec<Option<Vec<Value>>>,
        parties: usize,
        limits: Limits,
        disclosure: Disclosure,
    ) -> Result<Categorical, EncodingError> {
        assert!((1..=2).contains(&given.len()), "one or two dimensions");
        let dimensions: Vec<Option<BTreeSet<Category>>> = given
            .iter()
            .map(|g| {
                g.as_ref().map(|values| {
                    values
                        .iter()
                        .map(|v| category(v).expect("validated parameters"))
                        .collect()
                })
            })
            .collect();
        // Count by cheap borrowed keys first: records are many, distinct categories few.
        let mut seen: Vec<HashMap<Key<'_>, Category>> = vec![HashMap::new(); given.len()];
        let mut cells: HashMap<[Key<'_>; 2], u64> = HashMap::new();
        for (record, count) in records {
            let mut cell = [Key::Absent, Key::Absent];
            for ((value, slot), seen) in record.iter().zip(&mut cell).zip(&mut seen) {
                let key = Key::of(value)?;
                if !seen.contains_key(&key) {
                    seen.insert(key.clone(), category(value)?);
                }
                *slot = key;
            }
            *cells.entry(cell).or_default() += count;
        }
        let mut own: Vec<Option<BTreeSet<Category>>> = Vec::new();
        for (known, seen) in dimensions.iter().zip(&seen) {
            if let Some(known) = known {
                if let Some(outside) = seen.values().find(|c| !known.contains(*c)) {
                    return Err(EncodingError::Invalid(format!(
                        "{} is not one of the categories given as parameters",
                        outside.text
                    )));
                }
                own.push(None);
            } else {
                own.push(Some(seen.values().cloned().collect()));
            }
        }
        let counts = cells
            .into_iter()
            .map(|(cell, count)| {
                let texts = cell
                    .iter()
                    .zip(&seen)
                    .map(|(key, seen)| seen[key].text.clone())
                    .collect();
                (texts, count)
            })
            .collect();
        Ok(Categorical {
            dimensions,
            own,
            counts,
            categories_from: vec![false; parties],
            rounds: Rounds::new(),
            limits,
            disclosure,
        })
    }

    pub fn start(&mut self, io: &mut Io<'_, CategoricalMessage>) -> Result<Progress<Table>, ProtocolError> {
        if self.own.iter().any(Option::is_some) {
            let mine = self
                .own
                .iter()
                .map(|own| own.as_ref().map(|set| set.iter().map(|c| c.value.clone()).collect()))
                .collect();
            io.broadcast(CategoricalMessage::Categories(mine));
            self.merge(io.me(), self.own.clone())?;
        }
        self.count_when_agreed(io)
    }

    pub fn receive(
        &mut self,
        from: PartyIndex,
        message: CategoricalMessage,
        io: &mut Io<'_, CategoricalMessage>,
    ) -> Result<Progress<Table>, ProtocolError> {
        match message {
            CategoricalMessage::Categories(theirs) => {
                let malformed = |reason: String| ProtocolError::Malformed { from, reason };
                if theirs.len() != self.own.len()
                    || theirs.iter().zip(&self.own).any(|(t, o)| t.is_some() != o.is_some())
                {
                    return Err(malformed("categories for other dimensions than ours".into()));
                }
                let theirs = theirs
                    .into_iter()
                    .map(|dimension| {
                        dimension
                            .map(|values| values.iter().map(category).collect::<Result<BTreeSet<_>, _>>())
                            .transpose()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| malformed(e.to_string()))?;
                self.merge(from, theirs)?;
                self.count_when_agreed(io)
            }
            CategoricalMessage::Round(message) => {
                let progress = io.child(CategoricalMessage::Round, |io| self.rounds.receive(from, message, io))?;
                self.finish(progress)
            }
        }
    }

    fn merge(&mut self, from: PartyIndex, theirs: Vec<Option<BTreeSet<Category>>>) -> Result<(), ProtocolError> {
        if std::mem::replace(&mut self.categories_from[from], true) {
            return Err(ProtocolError::Unexpected {
                from,
                what: "a second list of categories".into(),
            });
        }
        for (union, theirs) in self.own_unions().zip(theirs.into_iter().flatten()) {
            union.extend(theirs);
        }
        Ok(())
    }

    /// The unions being built for exchanged dimensions (kept in `dimensions` as they grow).
    fn own_unions(&mut self) -> impl Iterator<Item = &mut BTreeSet<Category>> {
        self.dimensions
            .iter_mut()
            .zip(&self.own)
            .filter(|(_, own)| own.is_some())
            .map(|(dimension, _)| dimension.get_or_insert_with(BTreeSet::new))
    }

    fn count_when_agreed(&mut self, io: &mut Io<'_, CategoricalMessage>) -> Result<Progress<Table>, ProtocolError> {
        let exchanged = self.own.iter().any(Option::is_some);
        if exchanged && !self.categories_from.iter().all(|&seen| seen) {
            return Ok(Progress::Continue);
        }
        // Each dimension's categories by canonical text, in order: a record's cell is its row-major
        // index, so the table costs one counter a cell and nothing more.
        let dimensions: Vec<Vec<&str>> = self
            .dimensions
            .iter()
            .map(|d| d.iter().flatten().map(|c| c.text.as_str()).collect())
            .collect();
        let cells = dimensions
            .iter()
            .try_fold(1u64, |cells, d| cells.checked_mul(d.len() as u64));
        self.limits.check(cells.unwrap_or(u64::MAX), "the table")?;
        let mut vector = vec![Z64::from_u64(0); cells.unwrap_or_default() as usize];
        for (texts, count) in &self.counts {
            let index = texts
                .iter()
                .zip(&dimensions)
                .try_fold(0usize, |index, (text, dimension)| {
                    let at = dimension.binary_search(&text.as_str()).ok()?;
                    Some(index * dimension.len() + at)
                });
            if let Some(index) = index {
                vector[index] = Z64::from_u64(*count);
            }
        }
        if let Some(dp) = &self.disclosure.dp {
            let mechanism = dp
                .mechanism(Sensitivity::COUNT, io.parties())
                .map_err(ProtocolError::Failed)?;
            mechanism.add_noise(&mut vector, io.rng());
        }
        let progress = io.child(CategoricalMessage::Round, |io| self.rounds.begin(vector, io))?;
        self.finish(progress)
    }

    fn finish(&mut self, progress: Progress<Vec<Z64>>) -> Result<Progress<Table>, ProtocolError> {
        let Progress::Done(total) = progress else {
            return Ok(Progress::Continue);
        };
        let (counts, dp) = match &self.disclosure.dp {
            // Noisy totals are signed: read back from the ring's two's complement.
            Some(dp) => {
                let mechanism = dp
                    .mechanism(Sensitivity::COUNT, self.categories_from.len())
                    .map_err(ProtocolError::Failed)?;
                let floor = self
                    .disclosure
                    .min_cell_count
                    .map_or(i64::MIN, |m| m.min(i64::MAX as u64) as i64);
                let counts = total
                    .into_iter()
                    .map(|t| {
                        let noisy = t.to_signed_bigint().to_i64().expect("a signed 64-bit residue");
                        (noisy >= floor).then_some(noisy)
                    })
                    .collect();
                (counts, Some(mechanism.describe()))
            }
            None => {
                let counts = total
                    .into_iter()
                    .map(|t| {
                        let count = rounds::count(t)?;
                        i64::try_from(count)
                            .map(Some)
                            .map_err(|_| ProtocolError::Failed("a summed count is not a plausible number".into()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (counts, None)
            }
        };
        let dimensions: Vec<Vec<Category>> = self
            .dimensions
            .iter()
            .map(|d| d.iter().flatten().cloned().collect())
            .collect();
        Ok(Progress::Done(Table { dimensions, counts, dp }))
    }
}
