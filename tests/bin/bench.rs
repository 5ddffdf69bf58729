//! `fsc-bench`: the performance figures of the foundation, on this machine, with one nats-server
//! and three `fsc node` processes on loopback (the same harness as the end-to-end tests).
//!
//! ```text
//! cargo build --release -p fsc -p fsc-e2e && target/release/fsc-bench \
//!     [--latency-runs N] [--batch N] [--python-runs N] [--protocol-runs N] [--matrix-runs N]
//!     [--psi-items N] [--psi-ot-items N] [--node-env KEY=VALUE] [--parties-runs N]
//!     [--compare-runs N] [--json FILE] [--port-base PORT] [--fixed-point]
//!     [--dataset-rows N] [--postgres-rows N] [--dp] [--contingency-pairs N]
//!     [--skip python,compare,latency,throughput,protocols,million,matrix,psi,datasets,postgres,psi-csv,parties]
//! ```
//!
//! Prints: the latency of one 3-party SecureSum through the v1 API (all three submissions until
//! `succeeded` at all three nodes; p50/p90/p99 over sequential runs), the throughput of a large
//! batch (completed computations per second until every node has finished all of them); both
//! sums are exact (`/v1`'s default, in Z_2^2304), and with `--fixed-point` timed again in the
//! original's fixed point (`digits_after` 12, in Z_2^256) in the same run; each
//! node's resident memory when idle and after the batch, and the tutorial's secure sum through
//! the unmodified Python client against fsc and against the original implementation
//! (`scripts/setup-reference`, its front end `tests/reference/fsc_http_wrapper.py`) started in
//! the same run, with fsc's time above the client's own floor (a floor run beside each tutorial
//! run), and each of the 13 microprotocols on one recorded vector's inputs through the same
//! client against both (`compare`, `--compare-runs`). Then the
//! statistics protocols at the sizes of their performance targets: SecureMedian of 3 × 1,000
//! floats, StatisticsUnivariate of 3 × 10,000 and 3 × 1,000,000 values (`million`),
//! StatisticsContingency of 3 × 100,000 pairs over a 20 × 20 table (wall time, submit at all
//! three until succeeded at all three; median of `--protocol-runs`, default 5). With `--dp`, also
//! StatisticsContingency of 3 × `--contingency-pairs` (default 100,000) pairs over a given
//! 20 × 20 table, without and with `dp` (ρ = 1/8, the discrete Gaussian), their runs interleaved,
//! and the ratio of their medians (the cost of differential privacy). Then the
//! products between alice and bob with carol as helper (SecureMatrixMultiplication 50×50·50×50,
//! 100×100·100×100 and 1,000×1,000·1,000×10, StatisticsRegressionOLSVertical with 100,000×10):
//! wall time from both submissions until both have the result, median over runs, with the nodes'
//! CPU time.
//! Then the PSI protocols (see `psi.rs`; `--psi-items` sets the size of the largest DH PSI,
//! `--psi-ot-items` of the largest OT PSI, both 2^20 by default; `--node-env` gives the nodes the
//! larger limits 2^24 needs). Then StatisticsUnivariate of 3 × `--dataset-rows` floats (10^6 by
//! default) read by each node from a CSV and a Parquet dataset, beside the same values as JSON,
//! with each source's time and the nodes' peak RSS (`datasets`). Then StatisticsContingency of
//! 3 × `--postgres-rows` pairs (10^6 by default) over a 20 × 20 table, each node reading its own
//! table from a PostgreSQL server started here (`postgres`), and SetIntersectionSize of 2 ×
//! `--psi-items` ids from CSV beside the same ids as JSON, with their ratio (`psi-csv`; see
//! `scale.rs`).
//! Last, sums among many parties, each count on a federation of its
//! own on one broker (10, 20 and 50 parties): the latency of one sum (`--parties-runs`, default
//! 50; a fifth of them for 50 parties), then a batch of 100 sums. Every sum section prints the
//! broker messages per sum; the throughput section also the messages they carried (the
//! publisher bundles the messages queued for one peer, `fsc_node::bundle`).
//!
//! `--json FILE` also writes the figures as JSON (each section's, latency samples included), for
//! `scripts/bench-plots` and docs/benchmarks.md. `--port-base PORT` keeps everything the bench
//! starts listening on ports PORT to PORT + 99 (`PORT_SPAN`), beside federations on others.

mod psi;
mod scale;

use fsc_e2e::{Cluster, ClusterOptions, free_ports, random_sums, use_ports};
use futures::future::join_all;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::Value;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

fn env_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

/// What `--json` writes: each section's figures under its name.
static REPORT: LazyLock<Mutex<serde_json::Map<String, Value>>> = LazyLock::new(Default::default);

/// Keeps a section's figures for `--json`.
fn record(section: &str, figures: Value) {
    REPORT.lock().expect("the report").insert(section.to_string(), figures);
}

/// Adds one entry to a section that has several (one per protocol, one per party count).
fn record_entry(section: &str, entry: Value) {
    let mut report = REPORT.lock().expect("the report");
    let list = report.entry(section).or_insert_with(|| json!([]));
    list.as_array_mut().expect("a section of entries").push(entry);
}

const SUCCEEDED: &str = "fsc_computations_finished_total{status=\"succeeded\"}";
const FAILED: &str = "fsc_computations_finished_total{status=\"failed\"}";
const SENT: &str = "fsc_messages_sent_total";
const PUBLISHED: &str = "fsc_broker_messages_published_total";
/// Ports `--port-base` reserves: enough for the largest federation (50 parties and a broker)
/// and for the three nodes, their broker and the original's three servers at once.
const PORT_SPAN: u16 = 100;

