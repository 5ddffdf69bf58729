//! A party's input as the engine takes it: JSON, or a column of numbers already read as the
//! doubles a protocol that reads doubles would make of them. A node reading a large dataset
//! column for such a protocol passes the doubles (8 bytes a value) instead of a JSON value per
//! number (about 80 with `arbitrary_precision`); the result is the one the same numbers as JSON
//! give, because [`double`] reads each number exactly as [`crate::order::doubles::doubles`] does.

use crate::fixed_point::MAX_NUMBER_CHARS;
use crate::order::doubles;
use serde_json::{Number, Value};
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Json(Value),
    /// A list of numbers, each as [`double`] reads it.
    Doubles(Vec<f64>),
}

impl Input {
    /// The input as JSON: a list of doubles as the list of their numbers.
    pub fn json(&self) -> Cow<'_, Value> {
        match self {
            Input::Json(value) => Cow::Borrowed(value),
            Input::Doubles(values) => Cow::Owned(Value::Array(values.iter().map(|&x| json_number(x)).collect())),
        }
    }

    /// [`crate::records::local`] of this input.
    pub fn records(&self, microprotocol: &str, index: usize) -> Option<u64> {
        match self {
            Input::Doubles(values) if crate::records::counts_numbers(microprotocol) => Some(values.len() as u64),
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
