//! Pass 1 of an ingestion: the source's rows mapped, validated and hashed, refused rows
//! to the quarantine, good rows to the run's spill, and the dedupe index offered every
//! good row. A pipeline of threads: a reader decodes and parses, [`MAPPERS`] threads run
//! the stages ([`map_batch`]), this thread puts batches back in file order, counts and
//! dedupes, and a writer thread spills. Channels are bounded, so memory stays a few
//! batches deep.

use super::{IngestError, IngestOptions};
use crate::domain::accounting::{FeedCounts, FileRead};
use crate::domain::identity;
use crate::domain::reasons::Reason;
use crate::domain::schema::FieldType;
use crate::mapping::Feed;
use crate::snapshot::quarantine::Quarantine;
use crate::snapshot::spill::SpillDir;
use crate::snapshot::{self, SnapshotStore};
use crate::stages::dedupe::{DedupeIndex, Winner};
use crate::stages::map::{Binding, RowProblem};
use crate::stages::resolve::{Register, REGISTER_DATASET};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use connectors::{ConnectorError, InputUnit, RawBatch, RawRow, Source};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What pass 1 leaves for the comparison with the previous snapshot and the rewrite.
pub(super) struct ReadPass {
    pub counts: FeedCounts,
    /// The run's dedupe index, resolved (its winners known).
    pub index: DedupeIndex,
    pub quarantine: Quarantine,
    pub register_entries: Option<Register>,
    pub spilled_months: Vec<String>,
    pub files: Vec<FileRead>,
    pub skipped_files: Vec<String>,
    pub set_aside: Vec<connectors::SetAside>,
    pub warnings: Vec<String>,
    pub documents: std::collections::HashSet<String>,
    pub checkpoint: Option<String>,
}

/// Counts a quarantined row under its reason.
fn count_reason(counts: &mut FeedCounts, reason: Reason) {
    match counts.quarantined_by_reason.get_mut(reason.code()) {
        Some(n) => *n += 1,
        None => {
            counts
                .quarantined_by_reason
                .insert(reason.code().to_string(), 1);
        }
    }
}

/// Threads that map, validate and hash rows in parallel (the machine has 2 cores; the
/// reader and the writer threads share them).
pub const MAPPERS: usize = 2;

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
    /// Document numbers of the batch's valid rows that are open problems.
    documents: Vec<String>,
}

/// What every row of one ingestion shares.
struct MapContext<'a> {
    feed: &'a Feed,
    register: Option<&'a Register>,
    window: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    run_id: &'a str,
    spill_schema: &'a SchemaRef,
    uscc_fields: &'a [usize],
    open_documents: &'a super::OpenDocuments,
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
    let in_window = |values: &[Cow<'_, str>]| match (cx.window, ds.decision_date) {
        (Some((from, to)), Some(f)) => chrono::NaiveDate::parse_from_str(&values[f], "%Y-%m-%d")
            .is_ok_and(|d| d >= from && d <= to),
        _ => true,
    };
    let is_register = ds.code == REGISTER_DATASET;
    let document_at = ds.document_position();
    // Waited for here, at the first batch, while the reader reads on.
    let open_documents = match document_at {
        Some(_) => Some(cx.open_documents.get()?).filter(|d| !d.is_empty()),
        None => None,
    };
    let mut documents = Vec::new();
    let mut rows = Vec::with_capacity(batch.rows.len());
    // The valid rows' values, one row after another (`width` a row).
    let width = ds.fields.len();
    let mut values: Vec<Cow<'_, str>> = Vec::with_capacity(batch.rows.len() * width);
    // (month, position, line, where its values start in `values`, update time, id, version)
    // of the valid rows.
    let mut good = Vec::with_capacity(batch.rows.len());
    for (pos, row) in batch.rows.iter().enumerate() {
        let start = values.len();
        let updated_at = match feed.map_row_into(&binding, row, cx.register, &mut values) {
            Ok(_) if !in_window(&values[start..]) => {
                values.truncate(start);
                rows.push(MappedRow::OutsideWindow);
                continue;
            }
            Ok(updated_at) => updated_at,
            Err(p) => {
                // A backfill's counts cover its window: a refused row dated outside it
                // is passed over, not quarantined again.
                let outside = cx.window.is_some_and(|(from, to)| {
                    feed.raw_decision_date(&binding, row)
                        .is_some_and(|d| d < from || d > to)
                });
                rows.push(if outside {
                    MappedRow::OutsideWindow
                } else {
                    MappedRow::Bad(row.clone(), p)
                });
                continue;
            }
        };
        let m = &values[start..];
        if let Some(d) = document_at
            .map(|i| &m[i])
            .filter(|d| open_documents.is_some_and(|open| open.contains(d.as_ref())))
        {
            documents.push(d.to_string());
        }
        let id = identity::record_id_bytes(ds, m);
        let version = identity::version_bytes(ds, m);
        let unknown_type = cx.uscc_fields.iter().any(|f| {
            let v: &str = &m[*f];
            !v.is_empty()
                && v != crate::domain::ids::USCC_PLACEHOLDER
                && !crate::domain::ids::uscc_known_type(v)
        });
        let register = is_register.then(|| {
            let v = |code: &str| {
                ds.position(code)
                    .map(|i| m[i].to_string())
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
            updated: updated_at
                .map(|t| t.and_utc().timestamp())
                .unwrap_or(i64::MIN),
            unknown_type,
            register,
        }));
        let month = month_key(ds.decision_date.map(|f| m[f].as_ref()));
        good.push((month, pos as u32, row.line, start, updated_at, id, version));
    }
    // One set of columns for the whole batch, its rows grouped by month (in file order
    // within a month); each month's part is a zero-copy slice of it. The order is
    // found by sorting (month, index) pairs, not the rows' whole tuples.
    let mut order: Vec<(u64, u32)> = (0u32..).zip(&good).map(|(i, g)| (g.0, i)).collect();
    order.sort_unstable();
    let in_order = |k: usize| &good[order[k].1 as usize];
    let file = batch.unit.display_name();
    let from = snapshot::Provenance {
        feed: &feed.name,
        source_unit: &feed.source_unit,
        source_file: &file,
        run_id: cx.run_id,
    };
    let row_values = |start: usize| &values[start..start + width];
    let mut field_bytes = vec![0usize; width];
    for g in &good {
        for (total, v) in field_bytes.iter_mut().zip(row_values(g.3)) {
            *total += v.len();
        }
    }
    let mut columns =
        snapshot::SnapshotRows::sized(snapshot::Layout::Spill, good.len(), &from, &field_bytes);
    let in_spill_order: Vec<_> = (0..order.len())
        .map(|k| {
            let &(_, _, line, start, updated_at, ref id, ref version) = in_order(k);
            (
                snapshot::RowIdentity {
                    record_id: id,
                    version,
                    updated_at,
                    source_line: line,
                },
                row_values(start),
            )
        })
        .collect();
    columns.push_rows(&in_spill_order, &from);
    let all = columns.finish(cx.spill_schema);
    let mut parts: Vec<SpillPart> = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let key = order[start].0;
        let end = start + order[start..].partition_point(|o| o.0 == key);
        let first = row_values(in_order(start).3);
        parts.push(SpillPart {
            month: snapshot::month_of(ds.decision_date.map(|f| first[f].as_ref())),
            columns: all.slice(start, end - start),
            positions: (start..end).map(|k| in_order(k).1).collect(),
        });
        start = end;
    }
    Ok(MappedBatch {
        no,
        unit: batch.unit,
        rows,
        parts,
        documents,
    })
}