/// The sections `--skip` can leave out, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    Python,
    Compare,
    Latency,
    Throughput,
    Protocols,
    Million,
    Matrix,
    Psi,
    Datasets,
    Postgres,
    PsiCsv,
    Parties,
}

/// Performance figures of fsc on this machine: three nodes and nats-server on loopback.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Sequential 3-party sums timed for the latency percentiles.
    #[arg(long, default_value_t = 300)]
    latency_runs: usize,
    /// Sums in the throughput run.
    #[arg(long, default_value_t = 20_000)]
    batch: usize,
    /// Tutorial sums through the unmodified Python client.
    #[arg(long, default_value_t = 30)]
    python_runs: usize,
    /// Runs of each statistics protocol.
    #[arg(long, default_value_t = 5)]
    protocol_runs: usize,
    /// Runs of each matrix product.
    #[arg(long, default_value_t = 5)]
    matrix_runs: usize,
    /// Items per party of the largest DH PSI (SetIntersectionSize).
    #[arg(long, default_value_t = 1 << 20)]
    psi_items: usize,
    /// Items per party of the largest OT PSI (two-party SetIntersection); `--psi-items` if not
    /// given. 2^24 needs larger node limits (`--node-env`, docs/protocols.md).
    #[arg(long)]
    psi_ot_items: Option<usize>,
    /// More environment of every node, `KEY=VALUE` (e.g. `FSC_MAX_PENDING_CHUNK_BYTES=2000000000`).
    #[arg(long, value_parser = env_pair)]
    node_env: Vec<(String, String)>,
    /// Sums timed per many-party federation (a fifth of them for 50 parties).
    #[arg(long, default_value_t = 50)]
    parties_runs: usize,
    /// Runs of each microprotocol through the unmodified client, at fsc and at the original.
    #[arg(long, default_value_t = 5)]
    compare_runs: usize,
    /// Sections to leave out, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    skip: Vec<Section>,
    /// Rows per party of the datasets section (StatisticsUnivariate from CSV and Parquet beside
    /// JSON).
    #[arg(long, default_value_t = 1_000_000)]
    dataset_rows: usize,
    /// Rows per party of the `postgres` section (StatisticsContingency read from PostgreSQL);
    /// the issue's figure is at 10,000,000.
    #[arg(long, default_value_t = 1_000_000)]
    postgres_rows: usize,
    /// Also time the latency and throughput sums in the original's fixed point (`digits_after`
    /// 12), after the exact default, to see what the exact sum's wider messages cost.
    #[arg(long)]
    fixed_point: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also time StatisticsContingency with given categories without and with `dp`, interleaved.
    #[arg(long)]
    dp: bool,
    /// Pairs per party of the `--dp` contingency tables.
    #[arg(long, default_value_t = 100_000)]
    contingency_pairs: usize,
    /// Listen (nodes' APIs, brokers, the original's servers) only on ports PORT_BASE to
    /// PORT_BASE + 99, to run beside other federations; by default on ports the system picks.
    #[arg(long)]
    port_base: Option<u16>,
}

#[tokio::main]
async fn main() {
    let Args {
        latency_runs,
        batch,
        python_runs,
        protocol_runs,
        matrix_runs,
        psi_items,
        psi_ot_items,
        node_env,
        parties_runs,
        compare_runs,
        skip,
        json,
        port_base,
        fixed_point,
        dataset_rows,
        postgres_rows,
        dp,
        contingency_pairs,
    } = clap::Parser::parse();
    if let Some(base) = port_base {
        use_ports(base, PORT_SPAN);
    }
    let run = |section: Section| !skip.contains(&section);

    let mut cluster = Cluster::start_with(ClusterOptions {
        parties: 3,
        env: node_env,
        ..Default::default()
    })
    .await;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("fsc-bench: 3 nodes + nats-server on loopback, {cores} cores");
    let urls: Vec<&str> = cluster.nodes.iter().map(|n| n.url.as_str()).collect();
    println!("  broker {}, nodes {}", cluster.broker.url(), urls.join(" "));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    record(
        "machine",
        json!({"cores": cores, "cpu": cpu, "started_at": started_at, "fsc": env!("CARGO_PKG_VERSION")}),
    );
    println!("idle RSS (MB): {}", rss_line(&cluster));
    if run(Section::Python) {
        python_tutorial(&cluster, python_runs).await;
    }
    if run(Section::Compare) {
        compare_protocols(&cluster, compare_runs).await;
    }
    let modes: &[SumMode] = if fixed_point {
        &[SumMode::Exact, SumMode::FixedPoint]
    } else {
        &[SumMode::Exact]
    };
    if run(Section::Latency) {
        for mode in modes {
            latency(&cluster, latency_runs, *mode).await;
        }
    }
    if run(Section::Throughput) {
        for mode in modes {
            throughput(&cluster, batch, *mode).await;
        }
        println!("RSS after {batch} finished computations (MB): {}", rss_line(&cluster));
    }
    if run(Section::Protocols) {
        protocols(&cluster, protocol_runs, run(Section::Million)).await;
        if dp {
            dp_contingency(&cluster, protocol_runs, contingency_pairs).await;
        }
    }
    if run(Section::Matrix) {
        products(&cluster, matrix_runs).await;
        println!("RSS after the products (MB): {}", rss_line(&cluster));
    }
    if run(Section::Psi) {
        psi::run(&cluster, psi_ot_items.unwrap_or(psi_items), psi_items).await;
    }
    if run(Section::Datasets) {
        datasets(&mut cluster, protocol_runs, dataset_rows).await;
    }
    if run(Section::Postgres) {
        scale::postgres_contingency(&mut cluster, protocol_runs, postgres_rows).await;
    }
    if run(Section::PsiCsv) {
        scale::psi_csv(&mut cluster, protocol_runs, psi_items).await;
    }
    if run(Section::Parties) {
        drop(cluster);
        for parties in [10, 20, 50] {
            many_parties(parties, if parties > 20 { parties_runs / 5 } else { parties_runs }).await;
        }
    }
    if let Some(path) = json {
        let report = Value::Object(REPORT.lock().expect("the report").clone());
        let text = serde_json::to_string_pretty(&report).expect("JSON values serialise");
        std::fs::write(&path, text + "\n").unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        println!("figures written to {}", path.display());
    }
}

