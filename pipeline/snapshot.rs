//! Parquet snapshots and the quarantine under the data directory.
//!
//! ```text
//! <data>/snapshot/dataset=xzcf/month=2024-03/data.parquet   the dataset as it stands, by decision month
//! <data>/snapshot/dataset=xzcf/_manifest.json                which files, rows per feed, which run
//! <data>/quarantine/feed=<feed>/run=<run>.parquet   rejected rows with reason and raw row
//! ```
//!
//! A snapshot file is written beside its final name, fsynced, renamed over the old one
//! (atomic on POSIX), and only then is the manifest replaced the same way: a reader sees
//! each partition file old or new, never half of one; a reader that needs one
//! consistent cut across partitions reads the files the manifest lists. pyarrow and DuckDB read the
//! directories as they are (`dataset=` is a Hive partition; `_` files are ignored).

use crate::record::{pack_id, Record};
use crate::schema::Dataset;
use arrow_array::builder::{StringBuilder, UInt64Builder};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
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

/// Called with each snapshot record's partition, packed id, update time (parsed only when
/// asked: most records of a large snapshot are not in a night's run) and packed version.
pub type IdentityVisitor<'a> = dyn FnMut(&str, &[u8; 16], &dyn Fn() -> i64, &[u8; 16]) + 'a;

/// Errors of snapshot I/O.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// File-system failure.
    #[error("{path}: {source}")]
    Io {
        /// Path concerned.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Parquet or Arrow failure.
    #[error("{path}: {message}")]
    Format {
        /// Path concerned.
        path: PathBuf,
        /// Cause.
        message: String,
    },
}

type Result<T> = std::result::Result<T, SnapshotError>;

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn fmt_err(path: &Path) -> impl Fn(String) -> SnapshotError + '_ {
    move |message| SnapshotError::Format {
        path: path.to_path_buf(),
        message,
    }
}

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

/// Builds an Arrow batch from records (empty values become nulls).
pub fn records_to_batch(ds: &Dataset, schema: &SchemaRef, records: &[Record]) -> RecordBatch {
    let mut rows = SnapshotRows::with_capacity(ds.fields.len(), records.len());
    for r in records {
        rows.push(
            &RowIdentity {
                record_id: &r.record_id,
                version: &r.version,
                updated_at: r.updated_at,
                source_line: r.source_line,
            },
            &Provenance {
                feed: &r.feed,
                source_unit: &r.source_unit,
                source_file: &r.source_file,
                run_id: &r.run_id,
            },
            &r.values,
        );
    }
    rows.finish(schema)
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
pub struct RowIdentity<'a> {
    /// 32 lowercase hex.
    pub record_id: &'a str,
    /// 32 lowercase hex.
    pub version: &'a str,
    /// The source's update time.
    pub updated_at: Option<chrono::NaiveDateTime>,
    /// 1-based line in the input file.
    pub source_line: u64,
}

/// Snapshot-shaped Arrow columns filled row by row, straight from mapped values (the
/// mapper threads build their batches with it; no intermediate record is kept).
pub struct SnapshotRows {
    meta: [StringBuilder; 7],
    lines: UInt64Builder,
    fields: Vec<StringBuilder>,
    len: usize,
}

impl SnapshotRows {
    /// Room for `rows` rows of a dataset with `fields` fields.
    pub fn with_capacity(fields: usize, rows: usize) -> Self {
        Self::sized(rows, &Provenance::default(), &vec![rows * 24; fields])
    }

