//! fsc-bench's large dataset inputs (README, "Datasets"): StatisticsContingency of 3 ×
//! `--postgres-rows` pairs that each node reads from PostgreSQL (`postgres`), and two-party
//! SetIntersectionSize of 2 × `--psi-items` ids read from CSV beside the same ids as JSON
//! (`psi-csv`). Each appends its datasets to the nodes' node.toml and restarts the nodes.

use crate::psi::{reset_peaks, timed};
use fsc_e2e::postgres::Postgres;
use fsc_e2e::{Cluster, psi_sets};
use serde_json::{Value, json};
use sqlx::Connection;
use std::time::Instant;

/// Categories per dimension of the contingency table.
const CATEGORIES: u64 = 20;

/// The cell of row `i` (from 0) of `party`'s table: `[r<row>, c<column>]`. The database makes
/// the same rows by the same formula ([`load_pairs`]), so the bench knows the table without
/// reading them back.
fn cell(party: u64, i: u64) -> (u64, u64) {
    ((i + party) % CATEGORIES, (i / CATEGORIES + i % 7) % CATEGORIES)
}

/// Creates table `pairs_<party>` (text columns `r`, `c`) of `rows` rows made by the server
/// (`generate_series`, [`cell`]'s formula), then freezes it, so that the timed reads find a
/// settled table (hint bits set) as a steward's would be.
async fn load_pairs(conn: &mut sqlx::PgConnection, party: &str, p: u64, rows: usize) {
    let statements = [
        format!("CREATE UNLOGGED TABLE pairs_{party} (r text NOT NULL, c text NOT NULL)"),
        format!(
            "INSERT INTO pairs_{party} SELECT 'r' || ((i + {p}) % {CATEGORIES}), \
             'c' || ((i / {CATEGORIES} + i % 7) % {CATEGORIES}) FROM generate_series(0::bigint, {}) AS i",
            rows as i64 - 1
        ),
        format!("VACUUM (FREEZE, ANALYZE) pairs_{party}"),
    ];
    for statement in statements {
        sqlx::query(&statement)
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// StatisticsContingency of 3 × `rows` pairs over a 20 × 20 table, each node reading its own
/// table from one PostgreSQL server started here (a dataset with an SQL query, the password from
/// a file): wall time from the three submissions until succeeded at all three (median of
/// `runs`; reading the rows is part of it), the nodes' peak RSS over the runs, and every cell
/// checked against the table the formula gives.
pub async fn postgres_contingency(cluster: &mut Cluster, runs: usize, rows: usize) {
    let postgres = Postgres::start();
    let loading = Instant::now();
    let mut conn = sqlx::PgConnection::connect(&postgres.url_with_password("postgres"))
        .await
        .expect("connect to PostgreSQL");
    sqlx::query("CREATE DATABASE bench")
        .execute(&mut conn)
        .await
        .expect("create the database");
    let mut conn = sqlx::PgConnection::connect(&postgres.url_with_password("bench"))
        .await
        .expect("connect to the bench database");
    let parties = cluster.parties.clone();
    let mut want = vec![vec![0u64; CATEGORIES as usize]; CATEGORIES as usize];
    for (p, party) in parties.iter().enumerate() {
        load_pairs(&mut conn, party, p as u64, rows).await;
        for i in 0..rows as u64 {
            let (r, c) = cell(p as u64, i);
            want[r as usize][c as usize] += 1;
        }
        cluster.append_config(
            party,
            &format!(
                "\n[[datasets]]\nname = \"pairs\"\ncolumns = [{{name = \"r\", type = \"string\"}}, {{name = \"c\", type = \"string\"}}]\n\
                 sql = {{url = \"{}\", query = \"SELECT r, c FROM pairs_{party}\", password_file = \"{}\"}}\n",
                postgres.url("bench"),
                postgres.password_file.display()
            ),
        );
    }
    drop(conn);
    println!(
        "  (PostgreSQL: 3 tables of {rows} rows made in {:.1} s)",
        loading.elapsed().as_secs_f64()
    );
    for party in &parties {
        cluster.node_mut(party).restart().await;
    }
    let inputs = vec![json!({"dataset": "pairs", "columns": ["r", "c"]}); 3];
    reset_peaks(cluster);
    let mut samples = Vec::new();
    for _ in 0..runs {
        let (elapsed, result) = timed(cluster, "StatisticsContingency", &Value::Null, &inputs).await;
        samples.push(elapsed);
        for (r, counts) in want.iter().enumerate() {
            for (c, count) in counts.iter().enumerate() {
                assert_eq!(
                    result["table"][format!("r{r}")][format!("c{c}")],
                    json!(count),
                    "cell r{r}, c{c} of {result}"
                );
            }
        }
    }
    samples.sort_by(f64::total_cmp);
    let peak = crate::memory_line(cluster, "VmHWM:");
    println!(
        "StatisticsContingency, 3 parties x {rows} pairs over 20 x 20 from PostgreSQL: median {:.2} s over {runs} runs \
         (min {:.2}, max {:.2}), every cell right; peak RSS (MB): {peak}",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1]
    );
    crate::record_entry(
        "datasets",
        json!({"microprotocol": "StatisticsContingency", "source": "PostgreSQL", "rows": rows,
               "samples_s": samples, "peak_rss_mb": peak}),
    );
}

/// Two-party SetIntersectionSize of 2 × `items` ids (half shared) read by alice and bob from a
/// CSV file, beside the same ids as JSON: runs alternating so that both meet the same load,
/// wall time from both submissions until succeeded at both (median of `runs` each), their
/// ratio, and every result checked (the same size, half the ids).
pub async fn psi_csv(cluster: &mut Cluster, runs: usize, items: usize) {
    let json_inputs = psi_sets(2, items, items / 2);
    for (party, input) in cluster.parties.clone().iter().zip(&json_inputs) {
        let ids = input[0].as_array().expect("one list of ids");
        let mut text = String::with_capacity(ids.len() * 16 + 3);
        text.push_str("id\n");
        for id in ids {
            text.push_str(id.as_str().expect("ids are strings"));
            text.push('\n');
        }
        std::fs::write(cluster.path().join(party).join("ids.csv"), text).expect("write the CSV file");
        cluster.append_config(
            party,
            "\n[[datasets]]\nname = \"ids\"\ncolumns = [{name = \"id\", type = \"string\"}]\ncsv = {path = \"ids.csv\"}\n",
        );
    }
    for party in cluster.parties.clone() {
        cluster.node_mut(&party).restart().await;
    }
    let csv_inputs = vec![json!({"dataset": "ids", "column": "id"}); 2];
    let (mut from_json, mut from_csv) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        for (samples, inputs) in [(&mut from_json, &json_inputs), (&mut from_csv, &csv_inputs)] {
            let (elapsed, result) = timed(cluster, "SetIntersectionSize", &json!({}), inputs).await;
            assert_eq!(result["size_intersection"], items / 2, "{result}");
            samples.push(elapsed);
        }
    }
    let (a, b) = (crate::median(from_json.clone()), crate::median(from_csv.clone()));
    println!(
        "SetIntersectionSize 2 x {items} ids ({} shared), median of {runs} alternating runs each: JSON {a:.2} s, \
         CSV {b:.2} s: CSV / JSON {:.3}; peak RSS (MB): {}",
        items / 2,
        b / a,
        crate::memory_line(cluster, "VmHWM:")
    );
    crate::record(
        "psi_csv",
        json!({"items": items, "runs": runs, "json_s": from_json, "csv_s": from_csv, "ratio": b / a}),
    );
}