/// What the nodes have sent so far: messages committed to their outboxes, and the broker
/// messages that carried them (a bundle carries many; a lone message is one).
#[derive(Clone, Copy)]
struct Traffic {
    messages: f64,
    broker_messages: f64,
}

impl Traffic {
    async fn of(clients: &[fsc_client::Client]) -> Traffic {
        let mut traffic = Traffic {
            messages: 0.0,
            broker_messages: 0.0,
        };
        for client in clients {
            traffic.messages += client.metric(SENT).await.expect("metrics");
            traffic.broker_messages += client.metric(PUBLISHED).await.expect("metrics");
        }
        traffic
    }

    /// Messages and broker messages per sum since `before`, over `sums` sums.
    async fn per_sum(clients: &[fsc_client::Client], before: Traffic, sums: usize) -> Traffic {
        let now = Traffic::of(clients).await;
        Traffic {
            messages: (now.messages - before.messages) / sums as f64,
            broker_messages: (now.broker_messages - before.broker_messages) / sums as f64,
        }
    }
}

/// One federation of `parties` nodes: the latency of one sum over `runs` runs, the messages per
/// sum, then a batch of 100 sums until every node has finished all of them.
async fn many_parties(parties: usize, runs: usize) {
    const BATCH: usize = 100;
    let started = Instant::now();
    let cluster = Cluster::start(parties).await;
    println!(
        "{parties} parties: federation up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let clients: Vec<_> = cluster.nodes.iter().map(|n| n.client()).collect();
    for _ in 0..3 {
        one_sum(&cluster, &clients, SumMode::Exact).await;
    }
    let before = Traffic::of(&clients).await;
    let cpu_before = cpu_seconds(&cluster);
    let mut samples: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        samples.push(one_sum(&cluster, &clients, SumMode::Exact).await);
    }
    let cpu = cpu_per_run(&cluster, cpu_before, samples.len());
    let per_sum = Traffic::per_sum(&clients, before, samples.len()).await;
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "  latency of one {parties}-party SecureSum, {} runs: p50 {:.2} ms, p90 {:.2} ms, max {:.2} ms; \
         broker messages per sum {:.0} (n(n-1) = {}, 2(n-1) = {})",
        samples.len(),
        at(0.5),
        at(0.9),
        at(1.0),
        per_sum.broker_messages,
        parties * (parties - 1),
        2 * (parties - 1)
    );
    let (nodes, broker) = cpu.split_at(parties);
    println!(
        "  CPU per sum: nodes {:.2} ms in all ({:.3} ms each on average), nats-server {:.2} ms",
        nodes.iter().sum::<f64>(),
        nodes.iter().sum::<f64>() / parties as f64,
        broker[0]
    );
    let (ids, per_node, sums) = random_sums(&cluster, BATCH, parties as u64);
    let mut base = Vec::new();
    for c in &clients {
        base.push(c.metric(SUCCEEDED).await.unwrap());
    }
    let started = Instant::now();
    for result in join_all(clients.iter().zip(&per_node).map(|(c, items)| c.submit_all(items))).await {
        assert!(
            result
                .expect("batch submission")
                .iter()
                .all(|r| r["status"].is_string())
        );
    }
    loop {
        let mut least = f64::MAX;
        for (c, b) in clients.iter().zip(&base) {
            least = least.min(c.metric(SUCCEEDED).await.unwrap() - b);
            assert_eq!(c.metric(FAILED).await.unwrap(), 0.0, "a computation failed");
        }
        if least >= BATCH as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    fsc_e2e::assert_all_summed(&cluster, &ids, &sums).await;
    println!(
        "  batch of {BATCH} {parties}-party SecureSums finished at all nodes in {:.2} s = {:.0} sums/s, every sum right",
        elapsed.as_secs_f64(),
        BATCH as f64 / elapsed.as_secs_f64()
    );
    record_entry(
        "parties",
        json!({
            "parties": parties, "runs": samples.len(), "p50_ms": at(0.5), "p90_ms": at(0.9), "max_ms": at(1.0),
            "broker_messages_per_sum": per_sum.broker_messages, "batch": BATCH,
            "batch_per_second": BATCH as f64 / elapsed.as_secs_f64(),
        }),
    );
}

