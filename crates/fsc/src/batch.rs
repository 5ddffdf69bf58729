//! `fsc batch`: submits a file of computations and follows them to the end, for scripts.
//!
//! stdout gets one JSON line per item of the file, in file order, and nothing else: the item's
//! number (from 1), its `id`, its `status`, and its `output` (succeeded), `error` (failed) or
//! `problem` (rejected by the node). Progress goes to stderr: a bar on a terminal, elsewhere a
//! line every few seconds. The outcome (and so the exit code) says whether every item succeeded.

use crate::error::Error;
use crate::outcome::Outcome;
use fsc_client::Client;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Items per batch request when submitting a file.
const CHUNK: usize = 1000;
/// How often progress is reported when stderr is not a terminal.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Submits the computations in `file`, then (unless `no_wait`) waits up to `wait` for each.
pub async fn run(client: &Client, file: &Path, no_wait: bool, wait: Duration) -> Result<Outcome, Error> {
    let computations = read(file)?;
    let progress = Progress::start("submitted", computations.len());
    let mut answers = Vec::with_capacity(computations.len());
    for chunk in computations.chunks(CHUNK) {
        let results = client.submit_all(chunk).await?;
        progress.add(results.len());
        answers.extend(results);
    }
    progress.finish();

    let accepted = answers.iter().filter(|a| accepted_id(a).is_some()).count();
    let progress = Progress::start("finished", if no_wait { 0 } else { accepted });
    let mut finals: HashMap<Uuid, Value> = HashMap::new();
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    for (i, (item, answer)) in computations.iter().zip(&answers).enumerate() {
        let mut line = json!({"item": i + 1});
        let status = match accepted_id(answer) {
            None => {
                line["id"] = item.get("id").cloned().unwrap_or(Value::Null);
                line["problem"] = answer["error"].clone();
                "rejected"
            }
            Some(id) => {
                line["id"] = json!(id);
                let view = if no_wait {
                    answer.clone()
                } else if let Some(view) = finals.get(&id) {
                    view.clone()
                } else {
                    let view = client.wait_final(id, wait).await?;
                    progress.add(1);
                    finals.insert(id, view.clone());
                    view
                };
                for field in ["output", "error"] {
                    if let Some(value) = view.get(field).filter(|v| !v.is_null()) {
                        line[field] = value.clone();
                    }
                }
                match view["status"].as_str() {
                    Some("succeeded") => "succeeded",
                    Some("failed") => "failed",
                    Some("running") => "running",
                    _ => "pending",
                }
            }
        };
        line["status"] = json!(status);
        *counts.entry(status).or_default() += 1;
        progress.print(&line.to_string());
    }
    progress.finish();
    let count = |status| counts.get(status).copied().unwrap_or(0);
    let (failed, rejected) = (count("failed"), count("rejected"));
    let unfinished = count("pending") + count("running");
    eprintln!(
        "{} succeeded, {failed} failed, {rejected} rejected{}",
        count("succeeded"),
        if no_wait {
            format!(", {unfinished} submitted")
        } else {
            format!(", {unfinished} not final")
        }
    );
    Ok(if failed + rejected > 0 {
        Outcome::Failed
    } else if unfinished > 0 && !no_wait {
        Outcome::NotFinal
    } else {
        Outcome::Done
    })
}

/// The id of an accepted item's answer; `None` if the node rejected it.
fn accepted_id(answer: &Value) -> Option<Uuid> {
    answer["id"].as_str().and_then(|id| Uuid::parse_str(id).ok())
}

/// The computations of a batch file: `{"computations": [...]}`, or one JSON object per line (a
/// file of one line is one computation).
fn read(file: &Path) -> Result<Vec<Value>, Error> {
    let text = std::fs::read_to_string(file)?;
    if let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(&text) {
        if let Some(computations) = object.remove("computations") {
            return match computations {
                Value::Array(items) => Ok(items),
                _ => Err(Error::Invalid("\"computations\" must be a list".into())),
            };
        }
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| Error::Invalid(format!("{} line {}: not JSON: {e}", file.display(), i + 1)))
        })
        .collect()
}

/// Progress of one phase on stderr: a bar on a terminal; elsewhere (a log file, CI) a line every
/// few seconds, so a long wait still shows signs of life.
struct Progress {
    bar: Option<ProgressBar>,
    done: Arc<AtomicU64>,
    ticker: Option<tokio::task::JoinHandle<()>>,
    what: &'static str,
    total: usize,
}

impl Progress {
    fn start(what: &'static str, total: usize) -> Progress {
        let done = Arc::new(AtomicU64::new(0));
        let (mut bar, mut ticker) = (None, None);
        if total == 0 {
            // Nothing to show.
        } else if std::io::stderr().is_terminal() {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
                    .expect("a valid template"),
            );
            b.set_message(what);
            bar = Some(b);
        } else {
            let done = done.clone();
            ticker = Some(tokio::spawn(async move {
                let mut every = tokio::time::interval(PROGRESS_EVERY);
                every.tick().await;
                loop {
                    every.tick().await;
                    eprintln!("{}/{total} {what}", done.load(Ordering::Relaxed));
                }
            }));
        }
        Progress {
            bar,
            done,
            ticker,
            what,
            total,
        }
    }

    fn add(&self, n: usize) {
        self.done.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
    }

    /// Prints a result line on stdout, without tearing the bar.
    fn print(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
        if let Some(ticker) = &self.ticker {
            ticker.abort();
            eprintln!("{}/{} {}", self.done.load(Ordering::Relaxed), self.total, self.what);
        }
    }
}
