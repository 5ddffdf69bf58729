//! `[[datasets]]` in node.toml: the data a node's steward offers its API clients to name instead
//! of uploading values (README, "Datasets"). This module owns the typed configuration and its
//! checks; reading a dataset is `crate::datasets`.
//!
//! A dataset has a name, one source (a CSV file, a Parquet file, or an SQL query on an SQLite
//! file or a PostgreSQL database) and the columns it offers, each with a type. A database password never
//! sits in node.toml or in a URL: it comes from a file or an environment variable, read when the
//! dataset is, so that it is in no configuration dump, log or error.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One `[[datasets]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// What inputs name it by: `[a-z0-9_-]{1,64}`.
    pub name: String,
    /// The columns it offers, in the order a CSV file without header holds them.
    pub columns: Vec<ColumnConfig>,
    /// The categorical columns an input may filter on (`"where": {"sex": "F"}`); none by default.
    /// Whatever the filter, the policy's `min_local_samples` applies to the records it leaves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parquet: Option<ParquetSource>,
}

/// One column a dataset offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
}

/// What a column's values are. A value of another type is an error naming its row, never its
/// text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// A finite number (an integer stays an integer, as in JSON).
    Number,
    /// A whole number within 64 bits.
    Integer,
    /// A string, e.g. a category or an id (`category` is the same).
    #[serde(alias = "category")]
    String,
}

impl ColumnType {
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Number => "number",
            ColumnType::Integer => "integer",
            ColumnType::String => "string",
        }
    }
}

/// `csv = {...}`: a delimited text file, read record by record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSource {
    /// Relative to node.toml's directory.
    pub path: PathBuf,
    /// Whether the first record names the columns (then they are found by name, in any order);
    /// without a header, the file's columns are `columns` in order.
    #[serde(default = "yes")]
    pub header: bool,
    /// One ASCII character.
    #[serde(default = "comma")]
    pub delimiter: String,
}

/// `parquet = {...}`: a Parquet file with flat columns (of the dataset's names), Snappy-compressed
/// or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSource {
    /// Relative to node.toml's directory.
    pub path: PathBuf,
}

/// `sql = {...}`: a query whose result columns carry the dataset's column names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSource {
    /// `sqlite:PATH` (relative to node.toml's directory; opened read-only) or
    /// `postgres://user@host:port/database` (no password here; `?sslmode=…&sslrootcert=…` for
    /// TLS, README "Datasets").
    pub url: String,
    pub query: String,
    /// A file whose content (trimmed) is the database password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// An environment variable of the node's process that holds the database password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
}

fn yes() -> bool {
    true
}

fn comma() -> String {
    ",".into()
}

/// Which database an SQL source's URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl SqlSource {
    pub fn database(&self) -> Database {
        match self.url.strip_prefix("sqlite:") {
            Some(path) => Database::Sqlite(PathBuf::from(path.trim_start_matches("//"))),
            None => Database::Postgres(self.url.clone()),
        }
    }
}

