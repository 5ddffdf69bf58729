//! A party's input as the engine takes it: JSON, or a column of numbers already read as the
//! doubles a protocol that reads doubles would make of them. A node reading a large dataset
//! column for such a protocol passes the doubles (8 bytes a value) instead of a JSON value per
//! number (about 80 with `arbitrary_precision`); the result is the one the same numbers as JSON
//! give, because [`double`] reads each number exactly as [`crate::order::doubles::doubles`] does.

use crate::fixed_point::MAX_NUMBER_CHARS;
use crate::order::doubles;
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Json(Value),
    /// A list of numbers, each as [`double`] reads it.
    Doubles(Vec<f64>),
    /// A list of pairs of categories for StatisticsContingency, each category kept once.
    Pairs(Pairs),
}

impl Input {
    /// The input as JSON: a list of doubles as the list of their numbers.
    pub fn json(&self) -> Cow<'_, Value> {
        match self {
            Input::Json(value) => Cow::Borrowed(value),
            Input::Doubles(values) => Cow::Owned(Value::Array(values.iter().map(|&x| json_number(x)).collect())),
            Input::Pairs(pairs) => Cow::Owned(pairs.json()),
        }
    }

    /// [`crate::records::local`] of this input.
    pub fn records(&self, microprotocol: &str, index: usize) -> Option<u64> {
        match self {
            Input::Doubles(values) if crate::records::counts_numbers(microprotocol) => Some(values.len() as u64),
            Input::Pairs(pairs) if microprotocol == "StatisticsContingency" => Some(pairs.len() as u64),
            _ => crate::records::local(microprotocol, index, &self.json()),
        }
    }
}

impl From<Value> for Input {
    fn from(value: Value) -> Input {
        Input::Json(value)
    }
}

/// A double of an [`Input::Doubles`] as the JSON number it is (finite by [`double`]).
pub fn json_number(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// Whether `microprotocol` with `parameters` reads its input as doubles, so that
/// [`Input::Doubles`] gives it what JSON would: StatisticsUnivariate without `dp` (whose
/// clipping keeps JSON integers exact).
pub fn reads_doubles(microprotocol: &str, parameters: &Value) -> bool {
    microprotocol == "StatisticsUnivariate" && parameters.get("dp").is_none_or(Value::is_null)
}

/// Whether `microprotocol` takes [`Input::Pairs`] as it takes their JSON list:
/// StatisticsContingency, which counts its pairs.
pub fn reads_pairs(microprotocol: &str) -> bool {
    microprotocol == "StatisticsContingency"
}

/// A list of pairs `[row, column]` of JSON values as the distinct values of each position and,
/// per pair, their indices: 8 bytes a pair where a JSON pair of two short strings holds about
/// 150. Values are the same when JSON says they are equal (a number by its text), so that
/// [`Pairs::json`] is the list pushed, value for value and in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pairs {
    /// Per position, its distinct values in order of first appearance.
    categories: [Vec<Value>; 2],
    pairs: Vec<[u32; 2]>,
    /// Per position, the index of each value by (is a string, its string or its JSON text).
    index: [HashMap<(bool, String), u32>; 2],
}

