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
use crate::record::{self, pack_id};
use crate::snapshot::{self, AtomicParquet, SnapshotError, SnapshotStore};
use arrow_array::builder::{StringBuilder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use connectors::{ConnectorError, InputUnit, RawBatch, RawRow, ReadContext};
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
    /// Backfills: rows passed over because their decision date is outside the window
    /// (not counted in `read`).
    #[serde(default)]
    pub outside_window: u64,
    /// Backfills: records of the window that the source no longer has; they leave the
    /// snapshot and are withdrawn upstream.
    #[serde(default)]
    pub vanished: u64,
    /// Kept records whose credit code has a registration-authority / institution-type
    /// pair outside the published table: a warning, never a rejection (standards.md §1.4).
    #[serde(default)]
    pub uscc_unknown_type: u64,
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
    /// Size in bytes (files only).
    pub bytes: Option<u64>,
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
    /// For the legal-entity register's feed: the entities read, so the run's other feeds
    /// resolve legacy codes with them at once (a dry run included).
    pub register_entries: Option<crate::register::Register>,
    /// The source's position at the end of the read (SQL: last watermark and key), to
    /// record once the snapshot is safe.
    pub checkpoint: Option<String>,
}

/// Options of one ingestion.
pub struct IngestOptions<'a> {
    /// The run.
    pub run_id: &'a str,
    /// Base directory for relative source paths.
    pub base_dir: &'a Path,
    /// Content hashes already read by earlier runs.
    pub already_read: HashSet<String>,
    /// The sizes of the files already read (`None`: not all known).
    pub already_read_sizes: Option<HashSet<u64>>,
    /// Read, map, validate and count, but write nothing.
    pub dry_run: bool,
    /// Called after each batch with the rows read so far and, when the source knows
    /// its size, (bytes read, bytes in all).
    pub progress: &'a (dyn Fn(u64, Option<(u64, u64)>) + Sync),
    /// The legal-entity register, for records that carry only a legacy code.
    pub register: Option<&'a crate::register::Register>,
    /// A backfill's window of decision dates: rows outside it are passed over, and the
    /// feed's records inside it that the source no longer has leave the snapshot.
    pub window: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    /// The position an earlier run recorded for this feed's source, to resume after.
    pub position: Option<String>,
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
                raw.insert(key, serde_json::Value::String(v.to_string()));
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

/// Threads that map, validate and hash rows in parallel (the machine has 2 cores; the
/// reader and the writer threads share them).
const MAPPERS: usize = 2;

/// One row after mapping: a valid row's identity (its values went into the batch's
/// spill columns), a quarantined row, or a row outside a backfill's window.
enum MappedRow {
    Good(GoodRow),
    Bad(RawRow, RowProblem),
    /// A backfill passes over rows outside its window.
    OutsideWindow,
}

/// What the dedupe index and the counts need of a valid row.
struct GoodRow {
    id: [u8; 16],
    version: [u8; 16],
    /// Update time in seconds (`i64::MIN`: none).
    updated: i64,
    /// A credit code with an authority / type pair outside the published table.
    unknown_type: bool,
    /// For the register's feed: (credit code, organization code, registration number).
    register: Option<(String, Option<String>, Option<String>)>,
}

/// A month's valid rows of one batch, in file order, as snapshot columns; `positions`
/// are the rows' places in the batch (the read order is completed on the main thread).
struct SpillPart {
    month: String,
    columns: RecordBatch,
    positions: Vec<u32>,
}

/// A batch after mapping, with its place in the read order.
struct MappedBatch {
    no: u64,
    unit: Arc<InputUnit>,
    rows: Vec<MappedRow>,
    parts: Vec<SpillPart>,
}

/// What every row of one ingestion shares.
struct MapContext<'a> {
    feed: &'a Feed,
    register: Option<&'a crate::register::Register>,
    window: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    run_id: &'a str,
    spill_schema: &'a SchemaRef,
    uscc_fields: &'a [usize],
}

/// A row's partition as a number: the bytes of [`snapshot::month_of`]'s `YYYY-MM`, in
/// the same order, without a string a row.
fn month_key(decision_date: Option<&str>) -> u64 {
    match decision_date {
        Some(d) if d.len() >= 7 && d.as_bytes()[4] == b'-' => {
            let mut key = [0u8; 8];
            key[1..].copy_from_slice(&d.as_bytes()[..7]);
            u64::from_be_bytes(key)
        }
        _ => u64::MAX,
    }
}

