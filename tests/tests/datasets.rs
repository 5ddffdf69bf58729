//! Datasets end to end (README, "Datasets"): alice reads a CSV file, bob an SQLite file, carol a
//! table of a real PostgreSQL cluster (started here, as `nobody` when the test runs as root).
//! Every supported microprotocol computed from the datasets gives the output the same values give
//! as JSON inputs. Then the refusals: a client without the grant (403 `dataset_forbidden`), a
//! filter that leaves fewer records than the policy's minimum (403 `policy_refused`), a bad
//! value (400, named by its row, never quoted, and the other parties told only `invalid_input`),
//! a missing value, a file that is gone and a database that is down (503), each failing the
//! computation at the other parties too.

use fsc_client::Client;
use fsc_e2e::postgres::Postgres;
use fsc_e2e::{Cluster, Representations, fsc_bin, output_text};
use fsc_tools::ca::Authority;
use serde_json::{Value, json};
use sqlx::Connection;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(120);
const ANALYST: &str = "analyst-token";
const NARROW: &str = "narrow-token";
/// What the broken dataset holds in its third row: no message may quote it.
const SECRET: &str = "SECRET-77x";

/// One row of the `labs` dataset.
struct Row {
    id: &'static str,
    age: i64,
    hba1c: Option<&'static str>,
    sex: &'static str,
    smoker: &'static str,
}

const fn row(id: &'static str, age: i64, hba1c: Option<&'static str>, sex: &'static str, smoker: &'static str) -> Row {
    Row {
        id,
        age,
        hba1c,
        sex,
        smoker,
    }
}

/// alice's (CSV), bob's (SQLite) and carol's (PostgreSQL) rows; alice's third and bob's second
/// have no hba1c.
const ROWS: [&[Row]; 3] = [
    &[
        row("p1", 34, Some("5.4"), "F", "no"),
        row("p2", 51, Some("6.1"), "M", "yes"),
        row("p3", 47, None, "F", "no"),
        row("p4", 62, Some("7.25"), "M", "no"),
        row("p5", 29, Some("5.0"), "F", "yes"),
        row("p6", 44, Some("5.9"), "F", "no"),
    ],
    &[
        row("p2", 38, Some("5.6"), "F", "no"),
        row("p3", 45, None, "M", "yes"),
        row("p5", 58, Some("6.4"), "M", "no"),
        row("p6", 33, Some("0.1"), "F", "no"),
        row("p7", 70, Some("8.3"), "M", "yes"),
        row("p8", 41, Some("5.5"), "F", "no"),
    ],
    &[
        row("p1", 36, Some("5.2"), "F", "yes"),
        row("p3", 55, Some("6.9"), "M", "no"),
        row("p5", 49, Some("6.0"), "F", "no"),
        row("p9", 27, Some("4.8"), "M", "no"),
    ],
];

const COLUMNS: &str = r#"columns = [{name = "id", type = "string"}, {name = "age", type = "integer"},
  {name = "hba1c", type = "number"}, {name = "sex", type = "category"}, {name = "smoker", type = "string"}]
filters = ["sex"]"#;

fn value(row: &Row, column: &str) -> Option<Value> {
    match column {
        "id" => Some(json!(row.id)),
        "age" => Some(json!(row.age)),
        "hba1c" => row.hba1c.map(|t| serde_json::from_str(t).expect("a JSON number")),
        "sex" => Some(json!(row.sex)),
        "smoker" => Some(json!(row.smoker)),
        other => panic!("no column {other}"),
    }
}

