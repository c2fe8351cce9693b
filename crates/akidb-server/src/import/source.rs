//! The files `akidb import` reads, each as an iterator of rows: Parquet (columns named by the
//! caller), NumPy `.npy` (2-d float32 or float64; ids and metadata optionally from a JSONL
//! file, one line per row), fvecs (texmex) and JSONL (`{"id"?, "vector", "metadata"?}` per
//! line). A row that cannot be read is an error naming its row number in the file, so that the
//! caller can stop or set it aside.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

/// One document as read: no id means "use the row number".
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: Option<String>,
    pub vector: Vec<f32>,
    /// A JSON object as text.
    pub metadata: Option<String>,
}

/// A row that could not be read: its number within its file, and why. `fatal` errors (an
/// unreadable file, a missing column) stop the import even with `--skip-bad`.
#[derive(Debug, Clone)]
pub struct ReadError {
    pub row: u64,
    pub message: String,
    pub fatal: bool,
}

impl ReadError {
    fn row(row: u64, message: impl Into<String>) -> ReadError {
        ReadError {
            row,
            message: message.into(),
            fatal: false,
        }
    }
    fn fatal(message: impl Into<String>) -> ReadError {
        ReadError {
            row: 0,
            message: message.into(),
            fatal: true,
        }
    }
}

pub type Rows = Box<dyn Iterator<Item = Result<Row, ReadError>> + Send>;

/// Parquet column names (`--id-column`, `--vector-column`, `--metadata-column`).
#[derive(Debug, Clone)]
pub struct Columns {
    pub id: String,
    pub vector: String,
    pub metadata: String,
}

/// The rows of `path`, by its extension: `.parquet`, `.npy`, `.fvecs`, `.jsonl`/`.ndjson`.
/// `extra` (`--ids`) gives `.npy` and `.fvecs` rows their ids and metadata.
pub fn open(path: &Path, columns: &Columns, extra: Option<&Path>) -> Result<Rows, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let file = || File::open(path).map_err(|e| format!("{}: cannot open: {e}", path.display()));
    let rows: Rows = match ext.as_str() {
        "parquet" => parquet_rows(file()?, columns, path)?,
        "npy" => npy_rows(file()?, path)?,
        "fvecs" => Box::new(fvecs_rows(BufReader::new(file()?))),
        "jsonl" | "ndjson" => Box::new(jsonl_rows(BufReader::new(file()?))),
        _ => {
            return Err(format!(
                "{}: unknown format (the extension must be .parquet, .npy, .fvecs, .jsonl or .ndjson)",
                path.display()
            ));
        }
    };
    match extra {
        None => Ok(rows),
        Some(extra) if matches!(ext.as_str(), "npy" | "fvecs") => {
            let lines = BufReader::new(
                File::open(extra).map_err(|e| format!("{}: cannot open: {e}", extra.display()))?,
            );
            Ok(Box::new(with_ids(rows, lines, extra.to_path_buf())))
        }
        Some(_) => Err(format!(
            "--ids applies to .npy and .fvecs files; {} carries its own ids",
            path.display()
        )),
    }
}

/// How many rows `path` holds, when that is cheap to know (Parquet, `.npy`, fvecs).
pub fn count(path: &Path) -> Option<u64> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    let file = File::open(path).ok()?;
    match ext.as_str() {
        "parquet" => {
            let b = ParquetRecordBatchReaderBuilder::try_new(file).ok()?;
            Some(b.metadata().file_metadata().num_rows() as u64)
        }
        "npy" => npyz::NpyFile::new(BufReader::new(file))
            .ok()
            .and_then(|n| n.shape().first().copied()),
        "fvecs" => {
            let len = file.metadata().ok()?.len();
            let mut dim = [0u8; 4];
            BufReader::new(file).read_exact(&mut dim).ok()?;
            let record = 4 + 4 * u64::try_from(i32::from_le_bytes(dim)).ok()?;
            Some(len / record)
        }
        _ => None,
    }
}

fn finite(row: u64, vector: &[f32]) -> Result<(), ReadError> {
    match vector.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(ReadError::row(row, format!("vector[{i}] is not finite"))),
        None => Ok(()),
    }
}