/// Maps, validates and hashes one batch and builds its spill columns (runs on a mapper
/// thread, so the main thread only orders, counts and dedupes).
fn map_batch(cx: &MapContext<'_>, no: u64, batch: RawBatch) -> Result<MappedBatch, IngestError> {
    let feed = cx.feed;
    let binding: Binding = feed.bind(&batch.unit)?;
    let ds = &feed.dataset;
    let in_window = |m: &crate::mapping::Mapped<'_>| match (cx.window, ds.decision_date) {
        (Some((from, to)), Some(f)) => chrono::NaiveDate::parse_from_str(&m.values[f], "%Y-%m-%d")
            .is_ok_and(|d| d >= from && d <= to),
        _ => true,
    };
    let is_register = ds.code == crate::register::REGISTER_DATASET;
    let mut rows = Vec::with_capacity(batch.rows.len());
    // (month, position, line, mapped, id, version) of the valid rows.
    let mut good = Vec::with_capacity(batch.rows.len());
    for (pos, row) in batch.rows.iter().enumerate() {
        let m = match feed.map_row(&binding, row, cx.register) {
            Ok(m) if !in_window(&m) => {
                rows.push(MappedRow::OutsideWindow);
                continue;
            }
            Ok(m) => m,
            Err(p) => {
                rows.push(MappedRow::Bad(row.clone(), p));
                continue;
            }
        };
        let id = record::record_id_bytes(ds, &m.values);
        let version = record::version_bytes(ds, &m.values);
        let unknown_type = cx.uscc_fields.iter().any(|f| {
            let v: &str = &m.values[*f];
            !v.is_empty() && v != crate::ids::USCC_PLACEHOLDER && !crate::ids::uscc_known_type(v)
        });
        let register = is_register.then(|| {
            let v = |code: &str| {
                ds.position(code)
                    .map(|i| m.values[i].to_string())
                    .filter(|x| !x.is_empty())
            };
            (
                v("FR_SHXYM").unwrap_or_default(),
                v("FR_ZZJG"),
                v("FR_GSZC"),
            )
        });
        rows.push(MappedRow::Good(GoodRow {
            id,
            version,
            updated: m
                .updated_at
                .map(|t| t.and_utc().timestamp())
                .unwrap_or(i64::MIN),
            unknown_type,
            register,
        }));
        let month = month_key(ds.decision_date.map(|f| m.values[f].as_ref()));
        good.push((month, pos as u32, row.line, m, id, version));
    }
    // One set of columns for the whole batch, its rows grouped by month (in file order
    // within a month); each month's part is a zero-copy slice of it.
    good.sort_by_key(|g| g.0);
    let file = batch.unit.display_name();
    let from = snapshot::Provenance {
        feed: &feed.name,
        source_unit: &feed.source_unit,
        source_file: &file,
        run_id: cx.run_id,
    };
    let mut field_bytes = vec![0usize; ds.fields.len()];
    for (_, _, _, m, _, _) in &good {
        for (total, v) in field_bytes.iter_mut().zip(&m.values) {
            *total += v.len();
        }
    }
    let mut columns =
        snapshot::SnapshotRows::sized(snapshot::Layout::Spill, good.len(), &from, &field_bytes);
    for (_, _, line, m, id, version) in &good {
        columns.push(
            &snapshot::RowIdentity {
                record_id: id,
                version,
                updated_at: m.updated_at,
                source_line: *line,
            },
            &from,
            &m.values,
        );
    }
    let all = columns.finish(cx.spill_schema);
    let mut parts: Vec<SpillPart> = Vec::new();
    let mut start = 0;
    while start < good.len() {
        let key = good[start].0;
        let end = start + good[start..].partition_point(|g| g.0 == key);
        let first = &good[start].3;
        parts.push(SpillPart {
            month: snapshot::month_of(ds.decision_date.map(|f| first.values[f].as_ref())),
            columns: all.slice(start, end - start),
            positions: good[start..end].iter().map(|g| g.1).collect(),
        });
        start = end;
    }
    Ok(MappedBatch {
        no,
        unit: batch.unit,
        rows,
        parts,
    })
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
        already_read_sizes: opts.already_read_sizes.clone(),
        base_dir: opts.base_dir.to_path_buf(),
        feed: feed.name.clone(),
        position: opts.position.clone(),
    };
    let mut source = feed.source.build(&cx)?;
    let bytes = source.progress();
    let schema = snapshot::arrow_schema(&ds);
    let spill_schema = snapshot::spill_schema(&schema);
    let scratch = store.scratch_dir();
    std::fs::create_dir_all(&scratch).map_err(|source| SnapshotError::Io {
        path: scratch.clone(),
        source,
    })?;
    // Good rows spill to one Arrow IPC file per decision month, so the snapshot's
    // month partitions can be rewritten one at a time.
    let spill_dir = scratch.join(format!("{}-{}", opts.run_id, feed.name));
    std::fs::create_dir_all(&spill_dir).map_err(|source| SnapshotError::Io {
        path: spill_dir.clone(),
        source,
    })?;

    let started = std::time::Instant::now();
    let mut counts = FeedCounts::default();
    let mut index = DedupeIndex::default();
    let mut quarantine = Quarantine {
        rows: Vec::new(),
        writer: None,
        path: store.quarantine_file(&feed.name, opts.run_id),
        dry_run: opts.dry_run,
    };
    let mut rows_per_file: HashMap<PathBuf, u64> = HashMap::new();
    let mut rows_before: u64 = 0;
    let mut reserved = false;
    let uscc_fields: Vec<usize> = ds
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.ty == crate::schema::FieldType::Uscc)
        .map(|(i, _)| i)
        .collect();
    let mut register_entries =
        (ds.code == crate::register::REGISTER_DATASET).then(crate::register::Register::default);

    // Pass 1 as a pipeline: a reader thread decodes and parses, MAPPERS threads map,
    // validate and hash, this thread puts batches back in file order and dedupes, and a
    // writer thread spills. Channels are bounded, so memory stays a few batches deep.
    let map_cx = MapContext {
        feed,
        register: opts.register,
        window: opts.window,
        run_id: opts.run_id,
        spill_schema: &spill_schema,
        uscc_fields: &uscc_fields,
    };
    let (source, spilled) = std::thread::scope(|scope| -> Result<_, IngestError> {
        let (raw_tx, raw_rx) =
            std::sync::mpsc::sync_channel::<Result<(u64, RawBatch), ConnectorError>>(2 * MAPPERS);
        let reader = scope.spawn(move || {
            let mut no = 0;
            loop {
                let msg = match source.next_batch() {
                    Ok(Some(b)) => Ok((no, b)),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                no += 1;
                let failed = msg.is_err();
                if raw_tx.send(msg).is_err() || failed {
                    break;
                }
            }
            source
        });
        let raw_rx = Arc::new(std::sync::Mutex::new(raw_rx));

        let (mapped_tx, mapped_rx) =
            std::sync::mpsc::sync_channel::<Result<MappedBatch, IngestError>>(MAPPERS);
        for _ in 0..MAPPERS {
            let (raw_rx, mapped_tx) = (raw_rx.clone(), mapped_tx.clone());
            let map_cx = &map_cx;
            scope.spawn(move || loop {
                let next = raw_rx.lock().expect("not poisoned").recv();
                let Ok(msg) = next else { break };
                let out = msg
                    .map_err(IngestError::from)
                    .and_then(|(no, b)| map_batch(map_cx, no, b));
                if mapped_tx.send(out).is_err() {
                    break;
                }
            });
        }
        drop(mapped_tx);
        let (spill_tx, spill_rx) = std::sync::mpsc::sync_channel::<Vec<(String, RecordBatch)>>(4);
        let (spill_dir, spill_schema_w) = (spill_dir.clone(), spill_schema.clone());
        let writer = scope.spawn(move || -> Result<Vec<String>, SnapshotError> {
            let mut files: BTreeMap<String, arrow_ipc::writer::FileWriter<File>> = BTreeMap::new();
            for parts in spill_rx {
                for (month, b) in parts {
                    if !files.contains_key(&month) {
                        let path = spill_dir.join(format!("{month}.arrows"));
                        let f = File::create(&path).map_err(|source| SnapshotError::Io {
                            path: path.clone(),
                            source,
                        })?;
                        let w = arrow_ipc::writer::FileWriter::try_new(f, &spill_schema_w)
                            .map_err(|e| SnapshotError::Format {
                                path: path.clone(),
                                message: e.to_string(),
                            })?;
                        files.insert(month.clone(), w);
                    }
                    let w = files.get_mut(&month).expect("opened above");
                    w.write(&b).map_err(|e| SnapshotError::Format {
                        path: spill_dir.clone(),
                        message: e.to_string(),
                    })?;
                }
            }
            for w in files.values_mut() {
                w.finish().map_err(|e| SnapshotError::Format {
                    path: spill_dir.clone(),
                    message: e.to_string(),
                })?;
            }
            Ok(files.into_keys().collect())
        });

        let mut waiting: std::collections::BTreeMap<u64, MappedBatch> =
            std::collections::BTreeMap::new();
        let mut next_no = 0u64;
        for msg in mapped_rx {
            let mb = msg?;
            waiting.insert(mb.no, mb);
            while let Some(batch) = waiting.remove(&next_no) {
                next_no += 1;
                let unit = batch.unit.clone();
                *rows_per_file.entry(unit.path.clone()).or_default() += batch.rows.len() as u64;
                // Read order: rows of earlier batches, then the place in this one.
                let base = rows_before;
                rows_before += batch.rows.len() as u64;
                for (pos, row) in batch.rows.into_iter().enumerate() {
                    let seq = base + pos as u64 + 1;
                    match row {
                        MappedRow::OutsideWindow => counts.outside_window += 1,
                        MappedRow::Bad(raw, p) => {
                            counts.read += 1;
                            counts.quarantined += 1;
                            *counts
                                .quarantined_by_reason
                                .entry(p.reason.clone())
                                .or_default() += 1;
                            quarantine.push(&unit, raw, p);
                        }
                        MappedRow::Good(g) => {
                            counts.read += 1;
                            if g.unknown_type {
                                counts.uscc_unknown_type += 1;
                            }
                            index.offer(
                                g.id,
                                Winner {
                                    updated: g.updated,
                                    seq,
                                    version: g.version,
                                },
                            );
                            if let (Some(reg), Some((code, org, regno))) =
                                (register_entries.as_mut(), g.register)
                            {
                                if !code.is_empty() {
                                    reg.insert(&code, org.as_deref(), regno.as_deref());
                                }
                            }
                        }
                    }
                }
                quarantine.flush(feed, opts.run_id)?;
                if !batch.parts.is_empty() {
                    let parts: Vec<(String, RecordBatch)> = batch
                        .parts
                        .into_iter()
                        .map(|p| {
                            let seqs: arrow_array::UInt64Array = p
                                .positions
                                .iter()
                                .map(|pos| base + u64::from(*pos) + 1)
                                .collect::<Vec<u64>>()
                                .into();
                            let mut cols = p.columns.columns().to_vec();
                            cols.push(Arc::new(seqs));
                            (
                                p.month,
                                RecordBatch::try_new(spill_schema.clone(), cols)
                                    .expect("spill columns match"),
                            )
                        })
                        .collect();
                    if spill_tx.send(parts).is_err() {
                        break;
                    }
                }
                (opts.progress)(counts.read, bytes.as_ref().map(|b| b.get()));
                // Once enough batches show the rows per byte, reserve the index for the
                // whole input, with a margin for the batches read but still in flight.
                if !reserved && rows_before >= 64 * connectors::BATCH_ROWS as u64 {
                    reserved = true;
                    if let Some((done, total)) = bytes.as_ref().map(|b| b.get()) {
                        if done > 0 && total >= done {
                            let per_byte = index.offered() as f64 / done as f64;
                            index.expect_rows((per_byte * total as f64 * 1.15) as usize);
                        }
                    }
                }
                crate::crashpoint::hit("ingest.batch");
            }
        }
        drop(spill_tx);
        let spilled = writer.join().expect("the spill writer does not panic");
        let source = reader.join().expect("the reader does not panic");
        Ok((source, spilled))
    })?;
    let spilled_months = spilled?;
    tracing::info!(feed = %feed.name, rows = counts.read, seconds = started.elapsed().as_secs_f64(), "read, mapped and spilled");
    let files: Vec<FileRead> = source
        .completed()
        .iter()
        .map(|u| FileRead {
            path: u.display_name(),
            sha256: u.sha256.clone(),
            rows: rows_per_file.get(&u.path).copied().unwrap_or(0),
            bytes: u.bytes,
            encoding: u.encoding.to_string(),
        })
        .collect();
    let checkpoint = source.checkpoint();
    let skipped_files = source
        .skipped()
        .iter()
        .map(|p| p.display().to_string())
        .collect();

    // Against the previous snapshot.
    index.resolve();
    counts.superseded = index.superseded();
    let mut against = crate::dedupe::AgainstPrevious::default();
    let mut replaced_months: HashSet<String> = HashSet::new();
    // Only the snapshot's copies of this run's winners matter: the scanning threads pick
    // them out, then they are compared here in partition order. A run that read nothing
    // new has nothing to compare.
    if !index.is_empty() {
        let hits = std::sync::Mutex::new(Vec::new());
        store.scan_identity(&ds.code, &|month, id, updated, version| {
            if index.has_winner(id) {
                let hit = (month.to_string(), *id, updated(), version());
                hits.lock().expect("not poisoned").push(hit);
            }
        })?;
        let mut hits = hits.into_inner().expect("not poisoned");
        hits.sort_by(|a, b| a.0.cmp(&b.0));
        for (month, id, updated, version) in hits {
            let before = against.replaced.len();
            index.against_previous(&mut against, &id, &|| updated, &version);
            if against.replaced.len() > before {
                replaced_months.insert(month);
            }
        }
    }
    // Records of this feed that the source no longer has leave the snapshot (and are
    // withdrawn upstream): within a backfill's window, or — for a feed whose every file
    // is a full export — all of them, once a new export has been read.
    let vanish_scope: Option<Option<(chrono::NaiveDate, chrono::NaiveDate)>> = match opts.window {
        Some(w) => Some(Some(w)),
        None if feed.full_export && !files.is_empty() => Some(None),
        None => None,
    };
    if let Some(window) = vanish_scope {
        let date_field = ds.decision_date.map(|f| ds.fields[f].code.clone());
        let months = window.map(|(from, to)| {
            (
                from.format("%Y-%m").to_string(),
                to.format("%Y-%m").to_string(),
            )
        });
        for (month, path) in store.data_files(&ds.code) {
            if months
                .as_ref()
                .is_some_and(|(first, last)| &month < first || &month > last)
            {
                continue;
            }
            let mut columns = vec!["record_id", "feed"];
            columns.extend(date_field.as_deref());
            snapshot::read_batches(&path, Some(&columns), |b| {
                let ids = snapshot::str_col(&b, "record_id").expect("record_id");
                let feeds = snapshot::str_col(&b, "feed").expect("feed");
                let dates = date_field.as_deref().and_then(|c| snapshot::str_col(&b, c));
                for i in 0..b.num_rows() {
                    let in_scope = match (window, dates) {
                        (Some((from, to)), Some(d)) => {
                            chrono::NaiveDate::parse_from_str(d.value(i), "%Y-%m-%d")
                                .is_ok_and(|d| d >= from && d <= to)
                        }
                        (Some(_), None) => false,
                        (None, _) => true,
                    };
                    let id = pack_id(ids.value(i));
                    if in_scope
                        && feeds.value(i) == feed.name
                        && !index.contains(&id)
                        && against.replaced.insert(id)
                    {
                        counts.vanished += 1;
                        replaced_months.insert(month.clone());
                    }
                }
                Ok(())
            })?;
        }
    }
    counts.superseded += against.older;
    counts.unchanged = against.unchanged;
    counts.changed = against.replaced.len() as u64 - counts.vanished;
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
    if (!index.is_empty() || counts.vanished > 0) && !opts.dry_run {
        let mut months: Vec<String> = spilled_months;
        months.extend(replaced_months);
        months.sort();
        months.dedup();
        write_snapshot(
            store,
            feed,
            opts.run_id,
            &schema,
            &SpillFiles {
                dir: &spill_dir,
                from: snapshot::Provenance {
                    feed: &feed.name,
                    source_unit: &feed.source_unit,
                    source_file: "",
                    run_id: opts.run_id,
                },
                months: &months,
            },
            &index,
            &against.replaced,
        )?;
        snapshot_written = true;
    }
    let _ = std::fs::remove_dir_all(&spill_dir);
    tracing::info!(feed = %feed.name, seconds = started.elapsed().as_secs_f64(), snapshot_written, "feed ingested");
    Ok(IngestOutput {
        counts,
        files,
        skipped_files,
        quarantine_file,
        snapshot_written,
        register_entries,
        checkpoint,
    })
}

