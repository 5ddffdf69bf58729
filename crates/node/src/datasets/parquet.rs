//! Reading a Parquet dataset: the file is opened when a submission names it and read row by row
//! through the parquet crate's record reader (no Arrow), with only the wanted columns projected:
//! one row group's pages of those columns at a time, never the whole file. Runs on a blocking
//! thread. Flat schemas only (top-level primitive columns), Snappy or uncompressed.

use super::{Collector, DatasetError, UNAVAILABLE, bad_value, from_text};
use crate::config::datasets::{ColumnType, ParquetSource};
use ::parquet::file::reader::{FileReader, SerializedFileReader};
use ::parquet::record::Field;
use ::parquet::schema::types::Type;
use serde_json::{Number, Value};
use std::fs::File;
use std::sync::Arc;

fn open(dataset: &str, source: &ParquetSource) -> Result<SerializedFileReader<File>, DatasetError> {
    let file = File::open(&source.path).map_err(|e| {
        DatasetError::new(
            UNAVAILABLE,
            format!("the file of dataset {dataset:?} cannot be opened ({})", e.kind()),
        )
    })?;
    SerializedFileReader::new(file).map_err(|_| unreadable(dataset))
}

/// The parquet crate's errors can name the file's contents; the client is told only this.
fn unreadable(dataset: &str) -> DatasetError {
    DatasetError::new(
        UNAVAILABLE,
        format!("the file of dataset {dataset:?} cannot be read as Parquet (flat columns, Snappy or uncompressed)"),
    )
}

/// Reads the file into `collector`; rows are numbered from 1.
pub(super) fn read(dataset: &str, source: &ParquetSource, mut collector: Collector) -> Result<Collector, DatasetError> {
    let reader = open(dataset, source)?;
    let schema = reader.metadata().file_metadata().schema();
    let mut wanted: Vec<Arc<Type>> = Vec::new();
    for (name, _) in &collector.plan.columns {
        let field = schema
            .get_fields()
            .iter()
            .find(|f| f.name() == name && f.is_primitive())
            .ok_or_else(|| {
                DatasetError::new(
                    UNAVAILABLE,
                    format!("the file of dataset {dataset:?} has no column {name:?} of a plain type"),
                )
            })?;
        if !wanted.iter().any(|w| w.name() == name) {
            wanted.push(field.clone());
        }
    }
    // The projection keeps the file's column order: where each plan column is in a row.
    wanted.sort_by_key(|w| schema.get_fields().iter().position(|f| f.name() == w.name()));
    let positions: Vec<usize> = collector
        .plan
        .columns
        .iter()
        .map(|(name, _)| wanted.iter().position(|w| w.name() == name).expect("projected"))
        .collect();
    let projection = Type::group_type_builder(schema.name())
        .with_fields(wanted)
        .build()
        .map_err(|_| unreadable(dataset))?;
    let rows = reader.get_row_iter(Some(projection)).map_err(|_| unreadable(dataset))?;
    let columns = collector.plan.columns.clone();
    for (number, row) in (1u64..).zip(rows) {
        let row = row.map_err(|_| unreadable(dataset))?;
        let fields: Vec<&Field> = row.get_column_iter().map(|(_, field)| field).collect();
        let mut cells = Vec::with_capacity(columns.len());
        for (&position, (name, kind)) in positions.iter().zip(&columns) {
            let field = fields.get(position).ok_or_else(|| unreadable(dataset))?;
            cells.push(cell(field, *kind).ok_or_else(|| bad_value(dataset, number, name, *kind))?);
        }
        collector.push(number, cells)?;
    }
    Ok(collector)
}

/// A Parquet value as a value of `kind`: `Some(None)` if null, `None` if not of the type.
fn cell(field: &Field, kind: ColumnType) -> Option<Option<Value>> {
    let integer = |i: i64| Some(Some(Value::Number(i.into())));
    match (field, kind) {
        (Field::Null, _) => Some(None),
        (Field::Byte(i), ColumnType::Integer | ColumnType::Number) => integer((*i).into()),
        (Field::Short(i), ColumnType::Integer | ColumnType::Number) => integer((*i).into()),
        (Field::Int(i), ColumnType::Integer | ColumnType::Number) => integer((*i).into()),
        (Field::Long(i), ColumnType::Integer | ColumnType::Number) => integer(*i),
        (Field::UByte(i), ColumnType::Integer | ColumnType::Number) => integer((*i).into()),
        (Field::UShort(i), ColumnType::Integer | ColumnType::Number) => integer((*i).into()),
        (Field::UInt(i), ColumnType::Integer | ColumnType::Number) => integer((*i).into()),
        (Field::ULong(i), ColumnType::Integer | ColumnType::Number) => Some(Some(Value::Number(Number::from(*i)))),
        (Field::Float(f), ColumnType::Number) => finite(f64::from(*f)),
        (Field::Double(f), ColumnType::Number) => finite(*f),
        (Field::Str(text), _) => from_text(text, kind).ok(),
        _ => None,
    }
}

