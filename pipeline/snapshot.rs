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

use crate::record::pack_id;
use crate::schema::Dataset;
use arrow_array::builder::{FixedSizeBinaryBuilder, StringBuilder, UInt64Builder};
use arrow_array::{
    Array, ArrayRef, BooleanArray, FixedSizeBinaryArray, RecordBatch, StringArray, UInt64Array,
};
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

/// Called with each snapshot record's partition and packed id, then asked for its update
/// time and packed version only when it wants them (most records of a large snapshot are
/// not in a night's run). Called from the scanning threads at once.
pub type IdentityVisitor<'a> =
    dyn Fn(&str, &[u8; 16], &dyn Fn() -> i64, &dyn Fn() -> [u8; 16]) + Sync + 'a;

/// Partition files scanned at once.
const SCAN_THREADS: usize = 2;

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
            b.append_value(&*crate::record::hex32(bytes));
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
        match self.layout {
            Layout::Snapshot => {
                let [record_id, version, feed, unit, run] = &mut self.hex_and_constants;
                record_id.append_value(&*crate::record::hex32(id.record_id));
                version.append_value(&*crate::record::hex32(id.version));
                feed.append_value(from.feed);
                unit.append_value(from.source_unit);
                run.append_value(from.run_id);
            }
            Layout::Spill => {
                let [record_id, version] = &mut self.ids;
                record_id.append_value(id.record_id).expect("16 bytes");
                version.append_value(id.version).expect("16 bytes");
            }
        }
        match id.updated_at {
            Some(t) => self
                .updated
                .append_value(crate::transforms::iso_datetime(t)),
            None => self.updated.append_null(),
        }
        self.file.append_value(from.source_file);
        self.lines.append_value(id.source_line);
        for (b, v) in self.fields.iter_mut().zip(values) {
            let v = v.as_ref();
            if v.is_empty() {
                b.append_null();
            } else {
                b.append_value(v);
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
    /// Partitions are read by two threads.
    pub fn scan_identity(&self, dataset: &str, each: &IdentityVisitor<'_>) -> Result<()> {
        let files = self.data_files(dataset);
        let queue = std::sync::Mutex::new(files.iter());
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..SCAN_THREADS)
                .map(|_| {
                    scope.spawn(|| -> Result<()> {
                        loop {
                            let Some((month, path)) = queue.lock().expect("not poisoned").next()
                            else {
                                return Ok(());
                            };
                            scan_file_identity(month, path, each)?;
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a scanning thread does not panic"))
                .collect::<Result<Vec<()>>>()
        })?;
        Ok(())
    }
}

fn scan_file_identity(month: &str, path: &Path, each: &IdentityVisitor<'_>) -> Result<()> {
    read_batches(path, Some(&["record_id", "version", "updated_at"]), |b| {
        let (Some(ids), Some(vers), Some(upd)) = (
            str_col(&b, "record_id"),
            str_col(&b, "version"),
            str_col(&b, "updated_at"),
        ) else {
            return Err(fmt_err(path)("snapshot lacks identity columns".into()));
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
            each(month, &pack_id(ids.value(i)), &t, &|| {
                pack_id(vers.value(i))
            });
        }
        Ok(())
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows built in the scratch layout and turned back into the snapshot layout equal
    /// the same rows built in the snapshot layout directly.
    #[test]
    fn the_spill_layout_comes_back_as_the_snapshot_layout() {
        let ds = crate::schema::registry().get("xzcf").unwrap();
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
        for i in 0..3u8 {
            let mut values = vec![String::new(); ds.fields.len()];
            values[ds.position("CF_XDR_MC").unwrap()] = format!("同江市{i}号商店");
            let id = RowIdentity {
                record_id: &[i; 16],
                version: &[i + 100; 16],
                updated_at: chrono::NaiveDate::from_ymd_opt(2024, 3, 5)
                    .unwrap()
                    .and_hms_opt(10, 0, u32::from(i)),
                source_line: u64::from(i) + 2,
            };
            direct.push(&id, &from, &values);
            scratch.push(&id, &from, &values);
        }
        let direct = direct.finish(&schema);
        let back = spill_to_snapshot(&scratch.finish(&spill), &schema, &from);
        assert_eq!(back, direct);
        assert_eq!(
            str_col(&back, "record_id").unwrap().value(1),
            "01010101010101010101010101010101"
        );
        assert_eq!(str_col(&back, "run_id").unwrap().value(2), "run-1");
    }
}