/// What the ordering thread accumulates over the batches, in read order.
struct Collector<'a> {
    feed: &'a Feed,
    run_id: &'a str,
    spill_schema: SchemaRef,
    counts: FeedCounts,
    index: DedupeIndex,
    quarantine: Quarantine,
    register_entries: Option<Register>,
    rows_per_file: HashMap<PathBuf, u64>,
    /// Document numbers of the valid rows read that are open problems.
    documents: std::collections::HashSet<String>,
    /// Rows of the batches taken so far.
    rows_before: u64,
    /// Whether the dedupe index was sized for the whole input yet.
    reserved: bool,
    /// Where the dedupe index spills.
    scratch: PathBuf,
}

impl Collector<'_> {
    /// Counts one batch's rows, quarantines the bad ones, offers the good ones to the
    /// dedupe index, and returns its spill parts with their read-order numbers.
    fn take(&mut self, batch: MappedBatch) -> Result<Vec<(String, RecordBatch)>, IngestError> {
        let unit = batch.unit.clone();
        self.documents.extend(batch.documents);
        *self.rows_per_file.entry(unit.path.clone()).or_default() += batch.rows.len() as u64;
        // Read order: rows of earlier batches, then the place in this one.
        let base = self.rows_before;
        self.rows_before += batch.rows.len() as u64;
        let counts = &mut self.counts;
        for (pos, row) in batch.rows.into_iter().enumerate() {
            let seq = base + pos as u64 + 1;
            match row {
                MappedRow::OutsideWindow => counts.outside_window += 1,
                MappedRow::Bad(raw, p) => {
                    counts.read += 1;
                    counts.quarantined += 1;
                    count_reason(counts, p.reason);
                    self.quarantine.push(&unit, raw, p);
                }
                MappedRow::Good(g) => {
                    counts.read += 1;
                    if g.unknown_type {
                        counts.uscc_unknown_type += 1;
                    }
                    self.index
                        .offer(
                            g.id,
                            Winner {
                                updated: g.updated,
                                seq,
                                version: g.version,
                            },
                        )
                        .map_err(|source| crate::snapshot::SnapshotError::Io {
                            path: self.scratch.clone(),
                            source,
                        })?;
                    if let (Some(reg), Some((code, org, regno))) =
                        (self.register_entries.as_mut(), g.register)
                    {
                        if !code.is_empty() {
                            reg.insert(&code, org.as_deref(), regno.as_deref());
                        }
                    }
                }
            }
        }
        self.quarantine.flush(self.feed, self.run_id)?;
        batch
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
                let batch = RecordBatch::try_new(self.spill_schema.clone(), cols)
                    .map_err(|e| IngestError::Internal(format!("spill columns: {e}")))?;
                Ok((p.month, batch))
            })
            .collect()
    }

    /// Once enough batches show the rows per byte, reserves the index for the whole
    /// input, with a margin for the batches read but still in flight.
    fn reserve(&mut self, bytes: Option<(u64, u64)>) {
        if self.reserved || self.rows_before < 64 * connectors::BATCH_ROWS as u64 {
            return;
        }
        self.reserved = true;
        if let Some((done, total)) = bytes {
            if done > 0 && total >= done {
                let per_byte = self.index.offered() as f64 / done as f64;
                self.index
                    .expect_rows((per_byte * total as f64 * 1.15) as usize);
            }
        }
    }
}