fn metadata_text(row: u64, value: &Value) -> Result<Option<String>, ReadError> {
    match value {
        Value::Null => Ok(None),
        Value::Object(_) => Ok(Some(value.to_string())),
        _ => Err(ReadError::row(row, "metadata must be a JSON object")),
    }
}

fn id_text(row: u64, value: &Value) -> Result<Option<String>, ReadError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        _ => Err(ReadError::row(row, "id must be a string or an integer")),
    }
}

/// JSONL: one `{"id"?, "vector": [...], "metadata"?}` per line; blank lines are skipped (and
/// not counted).
fn jsonl_rows(
    reader: impl BufRead + Send + 'static,
) -> impl Iterator<Item = Result<Row, ReadError>> {
    let mut row = 0u64;
    reader.lines().filter_map(move |line| {
        let line = match line {
            Ok(l) if l.trim().is_empty() => return None,
            Ok(l) => l,
            Err(e) => return Some(Err(ReadError::fatal(format!("read failed: {e}")))),
        };
        let n = row;
        row += 1;
        Some(jsonl_row(n, &line))
    })
}

fn jsonl_row(row: u64, line: &str) -> Result<Row, ReadError> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| ReadError::row(row, format!("not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ReadError::row(row, "a line must be a JSON object"));
    };
    let vector = match map.get("vector") {
        Some(Value::Array(xs)) => xs
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| ReadError::row(row, "vector must be an array of numbers"))?,
        _ => return Err(ReadError::row(row, "no vector (an array of numbers)")),
    };
    finite(row, &vector)?;
    Ok(Row {
        id: id_text(row, map.get("id").unwrap_or(&Value::Null))?,
        vector,
        metadata: metadata_text(row, map.get("metadata").unwrap_or(&Value::Null))?,
    })
}

/// Ids and metadata for `.npy` and `.fvecs` rows, one JSONL line per row.
fn with_ids(
    rows: Rows,
    lines: BufReader<File>,
    path: PathBuf,
) -> impl Iterator<Item = Result<Row, ReadError>> {
    let mut lines = lines.lines();
    let mut n = 0u64;
    rows.map(move |row| {
        let at = n;
        n += 1;
        let mut row = row?;
        let line = match lines.next() {
            Some(Ok(line)) => line,
            Some(Err(e)) => return Err(ReadError::fatal(format!("{}: {e}", path.display()))),
            None => {
                return Err(ReadError::fatal(format!(
                    "{} has fewer lines than the vectors ({at})",
                    path.display()
                )));
            }
        };
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| ReadError::row(at, format!("{} line {}: {e}", path.display(), at + 1)))?;
        row.id = id_text(at, value.get("id").unwrap_or(&Value::Null))?;
        row.metadata = metadata_text(at, value.get("metadata").unwrap_or(&Value::Null))?;
        Ok(row)
    })
}

/// fvecs: per vector, its dimension as a little-endian i32, then that many f32.
fn fvecs_rows(
    mut reader: impl Read + Send + 'static,
) -> impl Iterator<Item = Result<Row, ReadError>> {
    let mut row = 0u64;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut dim = [0u8; 4];
        match reader.read_exact(&mut dim) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) => {
                done = true;
                return Some(Err(ReadError::fatal(format!("read failed: {e}"))));
            }
        }
        let n = i32::from_le_bytes(dim);
        if !(1..=65_536).contains(&n) {
            done = true;
            return Some(Err(ReadError::fatal(format!(
                "row {row}: dimension {n} (not an fvecs file?)"
            ))));
        }
        let mut bytes = vec![0u8; n as usize * 4];
        if let Err(e) = reader.read_exact(&mut bytes) {
            done = true;
            return Some(Err(ReadError::fatal(format!("row {row}: truncated: {e}"))));
        }
        let vector: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let at = row;
        row += 1;
        Some(finite(at, &vector).map(|()| Row {
            id: None,
            vector,
            metadata: None,
        }))
    })
}