/// StatisticsUnivariate of 3 × `rows` floats from each node's CSV and Parquet datasets (README,
/// "Datasets"), beside the same values posted as JSON, in the same run: wall time from the three
/// submissions until succeeded at all three (median of `runs`), and the nodes' peak RSS over
/// each source's runs (the nodes restart before each source, so a peak is that source's own).
/// The last section on the main federation: its nodes restart with the datasets in their
/// node.toml.
async fn datasets(cluster: &mut Cluster, runs: usize, rows: usize) {
    let parties = cluster.parties.clone();
    let mut inputs = Vec::new();
    for (p, party) in parties.iter().enumerate() {
        let values: Vec<f64> = uniforms(p as u64 + 20).take(rows).map(|u| u * 1000.0 - 200.0).collect();
        let home = cluster.path().join(party);
        let mut text = String::with_capacity(rows * 20 + 6);
        text.push_str("value\n");
        for value in &values {
            text.push_str(&format!("{value}\n"));
        }
        std::fs::write(home.join("bench.csv"), text).expect("write the CSV file");
        write_parquet(&home.join("bench.parquet"), &values);
        cluster.append_config(
            party,
            "\n[[datasets]]\nname = \"bench\"\ncolumns = [{name = \"value\", type = \"number\"}]\ncsv = {path = \"bench.csv\"}\n\
             \n[[datasets]]\nname = \"bench_parquet\"\ncolumns = [{name = \"value\", type = \"number\"}]\nparquet = {path = \"bench.parquet\"}\n",
        );
        inputs.push(json!(values));
    }
    let named = |dataset: &str| vec![json!({"dataset": dataset, "column": "value"}); 3];
    let mut outputs = Vec::new();
    for (source, inputs) in [
        ("JSON", inputs),
        ("CSV", named("bench")),
        ("Parquet", named("bench_parquet")),
    ] {
        for party in &parties {
            cluster.node_mut(party).restart().await;
        }
        let mut samples = Vec::new();
        for _ in 0..runs {
            let (elapsed, result) = psi::timed(cluster, "StatisticsUnivariate", &Value::Null, &inputs).await;
            samples.push(elapsed);
            outputs.push(result);
        }
        samples.sort_by(f64::total_cmp);
        let peak = memory_line(cluster, "VmHWM:");
        println!(
            "StatisticsUnivariate, 3 parties x {rows} floats from {source}: median {:.3} s over {runs} runs (min {:.3}, max {:.3}); peak RSS (MB): {peak}",
            samples[samples.len() / 2],
            samples[0],
            samples[samples.len() - 1]
        );
        record_entry(
            "datasets",
            json!({"source": source, "rows": rows, "samples_s": samples, "peak_rss_mb": peak}),
        );
    }
    assert!(
        outputs.windows(2).all(|w| w[0] == w[1]),
        "CSV, Parquet and JSON give different results"
    );
}

/// `values` as a Parquet file of one DOUBLE column `value`, Snappy-compressed, in row groups of
/// 2^20 rows (as a data warehouse's export would be).
fn write_parquet(path: &std::path::Path, values: &[f64]) {
    use parquet::basic::Compression;
    use parquet::data_type::DoubleType;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;
    let schema = parquet::schema::parser::parse_message_type("message bench { REQUIRED DOUBLE value; }")
        .expect("the schema parses");
    let properties = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let file = std::fs::File::create(path).expect("create the Parquet file");
    let mut writer = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(properties)).expect("a Parquet writer");
    for group_values in values.chunks(1 << 20) {
        let mut group = writer.next_row_group().expect("a row group");
        let mut column = group.next_column().expect("the column").expect("one column");
        column
            .typed::<DoubleType>()
            .write_batch(group_values, None, None)
            .expect("write the values");
        column.close().expect("close the column");
        group.close().expect("close the row group");
    }
    writer.close().expect("close the Parquet file");
}

/// Uniform pseudo-random numbers in [0, 1), reproducible (a 64-bit LCG's top 53 bits).
fn uniforms(seed: u64) -> impl Iterator<Item = f64> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    std::iter::repeat_with(move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// Pairs `[r<i>, c<j>]` of a 20 × 20 table, uniform, for party `party`.
fn table_pairs(party: u64, n: usize) -> Value {
    let mut u = uniforms(party + 10);
    let cells: Vec<_> = (0..n)
        .map(|_| {
            json!([
                format!("r{}", (u.next().unwrap() * 20.0) as u32),
                format!("c{}", (u.next().unwrap() * 20.0) as u32)
            ])
        })
        .collect();
    json!(cells)
}

/// StatisticsContingency over a given 20 × 20 table without and with `dp`, runs interleaved so
/// that both see the same machine; the medians and their ratio.
async fn dp_contingency(cluster: &Cluster, runs: usize, pairs: usize) {
    let names = |prefix: &str| (0..20).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
    let plain = json!({"rows": names("r"), "columns": names("c")});
    let mut noisy = plain.clone();
    noisy["dp"] = json!({"rho": 0.125});
    let inputs: Vec<Value> = (0..3).map(|p| table_pairs(p, pairs)).collect();
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        // psi::timed: one computation at every party, from the submissions until all have it.
        without.push(psi::timed(cluster, "StatisticsContingency", &plain, &inputs).await.0);
        let (elapsed, result) = psi::timed(cluster, "StatisticsContingency", &noisy, &inputs).await;
        assert_eq!(result["dp"]["mechanism"], "discrete_gaussian");
        with.push(elapsed);
    }
    let median = |samples: &mut Vec<f64>| {
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
    };
    let (a, b) = (median(&mut without), median(&mut with));
    println!(
        "StatisticsContingency, 3 parties x {pairs} pairs over a given 20 x 20 table: without dp median {a:.3} s, with dp (rho 0.125) {b:.3} s over {runs} runs each: {:.2}x",
        b / a
    );
    record(
        "dp_contingency",
        json!({"parties": 3, "pairs": pairs, "cells": 400, "runs": runs, "without_dp_median_s": a,
               "with_dp_median_s": b, "ratio": b / a, "without_s": without, "with_s": with}),
    );
}

