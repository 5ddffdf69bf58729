//! Every output dimension a small request chooses is bounded by each party's own limit, checked
//! before the output is built: a table's cells, a product's entries, an intersection's members.
//! Also the length of a number, checked before any number is converted.

use fsc_simon::simulate::run_all;
use fsc_simon::{EngineError, Limits, Spec};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

fn limited(microprotocol: &str, parameters: Value, parties: usize, cells: u64) -> Spec {
    Spec::new(microprotocol, &parameters, parties).unwrap().limited(Limits {
        max_output_cells: cells,
    })
}

fn refused(result: Result<Vec<Value>, EngineError>, what: &str) {
    let error = result.expect_err(what);
    assert_eq!(error.code(), "too_large", "{what}: {error}");
}

#[test]
fn tables_beyond_the_limit_are_refused_before_they_are_built() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    // Exchanged categories: 12 × 12 = 144 cells, known once every party's categories are in.
    let pairs = |from: i64| json!((from..from + 6).map(|i| json!([i, i])).collect::<Vec<_>>());
    let inputs = [pairs(0), pairs(6)];
    refused(
        run_all(&limited("StatisticsContingency", json!({}), 2, 143), &inputs, &mut rng),
        "exchanged contingency",
    );
    assert!(run_all(&limited("StatisticsContingency", json!({}), 2, 144), &inputs, &mut rng).is_ok());
    let values = [json!((0..8).collect::<Vec<_>>()), json!([8, 9])];
    refused(
        run_all(&limited("StatisticsFrequency", json!({}), 2, 9), &values, &mut rng),
        "exchanged frequency",
    );
    // Given categories: known at the start, refused before anything is sent.
    let given = json!({"rows": (0..40).collect::<Vec<_>>(), "columns": (0..40).collect::<Vec<_>>()});
    let error = limited("StatisticsContingency", given, 2, 1000)
        .machine(0, &json!([[1, 1]]))
        .unwrap_err();
    assert_eq!(error.code(), "too_large", "{error}");
    let error = limited("StatisticsFrequency", json!({"categories": [1, 2, 3]}), 2, 2)
        .machine(1, &json!([1]))
        .unwrap_err();
    assert_eq!(error.code(), "too_large", "{error}");
}

#[test]
fn products_and_intersections_beyond_the_limit_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let column = json!((0..30).map(|i| json!([i])).collect::<Vec<_>>());
    let row = json!([(0..30).collect::<Vec<_>>()]);
    let product = limited(
        "SecureMatrixMultiplication",
        json!({"helper": "carol", "allow_revealing_shapes": true}),
        2,
        899,
    );
    refused(
        run_all(&product, &[column.clone(), row.clone(), Value::Null], &mut rng),
        "a 30×1 · 1×30 product",
    );
    // The helper checks too, from the shapes alone.
    let mut helper = product.machine(2, &Value::Null).unwrap();
    let mut owners: Vec<_> = [column, row]
        .iter()
        .enumerate()
        .map(|(me, x)| product.machine(me, x).unwrap())
        .collect();
    let masks = fsc_simon::Masks::dealt(3, &mut rng);
    helper.start(&mut rng, &masks[2]).unwrap();
    let mut error = None;
    for (me, owner) in owners.iter_mut().enumerate() {
        for (to, bytes) in owner.start(&mut rng, &masks[me]).unwrap().outgoing {
            if to == 2 {
                error = helper.receive(me, &bytes, &mut rng, &masks[2]).err().or(error);
            }
        }
    }
    assert_eq!(error.expect("the helper refuses").code(), "too_large");

    let set = json!((0..50).map(|i| format!("item-{i}")).collect::<Vec<_>>());
    let inputs = [set.clone(), set];
    refused(
        run_all(&limited("SetIntersection", json!({}), 2, 49), &inputs, &mut rng),
        "50 members",
    );
    assert!(run_all(&limited("SetIntersection", json!({}), 2, 50), &inputs, &mut rng).is_ok());
}

#[test]
fn a_number_longer_than_400_characters_is_refused_unread() {
    let spec = Spec::new("SecureSum", &json!({}), 3).unwrap();
    let long: Value = serde_json::from_str(&format!("[1, {}]", "9".repeat(401))).unwrap();
    let error = spec.machine(0, &long).unwrap_err();
    assert_eq!(error.code(), "invalid_input");
    assert!(error.to_string().contains("401 characters"), "{error}");
    let longest: Value = serde_json::from_str(&format!("0.{}", "1".repeat(398))).unwrap();
    assert!(spec.machine(0, &longest).is_ok());
}