/// A partition rewritten: its month, and its manifest entry (`None`: it emptied).
type Written = (String, Option<snapshot::PartitionEntry>);

/// Partition files written at once (the machine has 2 cores).
const PARTITION_WRITERS: usize = 2;

/// A run's spill: one Arrow IPC file per decision month.
struct SpillFiles<'a> {
    dir: &'a Path,
    /// The rows' feed, source unit and run (the spill leaves them out).
    from: snapshot::Provenance<'a>,
    /// Months to rewrite: those with spilled rows and those holding replaced records.
    months: &'a [String],
}

/// Rewrites the affected month partitions: each one's previous rows minus the replaced
/// records, then this run's winners for that month; then the manifest.
fn write_snapshot(
    store: &SnapshotStore,
    feed: &Feed,
    run_id: &str,
    schema: &SchemaRef,
    spill: &SpillFiles<'_>,
    index: &DedupeIndex,
    replaced: &HashSet<[u8; 16]>,
) -> Result<(), SnapshotError> {
    let ds = &feed.dataset.code;
    let mut manifest = store.manifest(ds).unwrap_or_default();
    // Partitions written before manifests listed them are taken from the directory.
    if manifest.partitions.is_empty() {
        for (month, _) in store.data_files(ds) {
            manifest.partitions.push(snapshot::PartitionEntry {
                month,
                ..Default::default()
            });
        }
    }
    // Partitions are independent: two writers encode them side by side.
    let queue = std::sync::Mutex::new(spill.months.iter());
    let results: Vec<Result<Vec<Written>, SnapshotError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PARTITION_WRITERS)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let Some(month) = queue.lock().expect("not poisoned").next() else {
                            break;
                        };
                        let entry = write_partition(
                            store, ds, month, run_id, schema, spill, index, replaced,
                        )?;
                        done.push((month.clone(), entry));
                    }
                    Ok(done)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a partition writer does not panic"))
            .collect()
    });
    for r in results {
        for (month, entry) in r? {
            manifest.partitions.retain(|p| p.month != month);
            if let Some(e) = entry {
                manifest.partitions.push(e);
            }
        }
    }
    crate::crashpoint::hit("snapshot.published");
    manifest.partitions.sort_by(|a, b| a.month.cmp(&b.month));
    manifest.dataset = ds.clone();
    manifest.run_id = run_id.to_string();
    manifest.written_at = chrono::Utc::now().to_rfc3339();
    manifest.rows = manifest.partitions.iter().map(|p| p.rows).sum();
    store.write_manifest(&manifest)
}