async fn protocols(cluster: &Cluster, runs: usize, million: bool) {
    let floats = |party: u64, n: usize| json!(uniforms(party).take(n).map(|u| u * 1000.0 - 200.0).collect::<Vec<_>>());
    let pairs = table_pairs;
    let mut scenarios: Vec<(&str, &str, usize, Vec<serde_json::Value>)> = vec![
        (
            "SecureMedian",
            "floats",
            1_000,
            (0..3).map(|p| floats(p, 1_000)).collect(),
        ),
        (
            "StatisticsUnivariate",
            "floats",
            10_000,
            (0..3).map(|p| floats(p, 10_000)).collect(),
        ),
        (
            "StatisticsContingency",
            "pairs over 20 x 20",
            100_000,
            (0..3).map(|p| pairs(p, 100_000)).collect(),
        ),
    ];
    if million {
        scenarios.push((
            "StatisticsUnivariate",
            "floats",
            1_000_000,
            (0..3).map(|p| floats(p, 1_000_000)).collect(),
        ));
    }
    for (microprotocol, what, size, inputs) in scenarios {
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(psi::timed(cluster, microprotocol, &Value::Null, &inputs).await.0);
        }
        samples.sort_by(f64::total_cmp);
        println!(
            "{microprotocol}, 3 parties x {size} {what}: median {:.3} s over {runs} runs (min {:.3}, max {:.3})",
            samples[samples.len() / 2],
            samples[0],
            samples[samples.len() - 1]
        );
        record_entry(
            "protocols",
            json!({"microprotocol": microprotocol, "parties": 3, "size": size, "what": what, "runs": runs,
                   "median_s": samples[samples.len() / 2], "min_s": samples[0], "max_s": samples[samples.len() - 1]}),
        );
    }
}

/// A `rows`×`cols` matrix of uniform(−1, 1) doubles, as the reference's `[M]`.
fn random_matrix(rng: &mut ChaCha20Rng, rows: usize, cols: usize) -> Vec<Vec<f64>> {
    (0..rows)
        .map(|_| {
            (0..cols)
                .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
                .collect()
        })
        .collect()
}

fn plain_product(x: &[Vec<f64>], y: &[Vec<f64>]) -> Vec<Vec<f64>> {
    x.iter()
        .map(|row| {
            (0..y[0].len())
                .map(|j| row.iter().zip(y).map(|(a, y_row)| a * y_row[j]).sum())
                .collect()
        })
        .collect()
}

/// The products of fsc-bench's header, each `runs` times: median wall time, the nodes' CPU time
/// per run, and the largest relative deviation from a plaintext f64 product (from β, for OLS).
async fn products(cluster: &Cluster, runs: usize) {
    let mut rng = ChaCha20Rng::seed_from_u64(20241124);
    for (microprotocol, p, n, q) in [
        // The original's recorded figure: 50×50·50×50 in 0.2 s (vector large_secure_matrix_multiplication_2p_50x50).
        ("SecureMatrixMultiplication", 50, 50, 50),
        ("SecureMatrixMultiplication", 100, 100, 100),
        ("SecureMatrixMultiplication", 1000, 1000, 10),
        ("StatisticsRegressionOLSVertical", 100_000, 10, 1),
    ] {
        let (inputs, want) = if microprotocol == "SecureMatrixMultiplication" {
            let (x, y) = (random_matrix(&mut rng, p, n), random_matrix(&mut rng, n, q));
            let want = plain_product(&x, &y);
            ([json!([x]), json!([y])], want)
        } else {
            // y = X·(1, 2, …, 10), so the deviation from β measures precision alone.
            let x = random_matrix(&mut rng, p, n);
            let y: Vec<f64> = x
                .iter()
                .map(|row| row.iter().enumerate().map(|(j, v)| v * (j + 1) as f64).sum::<f64>())
                .collect();
            let beta = (1..=n).map(|j| vec![j as f64]).collect();
            ([json!([x]), json!([y])], beta)
        };
        let clients = [cluster.node("alice").client(), cluster.node("bob").client()];
        let mut times = Vec::new();
        let mut deviation = 0.0f64;
        let cpu_before = cpu_seconds(cluster);
        for _ in 0..runs {
            let id = uuid::Uuid::new_v4();
            let started = Instant::now();
            let submits = clients.iter().zip(&inputs).map(|(client, input)| {
                let request =
                    json!({"id": id, "microprotocol": microprotocol, "parties": ["alice", "bob"], "input": input});
                async move { client.submit(&request).await }
            });
            for answer in join_all(submits).await {
                let answer = answer.expect("submit");
                assert_eq!(answer.status.as_u16(), 202, "{}", answer.body);
            }
            let views = join_all(clients.iter().map(|c| c.wait_final(id, Duration::from_secs(120)))).await;
            times.push(started.elapsed().as_secs_f64());
            for view in views {
                let view = view.expect("read");
                assert_eq!(view["status"], "succeeded", "{view}");
                let key = if microprotocol == "SecureMatrixMultiplication" {
                    "product"
                } else {
                    "mle"
                };
                let got: Vec<Vec<f64>> =
                    serde_json::from_value(view["output"]["result"][key].clone()).expect("a matrix");
                for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
                    deviation = deviation.max((g - w).abs() / w.abs().max(1.0));
                }
            }
        }
        let cpu: Vec<f64> = cpu_per_run(cluster, cpu_before, runs)
            .iter()
            .map(|ms| ms / 1000.0)
            .collect();
        times.sort_by(f64::total_cmp);
        let shape = if microprotocol == "SecureMatrixMultiplication" {
            format!("{p}×{n}·{n}×{q}")
        } else {
            format!("X {p}×{n}, y {p}")
        };
        println!(
            "{microprotocol} {shape} (alice, bob; carol helps), {runs} runs: median {:.3} s, min {:.3} s, max {:.3} s; \
             CPU per run: alice {:.2} s, bob {:.2} s, carol {:.2} s, nats-server {:.2} s; \
             largest deviation from the plaintext answer {deviation:.1e}",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
            cpu[0],
            cpu[1],
            cpu[2],
            cpu[3],
        );
        record_entry(
            "matrix",
            json!({"microprotocol": microprotocol, "shape": shape, "runs": runs, "median_s": times[times.len() / 2],
                   "min_s": times[0], "max_s": times[times.len() - 1], "deviation": deviation}),
        );
    }
}

