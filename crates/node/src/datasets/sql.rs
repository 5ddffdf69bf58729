//! Reading an SQL dataset: the steward's query, run when a submission names the dataset, its
//! rows taken one by one as the database sends them (never the whole result at once).
//!
//! SQLite files are opened read-only through rusqlite on a blocking thread (the same SQLite
//! library as the store's). PostgreSQL is read through sqlx's async connection, one connection
//! per read, with the password from a file or an environment variable read at that moment, over
//! TLS as the URL's `sslmode` and `sslrootcert` ask (sqlx reads them, as libpq does).
//! A database's own error text can quote data (a failed cast names the value), so errors keep
//! only its SQLSTATE code.

use super::{Collector, DatasetError, UNAVAILABLE, bad_value, blocking, from_text};
use crate::config::datasets::{ColumnType, Database, SqlSource};
use futures::TryStreamExt;
use serde_json::{Number, Value};
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Connection, Row};
use std::str::FromStr;
use std::time::Duration;

/// How long connecting to a database may take before the dataset counts as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the query's rows into `collector`; rows are numbered from 1.
pub(super) async fn read(dataset: &str, source: &SqlSource, collector: Collector) -> Result<Collector, DatasetError> {
    match source.database() {
        Database::Sqlite(path) => {
            let (dataset, query) = (dataset.to_string(), source.query.clone());
            blocking(move || read_sqlite(&dataset, &path, &query, collector)).await
        }
        Database::Postgres(url) => read_postgres(dataset, source, &url, collector).await,
    }
}

/// The number of rows the query gives.
pub(super) async fn count(dataset: &str, source: &SqlSource) -> Result<u64, DatasetError> {
    let query = format!(
        "SELECT count(*) FROM ({}) AS fsc_dataset",
        source.query.trim().trim_end_matches(';')
    );
    match source.database() {
        Database::Sqlite(path) => {
            let dataset = dataset.to_string();
            blocking(move || {
                let conn = open_sqlite(&dataset, &path)?;
                conn.query_row(&query, [], |row| row.get::<_, i64>(0))
                    .map(|n| n as u64)
                    .map_err(|e| sqlite_error(&dataset, &e))
            })
            .await
        }
        Database::Postgres(url) => {
            let mut conn = connect(dataset, source, &url).await?;
            let row = sqlx::query(&query)
                .fetch_one(&mut conn)
                .await
                .map_err(|e| pg_error(dataset, &e))?;
            let rows: i64 = row.try_get(0).map_err(|e| pg_error(dataset, &e))?;
            Ok(rows as u64)
        }
    }
}

fn open_sqlite(dataset: &str, path: &std::path::Path) -> Result<rusqlite::Connection, DatasetError> {
    use rusqlite::OpenFlags;
    // Read-only, and never created: a missing file is an unavailable dataset, not an empty one.
    rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| sqlite_error(dataset, &e))
}

fn sqlite_error(dataset: &str, error: &rusqlite::Error) -> DatasetError {
    let why = match error {
        rusqlite::Error::SqliteFailure(e, _) => format!("SQLite error {:?}", e.code),
        _ => "SQLite error".to_string(),
    };
    DatasetError::new(
        UNAVAILABLE,
        format!("the database of dataset {dataset:?} cannot be read ({why})"),
    )
}