/// Runs pass 1 over `source` (see the module comment).
pub(super) fn read(
    feed: &Feed,
    mut source: Box<dyn Source>,
    store: &SnapshotStore,
    spill: &SpillDir,
    opts: &IngestOptions<'_>,
) -> Result<ReadPass, IngestError> {
    let ds = feed.dataset.clone();
    let bytes = source.progress();
    let started = std::time::Instant::now();
    let uscc_fields: Vec<usize> = ds
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.ty == FieldType::Uscc)
        .map(|(i, _)| i)
        .collect();
    let mut collector = Collector {
        feed,
        run_id: opts.run_id,
        spill_schema: spill.schema().clone(),
        counts: FeedCounts::default(),
        index: DedupeIndex::spilling(spill.dir().join("dedupe"), opts.dedupe_budget),
        quarantine: Quarantine::new(store.quarantine_file(&feed.name, opts.run_id), opts.dry_run),
        register_entries: (ds.code == REGISTER_DATASET).then(Register::default),
        rows_per_file: HashMap::new(),
        documents: Default::default(),
        rows_before: 0,
        reserved: false,
        scratch: spill.dir().join("dedupe"),
    };
    let map_cx = MapContext {
        feed,
        register: opts.register,
        window: opts.window,
        run_id: opts.run_id,
        spill_schema: spill.schema(),
        uscc_fields: &uscc_fields,
        open_documents: opts.open_documents,
    };
    let (source, spilled) = std::thread::scope(|scope| -> Result<_, IngestError> {
        let (raw_tx, raw_rx) =
            std::sync::mpsc::sync_channel::<Result<(u64, RawBatch), ConnectorError>>(2 * MAPPERS);
        let cancel = opts.cancel;
        let reader = scope.spawn(move || {
            let mut no = 0;
            loop {
                let stop = cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed));
                let msg = match if stop {
                    Err(ConnectorError::Cancelled)
                } else {
                    source.next_batch()
                } {
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
                let next = match raw_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => break,
                };
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
        let writer = scope.spawn(move || spill.write_from(spill_rx));

        // Batches come back from the mappers in any order: put them back in read order.
        let mut waiting: std::collections::BTreeMap<u64, MappedBatch> =
            std::collections::BTreeMap::new();
        let mut next_no = 0u64;
        'batches: for msg in mapped_rx {
            let mb = msg?;
            waiting.insert(mb.no, mb);
            while let Some(batch) = waiting.remove(&next_no) {
                next_no += 1;
                let parts = collector.take(batch)?;
                if !parts.is_empty() && spill_tx.send(parts).is_err() {
                    break 'batches;
                }
                let progress = bytes.as_ref().map(|b| b.get());
                (opts.progress)(collector.counts.read, progress);
                collector.reserve(progress);
                crate::crashpoint::hit("ingest.batch");
            }
        }
        drop(spill_tx);
        // The index's winners are found while the spill writer writes its last parts.
        collector
            .index
            .resolve()
            .map_err(|source| crate::snapshot::SnapshotError::Io {
                path: collector.scratch.clone(),
                source,
            })?;
        let spilled = writer
            .join()
            .map_err(|_| IngestError::Internal("the spill writer panicked".into()))?;
        let source = reader
            .join()
            .map_err(|_| IngestError::Internal("the reader panicked".into()))?;
        Ok((source, spilled))
    })?;
    let spilled_months = spilled?;
    // Whether or not a mapper needed them: a run that could not read its open problems
    // stops the feed here, before its snapshot.
    opts.open_documents.get()?;
    let c = collector;
    tracing::info!(feed = %feed.name, rows = c.counts.read, seconds = started.elapsed().as_secs_f64(), "read, mapped and spilled");
    let files: Vec<FileRead> = source
        .completed()
        .iter()
        .map(|u| FileRead {
            path: u.display_name(),
            sha256: u.sha256.clone(),
            rows: c.rows_per_file.get(&u.path).copied().unwrap_or(0),
            bytes: u.bytes,
            encoding: u.encoding.to_string(),
        })
        .collect();
    Ok(ReadPass {
        counts: c.counts,
        index: c.index,
        quarantine: c.quarantine,
        register_entries: c.register_entries,
        spilled_months,
        files,
        skipped_files: source
            .skipped()
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        set_aside: source.set_aside(),
        warnings: source.warnings(),
        documents: c.documents,
        checkpoint: source.checkpoint(),
    })
}