    /// Room for `rows` rows from one provenance whose fields hold `field_bytes` bytes in
    /// all (exact sizes spare the builders from growing and copying).
    pub fn sized(rows: usize, from: &Provenance<'_>, field_bytes: &[usize]) -> Self {
        let text = |bytes: usize| StringBuilder::with_capacity(rows, bytes);
        let per_row = |s: &str, guess: usize| rows * s.len().max(guess);
        SnapshotRows {
            meta: [
                text(rows * 32),
                text(rows * 32),
                text(per_row(from.feed, 20)),
                text(per_row(from.source_unit, 18)),
                text(rows * 19),
                text(per_row(from.source_file, 16)),
                text(per_row(from.run_id, 24)),
            ],
            lines: UInt64Builder::with_capacity(rows),
            fields: field_bytes.iter().map(|b| text(*b)).collect(),
            len: 0,
        }
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one row; empty values become nulls.
    pub fn push<S: AsRef<str>>(
        &mut self,
        id: &RowIdentity<'_>,
        from: &Provenance<'_>,
        values: &[S],
    ) {
        let [record_id, version, feed, unit, updated, file, run] = &mut self.meta;
        record_id.append_value(id.record_id);
        version.append_value(id.version);
        feed.append_value(from.feed);
        unit.append_value(from.source_unit);
        match id.updated_at {
            Some(t) => updated.append_value(crate::transforms::iso_datetime(t)),
            None => updated.append_null(),
        }
        file.append_value(from.source_file);
        self.lines.append_value(id.source_line);
        run.append_value(from.run_id);
        for (b, v) in self.fields.iter_mut().zip(values) {
            let v = v.as_ref();
            if v.is_empty() {
                b.append_null();
            } else {
                b.append_value(v);
            }
        }
        self.len += 1;
    }

    /// The batch, in [`arrow_schema`]'s column order.
    pub fn finish(mut self, schema: &SchemaRef) -> RecordBatch {
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(META_COLUMNS.len() + self.fields.len());
        let [record_id, version, feed, unit, updated, file, run] = &mut self.meta;
        for b in [record_id, version, feed, unit, updated, file] {
            cols.push(Arc::new(b.finish()));
        }
        cols.push(Arc::new(self.lines.finish()));
        cols.push(Arc::new(run.finish()));
        for b in &mut self.fields {
            cols.push(Arc::new(b.finish()));
        }
        RecordBatch::try_new(schema.clone(), cols).expect("columns match the schema")
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
/// columns, dates (`…RQ`, `…JZQ`, `…YXQ`, `…QX`) and credit codes (`…SHXYM`, `…DM`).
fn has_useful_statistics(name: &str) -> bool {
    [
        "feed",
        "source_unit",
        "updated_at",
        "run_id",
        "source_line",
        "reason",
    ]
    .contains(&name)
        || ["RQ", "JZQ", "YXQ", "QX", "SHXYM", "DM"]
            .iter()
            .any(|s| name.ends_with(s))
}

fn writer_props(schema: &SchemaRef) -> WriterProperties {
    let low_cardinality = |name: &str| {
        [
            "feed",
            "source_unit",
            "source_file",
            "run_id",
            "dataset",
            "reason",
            "field",
        ]
        .contains(&name)
            || [
                "_LB", "CFLB", "XKLB", "_ZT", "JG", "JGDM", "SJLY", "SJLYDM", "LYDW", "LYDWDM",
                "WFXW", "_YJ", "ZJLX", "_NR", "_MC", "FRDB",
            ]
            .iter()
            .any(|s| name.ends_with(s))
    };
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid level"),
        ))
        .set_max_row_group_size(128 * 1024)
        // Ids, versions, names, facts and file lines are nearly unique: a dictionary
        // only costs time there. Code lists, units and authorities repeat.
        .set_dictionary_enabled(false)
        // Min/max statistics help a reader skip data only on dates, codes and the
        // bookkeeping columns; on names and free text they cost a comparison per value.
        .set_statistics_enabled(EnabledStatistics::None);
    for f in schema.fields() {
        if low_cardinality(f.name()) {
            b = b.set_column_dictionary_enabled(f.name().as_str().into(), true);
        }
        if has_useful_statistics(f.name()) {
            b = b.set_column_statistics_enabled(f.name().as_str().into(), EnabledStatistics::Page);
        }
    }
    b.build()
}

/// Writes a Parquet file next to its final name and publishes it atomically.
pub struct AtomicParquet {
    tmp: PathBuf,
    dest: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl AtomicParquet {
    /// Starts writing `dest` (through `dest.tmp`).
    pub fn create(dest: &Path, schema: SchemaRef) -> Result<Self> {
        let dir = dest.parent().expect("a file inside a directory");
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let tmp = hidden_tmp(dest);
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_props(&schema)))
            .map_err(|e| fmt_err(&tmp)(e.to_string()))?;
        Ok(AtomicParquet {
            tmp,
            dest: dest.to_path_buf(),
            writer,
            rows: 0,
        })
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|e| fmt_err(&self.tmp)(e.to_string()))
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Abandons the file (nothing was worth writing).
    pub fn discard(self) {
        drop(self.writer);
        let _ = std::fs::remove_file(&self.tmp);
    }

