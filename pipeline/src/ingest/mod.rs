//! Ingesting one feed, in one direction: its source → the stages (map, resolve,
//! validate; [`read_pass`]) → the quarantine or the run's spill, the dedupe index
//! offered every good row → the comparison with the previous snapshot ([`previous`]) →
//! the rewritten partitions and manifest ([`crate::snapshot::rewrite`]). Two passes keep
//! memory flat: the first streams rows, the second streams the previous snapshot and
//! the spill into the new snapshot, keeping only winners.
//!
//! Every row read ends in exactly one of: the snapshot (kept: new, changed or
//! unchanged), the quarantine (with reason), or superseded by a newer row.

mod open_documents;
mod previous;
mod read_pass;

pub use open_documents::{OpenDocuments, OpenDocumentsSender};

use crate::domain::accounting::{FeedCounts, FileRead};
use crate::mapping::{Feed, MappingError};
use crate::snapshot::rewrite::{write_snapshot, SpillFiles};
use crate::snapshot::spill::SpillDir;
use crate::snapshot::{self, SnapshotError, SnapshotStore};
use crate::stages::resolve::Register;
use connectors::{ConnectorError, ReadContext};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

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
    /// A broken invariant of the pipeline itself (a thread that panicked).
    #[error("internal error: {0}")]
    Internal(String),
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
    /// Files set aside: they cannot be read at all (the other files were read).
    pub set_aside: Vec<connectors::SetAside>,
    /// What the source says an operator should know (rows it could not place).
    pub warnings: Vec<String>,
    /// The document numbers (文书号) of the valid rows read that are among
    /// [`IngestOptions::open_documents`]: those problems of the quarantine are corrected.
    pub valid_documents: std::collections::HashSet<String>,
    /// The quarantine file, when any row was quarantined.
    pub quarantine_file: Option<PathBuf>,
    /// Whether a new snapshot was published.
    pub snapshot_written: bool,
    /// For the legal-entity register's feed: the entities read, so the run's other feeds
    /// resolve legacy codes with them at once (a dry run included).
    pub register_entries: Option<Register>,
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
    pub register: Option<&'a Register>,
    /// A backfill's window of decision dates: rows outside it are passed over, and the
    /// feed's records inside it that the source no longer has leave the snapshot.
    pub window: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    /// The position an earlier run recorded for this feed's source, to resume after.
    pub position: Option<String>,
    /// Set when the run is cancelled: the read stops at the next batch and fails.
    pub cancel: Option<&'a std::sync::atomic::AtomicBool>,
    /// The document numbers of the feed's open problems: a valid row of one of them is
    /// noticed (the others are not kept, so memory does not grow with the input). They
    /// may still be on their way when the ingest starts.
    pub open_documents: &'a OpenDocuments,
    /// Dedupe entries held in memory before they spill to scratch
    /// ([`crate::stages::dedupe::DEFAULT_BUDGET`]: 48 MiB of them).
    pub dedupe_budget: usize,
    /// Row groups a month partition may hold and still be patched (0: rewrite whole).
    pub patch_row_groups: usize,
    /// Told the quarantine file as soon as it is published, before the snapshot is
    /// written, so its problems can be recorded meanwhile (not told on a dry run or
    /// when nothing was quarantined).
    pub quarantine_published: Option<tokio::sync::oneshot::Sender<PathBuf>>,
}
/// Rows a read pass must have offered for its freed memory to go back to the OS before
/// the encoding (see [`crate::memory`]).
const RETURN_FREED_AFTER_ROWS: usize = 100_000;

/// Ingests one feed. See the module comment for the passes.
pub fn ingest_feed(
    feed: &Feed,
    store: &SnapshotStore,
    opts: IngestOptions<'_>,
) -> Result<IngestOutput, IngestError> {
    let started = std::time::Instant::now();
    let ds = feed.dataset.clone();
    let cx = ReadContext {
        expected_columns: feed.expected_columns(),
        already_read: opts.already_read.clone(),
        already_read_sizes: opts.already_read_sizes.clone(),
        base_dir: opts.base_dir.to_path_buf(),
        feed: feed.name.clone(),
        position: opts.position.clone(),
    };
    let source = feed.source.build(&cx)?;
    let schema = snapshot::arrow_schema(&ds);
    let spill = SpillDir::create(store, opts.run_id, &feed.name, &schema)?;

    // Pass 1: read, map, validate, quarantine or spill, dedupe within the run.
    let read_pass::ReadPass {
        mut counts,
        mut index,
        quarantine,
        register_entries,
        spilled_months,
        files,
        skipped_files,
        set_aside,
        warnings,
        documents,
        checkpoint,
    } = read_pass::read(feed, source, store, &spill, &opts)?;
    // The quarantine is complete: published now, its problems are recorded while the
    // comparison and the snapshot's partitions go on.
    let quarantine_file = quarantine.publish()?;
    if let (Some(path), Some(tell), false) =
        (&quarantine_file, opts.quarantine_published, opts.dry_run)
    {
        // The runner gave up on the feed already when nobody listens.
        let _ = tell.send(path.clone());
    }

    // Against the previous snapshot (the read pass resolved the index).
    counts.superseded = index.superseded();
    let mut cmp = previous::compare(store, &ds.code, &mut index)?;
    let scope: previous::VanishScope = match opts.window {
        Some(w) => Some(Some(w)),
        None if feed.full_export && !files.is_empty() => Some(None),
        None => None,
    };
    previous::vanished(store, feed, &mut index, scope, &mut cmp)?;
    index.drop_lookups();
    // The read pass's buffers and the dedupe's lookups are free: back to the OS before
    // the partitions' encoding takes its own (a large run's peak was the two together).
    // A small run keeps them: the encoding reuses them instead of faulting in new pages.
    if index.offered() >= RETURN_FREED_AFTER_ROWS {
        crate::memory::return_freed();
    }
    counts.vanished = cmp.vanished;
    counts.superseded += cmp.against.older;
    counts.unchanged = cmp.against.unchanged;
    counts.changed = cmp.against.replaced.len() as u64 - counts.vanished;
    counts.new = index.len() as u64 - counts.changed;
    counts.kept = counts.new + counts.changed + counts.unchanged;

    tracing::debug!(feed = %feed.name, seconds = started.elapsed().as_secs_f64(), "compared with the previous snapshot");
    // Pass 2: publish.
    let mut snapshot_written = false;
    if (!index.is_empty() || counts.vanished > 0) && !opts.dry_run {
        let mut months: Vec<String> = spilled_months;
        months.extend(cmp.replaced_months.iter().cloned());
        months.sort();
        months.dedup();
        write_snapshot(
            store,
            feed,
            opts.run_id,
            &schema,
            &SpillFiles {
                spill: &spill,
                from: snapshot::Provenance {
                    feed: &feed.name,
                    source_unit: &feed.source_unit,
                    source_file: "",
                    run_id: opts.run_id,
                },
                months: &months,
                holding_replaced: &cmp.replaced_months,
                patch_row_groups: opts.patch_row_groups,
                located: cmp.located.as_ref(),
            },
            &index,
            &cmp.against.replaced,
        )?;
        snapshot_written = true;
    }
    spill.remove();
    tracing::info!(feed = %feed.name, seconds = started.elapsed().as_secs_f64(), snapshot_written, "feed ingested");
    Ok(IngestOutput {
        counts,
        files,
        skipped_files,
        set_aside,
        warnings,
        valid_documents: documents,
        quarantine_file,
        snapshot_written,
        register_entries,
        checkpoint,
    })
}
