//! Publishing a run's records: each affected month partition is patched when the run
//! changes little of it (`super::patch`), else rewritten — its previous rows minus the
//! replaced records, then the run's winners for that month — written beside its final
//! name and renamed into place (by a thread of its own, while the writers go on); then
//! the manifest. Partitions are independent, so two writers encode them side by side.

use super::files::Written;
use super::spill::SpillDir;
use super::{
    filter, read_batches, required_str_col, spill_to_snapshot, str_col, u64_col, AtomicParquet,
    PartitionEntry, Provenance, SnapshotError, SnapshotStore,
};
use crate::domain::identity::{pack_id, IdSet};
use crate::mapping::Feed;
use crate::stages::dedupe::DedupeIndex;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use std::collections::{BTreeMap, HashSet};

/// A partition rewritten: its month, and its manifest entry (`None`: it emptied).
type Done = (String, Option<PartitionEntry>);

/// Partition files written at once (the machine has 2 cores).
const PARTITION_WRITERS: usize = 2;

/// What a rewrite takes from a run: its spill, the provenance its rows leave out, and
/// the months to rewrite.
pub struct SpillFiles<'a> {
    /// The run's spill of the feed.
    pub spill: &'a SpillDir,
    /// The rows' feed, source unit and run (the spill leaves them out).
    pub from: Provenance<'a>,
    /// Months to rewrite: those with spilled rows and those holding replaced records.
    pub months: &'a [String],
    /// The months holding replaced records (the others only gain records).
    pub holding_replaced: &'a HashSet<String>,
    /// Row groups a partition may hold and still be patched (0: rewrite whole).
    pub patch_row_groups: usize,
    /// Where the partitions' copies of the run's records (and of the records that leave)
    /// sit, when the comparison kept that (`None`: a patch decodes the ids to find them).
    pub located: Option<&'a super::LocatedRows>,
}

/// Rewrites the affected month partitions: each one's previous rows minus the replaced
/// records, then this run's winners for that month; then the manifest.
pub fn write_snapshot(
    store: &SnapshotStore,
    feed: &Feed,
    run_id: &str,
    schema: &SchemaRef,
    spill: &SpillFiles<'_>,
    index: &DedupeIndex,
    replaced: &IdSet,
) -> Result<(), SnapshotError> {
    let ds = &feed.dataset.code;
    let mut manifest = store.manifest(ds).unwrap_or_default();
    // Partitions written before manifests listed them are taken from the directory.
    if manifest.partitions.is_empty() {
        for (month, _) in store.data_files(ds) {
            manifest.partitions.push(PartitionEntry {
                month,
                ..Default::default()
            });
        }
    }
    // Partitions are independent: two writers encode them side by side, and a third
    // thread publishes each file they finish (fsync, rename), so a writer does not wait
    // on the disk before its next month. The manifest follows the last publish.
    let queue = &std::sync::Mutex::new(spill.months.iter());
    let changed = &super::patch::ChangedColumns::new(schema.fields().len());
    let partitions = &manifest.partitions;
    let panicked = |what: &str| SnapshotError::Format {
        path: store.dataset_dir(ds),
        message: format!("{what} panicked"),
    };
    let (results, published) = std::thread::scope(|scope| {
        let (to_publish, publishing) = std::sync::mpsc::channel::<Written>();
        let publisher = scope.spawn(move || -> Result<(), SnapshotError> {
            let mut first_error = None;
            for written in publishing {
                if let Err(e) = written.publish() {
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        });
        let workers: Vec<_> = (0..PARTITION_WRITERS)
            .map(|_| {
                let to_publish = to_publish.clone();
                scope.spawn(move || -> Result<Vec<Done>, SnapshotError> {
                    let mut done = Vec::new();
                    loop {
                        let Some(month) = queue.lock().expect("not poisoned").next() else {
                            break;
                        };
                        let before = partitions.iter().find(|p| &p.month == month);
                        let (entry, written) = write_partition(
                            store, ds, month, run_id, schema, spill, index, replaced, before,
                            changed,
                        )?;
                        if let Some(w) = written {
                            // The publisher only stops once every writer has hung up.
                            let _ = to_publish.send(w);
                        }
                        done.push((month.clone(), entry));
                    }
                    Ok(done)
                })
            })
            .collect();
        drop(to_publish);
        let results: Vec<Result<Vec<Done>, SnapshotError>> = workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(panicked("a partition writer")))
            })
            .collect();
        let published = publisher
            .join()
            .unwrap_or_else(|_| Err(panicked("the partition publisher")));
        (results, published)
    });
    published?;
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
    manifest.written_at = crate::clock::now().to_rfc3339();
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
    replaced: &IdSet,
    before: Option<&PartitionEntry>,
    changed: &super::patch::ChangedColumns,
) -> Result<(Option<PartitionEntry>, Option<Written>), SnapshotError> {
    let dest = store.partition_file(ds, month);
    let entry = |rows, rows_by_feed| PartitionEntry {
        month: month.to_string(),
        file: format!("month={month}/data.parquet"),
        rows,
        rows_by_feed,
        run_id: run_id.to_string(),
    };
    // A few changes to a large partition: patched, its unchanged parts copied as encoded.
    if let Some(p) = super::patch::patch_partition(
        &dest,
        month,
        schema,
        spill.spill,
        &spill.from,
        index,
        Some(replaced).filter(|_| spill.holding_replaced.contains(month)),
        before,
        spill.patch_row_groups,
        spill.located.and_then(|l| l.get(month)),
        changed,
    )? {
        spill.spill.remove_month(month);
        return Ok((Some(entry(p.rows, p.rows_by_feed)), Some(p.written)));
    }
    let mut out = AtomicParquet::create(&dest, schema.clone())?;
    let mut by_feed: BTreeMap<String, u64> = BTreeMap::new();
    let mut count_feeds = |b: &RecordBatch| {
        if let Some(f) = str_col(b, "feed") {
            for v in f.iter().flatten() {
                *by_feed.entry(v.to_string()).or_default() += 1;
            }
        }
    };
    if dest.exists() {
        read_batches(&dest, None, |b| {
            let ids = required_str_col(&b, "record_id")?;
            let keep: Vec<bool> = ids
                .iter()
                .map(|id| !replaced.contains(&pack_id(id.unwrap_or(""))))
                .collect();
            let kept = super::layout::conform(&filter(&b, keep), schema)?;
            count_feeds(&kept);
            out.write(&kept)
        })?;
    }
    spill.spill.read_month(month, |b| {
        let seqs = u64_col(&b, "_seq").ok_or_else(|| SnapshotError::Format {
            path: dest.clone(),
            message: "the spill has no _seq column".into(),
        })?;
        let keep: Vec<bool> = (0..b.num_rows())
            .map(|i| index.is_winner(seqs.value(i)))
            .collect();
        let kept = spill_to_snapshot(&filter(&b, keep), schema, &spill.from);
        *by_feed.entry(spill.from.feed.to_string()).or_default() += kept.num_rows() as u64;
        out.write(&kept)
    })?;
    spill.spill.remove_month(month);
    if out.rows() == 0 {
        // Every record of the month moved or was replaced elsewhere: the partition goes.
        out.discard();
        if let Some(dir) = dest.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        return Ok((None, None));
    }
    let (rows, written) = out.close()?;
    Ok((Some(entry(rows, by_feed)), Some(written)))
}