    /// Finishes the file, fsyncs it and renames it into place.
    pub fn publish(self) -> Result<u64> {
        let file = self
            .writer
            .into_inner()
            .map_err(|e| fmt_err(&self.tmp)(e.to_string()))?;
        file.sync_all().map_err(io_err(&self.tmp))?;
        std::fs::rename(&self.tmp, &self.dest).map_err(io_err(&self.dest))?;
        sync_dir(self.dest.parent().expect("a parent"));
        Ok(self.rows)
    }
}

/// The temporary name a file is written under before its rename: hidden (a leading
/// dot), so pyarrow, DuckDB and Spark skip it if a crash leaves it behind.
fn hidden_tmp(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.tmp"))
}

/// Removes what an interrupted run left: hidden temporary files and scratch spills.
pub fn sweep_leftovers(data_dir: &Path) {
    fn walk(dir: &Path) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                walk(&p);
            } else if name.starts_with('.') && name.ends_with(".tmp") {
                tracing::info!(file = %p.display(), "removing a temporary file an interrupted run left");
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    walk(&data_dir.join("snapshot"));
    walk(&data_dir.join("quarantine"));
    let _ = std::fs::remove_dir_all(data_dir.join("tmp"));
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes a small file atomically (temp, fsync, rename).
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let dir = dest.parent().expect("a file inside a directory");
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = hidden_tmp(dest);
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, dest).map_err(io_err(dest))?;
    sync_dir(dir);
    Ok(())
}

/// Reads a Parquet file batch by batch, optionally only some columns.
pub fn read_batches(
    path: &Path,
    columns: Option<&[&str]>,
    mut each: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(io_err(path))?;
    let fe = fmt_err(path);
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| fe(e.to_string()))?;
    let builder = match columns {
        Some(cols) => {
            let mask = ProjectionMask::columns(builder.parquet_schema(), cols.iter().copied());
            builder.with_projection(mask)
        }
        None => builder,
    };
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| fe(e.to_string()))?;
    for batch in reader {
        each(batch.map_err(|e| fe(e.to_string()))?)?;
    }
    Ok(())
}

/// One partition file in a manifest.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default)]
pub struct PartitionEntry {
    /// Decision month (`2024-03`) or `none`.
    pub month: String,
    /// The file, relative to the manifest.
    pub file: String,
    /// Rows in it.
    pub rows: u64,
    /// Rows per feed.
    pub rows_by_feed: std::collections::BTreeMap<String, u64>,
    /// The run that wrote it.
    pub run_id: String,
}

/// The manifest written beside each dataset's snapshot: the authority on which files
/// make up the snapshot.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default)]
pub struct Manifest {
    /// Dataset code.
    pub dataset: String,
    /// The run that last changed the snapshot.
    pub run_id: String,
    /// When (RFC 3339).
    pub written_at: String,
    /// Rows in the snapshot.
    pub rows: u64,
    /// The partition files.
    pub partitions: Vec<PartitionEntry>,
}

/// The partition key of a record: its decision month, or `none`.
pub fn month_of(decision_date: Option<&str>) -> String {
    match decision_date {
        Some(d) if d.len() >= 7 && d.as_bytes()[4] == b'-' => d[..7].to_string(),
        _ => "none".to_string(),
    }
}

/// The data directory's snapshot and quarantine layout.
///
/// A dataset's snapshot is partitioned by decision month
/// (`snapshot/dataset=xzcf/month=2024-03/data.parquet`), so a night's changes rewrite
/// the few months they touch, not the whole history.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    root: PathBuf,
}

impl SnapshotStore {
    /// A store under a data directory.
    pub fn new(data_dir: &Path) -> Self {
        SnapshotStore {
            root: data_dir.to_path_buf(),
        }
    }