/// `.npy`: a 2-d array (rows × dimension) of float32 or float64, C order.
fn npy_rows(file: File, path: &Path) -> Result<Rows, String> {
    let npy = npyz::NpyFile::new(BufReader::new(file))
        .map_err(|e| format!("{}: not an .npy file: {e}", path.display()))?;
    let shape = npy.shape().to_vec();
    let [n, dim] = shape[..] else {
        return Err(format!(
            "{}: a 2-d array (rows x dimension) is needed, the shape is {shape:?}",
            path.display()
        ));
    };
    if npy.order() != npyz::Order::C {
        return Err(format!(
            "{}: Fortran order is not supported",
            path.display()
        ));
    }
    let dim = dim as usize;
    // The dtype as numpy writes it (`'<f4'`, quotes included).
    let descr = npy.dtype().descr();
    let values: Box<dyn Iterator<Item = std::io::Result<f32>> + Send> =
        match descr.trim_matches('\'') {
            "<f4" => Box::new(
                npy.data::<f32>()
                    .map_err(|e| format!("{}: {e}", path.display()))?,
            ),
            "<f8" => Box::new(
                npy.data::<f64>()
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .map(|x| x.map(|x| x as f32)),
            ),
            other => {
                return Err(format!(
                    "{}: dtype {other}: float32 or float64 (little-endian) is needed",
                    path.display()
                ));
            }
        };
    let mut values = values;
    let mut row = 0u64;
    Ok(Box::new(std::iter::from_fn(move || {
        if row >= n {
            return None;
        }
        let mut vector = Vec::with_capacity(dim);
        for _ in 0..dim {
            match values.next() {
                Some(Ok(x)) => vector.push(x),
                Some(Err(e)) => return Some(Err(ReadError::fatal(format!("row {row}: {e}")))),
                None => return Some(Err(ReadError::fatal(format!("row {row}: truncated")))),
            }
        }
        let at = row;
        row += 1;
        Some(finite(at, &vector).map(|()| Row {
            id: None,
            vector,
            metadata: None,
        }))
    })))
}

/// Parquet: the id column (strings or integers, nullable), the vector column (a list or
/// fixed-size list of float32 or float64) and the metadata column (JSON text, nullable); the
/// id and metadata columns may be absent.
fn parquet_rows(file: File, columns: &Columns, path: &Path) -> Result<Rows, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("{}: not a Parquet file: {e}", path.display()))?;
    let schema = builder.schema().clone();
    if schema.field_with_name(&columns.vector).is_err() {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        return Err(format!(
            "{}: no column {:?} (--vector-column); its columns are {}",
            path.display(),
            columns.vector,
            names.join(", ")
        ));
    }
    let reader = builder
        .with_batch_size(4096)
        .build()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let columns = columns.clone();
    let mut first = 0u64;
    Ok(Box::new(reader.flat_map(move |batch| {
        let out: Vec<Result<Row, ReadError>> = match batch {
            Err(e) => vec![Err(ReadError::fatal(format!("read failed: {e}")))],
            Ok(batch) => {
                let rows = batch_rows(&batch, &columns, first);
                first += batch.num_rows() as u64;
                rows
            }
        };
        out
    })))
}

fn batch_rows(batch: &RecordBatch, columns: &Columns, first: u64) -> Vec<Result<Row, ReadError>> {
    let fatal = |m: String| vec![Err(ReadError::fatal(m))];
    let Some(vectors) = batch.column_by_name(&columns.vector) else {
        return fatal(format!("no column {:?}", columns.vector));
    };
    let ids = batch.column_by_name(&columns.id);
    let metadata = batch.column_by_name(&columns.metadata);
    if let Some(m) = metadata
        && !matches!(m.data_type(), DataType::Utf8 | DataType::LargeUtf8)
    {
        return fatal(format!(
            "column {:?} must hold JSON text, not {}",
            columns.metadata,
            m.data_type()
        ));
    }
    (0..batch.num_rows())
        .map(|i| {
            let row = first + i as u64;
            let vector = vector_at(vectors, i).map_err(|m| ReadError::row(row, m))?;
            finite(row, &vector)?;
            let id = match ids {
                Some(ids) => id_at(ids, i).map_err(ReadError::fatal)?,
                None => None,
            };
            let metadata = match metadata {
                Some(m) if m.is_valid(i) => {
                    let text = match m.data_type() {
                        DataType::LargeUtf8 => m.as_string::<i64>().value(i),
                        _ => m.as_string::<i32>().value(i),
                    };
                    let value: Value = serde_json::from_str(text)
                        .map_err(|e| ReadError::row(row, format!("metadata is not JSON: {e}")))?;
                    metadata_text(row, &value)?
                }
                _ => None,
            };
            Ok(Row {
                id,
                vector,
                metadata,
            })
        })
        .collect()
}

