//! Ingesting one feed: source → map and validate → quarantine or spill → dedupe →
//! merged snapshot. Two passes keep memory flat: the first streams rows, writing bad
//! ones to the quarantine and good ones to a scratch Arrow IPC file while a compact
//! index tracks the winner of each record id; the second streams the previous snapshot
//! and the scratch file into the new snapshot, keeping only winners.
//!
//! Every row read ends in exactly one of: the snapshot (kept: new, changed or
//! unchanged), the quarantine (with reason), or superseded by a newer row.

use crate::dedupe::{DedupeIndex, Winner};
use crate::mapping::{Binding, Feed, MappingError, RowProblem};
use crate::record::{self, pack_id, Record};
use crate::snapshot::{self, AtomicParquet, Manifest, SnapshotError, SnapshotStore};
use arrow_array::builder::{StringBuilder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use connectors::{ConnectorError, InputUnit, RawRow, ReadContext};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What stops one feed (the run's other feeds go on).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The source failed (unreadable file, no header, …).
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// The mapping does not fit the data (a column missing from a file's header).
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// Writing the snapshot or the quarantine failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// Counts for one feed in one run. `read = kept + quarantined + superseded`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct FeedCounts {
    /// Data rows read.
    pub read: u64,
    /// Rows whose record is in the snapshot (new + changed + unchanged).
    pub kept: u64,
    /// Kept records new to the snapshot.
    pub new: u64,
    /// Kept records replacing an older version.
    pub changed: u64,
    /// Kept records identical to the snapshot's copy.
    pub unchanged: u64,
    /// Rows sent to the quarantine.
    pub quarantined: u64,
    /// Quarantined rows by reason code.
    pub quarantined_by_reason: BTreeMap<String, u64>,
    /// Rows superseded by a newer row of the same record.
    pub superseded: u64,
}

impl FeedCounts {
    /// Whether the accounting identity holds.
    pub fn balanced(&self) -> bool {
        self.read == self.kept + self.quarantined + self.superseded
    }
}

/// One input file read to the end.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileRead {
    /// Path.
    pub path: String,
    /// Content hash.
    pub sha256: String,
    /// Data rows.
    pub rows: u64,
    /// Detected encoding.
    pub encoding: String,
}

/// The result of ingesting one feed.
#[derive(Debug, Clone)]
pub struct IngestOutput {
    /// Counts.
    pub counts: FeedCounts,
    /// Files read to the end (to record as read once the snapshot is safe).
    pub files: Vec<FileRead>,
    /// Files skipped as already read.
    pub skipped_files: Vec<String>,
    /// The quarantine file, when any row was quarantined.
    pub quarantine_file: Option<PathBuf>,
    /// Whether a new snapshot was published.
    pub snapshot_written: bool,
}

/// Options of one ingestion.
pub struct IngestOptions<'a> {
    /// The run.
    pub run_id: &'a str,
    /// Base directory for relative source paths.
    pub base_dir: &'a Path,
    /// Content hashes already read by earlier runs.
    pub already_read: HashSet<String>,
    /// Read, map, validate and count, but write nothing.
    pub dry_run: bool,
    /// Called with the number of rows read so far, after each batch.
    pub progress: &'a (dyn Fn(u64) + Sync),
    /// The legal-entity register, for records that carry only a legacy code.
    pub register: Option<&'a crate::register::Register>,
}

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

struct Quarantine {
    rows: Vec<(Arc<InputUnit>, RawRow, RowProblem)>,
    writer: Option<AtomicParquet>,
    path: PathBuf,
    dry_run: bool,
}

impl Quarantine {
    fn push(&mut self, unit: &Arc<InputUnit>, row: RawRow, p: RowProblem) {
        self.rows.push((unit.clone(), row, p));
    }