fn finite(f: f64) -> Option<Option<Value>> {
    Number::from_f64(f)
        .filter(|_| f.is_finite())
        .map(|n| Some(Value::Number(n)))
}

/// The number of rows, from the file's footer.
pub(super) fn count(dataset: &str, source: &ParquetSource) -> Result<u64, DatasetError> {
    let reader = open(dataset, source)?;
    Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::super::{Datasets, MISSING};
    use crate::caller::Caller;
    use crate::config::datasets::{ColumnConfig, ColumnType, CsvSource, DatasetConfig, ParquetSource};
    use ::parquet::basic::Compression;
    use ::parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
    use ::parquet::file::properties::WriterProperties;
    use ::parquet::file::writer::SerializedFileWriter;
    use ::parquet::schema::parser::parse_message_type;
    use serde_json::{Value, json};
    use std::sync::Arc;

    /// A Snappy-compressed file: age (INT64), hba1c (DOUBLE, one null), sex (UTF8).
    fn write(path: &std::path::Path) {
        let schema = "message labs { REQUIRED INT64 age; OPTIONAL DOUBLE hba1c; REQUIRED BINARY sex (UTF8); }";
        let schema = Arc::new(parse_message_type(schema).unwrap());
        let properties = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
        let mut writer = SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, properties).unwrap();
        let mut group = writer.next_row_group().unwrap();
        let mut index = 0;
        while let Some(mut column) = group.next_column().unwrap() {
            match index {
                0 => column.typed::<Int64Type>().write_batch(&[34, 51, 47], None, None),
                1 => column
                    .typed::<DoubleType>()
                    .write_batch(&[5.4, 6.25], Some(&[1, 0, 1]), None),
                _ => column.typed::<ByteArrayType>().write_batch(
                    &[ByteArray::from("F"), ByteArray::from("M"), ByteArray::from("F")],
                    None,
                    None,
                ),
            }
            .unwrap();
            column.close().unwrap();
            index += 1;
        }
        group.close().unwrap();
        writer.close().unwrap();
    }

    #[tokio::test]
    async fn a_parquet_file_gives_what_the_same_csv_gives() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("labs.parquet"));
        std::fs::write(
            dir.path().join("labs.csv"),
            "age,hba1c,sex\n34,5.4,F\n51,,M\n47,6.25,F\n",
        )
        .unwrap();
        let columns = vec![
            ColumnConfig {
                name: "age".into(),
                kind: ColumnType::Integer,
            },
            ColumnConfig {
                name: "hba1c".into(),
                kind: ColumnType::Number,
            },
            ColumnConfig {
                name: "sex".into(),
                kind: ColumnType::String,
            },
        ];
        let dataset = |name: &str| DatasetConfig {
            name: name.into(),
            columns: columns.clone(),
            filters: vec!["sex".into()],
            csv: (name == "csv").then(|| CsvSource {
                path: dir.path().join("labs.csv"),
                header: true,
                delimiter: ",".into(),
            }),
            sql: None,
            parquet: (name == "parquet").then(|| ParquetSource {
                path: dir.path().join("labs.parquet"),
            }),
        };
        let sets = Datasets {
            sets: vec![dataset("csv"), dataset("parquet")],
            grants: None,
        };
        let local = Caller::local();
        for reference in [
            json!({"column": "hba1c", "missing": "skip"}),
            json!({"columns": ["sex", "age"], "where": {"sex": "F"}}),
            json!({"columns": ["age", "hba1c"], "missing": "skip", "intercept": true}),
        ] {
            let mut inputs = Vec::new();
            for name in ["csv", "parquet"] {
                let mut reference = reference.clone();
                reference["dataset"] = json!(name);
                let resolved = sets
                    .resolve(&local, "StatisticsBivariate", &Value::Null, &reference)
                    .await
                    .unwrap();
                inputs.push((resolved.input, resolved.summary.records, resolved.summary.skipped));
            }
            assert_eq!(inputs[0], inputs[1], "{reference}");
        }
        let missing = sets
            .resolve(
                &local,
                "SecureSum",
                &Value::Null,
                &json!({"dataset": "parquet", "column": "hba1c"}),
            )
            .await
            .unwrap_err();
        assert_eq!(missing.code, MISSING);
        assert!(missing.message.contains("row 2"), "{missing}");
        let listed = sets.list(&local).await;
        assert_eq!(
            (listed[1]["source"].as_str(), listed[1]["rows"].as_u64()),
            (Some("parquet"), Some(3))
        );
    }
}
