//! What a record is, per microprotocol: the unit that a node's `min_local_samples` counts in its
//! own input, and that the check of `min_total_samples` ([`crate::sum::total`]) sums over the
//! parties. Counted on the input as JSON, after [`crate::Spec::machine`] has accepted it (a list
//! of doubles, [`crate::input::Input::Doubles`], counts its length where numbers are records).

use serde_json::Value;
use std::collections::HashSet;

/// How many records party `index`'s `input` holds for `microprotocol`; `None` where the protocol
/// ignores the party's input (the third party and beyond of a product: a helper's role).
///
/// - SecureSum, SecureMedian, StatisticsUnivariate: the numbers in the (nested) list, a bare
///   number one;
/// - MinimumMaximum: the numbers and `{"minimum", "maximum"}` objects, each one;
/// - KthElement: the numbers in the last object's `array`;
/// - StatisticsBivariate, StatisticsContingency: the pairs; StatisticsFrequency: the items (a bare
///   scalar one);
/// - SecureMatrixMultiplication, StatisticsRegressionOLSVertical: the rows of the party's matrix
///   (the response vector's length for the regression's second party);
/// - SetIntersection, SetIntersectionSize: the distinct items of the party's set (the
///   intersection of its lists); StatisticsContingencyVertical: the distinct ids.
pub fn local(microprotocol: &str, index: usize, input: &Value) -> Option<u64> {
    let count = match microprotocol {
        _ if counts_numbers(microprotocol) => leaves(input),
        "KthElement" => {
            let last = match input {
                Value::Array(items) => items.last().unwrap_or(&Value::Null),
                other => other,
            };
            leaves(last.get("array").unwrap_or(&Value::Null))
        }
        "StatisticsBivariate" | "StatisticsContingency" | "StatisticsFrequency" => match input {
            Value::Array(items) => items.len() as u64,
            Value::Null => 0,
            _ => 1,
        },
        "SecureMatrixMultiplication" | "StatisticsRegressionOLSVertical" if index >= 2 => return None,
        "StatisticsRegressionOLSVertical" if index == 1 => leaves(input),
        "SecureMatrixMultiplication" | "StatisticsRegressionOLSVertical" => matrix_rows(input),
        "SetIntersection" | "SetIntersectionSize" => set_size(input),
        "StatisticsContingencyVertical" => match input {
            Value::Array(pairs) => pairs
                .iter()
                .filter_map(|pair| pair.get(0).map(Value::to_string))
                .collect::<HashSet<_>>()
                .len() as u64,
            _ => 0,
        },
        _ => return None,
    };
    Some(count)
}

/// Whether each number of the input is a record of `microprotocol`.
pub fn counts_numbers(microprotocol: &str) -> bool {
    matches!(
        microprotocol,
        "SecureSum" | "SecureMedian" | "StatisticsUnivariate" | "MinimumMaximum"
    )
}

/// Numbers and objects, however deeply listed.
fn leaves(value: &Value) -> u64 {
    match value {
        Value::Array(items) => items.iter().map(leaves).sum(),
        Value::Number(_) | Value::Object(_) => 1,
        _ => 0,
    }
}

/// The rows of a matrix given bare (`[[1, 2]]`) or as the original's one-element list of it.
fn matrix_rows(value: &Value) -> u64 {
    let is_list = |v: &Value| v.is_array();
    let matrix = match value {
        Value::Array(items) if items.len() == 1 && items[0].as_array().is_some_and(|m| m.iter().all(is_list)) => {
            &items[0]
        }
        other => other,
    };
    matrix.as_array().map_or(0, |rows| rows.len() as u64)
}

/// The distinct items of the intersection of the lists (a flat list is one set).
fn set_size(value: &Value) -> u64 {
    let Value::Array(lists) = value else {
        return 0;
    };
    if !lists.iter().all(Value::is_array) || lists.is_empty() {
        return lists.iter().map(Value::to_string).collect::<HashSet<_>>().len() as u64;
    }
    let set = |list: &Value| -> HashSet<String> {
        list.as_array()
            .map(|items| items.iter().map(Value::to_string).collect())
            .unwrap_or_default()
    };
    let mut common = set(&lists[0]);
    for list in &lists[1..] {
        let other = set(list);
        common.retain(|item| other.contains(item));
    }
    common.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_are_counted_per_microprotocol() {
        let n = |m: &str, index: usize, input: Value| local(m, index, &input);
        assert_eq!(n("SecureSum", 0, json!(19)), Some(1));
        assert_eq!(n("SecureSum", 0, json!([1, [2, 3], []])), Some(3));
        assert_eq!(n("StatisticsUnivariate", 0, json!([])), Some(0));
        assert_eq!(
            n("MinimumMaximum", 0, json!([{"minimum": 1, "maximum": 2}, 3])),
            Some(2)
        );
        assert_eq!(
            n(
                "KthElement",
                0,
                json!([{"array": [1, 2, 3], "rank": 1, "lower_bound": 0, "upper_bound": 9}])
            ),
            Some(3)
        );
        assert_eq!(n("StatisticsBivariate", 0, json!([[1, 2], [3, 4]])), Some(2));
        assert_eq!(n("StatisticsFrequency", 0, json!("a")), Some(1));
        assert_eq!(n("StatisticsContingency", 0, json!([["a", "x"]])), Some(1));
        assert_eq!(
            n("SecureMatrixMultiplication", 0, json!([[[1, 2], [3, 4], [5, 6]]])),
            Some(3)
        );
        assert_eq!(n("SecureMatrixMultiplication", 1, json!([[1, 2]])), Some(1));
        assert_eq!(n("SecureMatrixMultiplication", 2, Value::Null), None);
        assert_eq!(n("StatisticsRegressionOLSVertical", 1, json!([[1, 2, 3]])), Some(3));
        assert_eq!(n("SetIntersection", 0, json!([[1, 2, 3], [2, 3, 4]])), Some(2));
        assert_eq!(n("SetIntersectionSize", 0, json!([1, 1, 2])), Some(2));
        assert_eq!(
            n(
                "StatisticsContingencyVertical",
                0,
                json!([[1, "a"], [1, "b"], [2, "a"]])
            ),
            Some(2)
        );
    }
}