    fn flush(&mut self, feed: &Feed, run_id: &str) -> Result<(), SnapshotError> {
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
                raw.insert(key, serde_json::Value::String(v.clone()));
            }
            let vals = [
                run_id,
                &feed.name,
                &feed.dataset.code,
                &feed.source_unit,
                &unit.display_name(),
                &p.reason,
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

fn spill_schema(snapshot: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = snapshot
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("_seq", DataType::UInt64, false));
    Arc::new(Schema::new(fields))
}

/// Ingests one feed. See the module comment for the passes.
pub fn ingest_feed(
    feed: &Feed,
    store: &SnapshotStore,
    opts: IngestOptions<'_>,
) -> Result<IngestOutput, IngestError> {
    let ds = feed.dataset.clone();
    let cx = ReadContext {
        expected_columns: feed.expected_columns(),
        already_read: opts.already_read.clone(),
        base_dir: opts.base_dir.to_path_buf(),
    };
    let mut source = feed.source.build(&cx)?;
    let schema = snapshot::arrow_schema(&ds);
    let spill_schema = spill_schema(&schema);
    let scratch = store.scratch_dir();
    std::fs::create_dir_all(&scratch).map_err(|source| SnapshotError::Io {
        path: scratch.clone(),
        source,
    })?;
    let spill_path = scratch.join(format!("{}-{}.arrows", opts.run_id, feed.name));
    let spill_file = File::create(&spill_path).map_err(|source| SnapshotError::Io {
        path: spill_path.clone(),
        source,
    })?;
    let ipc_err = |e: arrow_schema::ArrowError| SnapshotError::Format {
        path: spill_path.clone(),
        message: e.to_string(),
    };
    let mut spill =
        arrow_ipc::writer::FileWriter::try_new(spill_file, &spill_schema).map_err(ipc_err)?;

    let mut counts = FeedCounts::default();
    let mut index = DedupeIndex::default();
    let mut quarantine = Quarantine {
        rows: Vec::new(),
        writer: None,
        path: store.quarantine_file(&feed.name, opts.run_id),
        dry_run: opts.dry_run,
    };
    let feed_name: Arc<str> = Arc::from(feed.name.as_str());
    let unit_code: Arc<str> = Arc::from(feed.source_unit.as_str());
    let run: Arc<str> = Arc::from(opts.run_id);
    let mut bindings: HashMap<String, (Binding, Arc<str>)> = HashMap::new();
    let mut rows_per_file: HashMap<String, u64> = HashMap::new();
    let mut seq: u64 = 0;

    while let Some(batch) = source.next_batch()? {
        let unit = batch.unit.clone();
        if !bindings.contains_key(&unit.sha256) {
            let b = feed.bind(&unit)?;
            bindings.insert(
                unit.sha256.clone(),
                (b, Arc::from(unit.display_name().as_str())),
            );
        }
        let (binding, file_name) = &bindings[&unit.sha256];
        let mut good: Vec<Record> = Vec::with_capacity(batch.rows.len());
        let mut seqs: Vec<u64> = Vec::with_capacity(batch.rows.len());
        *rows_per_file.entry(unit.sha256.clone()).or_default() += batch.rows.len() as u64;
        for row in batch.rows {
            counts.read += 1;
            seq += 1;
            match feed.map_row(binding, &row, opts.register) {
                Err(p) => {
                    counts.quarantined += 1;
                    *counts
                        .quarantined_by_reason
                        .entry(p.reason.clone())
                        .or_default() += 1;
                    quarantine.push(&unit, row, p);
                }
                Ok(m) => {
                    let rid = record::record_id(&ds, &m.values);
                    let ver = record::version(&ds, &m.values);
                    let w = Winner {
                        updated: m
                            .updated_at
                            .map(|t| t.and_utc().timestamp())
                            .unwrap_or(i64::MIN),
                        seq,
                        version: pack_id(&ver),
                    };
                    if index.offer(pack_id(&rid), w) {
                        good.push(Record {
                            record_id: rid,
                            version: ver,
                            feed: feed_name.clone(),
                            source_unit: unit_code.clone(),
                            updated_at: m.updated_at,
                            source_file: file_name.clone(),
                            source_line: row.line,
                            run_id: run.clone(),
                            values: m.values,
                        });
                        seqs.push(seq);
                    }
                }
            }
        }
        quarantine.flush(feed, opts.run_id)?;
        if !good.is_empty() {
            let b = snapshot::records_to_batch(&ds, &schema, &good);
            let mut cols = b.columns().to_vec();
            cols.push(Arc::new(arrow_array::UInt64Array::from(seqs)));
            let b = RecordBatch::try_new(spill_schema.clone(), cols).expect("spill columns match");
            spill.write(&b).map_err(ipc_err)?;
        }
        (opts.progress)(counts.read);
        crate::crashpoint::hit("ingest.batch");
    }
    spill.finish().map_err(ipc_err)?;
    let files: Vec<FileRead> = source
        .completed()
        .iter()
        .map(|u| FileRead {
            path: u.display_name(),
            sha256: u.sha256.clone(),
            rows: rows_per_file.get(&u.sha256).copied().unwrap_or(0),
            encoding: u.encoding.to_string(),
        })
        .collect();
    let skipped_files = source
        .skipped()
        .iter()
        .map(|p| p.display().to_string())
        .collect();

    // Against the previous snapshot.
    counts.superseded = index.superseded();
    let previous = store.index_of(&ds.code, &|id| index.contains(id))?;
    let against = index.against_previous(&previous);
    counts.superseded += against.older;
    counts.unchanged = against.unchanged;
    counts.changed = against.replaced.len() as u64;
    counts.new = index.len() as u64 - counts.changed;
    counts.kept = counts.new + counts.changed + counts.unchanged;

    let quarantine_file = match quarantine.writer.take() {
        Some(w) => {
            w.publish()?;
            Some(quarantine.path.clone())
        }
        None => None,
    };
    let mut snapshot_written = false;
    if !index.is_empty() && !opts.dry_run {
        write_snapshot(
            store,
            feed,
            opts.run_id,
            &schema,
            &spill_path,
            &index,
            &against.replaced,
        )?;
        snapshot_written = true;
    }
    let _ = std::fs::remove_file(&spill_path);
    Ok(IngestOutput {
        counts,
        files,
        skipped_files,
        quarantine_file,
        snapshot_written,
    })
}

fn write_snapshot(
    store: &SnapshotStore,
    feed: &Feed,
    run_id: &str,
    schema: &SchemaRef,
    spill_path: &Path,
    index: &DedupeIndex,
    replaced: &HashSet<[u8; 16]>,
) -> Result<(), SnapshotError> {
    let ds = &feed.dataset.code;
    let dest = store.data_file(ds);
    let mut out = AtomicParquet::create(&dest, schema.clone())?;
    let mut by_feed: BTreeMap<String, u64> = BTreeMap::new();
    let mut count_feeds = |b: &RecordBatch| {
        if let Some(f) = snapshot::str_col(b, "feed") {
            for v in f.iter().flatten() {
                *by_feed.entry(v.to_string()).or_default() += 1;
            }
        }
    };
    if dest.exists() {
        let prev = dest.clone();
        snapshot::read_batches(&prev, None, |b| {
            let ids = snapshot::str_col(&b, "record_id").expect("snapshot has record_id");
            let keep: Vec<bool> = ids
                .iter()
                .map(|id| !replaced.contains(&pack_id(id.unwrap_or(""))))
                .collect();
            let kept = snapshot::filter(&b, keep);
            count_feeds(&kept);
            out.write(&kept)
        })?;
    }
    let spill_err = |e: arrow_schema::ArrowError| SnapshotError::Format {
        path: spill_path.to_path_buf(),
        message: e.to_string(),
    };
    let file = File::open(spill_path).map_err(|source| SnapshotError::Io {
        path: spill_path.to_path_buf(),
        source,
    })?;
    let reader = arrow_ipc::reader::FileReader::try_new(file, None).map_err(spill_err)?;
    let width = schema.fields().len();
    for b in reader {
        let b = b.map_err(spill_err)?;
        let ids = snapshot::str_col(&b, "record_id").expect("spill has record_id");
        let seqs = snapshot::u64_col(&b, "_seq").expect("spill has _seq");
        let keep: Vec<bool> = (0..b.num_rows())
            .map(|i| index.is_winner(&pack_id(ids.value(i)), seqs.value(i)))
            .collect();
        let kept = snapshot::filter(&b, keep);
        let kept = RecordBatch::try_new(schema.clone(), kept.columns()[..width].to_vec())
            .expect("snapshot columns");
        count_feeds(&kept);
        out.write(&kept)?;
    }
    let rows = out.publish()?;
    crate::crashpoint::hit("snapshot.published");
    let manifest = Manifest {
        dataset: ds.clone(),
        run_id: run_id.to_string(),
        written_at: chrono::Utc::now().to_rfc3339(),
        rows,
        rows_by_feed: by_feed,
        file: "data.parquet".into(),
        sha256: snapshot::file_sha256(&dest)?,
    };
    store.write_manifest(&manifest)
}
