//! Reading a Parquet dataset: the file is opened when a submission names it and read row by row
//! through the parquet crate's record reader (no Arrow), with only the wanted columns projected:
//! one row group's pages of those columns at a time, never the whole file. Runs on a blocking
//! thread. Flat schemas only (top-level primitive columns), Snappy or uncompressed. A plain
//! numeric column kept as doubles is read through its column reader instead, in batches of
//! values ([`read_doubles`]): no row object per value.

use super::{Collector, DatasetError, UNAVAILABLE, bad_value, from_text};
use crate::config::datasets::{ColumnType, ParquetSource};
use ::parquet::basic::{ConvertedType, Type as PhysicalType};
use ::parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use ::parquet::data_type::DataType;
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
    if collector.takes_doubles() {
        let (name, kind) = collector.plan.columns[0].clone();
        if let Some(leaf) = plain_numeric_leaf(&reader, &name, kind) {
            read_doubles(dataset, &reader, leaf, &mut collector)?;
            return Ok(collector);
        }
    }
    read_rows(dataset, &reader, collector)
}

/// The index of top-level column `name` if it holds plain numbers a column of `kind` takes
/// as they are: DOUBLE or FLOAT for a number column, INT32 or INT64 for either, without a
/// logical type (a date, a decimal or an unsigned integer is the row reader's to judge).
fn plain_numeric_leaf(reader: &SerializedFileReader<File>, name: &str, kind: ColumnType) -> Option<usize> {
    let schema = reader.metadata().file_metadata().schema_descr();
    let leaf = schema.columns().iter().position(|c| c.path().parts() == [name])?;
    let column = schema.column(leaf);
    let plain = column.logical_type_ref().is_none()
        && column.converted_type() == ConvertedType::NONE
        && column.max_rep_level() == 0;
    let fits = match column.physical_type() {
        PhysicalType::DOUBLE | PhysicalType::FLOAT => kind == ColumnType::Number,
        PhysicalType::INT32 | PhysicalType::INT64 => kind != ColumnType::String,
        _ => false,
    };
    (plain && fits).then_some(leaf)
}

/// Values asked of a column reader at a time.
const BATCH: usize = 1 << 16;

/// Reads column `leaf` (a [`plain_numeric_leaf`]) into `collector`, which
/// [`Collector::takes_doubles`]: batches of values from the column reader, each row group in
/// turn, instead of a row object per value. Each value becomes the double the row reader's
/// value would, and a value that is not finite is refused as there.
fn read_doubles(
    dataset: &str,
    reader: &SerializedFileReader<File>,
    leaf: usize,
    collector: &mut Collector,
) -> Result<(), DatasetError> {
    let max_definition = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .column(leaf)
        .max_def_level();
    let mut number = 0;
    for group in 0..reader.num_row_groups() {
        let group = reader.get_row_group(group).map_err(|_| unreadable(dataset))?;
        let mut column = Column {
            dataset,
            max_definition,
            number: &mut number,
            collector: &mut *collector,
        };
        match group.get_column_reader(leaf).map_err(|_| unreadable(dataset))? {
            ColumnReader::DoubleColumnReader(values) => column.read(values, |x| *x),
            ColumnReader::FloatColumnReader(values) => column.read(values, |x| f64::from(*x)),
            ColumnReader::Int32ColumnReader(values) => column.read(values, |i| f64::from(*i)),
            // The double nearest to the integer, as its text would parse.
            ColumnReader::Int64ColumnReader(values) => column.read(values, |i| *i as f64),
            _ => Err(unreadable(dataset)),
        }?;
    }
    Ok(())
}

/// One row group's column, read by [`read_doubles`].
struct Column<'a> {
    dataset: &'a str,
    max_definition: i16,
    /// The last row's number, counted across row groups.
    number: &'a mut u64,
    collector: &'a mut Collector,
}

impl Column<'_> {
    fn read<T: DataType>(
        &mut self,
        mut reader: ColumnReaderImpl<T>,
        double: impl Fn(&T::T) -> f64,
    ) -> Result<(), DatasetError> {
        let unreadable = || unreadable(self.dataset);
        let (mut levels, mut values) = (Vec::with_capacity(BATCH), Vec::with_capacity(BATCH));
        loop {
            levels.clear();
            values.clear();
            let optional = self.max_definition > 0;
            let (records, _, _) = reader
                .read_records(BATCH, optional.then_some(&mut levels), None, &mut values)
                .map_err(|_| unreadable())?;
            if records == 0 {
                return Ok(());
            }
            if !optional {
                // A required column has no levels: every record is defined.
                levels.resize(records, self.max_definition);
            }
            let mut present = values.iter();
            for &level in &levels[..records] {
                *self.number += 1;
                let cell = if level < self.max_definition {
                    None
                } else {
                    let x = double(present.next().ok_or_else(unreadable)?);
                    if !x.is_finite() {
                        let (name, kind) = &self.collector.plan.columns[0];
                        return Err(bad_value(self.dataset, *self.number, name, *kind));
                    }
                    Some(x)
                };
                self.collector.push_double(*self.number, cell)?;
            }
        }
    }
}