impl DatasetConfig {
    pub fn column(&self, name: &str) -> Option<&ColumnConfig> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// `csv`, `parquet`, `sqlite` or `postgres`.
    pub fn source_kind(&self) -> &'static str {
        match (&self.csv, &self.parquet, self.sql.as_ref().map(SqlSource::database)) {
            (Some(_), _, _) => "csv",
            (_, Some(_), _) => "parquet",
            (_, _, Some(Database::Sqlite(_))) => "sqlite",
            _ => "postgres",
        }
    }

    /// Makes the paths relative to node.toml's directory `base` absolute.
    pub(super) fn resolve_paths(&mut self, base: &Path) {
        let absolute = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        if let Some(csv) = &mut self.csv {
            absolute(&mut csv.path);
        }
        if let Some(parquet) = &mut self.parquet {
            absolute(&mut parquet.path);
        }
        if let Some(sql) = &mut self.sql {
            if let Some(file) = &mut sql.password_file {
                absolute(file);
            }
            if let Database::Sqlite(mut path) = sql.database() {
                absolute(&mut path);
                sql.url = format!("sqlite:{}", path.display());
            }
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let name = &self.name;
        let bad = |what: String| Err(Error::Config(format!("datasets {name:?}: {what}")));
        if !valid_name(name) {
            return bad("a dataset's name must match [a-z0-9_-]{1,64}".into());
        }
        if self.columns.is_empty() {
            return bad("columns lists none".into());
        }
        let mut seen = HashSet::new();
        for column in &self.columns {
            if column.name.is_empty() || column.name.contains('.') || !seen.insert(column.name.as_str()) {
                return bad(format!(
                    "column {:?} is empty, holds a dot or is listed twice",
                    column.name
                ));
            }
        }
        for filter in &self.filters {
            match self.column(filter) {
                Some(c) if c.kind != ColumnType::Number => {}
                Some(_) => return bad(format!("filters: {filter:?} is a number column, not a category")),
                None => return bad(format!("filters: {filter:?} is not one of its columns")),
            }
        }
        match (&self.csv, &self.sql, &self.parquet) {
            (None, None, Some(_)) => {}
            (Some(csv), None, None) => {
                if csv.delimiter.len() != 1 || !csv.delimiter.is_ascii() {
                    return bad("csv.delimiter must be one ASCII character".into());
                }
            }
            (None, Some(sql), None) => {
                if sql.password_file.is_some() && sql.password_env.is_some() {
                    return bad("sql: password_file and password_env exclude each other".into());
                }
                match sql.database() {
                    Database::Sqlite(_) => {}
                    Database::Postgres(url) => {
                        let Some(rest) = url
                            .strip_prefix("postgres://")
                            .or_else(|| url.strip_prefix("postgresql://"))
                        else {
                            return bad("sql.url must start with sqlite: or postgres://".into());
                        };
                        // user:password@ before the host: the password belongs in a file or
                        // the environment, not in node.toml (which tools print and copy).
                        let authority = rest.split(['/', '?']).next().unwrap_or("");
                        if authority.rsplit_once('@').is_some_and(|(user, _)| user.contains(':')) {
                            return bad("sql.url holds a password: put it in password_file or password_env".into());
                        }
                    }
                }
            }
            _ => return bad("give exactly one source: csv = {...}, parquet = {...} or sql = {...}".into()),
        }
        Ok(())
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks the datasets, and that every grant of a client (`datasets = ["labs", "labs.hba1c"]`)
/// names a dataset and, if it has a dot, one of its columns.
pub fn validate(datasets: &[DatasetConfig], grants: &[(&str, &[String])]) -> Result<(), Error> {
    let mut names = HashSet::new();
    for dataset in datasets {
        dataset.validate()?;
        if !names.insert(dataset.name.as_str()) {
            return Err(Error::Config(format!("datasets: {:?} is listed twice", dataset.name)));
        }
    }
    for (client, grants) in grants {
        for grant in grants.iter() {
            let (name, column) = match grant.split_once('.') {
                Some((name, column)) => (name, Some(column)),
                None => (grant.as_str(), None),
            };
            let known = datasets
                .iter()
                .find(|d| d.name == name)
                .is_some_and(|d| column.is_none_or(|c| d.column(c).is_some()));
            if !known {
                return Err(Error::Config(format!(
                    "client {client:?}: datasets names {grant:?}, which is no dataset or column of this node"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<DatasetConfig>, Error> {
        #[derive(Deserialize)]
        struct File {
            datasets: Vec<DatasetConfig>,
        }
        let file: File = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        validate(&file.datasets, &[])?;
        Ok(file.datasets)
    }

    #[test]
    fn a_dataset_has_one_source_typed_columns_and_no_password_in_its_url() {
        let ok = parse(
            r#"
            [[datasets]]
            name = "labs"
            columns = [{name = "hba1c", type = "number"}, {name = "sex", type = "category"}]
            filters = ["sex"]
            csv = {path = "labs.csv", delimiter = ";"}
            "#,
        )
        .unwrap();
        assert_eq!(ok[0].columns[1].kind, ColumnType::String);
        assert!(ok[0].csv.as_ref().unwrap().header);
        for (bad, says) in [
            (
                r#"csv = {path = "a.csv"}
                sql = {url = "sqlite:a.db", query = "select 1"}"#,
                "exactly one source",
            ),
            (
                r#"sql = {url = "postgres://u:secret@h/db", query = "select 1"}"#,
                "password_file",
            ),
            (r#"sql = {url = "mysql://h/db", query = "select 1"}"#, "postgres://"),
            (r#"csv = {path = "a.csv", delimiter = ";;"}"#, "delimiter"),
            (r#"csv = {path = "a.csv", quote = "x"}"#, "unknown field"),
        ] {
            let text = format!("[[datasets]]\nname = \"x\"\ncolumns = [{{name = \"a\", type = \"number\"}}]\n{bad}\n");
            let error = parse(&text).unwrap_err().to_string();
            assert!(error.contains(says), "{bad}: {error}");
            assert!(!error.contains("secret"), "{error}");
        }
        let text = "[[datasets]]\nname = \"x\"\ncolumns = [{name = \"a\", type = \"number\"}]\nfilters = [\"a\"]\ncsv = {path = \"a.csv\"}\n";
        assert!(parse(text).unwrap_err().to_string().contains("not a category"));
    }

    #[test]
    fn grants_name_datasets_and_columns_that_exist() {
        let sets = parse(
            "[[datasets]]\nname = \"labs\"\ncolumns = [{name = \"a\", type = \"number\"}]\ncsv = {path = \"a.csv\"}\n",
        )
        .unwrap();
        let good = ["labs".to_string(), "labs.a".to_string()];
        validate(&sets, &[("analyst", &good)]).unwrap();
        for bad in ["lab", "labs.b"] {
            let grants = [bad.to_string()];
            let error = validate(&sets, &[("analyst", &grants)]).unwrap_err().to_string();
            assert!(error.contains(bad), "{error}");
        }
    }
}
