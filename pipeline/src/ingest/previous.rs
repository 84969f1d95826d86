//! The comparison with the previous snapshot: this run's winners against the copies
//! the snapshot already holds (unchanged, replaced, or older than the snapshot's), and
//! the records of the feed that the source no longer has (a backfill's window, or a
//! full export), which leave the snapshot and are withdrawn upstream.

use crate::domain::identity::{hex32, pack_id, HexId};
use crate::mapping::Feed;
use crate::snapshot::{self, FileStamp, Located, LocatedRows, SnapshotError, SnapshotStore};
use crate::stages::dedupe::{AgainstPrevious, DedupeIndex};
use std::collections::{HashMap, HashSet};

/// What the comparison found: the dedupe's verdicts, and the months holding records
/// that leave or are replaced (their partitions are rewritten).
pub(super) struct Comparison {
    pub against: AgainstPrevious,
    pub replaced_months: HashSet<String>,
    /// Records of the feed in scope that the source no longer has.
    pub vanished: u64,
    /// Where the snapshot holds the run's records and those that leave (for the
    /// patches); `None` once there are more than [`LOCATED_AT_MOST`] of them.
    pub located: Option<LocatedRows>,
}

/// Records whose place in the snapshot a comparison keeps at most (24 bytes each): a
/// run bringing more changes large parts of its months, which are then rewritten whole
/// rather than patched, and the patches that remain decode the ids themselves.
const LOCATED_AT_MOST: usize = 1 << 18;

/// Notes that the snapshot holds `id` at `row` of `month`'s file, `file` being that
/// file as the reading found it (see [`LOCATED_AT_MOST`]; a month whose file was seen
/// as two different files keeps its rows without a file, and a patch does not trust
/// them).
fn locate(
    located: &mut Option<LocatedRows>,
    count: &mut usize,
    month: &str,
    file: Option<FileStamp>,
    row: usize,
    id: [u8; 16],
) {
    *count += 1;
    if *count > LOCATED_AT_MOST {
        *located = None;
        return;
    }
    let Some(l) = located else {
        return;
    };
    if !l.contains_key(month) {
        l.insert(
            month.to_string(),
            Located {
                file,
                rows: Vec::new(),
            },
        );
    }
    if let Some(entry) = l.get_mut(month) {
        if entry.file != file {
            entry.file = None;
        }
        entry.rows.push((row, id));
    }
}

/// Compares the winners of `index` (resolved) with the snapshot of `dataset`.
pub(super) fn compare(
    store: &SnapshotStore,
    dataset: &str,
    index: &mut DedupeIndex,
) -> Result<Comparison, SnapshotError> {
    let mut against = AgainstPrevious::default();
    let mut replaced_months: HashSet<String> = HashSet::new();
    let (mut located, mut count) = (Some(LocatedRows::new()), 0usize);
    // Only the snapshot's copies of this run's winners matter: the scanning threads pick
    // them out, then they are compared here in partition order, one shard of winners at
    // a time (one when they fit in memory). A run that read nothing new has nothing to
    // compare.
    if !index.is_empty() && store.exists(dataset) {
        // The partition files as they are before they are read (see `Located::file`).
        let files: HashMap<String, Option<FileStamp>> = store
            .data_files(dataset)
            .into_iter()
            .map(|(month, path)| (month, FileStamp::at(&path)))
            .collect();
        for k in 0..index.shard_count() {
            index.load_shard(k).map_err(scratch_err(store))?;
            let hits = std::sync::Mutex::new(Vec::new());
            // The winners as the snapshot writes ids, for its row groups' Bloom filters:
            // only when fewer than a row group's rows, else no filter is asked of them.
            let candidates: Option<Vec<HexId>> = (index.loaded_winners().count()
                <= snapshot::files::MAX_ROW_GROUP_ROWS)
                .then(|| index.loaded_winners().map(hex32).collect());
            store.scan_identity(
                dataset,
                candidates.as_deref(),
                &|id| index.in_loaded(id) && index.has_winner(id),
                &|month, row, id, updated, version| {
                    let hit = (month.to_string(), row, *id, updated, version);
                    hits.lock().expect("not poisoned").push(hit);
                },
            )?;
            let mut hits = hits.into_inner().expect("not poisoned");
            hits.sort_by(|a, b| a.0.cmp(&b.0));
            for (month, row, id, updated, version) in hits {
                let file = files.get(&month).copied().flatten();
                locate(&mut located, &mut count, &month, file, row, id);
                let before = against.replaced.len();
                index.against_previous(&mut against, &id, &|| updated, &version);
                if against.replaced.len() > before {
                    replaced_months.insert(month);
                }
            }
        }
    }
    in_file_order(&mut located);
    Ok(Comparison {
        against,
        replaced_months,
        vanished: 0,
        located,
    })
}

