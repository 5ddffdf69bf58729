//! Reading an SQL dataset: the steward's query, run when a submission names the dataset, its
//! rows taken one by one as the database sends them (never the whole result at once).
//!
//! SQLite files are opened read-only through rusqlite on a blocking thread (the same SQLite
//! library as the store's). PostgreSQL is read through sqlx's async connection, one connection
//! per read, with the password from a file or an environment variable read at that moment, over
//! TLS as the URL's `sslmode` and `sslrootcert` ask (sqlx reads them, as libpq does); the rows
//! come as `COPY (query) TO STDOUT`'s text stream, each value read as its SQL type says.
//! A database's own error text can quote data (a failed cast names the value), so errors keep
//! only its SQLSTATE code.

use super::{Collector, DatasetError, UNAVAILABLE, bad_value, blocking, from_text};
use crate::config::datasets::{ColumnType, Database, SqlSource};
use futures::TryStreamExt;
use serde_json::{Number, Value};
use sqlx::postgres::{PgConnectOptions, PgTypeInfo};
use sqlx::{Column, Connection, Executor, Row, Statement};
use std::borrow::Cow;
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
    // The newline ends a `--` comment the query may end with, which would swallow the `)`.
    let query = format!(
        "SELECT count(*) FROM ({}\n) AS fsc_dataset",
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
    // Doubles as text exactly (the shortest text that reads back as the double; digits enough
    // to read back on servers before 12).
    options = options.extra_float_digits(3);
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

/// Reads the query's rows through `COPY (query) TO STDOUT`, PostgreSQL's text stream of rows: a
/// row is a few bytes to split, where a row of the extended protocol is a decoded record with its
/// own allocations (several times the time at millions of rows). Each wanted column is found, and
/// its SQL type judged, from the server's description of the query (prepared, not run); a value
/// then reads as the typed decoding read it ([`Reading`]), so the input is the one it gave.
async fn read_postgres(
    dataset: &str,
    source: &SqlSource,
    url: &str,
    mut collector: Collector,
) -> Result<Collector, DatasetError> {
    let mut conn = connect(dataset, source, url).await?;
    // COPY takes one query in parentheses: no terminating semicolon.
    let query = source.query.trim().trim_end_matches([';', ' ', '\t', '\r', '\n']);
    let statement = conn.prepare(query).await.map_err(|e| pg_error(dataset, &e))?;
    let described = statement.columns();
    let columns = collector.plan.columns.clone();
    let mut wanted = Vec::with_capacity(columns.len());
    for (name, kind) in &columns {
        // The last column of the name, as a row's lookup by name finds it.
        let index = described
            .iter()
            .rposition(|c| c.name() == name)
            .ok_or_else(|| no_column(dataset, name))?;
        wanted.push((index, Reading::of(*kind, described[index].type_info())));
    }
    let fields = described.len();
    let mut rows = conn
        // The newline ends a `--` comment the query may end with, which would swallow the `)`.
        .copy_out_raw(&format!("COPY ({query}\n) TO STDOUT"))
        .await
        .map_err(|e| pg_error(dataset, &e))?;
    let mut number = 0;
    // The server sends a row a message; a row split over messages waits here for its end.
    let mut partial = Vec::new();
    let mut spans = Vec::with_capacity(fields);
    while let Some(chunk) = rows.try_next().await.map_err(|e| pg_error(dataset, &e))? {
        let mut rest: &[u8] = &chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let line = if partial.is_empty() {
                &rest[..end]
            } else {
                partial.extend_from_slice(&rest[..end]);
                &partial[..]
            };
            number += 1;
            let row = copy_row(dataset, number, line, fields, &wanted, &columns, &mut spans);
            partial.clear();
            collector.push(number, row?)?;
            rest = &rest[end + 1..];
        }
        partial.extend_from_slice(rest);
    }
    Ok(collector)
}

/// How the values of a column of some SQL type read as the dataset's column type: as sqlx's
/// typed decoding read them (its rules of which SQL types hold an `i64`, `f64`, `String`…), from
/// their text in a COPY stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// `int2`, `int4`, `int8`: the integer.
    Integer,
    /// `float8`: the double its shortest text denotes (with `extra_float_digits` 3, exact).
    Double,
    /// `float4`: the float its text denotes, widened.
    Float,
    /// A text type: the trimmed text; blank is missing.
    Text,
    /// A type that does not hold the column's type: every value is a bad value (NULL is missing).
    Refused,
}

impl Reading {
    fn of(kind: ColumnType, ty: &PgTypeInfo) -> Reading {
        use sqlx::{Postgres, Type};
        let integer = <i64 as Type<Postgres>>::compatible(ty)
            || <i32 as Type<Postgres>>::compatible(ty)
            || <i16 as Type<Postgres>>::compatible(ty);
        match kind {
            ColumnType::Integer if integer => Reading::Integer,
            ColumnType::Number if <f64 as Type<Postgres>>::compatible(ty) => Reading::Double,
            ColumnType::Number if <f32 as Type<Postgres>>::compatible(ty) => Reading::Float,
            ColumnType::Number if integer => Reading::Integer,
            ColumnType::String if <String as Type<Postgres>>::compatible(ty) => Reading::Text,
            _ => Reading::Refused,
        }
    }