    /// Directory of one dataset's snapshot.
    pub fn dataset_dir(&self, dataset: &str) -> PathBuf {
        self.root
            .join("snapshot")
            .join(format!("dataset={dataset}"))
    }

    /// The file of one partition.
    pub fn partition_file(&self, dataset: &str, month: &str) -> PathBuf {
        self.dataset_dir(dataset)
            .join(format!("month={month}"))
            .join("data.parquet")
    }

    /// The partition files of a dataset, by month.
    pub fn data_files(&self, dataset: &str) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(self.dataset_dir(dataset)) else {
            return out;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(month) = name.strip_prefix("month=") {
                let file = e.path().join("data.parquet");
                if file.exists() {
                    out.push((month.to_string(), file));
                }
            }
        }
        out.sort();
        out
    }

    /// Reads every partition of a dataset, batch by batch.
    pub fn read_dataset(
        &self,
        dataset: &str,
        columns: Option<&[&str]>,
        mut each: impl FnMut(RecordBatch) -> Result<()>,
    ) -> Result<()> {
        for (_, file) in self.data_files(dataset) {
            read_batches(&file, columns, &mut each)?;
        }
        Ok(())
    }

    /// The snapshot root (what pyarrow opens).
    pub fn snapshot_root(&self) -> PathBuf {
        self.root.join("snapshot")
    }

    /// The quarantine root.
    pub fn quarantine_root(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    /// The quarantine file of one feed in one run.
    pub fn quarantine_file(&self, feed: &str, run_id: &str) -> PathBuf {
        self.quarantine_root()
            .join(format!("feed={feed}"))
            .join(format!("run={run_id}.parquet"))
    }

    /// Scratch space for a run (spill files).
    pub fn scratch_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Whether a dataset has a snapshot.
    pub fn exists(&self, dataset: &str) -> bool {
        !self.data_files(dataset).is_empty()
    }

    /// The current manifest of a dataset, if any.
    pub fn manifest(&self, dataset: &str) -> Option<Manifest> {
        let text =
            std::fs::read_to_string(self.dataset_dir(dataset).join("_manifest.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Publishes a manifest after its data files are in place.
    pub fn write_manifest(&self, m: &Manifest) -> Result<()> {
        let path = self.dataset_dir(&m.dataset).join("_manifest.json");
        let text = serde_json::to_vec_pretty(m).expect("a manifest serialises");
        write_atomic(&path, &text)
    }

    /// Streams the identity of every record in a dataset's snapshot: its partition,
    /// packed record id, update time in seconds (`i64::MIN` when none), packed version.
    pub fn scan_identity(&self, dataset: &str, each: &mut IdentityVisitor<'_>) -> Result<()> {
        for (month, path) in self.data_files(dataset) {
            read_batches(&path, Some(&["record_id", "version", "updated_at"]), |b| {
                let (Some(ids), Some(vers), Some(upd)) = (
                    str_col(&b, "record_id"),
                    str_col(&b, "version"),
                    str_col(&b, "updated_at"),
                ) else {
                    return Err(fmt_err(&path)("snapshot lacks identity columns".into()));
                };
                for i in 0..b.num_rows() {
                    let t = || {
                        if upd.is_null(i) {
                            i64::MIN
                        } else {
                            crate::transforms::parse_datetime(upd.value(i))
                                .map(|t| t.and_utc().timestamp())
                                .unwrap_or(i64::MIN)
                        }
                    };
                    each(&month, &pack_id(ids.value(i)), &t, &pack_id(vers.value(i)));
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}

/// Keeps the rows of `batch` whose mask is true.
pub fn filter(batch: &RecordBatch, keep: Vec<bool>) -> RecordBatch {
    let mask = BooleanArray::from(keep);
    arrow_select::filter::filter_record_batch(batch, &mask).expect("mask has the batch's length")
}

/// SHA-256 of a file.
pub fn file_sha256(path: &Path) -> Result<String> {
    connectors::sources::file_drop::sha256_file(path).map_err(|e| fmt_err(path)(e.to_string()))
}