#[allow(clippy::too_many_arguments)]
fn write_partition(
    store: &SnapshotStore,
    ds: &str,
    month: &str,
    run_id: &str,
    schema: &SchemaRef,
    spill: &SpillFiles<'_>,
    index: &DedupeIndex,
    replaced: &HashSet<[u8; 16]>,
) -> Result<Option<snapshot::PartitionEntry>, SnapshotError> {
    let dest = store.partition_file(ds, month);
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
        snapshot::read_batches(&dest, None, |b| {
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
    let spill_path = spill.dir.join(format!("{month}.arrows"));
    if spill_path.exists() {
        let spill_err = |e: arrow_schema::ArrowError| SnapshotError::Format {
            path: spill_path.clone(),
            message: e.to_string(),
        };
        let file = File::open(&spill_path).map_err(|source| SnapshotError::Io {
            path: spill_path.clone(),
            source,
        })?;
        let reader = arrow_ipc::reader::FileReader::try_new(file, None).map_err(spill_err)?;
        // SAFETY: the spill was written moments ago by this process's own IPC writer from
        // arrays that were valid when built; validating every string again cost a sixth
        // of the snapshot pass.
        let reader = unsafe { reader.with_skip_validation(true) };
        for b in reader {
            let b = b.map_err(spill_err)?;
            let seqs = snapshot::u64_col(&b, "_seq").expect("spill has _seq");
            let keep: Vec<bool> = (0..b.num_rows())
                .map(|i| index.is_winner(seqs.value(i)))
                .collect();
            let kept =
                snapshot::spill_to_snapshot(&snapshot::filter(&b, keep), schema, &spill.from);
            *by_feed.entry(spill.from.feed.to_string()).or_default() += kept.num_rows() as u64;
            out.write(&kept)?;
        }
    }
    if out.rows() == 0 {
        // Every record of the month moved or was replaced elsewhere: the partition goes.
        out.discard();
        if let Some(dir) = dest.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        return Ok(None);
    }
    let rows = out.publish()?;
    Ok(Some(snapshot::PartitionEntry {
        month: month.to_string(),
        file: format!("month={month}/data.parquet"),
        rows,
        rows_by_feed: by_feed,
        run_id: run_id.to_string(),
    }))
}