/// The parameters of the timed 3-party sums.
#[derive(Debug, Clone, Copy)]
enum SumMode {
    /// None: the exact sum, `/v1`'s default.
    Exact,
    /// The original's fixed point.
    FixedPoint,
}

impl SumMode {
    fn label(self) -> &'static str {
        match self {
            SumMode::Exact => "exact",
            SumMode::FixedPoint => "digits_after 12",
        }
    }

    /// The JSON section of the figures: the exact sums keep the names `scripts/bench-plots` reads.
    fn section(self, name: &str) -> String {
        match self {
            SumMode::Exact => name.to_string(),
            SumMode::FixedPoint => format!("{name}_fixed_point"),
        }
    }

    fn apply(self, request: &mut Value) {
        if let SumMode::FixedPoint = self {
            request["parameters"] = json!({"digits_after": 12});
        }
    }
}

async fn latency(cluster: &Cluster, runs: usize, mode: SumMode) {
    let clients: Vec<_> = cluster.nodes.iter().map(|n| n.client()).collect();
    // Warm up connections and code paths.
    for _ in 0..20 {
        one_sum(cluster, &clients, mode).await;
    }
    let before = Traffic::of(&clients).await;
    let cpu_before = cpu_seconds(cluster);
    let mut samples: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        samples.push(one_sum(cluster, &clients, mode).await);
    }
    let cpu = cpu_per_run(cluster, cpu_before, runs);
    let per_sum = Traffic::per_sum(&clients, before, runs).await;
    let in_order: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    record(
        &mode.section("latency"),
        json!({
            "runs": runs, "samples_ms": in_order, "p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99),
            "max_ms": at(1.0), "cpu_ms_per_sum": cpu, "broker_messages_per_sum": per_sum.broker_messages,
        }),
    );
    println!(
        "latency of one 3-party SecureSum ({}), submit at all three -> succeeded at all three, {runs} runs: \
         p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; broker messages per sum {:.0}",
        mode.label(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
        per_sum.broker_messages
    );
    println!(
        "  CPU per sum: nodes {:.3} + {:.3} + {:.3} ms, nats-server {:.3} ms; total {:.3} ms (/proc, 10 ms ticks)",
        cpu[0],
        cpu[1],
        cpu[2],
        cpu[3],
        cpu.iter().sum::<f64>()
    );
}

async fn one_sum(cluster: &Cluster, clients: &[fsc_client::Client], mode: SumMode) -> Duration {
    let id = uuid::Uuid::new_v4();
    let started = Instant::now();
    let submits = clients.iter().enumerate().map(|(i, c)| {
        let mut request = cluster.sum_request(id, json!(i));
        mode.apply(&mut request);
        async move { c.submit(&request).await }
    });
    for answer in join_all(submits).await {
        assert_eq!(answer.expect("submit").status.as_u16(), 202);
    }
    let views = join_all(clients.iter().map(|c| c.wait_final(id, Duration::from_secs(30)))).await;
    let elapsed = started.elapsed();
    for view in views {
        assert_eq!(view.expect("read")["status"], "succeeded");
    }
    elapsed
}

