//! The snapshot's columns: the meta columns, then every dataset field as text; the
//! scratch (spill) layout a run writes before the winners are known, and the way back;
//! row building; typed column access.

use super::Result;
use crate::domain::schema::Dataset;
use arrow_array::builder::{FixedSizeBinaryBuilder, StringBuilder, UInt64Builder};
use arrow_array::{
    Array, ArrayRef, BooleanArray, FixedSizeBinaryArray, RecordBatch, StringArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

/// Columns every snapshot has before the dataset's own fields.
pub const META_COLUMNS: [&str; 8] = [
    "record_id",
    "version",
    "feed",
    "source_unit",
    "updated_at",
    "source_file",
    "source_line",
    "run_id",
];

/// Called with each snapshot record's partition and packed id, then asked for its update
/// The Arrow schema of a dataset's snapshot: meta columns, then every field as text.
pub fn arrow_schema(ds: &Dataset) -> SchemaRef {
    let mut fields: Vec<Field> = META_COLUMNS
        .iter()
        .map(|c| {
            let ty = if *c == "source_line" {
                DataType::UInt64
            } else {
                DataType::Utf8
            };
            Field::new(*c, ty, *c == "updated_at")
        })
        .collect();
    fields.extend(
        ds.fields
            .iter()
            .map(|f| Field::new(&f.code, DataType::Utf8, true)),
    );
    Arc::new(Schema::new(fields))
}

/// Where a run's rows come from: the same for every row of a batch.
#[derive(Default)]
pub struct Provenance<'a> {
    /// The feed.
    pub feed: &'a str,
    /// The reporting unit's credit code.
    pub source_unit: &'a str,
    /// The input file.
    pub source_file: &'a str,
    /// The run.
    pub run_id: &'a str,
}

/// One row's identity and place.
#[derive(Clone, Copy)]
pub struct RowIdentity<'a> {
    /// The packed record id.
    pub record_id: &'a [u8; 16],
    /// The packed content version.
    pub version: &'a [u8; 16],
    /// The source's update time.
    pub updated_at: Option<chrono::NaiveDateTime>,
    /// 1-based line in the input file.
    pub source_line: u64,
}

/// Columns of the scratch (spill) layout that the snapshot layout does not have in that
/// form: ids and versions as 16 raw bytes (the hex is written for winners only), and no
/// feed, source unit or run (the same for every row of one ingestion: added back when the
/// spill becomes snapshot). A sixth less to write to and read back from the scratch file.
const SPILL_OMITS: [&str; 3] = ["feed", "source_unit", "run_id"];

/// The scratch layout of a dataset's rows: [`arrow_schema`] with `record_id` and
/// `version` as 16 bytes and without [`SPILL_OMITS`], then the read order `_seq`.
pub fn spill_schema(snapshot: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = snapshot
        .fields()
        .iter()
        .filter(|f| !SPILL_OMITS.contains(&f.name().as_str()))
        .map(|f| match f.name().as_str() {
            "record_id" | "version" => Field::new(f.name(), DataType::FixedSizeBinary(16), false),
            _ => f.as_ref().clone(),
        })
        .collect();
    fields.push(Field::new("_seq", DataType::UInt64, false));
    Arc::new(Schema::new(fields))
}

/// A batch of the scratch layout (its `_seq` column dropped) in the snapshot layout.
pub fn spill_to_snapshot(
    spill: &RecordBatch,
    schema: &SchemaRef,
    from: &Provenance<'_>,
) -> RecordBatch {
    let n = spill.num_rows();
    let hex_col = |name: &str| -> ArrayRef {
        let bin = spill
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<FixedSizeBinaryArray>())
            .expect("the spill has 16-byte ids");
        let mut b = StringBuilder::with_capacity(n, n * 32);
        for i in 0..n {
            let bytes: &[u8; 16] = bin.value(i).try_into().expect("16 bytes");
            b.append_value(&*crate::domain::identity::hex32(bytes));
        }
        Arc::new(b.finish())
    };
    let constant = |v: &str| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, n * v.len());
        for _ in 0..n {
            b.append_value(v);
        }
        Arc::new(b.finish())
    };
    let cols: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "record_id" | "version" => hex_col(f.name()),
            "feed" => constant(from.feed),
            "source_unit" => constant(from.source_unit),
            "run_id" => constant(from.run_id),
            name => spill
                .column_by_name(name)
                .expect("the spill has every other snapshot column")
                .clone(),
        })
        .collect();
    RecordBatch::try_new(schema.clone(), cols).expect("snapshot columns")
}

/// Which columns [`SnapshotRows`] builds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// [`arrow_schema`]: what a snapshot file holds.
    Snapshot,
    /// [`spill_schema`] without `_seq`: what the scratch file holds.
    Spill,
}

/// Snapshot-shaped Arrow columns filled row by row, straight from mapped values (the
/// mapper threads build their batches with it; no intermediate record is kept).
pub struct SnapshotRows {
    layout: Layout,
    /// Snapshot layout: record_id, version (hex), feed, source_unit, run_id.
    hex_and_constants: [StringBuilder; 5],
    /// Spill layout: record_id, version (16 bytes).
    ids: [FixedSizeBinaryBuilder; 2],
    updated: StringBuilder,
    /// An update time's text, on its way into `updated` (no allocation a row).
    time_text: String,
    file: StringBuilder,
    lines: UInt64Builder,
    fields: Vec<StringBuilder>,
}