fn id_at(ids: &ArrayRef, i: usize) -> Result<Option<String>, String> {
    if ids.is_null(i) {
        return Ok(None);
    }
    Ok(Some(match ids.data_type() {
        DataType::Utf8 => ids.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => ids.as_string::<i64>().value(i).to_string(),
        DataType::Int64 => ids.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Int32 => ids.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::UInt64 => ids.as_primitive::<UInt64Type>().value(i).to_string(),
        other => {
            return Err(format!(
                "the id column must hold strings or integers, not {other}"
            ));
        }
    }))
}

fn floats(values: &ArrayRef) -> Result<Vec<f32>, String> {
    if values.null_count() > 0 {
        return Err("the vector holds a null".into());
    }
    match values.data_type() {
        DataType::Float32 => Ok(values.as_primitive::<Float32Type>().values().to_vec()),
        DataType::Float64 => Ok(values
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            .map(|&x| x as f32)
            .collect()),
        other => Err(format!(
            "vector items must be float32 or float64, not {other}"
        )),
    }
}

fn vector_at(vectors: &ArrayRef, i: usize) -> Result<Vec<f32>, String> {
    if vectors.is_null(i) {
        return Err("the vector is null".into());
    }
    match vectors.data_type() {
        DataType::FixedSizeList(..) => floats(&vectors.as_fixed_size_list().value(i)),
        DataType::List(_) => floats(&vectors.as_list::<i32>().value(i)),
        DataType::LargeList(_) => floats(&vectors.as_list::<i64>().value(i)),
        other => Err(format!(
            "the vector column must be a list of floats, not {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_rows_name_their_row() {
        let text = "{\"id\": \"a\", \"vector\": [1, 2], \"metadata\": {\"k\": 1}}\n\n{\"vector\": [3, 4]}\n{\"vector\": [1, \"x\"]}\nnot json\n{\"id\": 7, \"vector\": [5, 6]}\n";
        let rows: Vec<_> = jsonl_rows(std::io::Cursor::new(text.to_string())).collect();
        assert_eq!(rows.len(), 5);
        let a = rows[0].as_ref().unwrap();
        assert_eq!(
            (a.id.as_deref(), a.vector.as_slice()),
            (Some("a"), &[1.0, 2.0][..])
        );
        assert_eq!(a.metadata.as_deref(), Some("{\"k\":1}"));
        assert_eq!(rows[1].as_ref().unwrap().id, None);
        let e = rows[2].as_ref().unwrap_err();
        assert_eq!((e.row, e.fatal), (2, false));
        assert!(e.message.contains("array of numbers"), "{}", e.message);
        assert_eq!(rows[3].as_ref().unwrap_err().row, 3);
        assert_eq!(rows[4].as_ref().unwrap().id.as_deref(), Some("7"));
    }

    #[test]
    fn fvecs_rows_are_read_until_the_end() {
        let mut bytes = Vec::new();
        for v in [[1.0f32, 2.0], [3.0, 4.0]] {
            bytes.extend(2i32.to_le_bytes());
            for x in v {
                bytes.extend(x.to_le_bytes());
            }
        }
        let rows: Vec<_> = fvecs_rows(std::io::Cursor::new(bytes.clone())).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].as_ref().unwrap().vector, [3.0, 4.0]);
        bytes.truncate(bytes.len() - 2);
        let rows: Vec<_> = fvecs_rows(std::io::Cursor::new(bytes)).collect();
        assert!(rows[1].as_ref().unwrap_err().fatal);
    }
}
