//! Reading a CSV dataset: the file is opened when a submission names it and read record by
//! record (one record's buffer at a time, never the whole file), so the steward may replace it
//! between computations. Runs on a blocking thread. A numeric column kept as doubles is parsed
//! straight to them ([`super::double_from_text`]), without a JSON value per field.

use super::{Collector, DatasetError, UNAVAILABLE, bad_value, double_from_text, from_text};
use crate::config::datasets::CsvSource;
use std::fs::File;

fn open(dataset: &str, source: &CsvSource) -> Result<::csv::Reader<File>, DatasetError> {
    let file = File::open(&source.path).map_err(|e| {
        DatasetError::new(
            UNAVAILABLE,
            format!("the file of dataset {dataset:?} cannot be opened ({})", e.kind()),
        )
    })?;
    Ok(::csv::ReaderBuilder::new()
        .has_headers(source.header)
        .delimiter(source.delimiter.as_bytes()[0])
        .buffer_capacity(1 << 16)
        .from_reader(file))
}

/// A read error, without the csv crate's text (which may quote the record).
fn unreadable(dataset: &str, row: u64, error: &::csv::Error) -> DatasetError {
    let why = match error.kind() {
        ::csv::ErrorKind::Io(e) => format!("cannot be read ({})", e.kind()),
        ::csv::ErrorKind::Utf8 { .. } => "is not UTF-8".to_string(),
        ::csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("has {len} fields where the first record has {expected_len}")
        }
        _ => "cannot be parsed".to_string(),
    };
    DatasetError::new(super::BAD_VALUE, format!("row {row} of dataset {dataset:?} {why}"))
}

/// Reads the file into `collector`; rows are numbered from 1, the header not counted. `all`:
/// the dataset's columns in node.toml's order, which are the file's without a header.
pub(super) fn read(
    dataset: &str,
    source: &CsvSource,
    all: &[String],
    mut collector: Collector,
) -> Result<Collector, DatasetError> {
    let mut reader = open(dataset, source)?;
    // Where each wanted column is in a record.
    let positions: Vec<usize> = if source.header {
        let header = reader.headers().map_err(|e| unreadable(dataset, 0, &e))?.clone();
        collector
            .plan
            .columns
            .iter()
            .map(|(name, _)| {
                header.iter().position(|h| h.trim() == name).ok_or_else(|| {
                    DatasetError::new(
                        UNAVAILABLE,
                        format!("the file of dataset {dataset:?} has no column {name:?} in its header"),
                    )
                })
            })
            .collect::<Result<_, _>>()?
    } else {
        collector
            .plan
            .columns
            .iter()
            .map(|(name, _)| {
                all.iter()
                    .position(|c| c == name)
                    .expect("checked: a column of the dataset")
            })
            .collect()
    };
    let mut record = ::csv::StringRecord::new();
    let mut row = 0;
    loop {
        row += 1;
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(unreadable(dataset, row, &e)),
        }
        if collector.takes_doubles() {
            let text = record.get(positions[0]).unwrap_or("");
            if let Some(cell) = double_from_text(text, collector.plan.columns[0].1) {
                collector.push_double(row, cell)?;
                continue;
            }
        }
        let mut cells = Vec::with_capacity(positions.len());
        for (&position, (name, kind)) in positions.iter().zip(&collector.plan.columns) {
            let text = record.get(position).unwrap_or("");
            cells.push(from_text(text, *kind).map_err(|()| bad_value(dataset, row, name, *kind))?);
        }
        collector.push(row, cells)?;
    }
    Ok(collector)
}

/// The number of records (not counting a header).
pub(super) fn count(dataset: &str, source: &CsvSource) -> Result<u64, DatasetError> {
    let mut reader = open(dataset, source)?;
    let mut record = ::csv::ByteRecord::new();
    let mut rows = 0;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => rows += 1,
            Ok(false) => return Ok(rows),
            Err(e) => return Err(unreadable(dataset, rows + 1, &e)),
        }
    }
}