    /// A value's text (unescaped) as a cell: `Some(None)` if missing, `None` if not a value of
    /// the column's type (or not finite).
    fn cell(self, text: &str) -> Option<Option<Value>> {
        let number = |f: f64| {
            Number::from_f64(f)
                .filter(|_| f.is_finite())
                .map(|n| Some(Value::Number(n)))
        };
        match self {
            Reading::Integer => text.parse::<i64>().ok().map(|i| Some(Value::Number(i.into()))),
            Reading::Double => number(text.parse::<f64>().ok()?),
            Reading::Float => number(f64::from(text.parse::<f32>().ok()?)),
            Reading::Text => Some(
                Some(text.trim())
                    .filter(|t| !t.is_empty())
                    .map(|t| Value::String(t.to_string())),
            ),
            Reading::Refused => None,
        }
    }
}

/// Row `number` of a COPY text stream (`line`, without its newline) as the plan's cells;
/// `spans` is room for the fields' bounds, kept from row to row.
fn copy_row(
    dataset: &str,
    number: u64,
    line: &[u8],
    fields: usize,
    wanted: &[(usize, Reading)],
    columns: &[(String, ColumnType)],
    spans: &mut Vec<(usize, usize)>,
) -> Result<Vec<Option<Value>>, DatasetError> {
    spans.clear();
    let mut start = 0;
    for (i, _) in line.iter().enumerate().filter(|(_, b)| **b == b'\t') {
        spans.push((start, i));
        start = i + 1;
    }
    spans.push((start, line.len()));
    if spans.len() != fields {
        return Err(DatasetError::new(
            UNAVAILABLE,
            format!("dataset {dataset:?}: the database sent a row of another shape than its query's"),
        ));
    }
    let mut cells = Vec::with_capacity(wanted.len());
    for (&(index, reading), (name, kind)) in wanted.iter().zip(columns) {
        let field = &line[spans[index].0..spans[index].1];
        if field == b"\\N" {
            cells.push(None);
            continue;
        }
        let bad = || bad_value(dataset, number, name, *kind);
        let text = unescape(field).ok_or_else(bad)?;
        cells.push(reading.cell(&text).ok_or_else(bad)?);
    }
    Ok(cells)
}

/// A COPY text field's text, its backslash escapes undone (PostgreSQL writes `\\`, `\b`, `\f`,
/// `\n`, `\r`, `\t`, `\v`; a backslash before any other character stands for that character);
/// `None` if it is not UTF-8.
fn unescape(field: &[u8]) -> Option<Cow<'_, str>> {
    if !field.contains(&b'\\') {
        return std::str::from_utf8(field).ok().map(Cow::Borrowed);
    }
    let mut text = Vec::with_capacity(field.len());
    let mut bytes = field.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            text.push(byte);
            continue;
        }
        text.push(match bytes.next()? {
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 11,
            other => other,
        });
    }
    String::from_utf8(text).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn copy_text_reads_as_the_typed_decoding_did() {
        use sqlx::{Postgres, Type};
        fn of<T: Type<Postgres>>(kind: ColumnType) -> Reading {
            Reading::of(kind, &T::type_info())
        }
        assert_eq!(of::<i32>(ColumnType::Integer), Reading::Integer);
        assert_eq!(of::<i16>(ColumnType::Number), Reading::Integer);
        assert_eq!(of::<f32>(ColumnType::Number), Reading::Float);
        assert_eq!(of::<f64>(ColumnType::Number), Reading::Double);
        assert_eq!(of::<&str>(ColumnType::String), Reading::Text);
        assert_eq!(of::<f64>(ColumnType::Integer), Reading::Refused);
        assert_eq!(of::<bool>(ColumnType::Number), Reading::Refused);
        assert_eq!(of::<i64>(ColumnType::String), Reading::Refused);
        // float8's shortest text reads back as its double, float4's as its float widened.
        let x = 0.1f64 + 0.2;
        assert_eq!(Reading::Double.cell(&x.to_string()), Some(Some(json!(x))));
        assert_eq!(Reading::Double.cell("1e+300"), Some(Some(json!(1e300))));
        assert_eq!(Reading::Float.cell("0.1"), Some(Some(json!(f64::from(0.1f32)))));
        for infinite in ["NaN", "Infinity", "-Infinity"] {
            assert_eq!(Reading::Double.cell(infinite), None);
        }
        assert_eq!(
            Reading::Integer.cell("-9223372036854775808"),
            Some(Some(json!(i64::MIN)))
        );
        assert_eq!(Reading::Text.cell("  F "), Some(Some(json!("F"))));
        assert_eq!(Reading::Text.cell("   "), Some(None));
        assert_eq!(Reading::Refused.cell("1"), None);
    }

    #[test]
    fn copy_rows_split_at_tabs_and_undo_escapes_naming_bad_rows_by_number_only() {
        let columns = [
            ("id".to_string(), ColumnType::Integer),
            ("note".to_string(), ColumnType::String),
        ];
        let wanted = [(2, Reading::Integer), (0, Reading::Text)];
        let mut spans = Vec::new();
        let mut row = |line: &[u8]| copy_row("labs", 7, line, 3, &wanted, &columns, &mut spans);
        assert_eq!(
            row(b"a\\tb\\\\c\\nd\txx\t42").unwrap(),
            vec![Some(json!(42)), Some(json!("a\tb\\c\nd"))]
        );
        assert_eq!(row(b"\\N\t\t\\N").unwrap(), vec![None, None]);
        let bad = row(b"x\ty\tSECRET").unwrap_err();
        assert_eq!(bad.code, super::super::BAD_VALUE);
        assert!(
            bad.message.contains("row 7") && !bad.message.contains("SECRET"),
            "{bad}"
        );
        let shape = row(b"x\tSECRET").unwrap_err();
        assert_eq!(shape.code, UNAVAILABLE);
        assert!(!shape.message.contains("SECRET"), "{shape}");
        assert_eq!(unescape(b"\\x\\"), None);
        assert_eq!(unescape(&[0xff]), None);
    }
}