impl SnapshotRows {
    /// Room for `rows` rows of a dataset with `fields` fields, in the snapshot layout.
    pub fn with_capacity(fields: usize, rows: usize) -> Self {
        Self::sized(
            Layout::Snapshot,
            rows,
            &Provenance::default(),
            &vec![rows * 24; fields],
        )
    }

    /// Room for `rows` rows from one provenance whose fields hold `field_bytes` bytes in
    /// all (exact sizes spare the builders from growing and copying).
    pub fn sized(
        layout: Layout,
        rows: usize,
        from: &Provenance<'_>,
        field_bytes: &[usize],
    ) -> Self {
        let text = |bytes: usize| StringBuilder::with_capacity(rows, bytes);
        let per_row = |s: &str, guess: usize| rows * s.len().max(guess);
        let snapshot_rows = if layout == Layout::Snapshot { rows } else { 0 };
        let snap =
            |bytes: usize| StringBuilder::with_capacity(snapshot_rows, bytes * snapshot_rows);
        let spill_rows = if layout == Layout::Spill { rows } else { 0 };
        SnapshotRows {
            layout,
            hex_and_constants: [
                snap(32),
                snap(32),
                snap(from.feed.len().max(20)),
                snap(from.source_unit.len().max(18)),
                snap(from.run_id.len().max(24)),
            ],
            ids: [
                FixedSizeBinaryBuilder::with_capacity(spill_rows, 16),
                FixedSizeBinaryBuilder::with_capacity(spill_rows, 16),
            ],
            updated: text(rows * 19),
            time_text: String::with_capacity(19),
            file: text(per_row(from.source_file, 16)),
            lines: UInt64Builder::with_capacity(rows),
            fields: field_bytes.iter().map(|b| text(*b)).collect(),
        }
    }

    /// Appends one row; empty values become nulls.
    pub fn push<S: AsRef<str>>(
        &mut self,
        id: &RowIdentity<'_>,
        from: &Provenance<'_>,
        values: &[S],
    ) {
        self.push_rows(std::slice::from_ref(&(*id, values)), from);
    }

    /// Appends rows column by column, each builder filled in one pass over the rows (a
    /// row at a time moves between every column's buffers for each value: 2.3 % more
    /// CPU for a full load); an empty value, or one a short row lacks, becomes a null.
    pub fn push_rows<S: AsRef<str>>(
        &mut self,
        rows: &[(RowIdentity<'_>, &[S])],
        from: &Provenance<'_>,
    ) {
        match self.layout {
            Layout::Snapshot => {
                let [record_id, version, feed, unit, run] = &mut self.hex_and_constants;
                for (id, _) in rows {
                    record_id.append_value(&*crate::domain::identity::hex32(id.record_id));
                    version.append_value(&*crate::domain::identity::hex32(id.version));
                    feed.append_value(from.feed);
                    unit.append_value(from.source_unit);
                    run.append_value(from.run_id);
                }
            }
            Layout::Spill => {
                let [record_id, version] = &mut self.ids;
                for (id, _) in rows {
                    record_id.append_value(id.record_id).expect("16 bytes");
                    version.append_value(id.version).expect("16 bytes");
                }
            }
        }
        for (id, _) in rows {
            match id.updated_at {
                Some(t) => {
                    crate::mapping::transforms::iso_datetime_into(&mut self.time_text, t);
                    self.updated.append_value(&self.time_text);
                }
                None => self.updated.append_null(),
            }
            self.file.append_value(from.source_file);
            self.lines.append_value(id.source_line);
        }
        for (f, b) in self.fields.iter_mut().enumerate() {
            for (_, values) in rows {
                match values.get(f).map(|v| v.as_ref()) {
                    Some(v) if !v.is_empty() => b.append_value(v),
                    _ => b.append_null(),
                }
            }
        }
    }

    /// The columns in the order of the layout's schema (`schema`, without `_seq` for
    /// the spill).
    pub fn finish(mut self, schema: &SchemaRef) -> RecordBatch {
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(META_COLUMNS.len() + self.fields.len());
        match self.layout {
            Layout::Snapshot => {
                let [record_id, version, feed, unit, run] = &mut self.hex_and_constants;
                cols.push(Arc::new(record_id.finish()));
                cols.push(Arc::new(version.finish()));
                cols.push(Arc::new(feed.finish()));
                cols.push(Arc::new(unit.finish()));
                cols.push(Arc::new(self.updated.finish()));
                cols.push(Arc::new(self.file.finish()));
                cols.push(Arc::new(self.lines.finish()));
                cols.push(Arc::new(run.finish()));
            }
            Layout::Spill => {
                let [record_id, version] = &mut self.ids;
                cols.push(Arc::new(record_id.finish()));
                cols.push(Arc::new(version.finish()));
                cols.push(Arc::new(self.updated.finish()));
                cols.push(Arc::new(self.file.finish()));
                cols.push(Arc::new(self.lines.finish()));
            }
        }
        for b in &mut self.fields {
            cols.push(Arc::new(b.finish()));
        }
        let fields: Vec<Field> = schema.fields()[..cols.len()]
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("columns match the schema")
    }
}

/// A string column of a batch by name.
pub fn str_col<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a StringArray> {
    batch
        .column_by_name(name)?
        .as_any()
        .downcast_ref::<StringArray>()
}

/// A u64 column of a batch by name.
pub fn u64_col<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a UInt64Array> {
    batch
        .column_by_name(name)?
        .as_any()
        .downcast_ref::<UInt64Array>()
}

/// Columns whose min/max statistics let a reader skip row groups: the bookkeeping
/// A text column by name, or an error naming it (a file that lacks it is not a snapshot
/// of this build's layout).
pub fn required_str_col<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    str_col(batch, name).ok_or_else(|| super::SnapshotError::Format {
        path: std::path::PathBuf::from(name),
        message: format!("no text column {name:?}: written by another layout or schema"),
    })
}

/// A batch of an older partition in today's layout: a field the schema gained since
/// (`schema_dir`) is empty text, a field it lost is dropped. The migration happens on
/// read, and on the partition's next rewrite for good.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema() == *schema {
        return Ok(batch.clone());
    }
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => cols.push(c.clone()),
            Some(c) => {
                return Err(super::SnapshotError::Format {
                    path: std::path::PathBuf::from(f.name()),
                    message: format!(
                        "column {:?} is {} in an existing partition but {} in the schema: \
                         a field's type cannot change under existing partitions",
                        f.name(),
                        c.data_type(),
                        f.data_type()
                    ),
                })
            }
            None => cols.push(empty_column(f.data_type(), batch.num_rows())),
        }
    }
    RecordBatch::try_new(schema.clone(), cols).map_err(|e| super::SnapshotError::Format {
        path: std::path::PathBuf::from("snapshot"),
        message: format!("cannot bring a partition to the schema: {e}"),
    })
}

