//! The quarantine: one Parquet file per feed and run, each refused row with its reason
//! code, the field and value concerned, the source file and line, and the raw row as
//! JSON (keyed by the file's own headers).

use super::{AtomicParquet, SnapshotError};
use crate::mapping::Feed;
use crate::stages::map::RowProblem;
use arrow_array::builder::{StringBuilder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use connectors::{InputUnit, RawRow};
use std::path::PathBuf;
use std::sync::Arc;

/// The quarantine's Arrow schema.
pub fn quarantine_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        s("run_id"),
        s("feed"),
        s("dataset"),
        s("source_unit"),
        s("source_file"),
        Field::new("source_line", DataType::UInt64, false),
        s("reason"),
        s("field"),
        s("value"),
        s("raw"),
    ]))
}

pub struct Quarantine {
    rows: Vec<(Arc<InputUnit>, RawRow, RowProblem)>,
    writer: Option<AtomicParquet>,
    path: PathBuf,
    dry_run: bool,
}

impl Quarantine {
    /// The quarantine of one feed in one run (nothing is written in a dry run).
    pub fn new(path: PathBuf, dry_run: bool) -> Quarantine {
        Quarantine {
            rows: Vec::new(),
            writer: None,
            path,
            dry_run,
        }
    }

    /// Publishes the file, when any row was written; returns its path.
    pub fn publish(mut self) -> Result<Option<PathBuf>, SnapshotError> {
        match self.writer.take() {
            Some(w) => {
                w.publish()?;
                Ok(Some(self.path))
            }
            None => Ok(None),
        }
    }

    /// Adds a refused row (written at the next flush).
    pub fn push(&mut self, unit: &Arc<InputUnit>, row: RawRow, p: RowProblem) {
        self.rows.push((unit.clone(), row, p));
    }

    /// Writes the rows added since the last flush.
    pub fn flush(&mut self, feed: &Feed, run_id: &str) -> Result<(), SnapshotError> {
        if self.rows.is_empty() || self.dry_run {
            self.rows.clear();
            return Ok(());
        }
        if self.writer.is_none() {
            self.writer = Some(AtomicParquet::create(&self.path, quarantine_schema())?);
        }
        let n = self.rows.len();
        let mut cols: Vec<StringBuilder> = (0..9)
            .map(|_| StringBuilder::with_capacity(n, n * 16))
            .collect();
        let mut lines = UInt64Builder::with_capacity(n);
        for (unit, row, p) in self.rows.drain(..) {
            let mut raw = serde_json::Map::new();
            for (i, v) in row.values.iter().enumerate() {
                let key = unit
                    .headers
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("_col{}", i + 1));
                raw.insert(key, serde_json::Value::String(v.to_string()));
            }
            let vals = [
                run_id,
                &feed.name,
                &feed.dataset.code,
                &feed.source_unit,
                &unit.display_name(),
                p.reason.code(),
                &p.field,
                &p.value,
                &serde_json::Value::Object(raw).to_string(),
            ];
            for (b, v) in cols.iter_mut().zip(vals) {
                b.append_value(v);
            }
            lines.append_value(row.line);
        }
        let mut arrays: Vec<ArrayRef> = cols
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        arrays.insert(5, Arc::new(lines.finish()));
        let batch =
            RecordBatch::try_new(quarantine_schema(), arrays).expect("quarantine columns match");
        self.writer.as_mut().expect("opened above").write(&batch)
    }
}