async fn throughput(cluster: &Cluster, n: usize, mode: SumMode) {
    let (_, mut per_node, _) = random_sums(cluster, n, 42);
    per_node.iter_mut().flatten().for_each(|request| mode.apply(request));
    let clients: Vec<_> = cluster.nodes.iter().map(|n| n.client()).collect();
    let mut base = Vec::new();
    for c in &clients {
        base.push(c.metric(SUCCEEDED).await.unwrap());
    }
    let traffic_before = Traffic::of(&clients).await;
    let cpu_before = cpu_seconds(cluster);
    let started = Instant::now();
    let submitting = clients.iter().zip(&per_node).map(|(client, items)| async move {
        for chunk in items.chunks(1000) {
            let results = client.submit_all(chunk).await.expect("batch submission");
            assert!(
                results.iter().all(|r| r["status"].is_string()),
                "a batch item was rejected"
            );
        }
    });
    let progress = async {
        let mut last_report = Instant::now();
        loop {
            let mut done = Vec::new();
            for (c, b) in clients.iter().zip(&base) {
                done.push(c.metric(SUCCEEDED).await.unwrap() - b);
                assert_eq!(c.metric(FAILED).await.unwrap(), 0.0, "a computation failed");
            }
            let least = done.iter().cloned().fold(f64::MAX, f64::min);
            if least >= n as f64 {
                return;
            }
            if last_report.elapsed() > Duration::from_secs(5) {
                println!(
                    "  ... {:.1} s: finished per node {done:?}",
                    started.elapsed().as_secs_f64()
                );
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let submitted_at = async {
        join_all(submitting).await;
        started.elapsed()
    };
    let (submitted, ()) = tokio::join!(submitted_at, progress);
    let elapsed = started.elapsed();
    let cpu: Vec<f64> = cpu_seconds(cluster)
        .iter()
        .zip(cpu_before)
        .map(|(after, before)| after - before)
        .collect();
    println!(
        "throughput: {n} 3-party SecureSums ({}, batches of 1000 per node) finished at all three nodes in {:.2} s \
         = {:.0} computations/s (all submitted after {:.2} s)",
        mode.label(),
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        submitted.as_secs_f64()
    );
    // CPU time per computation is steadier than wall time on a shared machine.
    let per = |seconds: f64| seconds * 1000.0 / n as f64;
    println!(
        "  CPU per computation: nodes {:.3} + {:.3} + {:.3} ms, nats-server {:.3} ms; total {:.3} ms",
        per(cpu[0]),
        per(cpu[1]),
        per(cpu[2]),
        per(cpu[3]),
        per(cpu.iter().sum())
    );
    let per_sum = Traffic::per_sum(&clients, traffic_before, n).await;
    println!(
        "  messages per computation {:.1}, in {:.3} broker messages (bundled)",
        per_sum.messages, per_sum.broker_messages
    );
    record(
        &mode.section("throughput"),
        json!({
            "sums": n, "parties": 3, "seconds": elapsed.as_secs_f64(), "per_second": n as f64 / elapsed.as_secs_f64(),
            "cpu_ms_per_sum": cpu.iter().map(|s| per(*s)).collect::<Vec<_>>(),
            "messages_per_sum": per_sum.messages, "broker_messages_per_sum": per_sum.broker_messages,
        }),
    );
}

/// Milliseconds of CPU per run since `before` ([`cpu_seconds`]), per process.
fn cpu_per_run(cluster: &Cluster, before: Vec<f64>, runs: usize) -> Vec<f64> {
    cpu_seconds(cluster)
        .iter()
        .zip(before)
        .map(|(after, before)| (after - before) * 1000.0 / runs as f64)
        .collect()
}

/// User plus system CPU seconds of the nodes and the broker, in that order.
fn cpu_seconds(cluster: &Cluster) -> Vec<f64> {
    let pids = cluster.nodes.iter().map(|n| n.pid()).chain([cluster.broker.pid()]);
    pids.map(|pid| {
        let stat = pid
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .unwrap_or_default();
        // Fields after the command name: state is field 3; utime and stime are fields 14 and 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        (ticks(14) + ticks(15)) / 100.0
    })
    .collect()
}

fn rss_line(cluster: &Cluster) -> String {
    memory_line(cluster, "VmRSS:")
}

/// Each node's memory by a field of /proc/PID/status (`VmRSS:` now, `VmHWM:` at its peak), MB.
fn memory_line(cluster: &Cluster, field: &str) -> String {
    cluster
        .nodes
        .iter()
        .map(|node| {
            let mb = node
                .pid()
                .and_then(|pid| status_kb(pid, field))
                .map_or("?".to_string(), |kb| format!("{:.1}", kb as f64 / 1024.0));
            format!("{} {mb}", node.id)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What `tutorial_timing.py` measured, in seconds.
struct TutorialTimes {
    /// Median of the tutorial runs.
    median: f64,
    /// With `paired`: the median of the client alone, and the median of each tutorial run less
    /// the floor run beside it.
    floor: Option<(f64, f64)>,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs `tutorial_timing.py` against `urls` (with `paired`: a floor run, the client alone, beside
/// each tutorial run).
fn time_tutorial(runs: usize, urls: &[String], paired: bool) -> Result<TutorialTimes, String> {
    let output = Command::new(repo().join(".tools/venv/bin/python"))
        .arg(repo().join("tests/python/tutorial_timing.py"))
        .args(paired.then_some("--paired"))
        .arg(runs.to_string())
        .args(urls)
        .output()
        .map_err(|e| format!("cannot run python: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or_default())
        .map_err(|_| format!("tutorial_timing.py failed: {}", String::from_utf8_lossy(&output.stderr)))?;
    for sums in report["sums"].as_array().expect("sums") {
        assert!(
            sums.as_array()
                .expect("a list")
                .iter()
                .all(|s| s.as_f64() == Some(85.0)),
            "wrong sums {sums}"
        );
    }
    let seconds = |key: &str| -> Vec<f64> {
        report[key]
            .as_array()
            .expect("a list of times")
            .iter()
            .filter_map(|t| t.as_f64())
            .collect()
    };
    let (times, floors) = (seconds("runs"), seconds("floor"));
    let floor = paired.then(|| {
        let above = times.iter().zip(&floors).map(|(t, f)| t - f).collect();
        (median(floors), median(above))
    });
    Ok(TutorialTimes {
        median: median(times),
        floor,
    })
}

/// The tutorial through the unmodified Python client: fsc against the original, same machine, same run.
async fn python_tutorial(cluster: &Cluster, runs: usize) {
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url.clone()).collect();
    let timings = tokio::task::spawn_blocking(move || time_tutorial(runs, &urls, true));
    let times = match timings.await.expect("timing task") {
        Ok(times) => times,
        Err(error) => return println!("python tutorial: skipped ({error})"),
    };
    let (ours, (floor, above)) = (times.median, times.floor.expect("paired runs time the floor"));
    println!(
        "  the client alone (the same 4 requests per party, no computation behind them) takes {:.1} ms: \
         the floor of any server measured through this client; fsc above it, median of {runs} paired runs \
         (a floor run beside each): {:+.1} ms",
        floor * 1000.0,
        above * 1000.0
    );
    match tokio::task::spawn_blocking(move || reference_tutorial(runs))
        .await
        .expect("timing task")
    {
        Ok(theirs) => {
            println!(
                "tutorial secure sum through the unmodified Python client (3 parties, clients in parallel threads), \
                 median of {runs} runs: fsc {:.1} ms, original {:.1} ms: fsc is {:.1}x faster \
                 (at most {:.1}x is possible through this client: original / client floor)",
                ours * 1000.0,
                theirs * 1000.0,
                theirs / ours,
                theirs / floor
            );
            record(
                "tutorial",
                json!({"runs": runs, "fsc_ms": ours * 1000.0, "original_ms": theirs * 1000.0,
                       "client_floor_ms": floor * 1000.0, "fsc_above_floor_ms": above * 1000.0}),
            );
        }
        Err(error) => {
            println!(
                "tutorial secure sum through the unmodified Python client, median of {runs} runs: fsc {:.1} ms \
                 (original not measured: {error})",
                ours * 1000.0
            );
            record(
                "tutorial",
                json!({"runs": runs, "fsc_ms": ours * 1000.0, "client_floor_ms": floor * 1000.0,
                       "fsc_above_floor_ms": above * 1000.0, "original": error}),
            );
        }
    }
}

/// Each of the 13 microprotocols through the unmodified client, on one recorded vector's inputs
/// (`tests/python/protocol_timing.py`), against fsc and against the original started here.
async fn compare_protocols(cluster: &Cluster, runs: usize) {
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url.clone()).collect();
    let ours = tokio::task::spawn_blocking(move || time_protocols(runs, &urls))
        .await
        .expect("timing task");
    let ours = match ours {
        Ok(ours) => ours,
        Err(error) => return println!("protocols through the unmodified client: skipped ({error})"),
    };
    let theirs = tokio::task::spawn_blocking(move || {
        let (_servers, urls, _scratch) = start_reference()?;
        time_protocols(runs, &urls)
    })
    .await
    .expect("timing task");
    if let Err(error) = &theirs {
        println!("  (the original not measured: {error})");
    }
    println!("each microprotocol through the unmodified Python client, median of {runs} runs (fsc | original):");
    let theirs = theirs.unwrap_or_default();
    for entry in ours {
        let name = entry["microprotocol"].as_str().unwrap_or_default().to_string();
        let other = theirs
            .iter()
            .find(|t| t["vector"] == entry["vector"])
            .cloned()
            .unwrap_or(Value::Null);
        let median_ms = |e: &Value| {
            let times: Vec<f64> = e["times"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64)
                .collect();
            (!times.is_empty()).then(|| median(times) * 1000.0)
        };
        let (fsc, original) = (median_ms(&entry), median_ms(&other));
        let shown = |ms: Option<f64>, e: &Value| {
            ms.map(|ms| format!("{ms:.1} ms"))
                .unwrap_or_else(|| format!("failed: {}", e["error"].as_str().unwrap_or("not run")))
        };
        println!(
            "  {name:<32} {} parties: {:>10} | {}",
            entry["parties"],
            shown(fsc, &entry),
            shown(original, &other)
        );
        record_entry(
            "compare",
            json!({"microprotocol": name, "vector": entry["vector"], "parties": entry["parties"], "runs": runs,
                   "fsc_ms": fsc, "original_ms": original, "fsc_times_s": entry["times"], "original_times_s": other["times"],
                   "fsc_error": entry.get("error"), "original_error": other.get("error")}),
        );
    }
}

/// Runs `protocol_timing.py` against `urls`: one entry per microprotocol.
fn time_protocols(runs: usize, urls: &[String]) -> Result<Vec<Value>, String> {
    let output = Command::new(repo().join(".tools/venv/bin/python"))
        .arg(repo().join("tests/python/protocol_timing.py"))
        .arg(runs.to_string())
        .arg(repo().join("vectors"))
        .args(urls)
        .output()
        .map_err(|e| format!("cannot run python: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(text.lines().last().unwrap_or_default())
        .map_err(|_| format!("protocol_timing.py failed: {}", String::from_utf8_lossy(&output.stderr)))?;
    Ok(report["protocols"].as_array().cloned().unwrap_or_default())
}

/// Starts three servers of the original implementation and times the tutorial against them.
fn reference_tutorial(runs: usize) -> Result<f64, String> {
    let (_servers, urls, _scratch) = start_reference()?;
    Ok(time_tutorial(runs, &urls, false)?.median)
}

/// Three servers of the original implementation (`scripts/setup-reference`) behind this
/// repository's front end (`tests/reference/fsc_http_wrapper.py`, or the one in
/// `$FSC_REFERENCE_DIR`), on free ports, answering: their guards (which kill them), URLs, and
/// the scratch directory they run in.
fn start_reference() -> Result<(Vec<KillOnDrop>, Vec<String>, tempfile::TempDir), String> {
    let python = repo().join(".tools/refvenv/bin/python");
    let reference = std::env::var_os("FSC_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("tests/reference"));
    let wrapper = reference.join("fsc_http_wrapper.py");
    if !python.is_file() || !wrapper.is_file() {
        return Err(format!("needs scripts/setup-reference and {}", wrapper.display()));
    }
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut servers = Vec::new();
    let mut urls = Vec::new();
    for port in free_ports(3) {
        // Started outside site-packages: the original depends on a `uuid` package that shadows the standard one there.
        let child = Command::new(&python)
            .arg(&wrapper)
            .arg(port.to_string())
            .current_dir(scratch.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        servers.push(KillOnDrop(child));
        urls.push(format!("http://127.0.0.1:{port}"));
    }
    let started = Instant::now();
    for url in &urls {
        while !answers_ok(&format!("{url}/representations")) {
            if started.elapsed() > Duration::from_secs(30) {
                return Err("the original's servers did not start".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok((servers, urls, scratch))
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plain HTTP/1.0 GET over a std TCP stream: is the answer a 200?
fn answers_ok(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some((authority, path)) = url.strip_prefix("http://").and_then(|r| r.split_once('/')) else {
        return false;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(authority) else {
        return false;
    };
    let mut answer = String::new();
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.split(' ').nth(1) == Some("200")
}