/// `n` empty values of a column type (text: ""; others: null).
fn empty_column(ty: &DataType, n: usize) -> ArrayRef {
    match ty {
        DataType::Utf8 => Arc::new(StringArray::from(vec![""; n])),
        other => arrow_array::new_null_array(other, n),
    }
}

/// Keeps the rows of `batch` whose mask is true.
pub fn filter(batch: &RecordBatch, keep: Vec<bool>) -> RecordBatch {
    let mask = BooleanArray::from(keep);
    arrow_select::filter::filter_record_batch(batch, &mask).expect("mask has the batch's length")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows built in the scratch layout, all at once, and turned back into the snapshot
    /// layout equal the same rows built in the snapshot layout one by one.
    #[test]
    fn the_spill_layout_comes_back_as_the_snapshot_layout() {
        let ds = crate::domain::schema::registry().get("xzcf").unwrap();
        let schema = arrow_schema(&ds);
        let spill = spill_schema(&schema);
        let from = Provenance {
            feed: "penalties",
            source_unit: "11230881MB00123433",
            source_file: "input/a.csv",
            run_id: "run-1",
        };
        let mut direct = SnapshotRows::with_capacity(ds.fields.len(), 3);
        let mut scratch = SnapshotRows::sized(Layout::Spill, 3, &from, &vec![8; ds.fields.len()]);
        let ids: Vec<([u8; 16], [u8; 16])> = (0..3u8).map(|i| ([i; 16], [i + 100; 16])).collect();
        let values: Vec<Vec<String>> = (0..3u8)
            .map(|i| {
                let mut values = vec![String::new(); ds.fields.len()];
                values[ds.position("CF_XDR_MC").unwrap()] = format!("同江市{i}号商店");
                values
            })
            .collect();
        let rows: Vec<(RowIdentity<'_>, &[String])> = (0..3u8)
            .map(|i| {
                let id = RowIdentity {
                    record_id: &ids[usize::from(i)].0,
                    version: &ids[usize::from(i)].1,
                    // The last row has no update time: a null.
                    updated_at: chrono::NaiveDate::from_ymd_opt(2024, 3, 5)
                        .unwrap()
                        .and_hms_opt(10, 0, u32::from(i))
                        .filter(|_| i < 2),
                    source_line: u64::from(i) + 2,
                };
                (id, values[usize::from(i)].as_slice())
            })
            .collect();
        for (id, values) in &rows {
            direct.push(id, &from, values);
        }
        scratch.push_rows(&rows, &from);
        let direct = direct.finish(&schema);
        let back = spill_to_snapshot(&scratch.finish(&spill), &schema, &from);
        assert_eq!(back, direct);
        assert_eq!(
            str_col(&back, "record_id").unwrap().value(1),
            "01010101010101010101010101010101"
        );
        assert_eq!(str_col(&back, "run_id").unwrap().value(2), "run-1");
        assert!(str_col(&back, "updated_at").unwrap().is_null(2));
        assert!(str_col(&back, "CF_XDR_SHXYM").unwrap().is_null(0));
    }
}