fn read_sqlite(
    dataset: &str,
    path: &std::path::Path,
    query: &str,
    mut collector: Collector,
) -> Result<Collector, DatasetError> {
    use rusqlite::types::ValueRef;
    let conn = open_sqlite(dataset, path)?;
    let mut statement = conn.prepare(query).map_err(|e| sqlite_error(dataset, &e))?;
    let columns = collector.plan.columns.clone();
    let indices = columns
        .iter()
        .map(|(name, _)| statement.column_index(name).map_err(|_| no_column(dataset, name)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = statement.query([]).map_err(|e| sqlite_error(dataset, &e))?;
    let mut number = 0;
    while let Some(row) = rows.next().map_err(|e| sqlite_error(dataset, &e))? {
        number += 1;
        let mut cells = Vec::with_capacity(indices.len());
        for (&index, (name, kind)) in indices.iter().zip(&columns) {
            let value = row.get_ref(index).map_err(|e| sqlite_error(dataset, &e))?;
            let bad = || bad_value(dataset, number, name, *kind);
            let cell = match (value, kind) {
                (ValueRef::Null, _) => None,
                (ValueRef::Integer(i), ColumnType::Number | ColumnType::Integer) => Some(Value::Number(i.into())),
                (ValueRef::Real(f), ColumnType::Number) => Some(Value::Number(
                    Number::from_f64(f).filter(|_| f.is_finite()).ok_or_else(bad)?,
                )),
                // A value stored as text (a table imported from a file) is read as a CSV field.
                (ValueRef::Text(text), _) => {
                    from_text(std::str::from_utf8(text).map_err(|_| bad())?, *kind).map_err(|()| bad())?
                }
                _ => return Err(bad()),
            };
            cells.push(cell);
        }
        collector.push(number, cells)?;
    }
    Ok(collector)
}

fn no_column(dataset: &str, name: &str) -> DatasetError {
    DatasetError::new(
        UNAVAILABLE,
        format!("the query of dataset {dataset:?} gives no column {name:?}"),
    )
}

fn pg_error(dataset: &str, error: &sqlx::Error) -> DatasetError {
    let why = match error {
        sqlx::Error::Database(e) => format!(
            "the database refused (SQLSTATE {})",
            e.code().as_deref().unwrap_or("unknown")
        ),
        sqlx::Error::Io(e) => format!("the database cannot be reached ({})", e.kind()),
        sqlx::Error::ColumnNotFound(name) => return no_column(dataset, name),
        sqlx::Error::Configuration(_) => "its sql.url is not a PostgreSQL URL".to_string(),
        _ => "the database failed".to_string(),
    };
    DatasetError::new(UNAVAILABLE, format!("dataset {dataset:?}: {why}"))
}

/// The password named by the source, read now (the steward may rotate it).
fn password(dataset: &str, source: &SqlSource) -> Result<Option<String>, DatasetError> {
    let unavailable = |what: &str| DatasetError::new(UNAVAILABLE, format!("dataset {dataset:?}: {what}"));
    if let Some(file) = &source.password_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| unavailable(&format!("its password_file cannot be read ({})", e.kind())))?;
        return Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()));
    }
    if let Some(variable) = &source.password_env {
        return std::env::var(variable)
            .map(Some)
            .map_err(|_| unavailable(&format!("its password_env {variable} is not set")));
    }
    Ok(None)
}

async fn connect(dataset: &str, source: &SqlSource, url: &str) -> Result<sqlx::PgConnection, DatasetError> {
    let mut options = PgConnectOptions::from_str(url).map_err(|e| pg_error(dataset, &e))?;
    if let Some(password) = password(dataset, source)? {
        options = options.password(&password);
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(&options)).await {
        Ok(connection) => connection.map_err(|e| pg_error(dataset, &e)),
        Err(_) => Err(DatasetError::new(
            UNAVAILABLE,
            format!(
                "dataset {dataset:?}: the database did not answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        )),
    }
}

async fn read_postgres(
    dataset: &str,
    source: &SqlSource,
    url: &str,
    mut collector: Collector,
) -> Result<Collector, DatasetError> {
    let mut conn = connect(dataset, source, url).await?;
    let columns = collector.plan.columns.clone();
    let mut rows = sqlx::query(&source.query).fetch(&mut conn);
    let mut number = 0;
    while let Some(row) = rows.try_next().await.map_err(|e| pg_error(dataset, &e))? {
        number += 1;
        if number == 1 {
            for (name, _) in &columns {
                row.try_column(name.as_str()).map_err(|_| no_column(dataset, name))?;
            }
        }
        let mut cells = Vec::with_capacity(columns.len());
        for (name, kind) in &columns {
            cells.push(pg_cell(&row, name, *kind).ok_or_else(|| bad_value(dataset, number, name, *kind))?);
        }
        collector.push(number, cells)?;
    }
    Ok(collector)
}

/// Column `name` of `row` as a value of `kind`: `Some(None)` if NULL, `None` if its SQL type
/// does not hold a `kind` (or the value is not finite).
fn pg_cell(row: &PgRow, name: &str, kind: ColumnType) -> Option<Option<Value>> {
    let int = || {
        row.try_get::<Option<i64>, _>(name)
            .or_else(|_| row.try_get::<Option<i32>, _>(name).map(|v| v.map(i64::from)))
            .or_else(|_| row.try_get::<Option<i16>, _>(name).map(|v| v.map(i64::from)))
            .ok()
            .map(|v| v.map(|i| Value::Number(i.into())))
    };
    match kind {
        ColumnType::Integer => int(),
        ColumnType::Number => {
            let float = row
                .try_get::<Option<f64>, _>(name)
                .or_else(|_| row.try_get::<Option<f32>, _>(name).map(|v| v.map(f64::from)));
            match float {
                Ok(None) => Some(None),
                Ok(Some(f)) => Number::from_f64(f)
                    .filter(|_| f.is_finite())
                    .map(|n| Some(Value::Number(n))),
                // An integer column offered as numbers: its integers, as JSON would give them.
                Err(_) => int(),
            }
        }
        ColumnType::String => row.try_get::<Option<String>, _>(name).ok().map(|v| {
            v.filter(|s| !s.trim().is_empty())
                .map(|s| Value::String(s.trim().to_string()))
        }),
    }
}