/// Reads the file into `collector` row by row, any flat column of any plan.
fn read_rows(
    dataset: &str,
    reader: &SerializedFileReader<File>,
    mut collector: Collector,
) -> Result<Collector, DatasetError> {
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
    use super::super::tests::doubles_are_the_json_inputs_doubles;
    use super::super::{BAD_VALUE, Datasets, MISSING};
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

    /// Two row groups of plain numeric columns (one optional, with nulls), and a DATE column.
    fn write_numbers(path: &std::path::Path, doubles: [&[f64]; 2]) {
        use ::parquet::data_type::{FloatType, Int32Type};
        let schema = "message numbers { OPTIONAL DOUBLE x; REQUIRED FLOAT f; REQUIRED INT32 i; REQUIRED INT64 l; REQUIRED INT32 d (DATE); }";
        let schema = Arc::new(parse_message_type(schema).unwrap());
        let properties = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
        let mut writer = SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, properties).unwrap();
        for half in [0, 1] {
            let mut group = writer.next_row_group().unwrap();
            let mut index = 0;
            while let Some(mut column) = group.next_column().unwrap() {
                match index {
                    // Rows 2 and 6 (each group's second) are null.
                    0 => column
                        .typed::<DoubleType>()
                        .write_batch(doubles[half as usize], Some(&[1, 0, 1, 1]), None),
                    1 => column.typed::<FloatType>().write_batch(
                        &[1.5, -0.0, f32::MAX, f32::MIN_POSITIVE / 4.0],
                        None,
                        None,
                    ),
                    2 => column
                        .typed::<Int32Type>()
                        .write_batch(&[i32::MIN, 0, 7, half], None, None),
                    3 => column
                        .typed::<Int64Type>()
                        .write_batch(&[i64::MAX, -(1 << 53) - 1, 3, i64::MIN], None, None),
                    _ => column.typed::<Int32Type>().write_batch(&[1, 2, 3, 4], None, None),
                }
                .unwrap();
                column.close().unwrap();
                index += 1;
            }
            group.close().unwrap();
        }
        writer.close().unwrap();
    }

    #[tokio::test]
    async fn a_numeric_column_read_as_doubles_is_what_its_rows_give() {
        let dir = tempfile::tempdir().unwrap();
        let column = |name: &str, kind| ColumnConfig {
            name: name.into(),
            kind,
        };
        let sets = |file: &str| Datasets {
            sets: vec![DatasetConfig {
                name: "numbers".into(),
                columns: vec![
                    column("x", ColumnType::Number),
                    column("f", ColumnType::Number),
                    column("i", ColumnType::Integer),
                    column("l", ColumnType::Integer),
                    column("d", ColumnType::Number),
                ],
                filters: vec![],
                csv: None,
                sql: None,
                parquet: Some(ParquetSource {
                    path: dir.path().join(file),
                }),
            }],
            grants: None,
            max_records: u64::MAX,
        };
        write_numbers(
            &dir.path().join("good.parquet"),
            [&[f64::MAX, 5e-324, -1e300], &[0.1, -0.0, 2.5]],
        );
        let good = sets("good.parquet");
        let local = Caller::local();
        for name in ["x", "f", "i", "l"] {
            let reference = json!({"dataset": "numbers", "column": name, "missing": "skip"});
            // SecureSum takes JSON: what the row reader gives.
            doubles_are_the_json_inputs_doubles(&good, &reference).await;
        }
        // A date is the row reader's to judge (it refuses it for a number column).
        let date = good
            .resolve(
                &local,
                "StatisticsUnivariate",
                &Value::Null,
                &json!({"dataset": "numbers", "column": "d"}),
            )
            .await
            .unwrap_err();
        assert_eq!((date.code, date.message.contains("row 1")), (BAD_VALUE, true), "{date}");
        let x = json!({"dataset": "numbers", "column": "x"});
        let missing = good
            .resolve(&local, "StatisticsUnivariate", &Value::Null, &x)
            .await
            .unwrap_err();
        assert!(
            missing.code == MISSING && missing.message.contains("row 2"),
            "{missing}"
        );
        // Rows are numbered across row groups: the second group's last is row 8.
        write_numbers(
            &dir.path().join("bad.parquet"),
            [&[1.0, 2.0, 3.0], &[1.0, 2.0, f64::NAN]],
        );
        let bad = sets("bad.parquet")
            .resolve(
                &local,
                "StatisticsUnivariate",
                &Value::Null,
                &json!({"dataset": "numbers", "column": "x", "missing": "skip"}),
            )
            .await
            .unwrap_err();
        assert!(bad.code == BAD_VALUE && bad.message.contains("row 8"), "{bad}");
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
            max_records: u64::MAX,
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