/// What one party's input names.
#[derive(Clone, Copy)]
enum Shape {
    /// One column's values (rows without one skipped).
    Column(&'static str),
    /// Rows of several columns, with a leading 1 if `intercept`.
    Columns(&'static [&'static str], bool),
    /// One column as the one list of a set.
    Set(&'static str),
    /// One column as KthElement's array, with its rank and bounds.
    Kth(&'static str),
}

/// KthElement's terms in the tests: the 4th smallest age of all parties, ages in 0 to 100.
fn kth_terms() -> serde_json::Map<String, Value> {
    let terms = json!({"rank": 4, "lower_bound": 0, "upper_bound": 100});
    terms.as_object().unwrap().clone()
}

impl Shape {
    fn reference(self) -> Value {
        match self {
            Shape::Column(c) => json!({"dataset": "labs", "column": c, "missing": "skip"}),
            Shape::Set(c) => json!({"dataset": "labs", "column": c}),
            Shape::Kth(c) => {
                let mut reference = json!({"dataset": "labs", "column": c, "missing": "skip"});
                reference.as_object_mut().unwrap().extend(kth_terms());
                reference
            }
            Shape::Columns(cs, intercept) => {
                json!({"dataset": "labs", "columns": cs, "missing": "skip", "intercept": intercept})
            }
        }
    }

    /// The same values as JSON, from the rows the test wrote.
    fn json(self, rows: &[Row]) -> Value {
        match self {
            Shape::Column(c) => rows.iter().filter_map(|r| value(r, c)).collect(),
            Shape::Set(c) => json!([rows.iter().filter_map(|r| value(r, c)).collect::<Vec<_>>()]),
            Shape::Kth(c) => {
                let mut input = kth_terms();
                input.insert("array".into(), Shape::Column(c).json(rows));
                json!([input])
            }
            Shape::Columns(cs, intercept) => rows
                .iter()
                .filter_map(|r| {
                    let cells: Option<Vec<Value>> = cs.iter().map(|c| value(r, c)).collect();
                    let mut cells = cells?;
                    if intercept {
                        cells.insert(0, json!(1));
                    }
                    Some(Value::Array(cells))
                })
                .collect(),
        }
    }
}

struct Case {
    microprotocol: &'static str,
    /// Indices into the three parties, in the computation's order, each with its shape.
    parties: &'static [(usize, Shape)],
}

/// The same shape at all three parties.
const fn three(shape: Shape) -> [(usize, Shape); 3] {
    [(0, shape), (1, shape), (2, shape)]
}

const HBA1C: [(usize, Shape); 3] = three(Shape::Column("hba1c"));
const AGE: [(usize, Shape); 3] = three(Shape::Column("age"));
const SEX: [(usize, Shape); 3] = three(Shape::Column("sex"));
const AGE_HBA1C: [(usize, Shape); 3] = three(Shape::Columns(&["age", "hba1c"], false));
const SEX_SMOKER: [(usize, Shape); 3] = three(Shape::Columns(&["sex", "smoker"], false));
const IDS: [(usize, Shape); 3] = three(Shape::Set("id"));
const AGE_KTH: [(usize, Shape); 3] = three(Shape::Kth("age"));

fn cases() -> Vec<Case> {
    let case = |microprotocol: &'static str, parties: &'static [(usize, Shape)]| Case { microprotocol, parties };
    vec![
        case("SecureSum", &HBA1C),
        case("StatisticsUnivariate", &HBA1C),
        case("SecureMedian", &AGE),
        case("MinimumMaximum", &AGE),
        case("KthElement", &AGE_KTH),
        case("StatisticsFrequency", &SEX),
        case("StatisticsBivariate", &AGE_HBA1C),
        case("StatisticsContingency", &SEX_SMOKER),
        case("SetIntersectionSize", &IDS),
        case("SetIntersection", &IDS[..2]),
        case(
            "StatisticsContingencyVertical",
            &[
                (0, Shape::Columns(&["id", "sex"], false)),
                (1, Shape::Columns(&["id", "smoker"], false)),
            ],
        ),
        case(
            "StatisticsRegressionOLSVertical",
            &[(0, Shape::Columns(&["age"], true)), (1, Shape::Column("age"))],
        ),
    ]
}

fn csv_text(rows: &[Row]) -> String {
    let mut text = String::from("id,age,hba1c,sex,smoker\n");
    for r in rows {
        text.push_str(&format!(
            "{},{},{},{},{}\n",
            r.id,
            r.age,
            r.hba1c.unwrap_or(""),
            r.sex,
            r.smoker
        ));
    }
    text
}

const CREATE: &str = "CREATE TABLE labs (id TEXT, age INTEGER, hba1c DOUBLE PRECISION, sex TEXT, smoker TEXT)";
const INSERT: &str = "INSERT INTO labs VALUES ($1, $2, $3, $4, $5)";
const QUERY: &str = "SELECT id, age, hba1c, sex, smoker FROM labs ORDER BY id";

async fn write_sqlite(path: &Path, rows: &[Row]) {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite:{}", path.display()))
        .unwrap()
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::query(CREATE).execute(&mut conn).await.unwrap();
    for r in rows {
        sqlx::query(INSERT)
            .bind(r.id)
            .bind(r.age)
            .bind(r.hba1c.map(|t| t.parse::<f64>().unwrap()))
            .bind(r.sex)
            .bind(r.smoker)
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

async fn write_postgres(postgres: &Postgres, rows: &[Row]) {
    let mut conn = sqlx::PgConnection::connect(&postgres.url_with_password("postgres"))
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE labs").execute(&mut conn).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&postgres.url_with_password("labs"))
        .await
        .unwrap();
    sqlx::query(CREATE).execute(&mut conn).await.unwrap();
    for r in rows {
        sqlx::query(INSERT)
            .bind(r.id)
            .bind(r.age as i32)
            .bind(r.hba1c.map(|t| t.parse::<f64>().unwrap()))
            .bind(r.sex)
            .bind(r.smoker)
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

/// The two API clients of every node; the analyst may read `grants` (alice's datasets differ).
fn clients(grants: &str) -> String {
    let digest = fsc_node::keys::api_token_sha256;
    format!(
        r#"
[[clients]]
name = "analyst"
token_sha256 = "{}"
datasets = [{grants}]

[[clients]]
name = "narrow"
token_sha256 = "{}"
datasets = ["labs.age"]
"#,
        digest(ANALYST),
        digest(NARROW)
    )
}

fn request(microprotocol: &str, parties: &[&str], id: Uuid, input: Value) -> Value {
    json!({"id": id, "microprotocol": microprotocol, "parties": parties, "input": input})
}

/// Submits `input` at `client`; the status and body.
async fn submit(client: &Client, microprotocol: &str, parties: &[&str], id: Uuid, input: Value) -> (u16, Value) {
    let answer = client
        .submit(&request(microprotocol, parties, id, input))
        .await
        .unwrap();
    (answer.status.as_u16(), answer.body)
}

/// bob submits a SecureSum of alice and bob first; alice's input (`input`, through `client`)
/// is refused with `status` and `code`; returns alice's answer and bob's final view.
async fn refused_at_alice(cluster: &Cluster, client: &Client, input: Value, status: u16, code: &str) -> (Value, Value) {
    let bob = Client::new(&cluster.node("bob").url, Some(ANALYST.into()));
    let id = Uuid::new_v4();
    let parties = ["alice", "bob"];
    let (s, body) = submit(&bob, "SecureSum", &parties, id, json!([1, 2, 3])).await;
    assert_eq!(s, 202, "{body}");
    let (s, body) = submit(client, "SecureSum", &parties, id, input.clone()).await;
    assert_eq!((s, body["code"].as_str()), (status, Some(code)), "{input}: {body}");
    let seen = bob.wait_final(id, WAIT).await.unwrap();
    assert_eq!(seen["status"], "failed", "{seen}");
    assert_eq!(seen["error"]["party"], "alice", "{seen}");
    (body, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_give_the_results_of_their_values_as_json_and_refuse_what_they_must() {
    let postgres = Postgres::start();
    write_postgres(&postgres, ROWS[2]).await;
    let mut cluster = Cluster::start(3).await;
    let dir = cluster.path().to_path_buf();
    std::fs::write(dir.join("alice/labs.csv"), csv_text(ROWS[0])).unwrap();
    std::fs::write(
        dir.join("alice/broken.csv"),
        format!("hba1c\n5.1\n6.2\n{SECRET}\n5.0\n"),
    )
    .unwrap();
    std::fs::write(dir.join("alice/kinds.csv"), format!("kind\na\n{SECRET}\na\nb\n")).unwrap();
    write_sqlite(&dir.join("bob/labs.sqlite"), ROWS[1]).await;
    let free = fsc_e2e::free_ports(1)[0];
    let sources = [
        "csv = {path = \"labs.csv\"}".to_string(),
        format!("sql = {{url = \"sqlite:labs.sqlite\", query = \"{QUERY}\"}}"),
        format!(
            // A query may end with a comment (read through COPY, it is wrapped in parentheses).
            "sql = {{url = \"{}\", query = \"{QUERY} -- by id\", password_file = \"{}\"}}",
            postgres.url("labs"),
            postgres.password_file.display()
        ),
    ];
    for (party, source) in ["alice", "bob", "carol"].iter().zip(&sources) {
        let mut extra = format!("\n[[datasets]]\nname = \"labs\"\n{COLUMNS}\n{source}\n");
        if *party == "alice" {
            extra.push_str(&format!(
                r#"
[[datasets]]
name = "broken"
columns = [{{name = "hba1c", type = "number"}}]
csv = {{path = "broken.csv"}}

[[datasets]]
name = "kinds"
columns = [{{name = "kind", type = "string"}}]
csv = {{path = "kinds.csv"}}

[[datasets]]
name = "gone"
columns = [{{name = "x", type = "number"}}]
csv = {{path = "gone.csv"}}

[[datasets]]
name = "down"
columns = [{{name = "x", type = "number"}}]
sql = {{url = "postgres://fsc@127.0.0.1:{free}/x", query = "SELECT 1 AS x"}}

[policy]
min_local_samples = 3
"#
            ));
        }
        extra.push_str(&clients(if *party == "alice" {
            r#""labs", "broken", "kinds", "gone", "down""#
        } else {
            r#""labs""#
        }));
        cluster.append_config(party, &extra);
        cluster.node_mut(party).restart().await;
    }
    let names = ["alice", "bob", "carol"];
    let analyst: Vec<Client> = names
        .iter()
        .map(|p| Client::new(&cluster.node(p).url, Some(ANALYST.into())))
        .collect();

    // Each microprotocol from the datasets and from the same values as JSON.
    for case in cases() {
        let parties: Vec<&str> = case.parties.iter().map(|(i, _)| names[*i]).collect();
        let (from_data, from_json) = (Uuid::new_v4(), Uuid::new_v4());
        for (i, shape) in case.parties {
            let client = &analyst[*i];
            let (status, body) = submit(client, case.microprotocol, &parties, from_data, shape.reference()).await;
            assert_eq!(status, 202, "{} at {}: {body}", case.microprotocol, names[*i]);
            assert_eq!(body["dataset"]["dataset"], "labs", "{body}");
            let json_input = shape.json(ROWS[*i]);
            let (status, body) = submit(client, case.microprotocol, &parties, from_json, json_input).await;
            assert_eq!(status, 202, "{} at {}: {body}", case.microprotocol, names[*i]);
        }
        for (i, _) in case.parties {
            let a = analyst[*i].wait_final(from_data, WAIT).await.unwrap();
            let b = analyst[*i].wait_final(from_json, WAIT).await.unwrap();
            assert_eq!(
                a["status"],
                "succeeded",
                "{}: {a}\n{}",
                case.microprotocol,
                cluster.logs()
            );
            assert_eq!(b["status"], "succeeded", "{}: {b}", case.microprotocol);
            assert_eq!(a["output"], b["output"], "{} at {}", case.microprotocol, names[*i]);
        }
    }

    // What a submission read: records taken and skipped (alice's third row has no hba1c).
    let parties = ["alice", "bob"];
    let id = Uuid::new_v4();
    let input = json!({"dataset": "labs", "column": "hba1c", "missing": "skip"});
    let (_, body) = submit(&analyst[0], "SecureSum", &parties, id, input).await;
    assert_eq!(
        body["dataset"],
        json!({"dataset": "labs", "records": 5, "skipped": 1}),
        "{body}"
    );

    // A filter the dataset allows, leaving enough records: alice's F rows with an hba1c.
    let id = Uuid::new_v4();
    let input = json!({"dataset": "labs", "column": "hba1c", "where": {"sex": "F"}, "missing": "skip"});
    let (status, body) = submit(&analyst[0], "SecureSum", &parties, id, input).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["dataset"]["records"], 3, "{body}");
    let (status, body) = submit(&analyst[1], "SecureSum", &parties, id, json!(0)).await;
    assert_eq!(status, 202, "{body}");
    let done = analyst[0].wait_final(id, WAIT).await.unwrap();
    let sum = done["output"]["result"]["sum"].as_f64().unwrap();
    assert!((sum - 16.3).abs() < 1e-9, "{done}");
    // The computation shows what its input was read from, after the submission's answer too;
    // bob's JSON input has none.
    assert_eq!(
        done["dataset"],
        json!({"dataset": "labs", "records": 3, "skipped": 1}),
        "{done}"
    );
    let at_bob = analyst[1].wait_final(id, WAIT).await.unwrap();
    assert_eq!(at_bob["dataset"], Value::Null, "{at_bob}");

    // The federatedsecure API takes the same inputs (a task's data): the sum of alice's and
    // bob's hba1c values, rows without one skipped.
    let task = Uuid::new_v4();
    let parties = ["alice".to_string(), "bob".to_string()];
    let input = json!({"dataset": "labs", "column": "hba1c", "missing": "skip"});
    for (myself, party) in names[..2].iter().enumerate() {
        let session = Representations::new(&cluster.node(party).url, Some(ANALYST));
        let (_, status, reply) = session.start_task_as(&parties, myself, task, input.clone()).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{reply}");
    }
    let done = analyst[0].wait_final(task, WAIT).await.unwrap();
    let sum = done["output"]["result"]["sum"].as_f64().unwrap();
    assert!((sum - 55.55).abs() < 1e-9, "{done}");
    assert_eq!(
        done["dataset"],
        json!({"dataset": "labs", "records": 5, "skipped": 1}),
        "{done}"
    );

    // The listing: names, columns, row counts; the narrow client sees its one column.
    let listed = analyst[0].datasets().await.unwrap();
    let labs = &listed["datasets"][0];
    assert_eq!(
        (labs["name"].as_str(), labs["rows"].as_u64()),
        (Some("labs"), Some(6)),
        "{listed}"
    );
    assert_eq!(labs["columns"].as_array().unwrap().len(), 5, "{listed}");
    assert!(!listed.to_string().contains("5.4"), "a value in the listing: {listed}");
    let gone = listed["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "gone")
        .unwrap();
    assert_eq!(gone["error"]["code"], "dataset_unavailable", "{listed}");
    let narrow = Client::new(&cluster.node("alice").url, Some(NARROW.into()));
    let listed = narrow.datasets().await.unwrap();
    assert_eq!(listed["datasets"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        listed["datasets"][0]["columns"],
        json!([{"name": "age", "type": "integer"}])
    );
    let pg = analyst[2].datasets().await.unwrap();
    assert_eq!(pg["datasets"][0]["rows"], 4, "{pg}");
    assert_eq!(pg["datasets"][0]["source"], "postgres", "{pg}");
    let cli = std::process::Command::new(fsc_bin())
        .args(["datasets", "--node", &cluster.node("bob").url, "--token", ANALYST])
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", output_text(&cli));
    let line: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!((line["name"].as_str(), line["rows"].as_u64()), (Some("labs"), Some(6)));

    // A column the client may not read; a filter on a column the dataset does not allow.
    let (body, seen) = refused_at_alice(
        &cluster,
        &narrow,
        json!({"dataset": "labs", "column": "hba1c"}),
        403,
        "dataset_forbidden",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("hba1c"), "{body}");
    assert_eq!(seen["error"]["code"], "dataset_forbidden", "{seen}");
    refused_at_alice(
        &cluster,
        &analyst[0],
        json!({"dataset": "labs", "column": "age", "where": {"smoker": "no"}}),
        403,
        "dataset_forbidden",
    )
    .await;

    // A filter that leaves fewer records than the policy's minimum (alice's M rows: 2 < 3).
    let (body, seen) = refused_at_alice(
        &cluster,
        &analyst[0],
        json!({"dataset": "labs", "column": "age", "where": {"sex": "M"}}),
        403,
        "policy_refused",
    )
    .await;
    assert_eq!(body["rule"], "min_local_samples", "{body}");
    assert_eq!(seen["error"]["rule"], "min_local_samples", "{seen}");

    // A value of the wrong type: its row, never its text; bob hears `invalid_input` only.
    let (body, seen) = refused_at_alice(
        &cluster,
        &analyst[0],
        json!({"dataset": "broken", "column": "hba1c"}),
        400,
        "invalid_dataset_value",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("row 3"), "{body}");
    assert!(!body.to_string().contains(SECRET), "{body}");
    assert_eq!(seen["error"]["code"], "invalid_input", "{seen}");
    assert!(
        !seen.to_string().contains(SECRET) && !seen.to_string().contains("row 3"),
        "{seen}"
    );

    // A category outside the given ones: the engine's description of a JSON input quotes it,
    // which a dataset's reader may not see. alice's client is told the kind of problem, bob
    // the code, and alice's record of the computation keeps no value either.
    let id = Uuid::new_v4();
    let frequency = |input: Value| {
        let mut request = request("StatisticsFrequency", &["alice", "bob"], id, input);
        request["parameters"] = json!({"categories": ["a", "b"]});
        request
    };
    let answer = analyst[1].submit(&frequency(json!(["a", "b", "a"]))).await.unwrap();
    assert_eq!(answer.status.as_u16(), 202, "{}", answer.body);
    let answer = analyst[0]
        .submit(&frequency(json!({"dataset": "kinds", "column": "kind"})))
        .await
        .unwrap();
    let body = answer.body;
    assert_eq!(
        (answer.status.as_u16(), body["code"].as_str()),
        (400, Some("invalid_input")),
        "{body}"
    );
    assert!(body["detail"].as_str().unwrap().contains("dataset \"kinds\""), "{body}");
    let seen = analyst[1].wait_final(id, WAIT).await.unwrap();
    let own = analyst[0].wait_final(id, WAIT).await.unwrap();
    assert_eq!(
        (seen["error"]["code"].as_str(), own["status"].as_str()),
        (Some("invalid_input"), Some("failed")),
        "{seen}"
    );
    for view in [&body, &seen, &own] {
        assert!(!view.to_string().contains(SECRET), "{view}");
    }

    // A missing value refused by default, by its row.
    let (body, _) = refused_at_alice(
        &cluster,
        &analyst[0],
        json!({"dataset": "labs", "column": "hba1c"}),
        400,
        "missing_value",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("row 3"), "{body}");

    // A file that is gone, a database that is down: 503 here, `dataset_unavailable` there.
    for dataset in ["gone", "down"] {
        let (_, seen) = refused_at_alice(
            &cluster,
            &analyst[0],
            json!({"dataset": dataset, "column": "x"}),
            503,
            "dataset_unavailable",
        )
        .await;
        assert_eq!(seen["error"]["code"], "dataset_unavailable", "{seen}");
    }

    // No value of any dataset in any node's log.
    let logs = cluster.logs();
    for secret in [SECRET, fsc_e2e::postgres::PASSWORD] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}

/// `fsc demo --csv`: the tutorial's sum with each node reading its input from a CSV file.
#[tokio::test]
async fn the_demo_reads_the_tutorial_from_csv_files() {
    let output = tokio::task::spawn_blocking(|| {
        std::process::Command::new(fsc_bin())
            .args(["demo", "--csv"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", output_text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        r#"{"inputs": 3, "result": {"samples": 3, "sum": 85.0}}"#
    );
}

/// A PostgreSQL that takes TLS connections only: a dataset whose URL asks `verify-full` against
/// the steward's CA is listed and computed from; one that trusts another CA, and one that asks
/// for no TLS, are unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_dataset_is_read_over_tls_verified_against_the_stewards_ca() {
    let keys = tempfile::tempdir().unwrap();
    let (ca, other) = (keys.path().join("ca.crt"), keys.path().join("other.crt"));
    let steward = Authority::new("the steward's CA").unwrap();
    steward.write(&ca, &keys.path().join("ca.key")).unwrap();
    Authority::new("another CA")
        .unwrap()
        .write(&other, &keys.path().join("other.key"))
        .unwrap();
    let postgres = Postgres::start_tls(&steward);
    write_postgres(&postgres, ROWS[2]).await;
    let mut cluster = Cluster::start(2).await;
    let dataset = |name: &str, tls: String| {
        format!(
            "\n[[datasets]]\nname = \"{name}\"\n{COLUMNS}\nsql = {{url = \"{}?{tls}\", query = \"{QUERY}\", password_file = \"{}\"}}\n",
            postgres.url("labs"),
            postgres.password_file.display()
        )
    };
    let verified = |root: &Path| format!("sslmode=verify-full&sslrootcert={}", root.display());
    let mut extra = dataset("labs", verified(&ca));
    extra.push_str(&dataset("impostor", verified(&other)));
    extra.push_str(&dataset("plain", "sslmode=disable".into()));
    extra.push_str(&clients(r#""labs", "impostor", "plain""#));
    cluster.append_config("alice", &extra);
    cluster.node_mut("alice").restart().await;

    let alice = Client::new(&cluster.node("alice").url, Some(ANALYST.into()));
    let listed = alice.datasets().await.unwrap();
    let listing = |name: &str| {
        listed["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"))
    };
    assert_eq!(listing("labs")["rows"], 4, "{listed}");
    for name in ["impostor", "plain"] {
        assert_eq!(listing(name)["error"]["code"], "dataset_unavailable", "{listed}");
    }

    let bob = cluster.node("bob").client();
    let parties = ["alice", "bob"];
    let (from_data, from_json) = (Uuid::new_v4(), Uuid::new_v4());
    let ages: Vec<i64> = ROWS[2].iter().map(|r| r.age).collect();
    for (id, input) in [
        (from_data, json!({"dataset": "labs", "column": "age"})),
        (from_json, json!(ages)),
    ] {
        let (status, body) = submit(&alice, "SecureSum", &parties, id, input).await;
        assert_eq!(status, 202, "{body}");
        let (status, body) = submit(&bob, "SecureSum", &parties, id, json!([1])).await;
        assert_eq!(status, 202, "{body}");
    }
    let a = alice.wait_final(from_data, WAIT).await.unwrap();
    let b = alice.wait_final(from_json, WAIT).await.unwrap();
    assert_eq!(a["status"], "succeeded", "{a}");
    assert_eq!(a["output"], b["output"], "{a}\n{b}");
    let (status, body) = submit(
        &alice,
        "SecureSum",
        &parties,
        Uuid::new_v4(),
        json!({"dataset": "impostor", "column": "age"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("dataset_unavailable")),
        "{body}"
    );
}