impl Pairs {
    pub fn push(&mut self, row: Value, column: Value) {
        let mut cell = [0; 2];
        for ((value, slot), (categories, index)) in [row, column]
            .into_iter()
            .zip(&mut cell)
            .zip(self.categories.iter_mut().zip(&mut self.index))
        {
            let (key, other) = match value {
                // The string itself is the key; a clone is kept only for a new category.
                Value::String(s) => ((true, s), None),
                other => ((false, other.to_string()), Some(other)),
            };
            *slot = match index.get(&key) {
                Some(&i) => i,
                None => {
                    let i = u32::try_from(categories.len()).expect("fewer than 2^32 categories");
                    categories.push(other.unwrap_or_else(|| Value::String(key.1.clone())));
                    index.insert(key, i);
                    i
                }
            };
        }
        self.pairs.push(cell);
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The JSON list of the pairs.
    pub fn json(&self) -> Value {
        let [rows, columns] = &self.categories;
        Value::Array(
            self.pairs
                .iter()
                .map(|&[r, c]| Value::Array(vec![rows[r as usize].clone(), columns[c as usize].clone()]))
                .collect(),
        )
    }

    /// The distinct pairs, in order of first appearance, and how often each occurs.
    pub fn counted(&self) -> Vec<([Value; 2], u64)> {
        let mut first: HashMap<[u32; 2], usize> = HashMap::new();
        let mut counted: Vec<([u32; 2], u64)> = Vec::new();
        for &cell in &self.pairs {
            let at = *first.entry(cell).or_insert_with(|| {
                counted.push((cell, 0));
                counted.len() - 1
            });
            counted[at].1 += 1;
        }
        let [rows, columns] = &self.categories;
        counted
            .into_iter()
            .map(|([r, c], count)| ([rows[r as usize].clone(), columns[c as usize].clone()], count))
            .collect()
    }

    /// Whether every number among the categories is short enough for the engine
    /// ([`crate::fixed_point::check_number_lengths`]).
    pub fn numbers_fit(&self) -> bool {
        self.categories
            .iter()
            .flatten()
            .all(|v| crate::fixed_point::check_number_lengths(v).is_ok())
    }
}

/// The double a protocol that reads doubles makes of `value`, or `None` where it would refuse
/// the value (not a number, too long, beyond the doubles): such an input must go as JSON, for
/// the engine to refuse it as it refuses JSON.
pub fn double(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) if number.as_str().len() <= MAX_NUMBER_CHARS => doubles::double(number).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Spec;
    use crate::simulate::{run_all, run_inputs};
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use serde_json::json;