/// Each month's located rows ascending, once each (the scanning threads and the dedupe's
/// shards find them in no order).
fn in_file_order(located: &mut Option<LocatedRows>) {
    for l in located.iter_mut().flat_map(|l| l.values_mut()) {
        l.rows.sort_unstable_by_key(|r| r.0);
        l.rows.dedup_by_key(|r| r.0);
    }
}

fn scratch_err(store: &SnapshotStore) -> impl Fn(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: store.scratch_dir(),
        source,
    }
}

/// Which of the feed's snapshot records are checked for having left the source: those
/// of a backfill's window (`Some(Some(window))`), all of them for a full export that
/// brought a new file (`Some(None)`), none otherwise.
pub(super) type VanishScope = Option<Option<(chrono::NaiveDate, chrono::NaiveDate)>>;

/// Marks as replaced (leaving the snapshot) the feed's records in `scope` that this run
/// did not read.
pub(super) fn vanished(
    store: &SnapshotStore,
    feed: &Feed,
    index: &mut DedupeIndex,
    scope: VanishScope,
    cmp: &mut Comparison,
) -> Result<(), SnapshotError> {
    let Some(window) = scope else {
        return Ok(());
    };
    let ds = &feed.dataset;
    let (against, replaced_months, located) =
        (&mut cmp.against, &mut cmp.replaced_months, &mut cmp.located);
    let mut vanished = 0u64;
    let mut located_count = located
        .as_ref()
        .map_or(0, |l| l.values().map(|m| m.rows.len()).sum());
    let date_field = ds.decision_date.map(|f| ds.fields[f].code.clone());
    let months = window.map(|(from, to)| {
        (
            from.format("%Y-%m").to_string(),
            to.format("%Y-%m").to_string(),
        )
    });
    // One pass over the feed's partitions a shard of this run's ids.
    for k in 0..index.shard_count() {
        index.load_shard(k).map_err(scratch_err(store))?;
        for (month, path) in store.data_files(&ds.code) {
            if months
                .as_ref()
                .is_some_and(|(first, last)| &month < first || &month > last)
            {
                continue;
            }
            let mut columns = vec!["record_id", "feed"];
            columns.extend(date_field.as_deref());
            let (mut row, file) = (0usize, FileStamp::at(&path));
            snapshot::read_batches(&path, Some(&columns), |b| {
                let ids = snapshot::required_str_col(&b, "record_id")?;
                let feeds = snapshot::required_str_col(&b, "feed")?;
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
                        && index.in_loaded(&id)
                        && !index.contains(&id)
                    {
                        // Counted once; every copy (a crash can leave one in two
                        // months) leaves, and its month is rewritten.
                        if against.replaced.insert(id) {
                            vanished += 1;
                        }
                        if !replaced_months.contains(&month) {
                            replaced_months.insert(month.clone());
                        }
                        locate(located, &mut located_count, &month, file, row + i, id);
                    }
                }
                row += b.num_rows();
                Ok(())
            })?;
        }
    }
    cmp.vanished = vanished;
    in_file_order(&mut cmp.located);
    Ok(())
}