    /// A JSON number as a dataset may hold it: any finite double, an extreme, or an integer's
    /// or a decimal's text (which a double need not equal).
    fn number() -> impl Strategy<Value = Value> {
        let finite = any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("finite", |x| x.is_finite());
        let extremes = prop::sample::select(vec![
            5e-324,
            -5e-324,
            2.2250738585072014e-308,
            1e300,
            -1e300,
            f64::MAX,
            0.0,
            -0.0,
            1.0,
        ]);
        let text = prop::sample::select(vec![
            "9007199254740993",
            "-18446744073709551617",
            "0.1",
            "2.5",
            "1e-320",
            "7",
        ]);
        prop_oneof![
            finite.prop_map(|x| json!(x)),
            extremes.prop_map(|x| json!(x)),
            text.prop_map(|t| serde_json::from_str(t).unwrap()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The doubles of each party's numbers give StatisticsUnivariate's output for the
        /// numbers as JSON, bit for bit (ties: repeated values; an empty party).
        #[test]
        fn univariate_of_doubles_is_univariate_of_json(
            first in prop::collection::vec(number(), 1..12),
            second in prop::collection::vec(number(), 0..12),
            repeats in 0usize..4,
            seed in any::<u64>(),
        ) {
            let mut first = first;
            first.extend(std::iter::repeat_n(first[0].clone(), repeats));
            let json = [Value::Array(first), Value::Array(second)];
            let typed: Vec<Input> = json
                .iter()
                .map(|list| Input::Doubles(list.as_array().unwrap().iter().map(|n| double(n).unwrap()).collect()))
                .collect();
            let spec = Spec::new("StatisticsUnivariate", &json!({}), 2).unwrap();
            let want = run_all(&spec, &json, &mut ChaCha20Rng::seed_from_u64(seed)).unwrap();
            let got = run_inputs(&spec, &typed, &mut ChaCha20Rng::seed_from_u64(seed)).unwrap();
            prop_assert_eq!(got, want);
        }
    }

    /// A category as a dataset may give it: strings, and numbers some of which are one category
    /// (`1.0` and `1e0`), with now and then one outside the given ones (`"z"`).
    fn category() -> impl Strategy<Value = Value> {
        prop_oneof![
            8 => prop::sample::select(vec!["a", "b", "1", " a", "1", "1.0", "1e0", "2", "-0", "0.5"])
                .prop_map(|t| serde_json::from_str::<Value>(t).unwrap_or_else(|_| json!(t))),
            8 => prop::sample::select(vec!["a", "b", "1", " a"]).prop_map(|t| json!(t)),
            1 => Just(json!("z")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Pairs give StatisticsContingency's output for their JSON list, given categories or
        /// not, and are refused where it is (a category outside the given ones).
        #[test]
        fn contingency_of_pairs_is_contingency_of_json(
            parties in prop::collection::vec(prop::collection::vec((category(), category()), 0..24), 2..4),
            given in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let json: Vec<Value> = parties
                .iter()
                .map(|pairs| Value::Array(pairs.iter().map(|(r, c)| json!([r, c])).collect()))
                .collect();
            let typed: Vec<Input> = parties
                .iter()
                .map(|list| {
                    let mut pairs = Pairs::default();
                    for (r, c) in list {
                        pairs.push(r.clone(), c.clone());
                    }
                    Input::Pairs(pairs)
                })
                .collect();
            for (list, input) in json.iter().zip(&typed) {
                prop_assert_eq!(&input.json().into_owned(), list);
                prop_assert_eq!(input.records("StatisticsContingency", 0), Some(list.as_array().unwrap().len() as u64));
            }
            let categories = json!(["a", "b", "1", " a", 1, 1.0, 2, 0, 0.5]);
            let parameters = if given { json!({"rows": categories, "columns": categories}) } else { json!({}) };
            let spec = Spec::new("StatisticsContingency", &parameters, json.len()).unwrap();
            let want = run_all(&spec, &json, &mut ChaCha20Rng::seed_from_u64(seed));
            let got = run_inputs(&spec, &typed, &mut ChaCha20Rng::seed_from_u64(seed));
            match (got, want) {
                (Ok(got), Ok(want)) => prop_assert_eq!(got, want),
                (got, want) => prop_assert_eq!(got.is_ok(), want.is_ok()),
            }
        }
    }

    #[test]
    fn a_number_too_long_for_the_engine_is_refused_as_in_json() {
        let long: Value = serde_json::from_str(&"1".repeat(MAX_NUMBER_CHARS + 1)).unwrap();
        let mut pairs = Pairs::default();
        pairs.push(json!("a"), long.clone());
        assert!(!pairs.numbers_fit());
        let spec = Spec::new("StatisticsContingency", &json!({}), 2).unwrap();
        let want = spec.machine(0, &json!([["a", long]])).map(|_| ()).unwrap_err();
        let got = spec.machine_for(0, &Input::Pairs(pairs)).map(|_| ()).unwrap_err();
        assert_eq!(got.to_string(), want.to_string());
    }

    #[test]
    fn records_and_refusals_are_those_of_json() {
        let doubles = Input::Doubles(vec![1.0, 2.5, -3.0]);
        assert_eq!(doubles.records("StatisticsUnivariate", 0), Some(3));
        assert_eq!(doubles.records("StatisticsFrequency", 0), Some(3));
        assert_eq!(doubles.json().into_owned(), json!([1.0, 2.5, -3.0]));
        assert_eq!(double(&json!("1")), None);
        assert_eq!(
            double(&serde_json::from_str(&"1".repeat(MAX_NUMBER_CHARS + 1)).unwrap()),
            None
        );
        assert_eq!(
            double(&serde_json::from_str("9007199254740993").unwrap()),
            Some(9007199254740992.0)
        );
        assert!(reads_doubles("StatisticsUnivariate", &json!({"dp": null})));
        assert!(!reads_doubles("StatisticsUnivariate", &json!({"dp": {"epsilon": 1}})));
        assert!(!reads_doubles("SecureSum", &json!({})));
    }
}
