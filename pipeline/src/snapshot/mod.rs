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
//!
//! The rooms: [`layout`] (columns, row building), [`files`] (Parquet writer settings, atomic files, reading),
//! [`manifest`], [`spill`] (a run's scratch files by month), [`rewrite`] (partitions
//! rewritten with a run's winners, then the manifest), `patch` (a partition patched with
//! a few changes: unchanged row groups and columns copied as encoded), [`quarantine`]
//! (rejected rows).

pub mod files;
pub mod layout;
pub mod manifest;
mod patch;
pub mod quarantine;
pub mod rewrite;
pub mod spill;

pub use files::{
    file_sha256, read_batches, read_small_batches, sweep_leftovers, write_atomic, AtomicParquet,
};
pub use layout::*;
pub use manifest::{Manifest, PartitionEntry};
pub use patch::DEFAULT_PATCH_ROW_GROUPS;

use crate::domain::identity::{pack_id, HexId};
use crate::stages::resolve::Register;
use arrow_array::{Array, RecordBatch};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which records of a snapshot scan wants ([`SnapshotStore::scan_identity`]), by packed
/// record id: most records of a large snapshot are not in a night's run, and only the
/// wanted ones have their update time and version decoded. Called from the scanning
/// threads at once.
pub type IdentityFilter<'a> = dyn Fn(&[u8; 16]) -> bool + Sync + 'a;

/// What a snapshot scan is given of each wanted record: its partition, its row in the
/// partition's file, packed record id, update time in seconds (`i64::MIN` when none) and
/// packed version. Called from the scanning threads at once.
pub type IdentityVisitor<'a> = dyn Fn(&str, usize, &[u8; 16], i64, [u8; 16]) + Sync + 'a;

/// Where the partitions' copies of a run's records sit, as the comparison with the
/// snapshot found them, by month. A patch then looks at those rows alone, without
/// decoding the partition's ids again (see [`rewrite::SpillFiles::located`]).
pub type LocatedRows = std::collections::HashMap<String, Located>;

/// One partition's located records: (row in the file, packed record id), ascending by
/// row, and the file they were found in.
#[derive(Debug, Default)]
pub struct Located {
    /// The partition file as it was when the comparison began (`None`: it changed while
    /// the comparison read it, or could not be told): a patch trusts the rows only when
    /// it finds the same file.
    pub file: Option<FileStamp>,
    /// The rows.
    pub rows: Vec<(usize, [u8; 16])>,
}

/// One version of a file: its device, inode, length, modification and change times. A
/// partition is replaced by renaming a new file over it (a new inode), so another stamp
/// means another file; the change time (Unix) moves with any write and cannot be set
/// back by a program. The state store's clean-close stamp is made of these too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
    /// The change time, in seconds and nanoseconds (none but on Unix).
    changed: Option<(i64, i64)>,
}

impl FileStamp {
    /// The stamp of the file `meta` describes.
    pub fn of(meta: &std::fs::Metadata) -> FileStamp {
        #[cfg(unix)]
        let (device, inode, changed) = {
            use std::os::unix::fs::MetadataExt;
            (
                meta.dev(),
                meta.ino(),
                Some((meta.ctime(), meta.ctime_nsec())),
            )
        };
        #[cfg(not(unix))]
        let (device, inode, changed) = (0, 0, None);
        FileStamp {
            device,
            inode,
            len: meta.len(),
            modified: meta.modified().ok(),
            changed,
        }
    }

    /// The stamp of the file at `path`, if it can be read.
    pub fn at(path: &Path) -> Option<FileStamp> {
        std::fs::metadata(path).ok().map(|m| FileStamp::of(&m))
    }

    /// Whether the stamp tells one version of a file from another by its inode and
    /// change time (on Unix), not only by its length and modification time.
    pub fn is_strong(&self) -> bool {
        self.changed.is_some()
    }
}

/// The stamp as one line of text, to be kept in a file and compared as text.
impl std::fmt::Display for FileStamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let modified = self
            .modified
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(-1, |d| d.as_nanos() as i128);
        let (c, cn) = self.changed.unwrap_or((-1, -1));
        write!(
            f,
            "{} {} {} {modified} {c}.{cn}",
            self.device, self.inode, self.len
        )
    }
}

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
    /// The legal-entity register as its snapshot holds it (empty when there is none
    /// yet), for the resolve stage.
    pub fn register(&self) -> Result<Register> {
        let mut r = Register::default();
        self.read_dataset(
            crate::stages::resolve::REGISTER_DATASET,
            Some(&["FR_SHXYM", "FR_ZZJG", "FR_GSZC"]),
            |b| {
                let codes = str_col(&b, "FR_SHXYM").expect("register has FR_SHXYM");
                let orgs = str_col(&b, "FR_ZZJG").expect("register has FR_ZZJG");
                let regnos = str_col(&b, "FR_GSZC").expect("register has FR_GSZC");
                for i in 0..b.num_rows() {
                    if codes.is_null(i) {
                        continue;
                    }
                    let code = codes.value(i).to_string();
                    r.insert(
                        &code,
                        (!orgs.is_null(i)).then(|| orgs.value(i)),
                        (!regnos.is_null(i)).then(|| regnos.value(i)),
                    );
                }
                Ok(())
            },
        )?;
        Ok(r)
    }

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
            read_batches(&file, columns, |b| {
                // A column asked for that an older partition lacks (a field added since
                // through `schema_dir`) reads as empty text.
                let missing: Vec<&str> = columns
                    .unwrap_or_default()
                    .iter()
                    .copied()
                    .filter(|c| b.column_by_name(c).is_none())
                    .collect();
                if missing.is_empty() {
                    return each(b);
                }
                let mut fields: Vec<arrow_schema::FieldRef> =
                    b.schema().fields().iter().cloned().collect();
                let mut cols = b.columns().to_vec();
                for c in missing {
                    fields.push(Arc::new(arrow_schema::Field::new(
                        c,
                        arrow_schema::DataType::Utf8,
                        false,
                    )));
                    cols.push(Arc::new(arrow_array::StringArray::from(vec![
                        "";
                        b.num_rows()
                    ])));
                }
                let b = RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), cols)
                    .map_err(|e| SnapshotError::Format {
                        path: file.clone(),
                        message: e.to_string(),
                    })?;
                each(b)
            })?;
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

    /// Streams the identity of the records of a dataset's snapshot that `wants` picks
    /// out (see [`IdentityVisitor`]). Partitions are read by two threads.
    ///
    /// `candidates`, when given, are the ids `wants` can pick (as `record_id` writes
    /// them): a row group whose Bloom filter holds none of them is passed over.
    pub fn scan_identity(
        &self,
        dataset: &str,
        candidates: Option<&[HexId]>,
        wants: &IdentityFilter<'_>,
        each: &IdentityVisitor<'_>,
    ) -> Result<()> {
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
                            scan_file_identity(month, path, candidates, wants, each)?;
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

/// One partition's part of [`SnapshotStore::scan_identity`]: the record ids first, then
/// the update times and versions of the wanted rows alone (pages without one skipped).
fn scan_file_identity(
    month: &str,
    path: &Path,
    candidates: Option<&[HexId]>,
    wants: &IdentityFilter<'_>,
    each: &IdentityVisitor<'_>,
) -> Result<()> {
    use parquet::arrow::arrow_reader::{
        ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
    };
    use parquet::file::metadata::PageIndexPolicy;
    // Only the identity columns' pages are read (the page index locates each one): the
    // rest of the file — nine tenths of it — is not touched.
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let handle = || file.try_clone().map_err(io_err(path));
    let fe = |e: parquet::errors::ParquetError| fmt_err(path)(e.to_string());
    let meta = ArrowReaderMetadata::load(
        &file,
        ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Optional),
    )
    .map_err(fe)?;
    let columns = |names: &[&str]| {
        parquet::arrow::ProjectionMask::columns(
            meta.metadata().file_metadata().schema_descr(),
            names.iter().copied(),
        )
    };
    let lacks = || fmt_err(path)("snapshot lacks identity columns".into());
    let pq = meta.metadata().clone();
    // The row groups that may hold a wanted record: where a row group has a Bloom filter
    // of its ids, and there are fewer candidates than rows (asking the filter costs about
    // what reading an id does), it is asked first. Ids are written as `record_id` makes
    // them (lowercase hex), which is what the candidates are.
    let id_column = pq
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == "record_id");
    let filters = ParquetRecordBatchReaderBuilder::new_with_metadata(handle()?, meta.clone());
    let may_hold = |g: usize| {
        let (Some(col), Some(ids)) = (id_column, candidates) else {
            return true;
        };
        if ids.len() as i64 > pq.row_group(g).num_rows() {
            return true;
        }
        match filters.get_row_group_column_bloom_filter(g, col) {
            Ok(Some(filter)) => ids.iter().any(|id| filter.check(&**id)),
            _ => true,
        }
    };
    // The wanted rows: (row in the file, packed id).
    let mut hits: Vec<(usize, [u8; 16])> = Vec::new();
    let mut first_row = 0usize;
    for g in 0..pq.num_row_groups() {
        let rows = usize::try_from(pq.row_group(g).num_rows()).unwrap_or(0);
        let start = first_row;
        first_row += rows;
        if !may_hold(g) {
            continue;
        }
        let mut row = start;
        let ids = ParquetRecordBatchReaderBuilder::new_with_metadata(handle()?, meta.clone())
            .with_projection(columns(&["record_id"]))
            .with_row_groups(vec![g])
            .with_batch_size(8192)
            .build()
            .map_err(fe)?;
        for b in ids {
            let b = b.map_err(|e| fmt_err(path)(e.to_string()))?;
            let ids = str_col(&b, "record_id").ok_or_else(lacks)?;
            for i in 0..b.num_rows() {
                let id = pack_id(ids.value(i));
                if wants(&id) {
                    hits.push((row + i, id));
                }
            }
            row += b.num_rows();
        }
    }
    if hits.is_empty() {
        return Ok(());
    }
    let rest = ParquetRecordBatchReaderBuilder::new_with_metadata(handle()?, meta.clone())
        .with_projection(columns(&["version", "updated_at"]))
        .with_row_selection(files::select_rows(hits.iter().map(|h| h.0)))
        .with_batch_size(8192)
        .build()
        .map_err(fe)?;
    let mut hit = hits.iter();
    for b in rest {
        let b = b.map_err(|e| fmt_err(path)(e.to_string()))?;
        let (Some(vers), Some(upd)) = (str_col(&b, "version"), str_col(&b, "updated_at")) else {
            return Err(lacks());
        };
        for i in 0..b.num_rows() {
            let Some((row, id)) = hit.next() else {
                return Err(fmt_err(path)(
                    "the partition's columns differ in length".into(),
                ));
            };
            let updated = if upd.is_null(i) {
                i64::MIN
            } else {
                crate::mapping::transforms::parse_datetime(upd.value(i))
                    .map(|t| t.and_utc().timestamp())
                    .unwrap_or(i64::MIN)
            };
            each(month, *row, id, updated, pack_id(vers.value(i)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::hex32;
    use arrow_array::StringArray;
    use arrow_schema::{DataType, Field, Schema};

    fn id(n: u32) -> [u8; 16] {
        use sha2::Digest;
        let mut id = [0u8; 16];
        id.copy_from_slice(&sha2::Sha256::digest(n.to_le_bytes())[..16]);
        id
    }

    /// A partition of two row groups: ids 0..3000, then 3000..6000.
    fn partition(dir: &Path) -> PathBuf {
        let schema = Arc::new(Schema::new(
            ["record_id", "version", "updated_at"]
                .map(|n| Field::new(n, DataType::Utf8, true))
                .to_vec(),
        ));
        let path = dir.join("month=2024-01/data.parquet");
        let mut out = AtomicParquet::create(&path, schema.clone()).unwrap();
        for half in [0..3000u32, 3000..6000] {
            let ids: Vec<String> = half.clone().map(|n| hex32(&id(n)).to_string()).collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(ids.clone())),
                    Arc::new(StringArray::from(ids)),
                    Arc::new(StringArray::from(vec!["2024-01-02 03:04:05"; half.len()])),
                ],
            )
            .unwrap();
            out.write(&batch).unwrap();
            out.close_row_group();
        }
        out.publish().unwrap();
        path
    }

    fn scan(path: &Path, candidates: &[u32]) -> Vec<[u8; 16]> {
        let candidates: Vec<HexId> = candidates.iter().map(|n| hex32(&id(*n))).collect();
        let found = std::sync::Mutex::new(Vec::new());
        // Every id is wanted: what comes back is what the Bloom filters let through.
        scan_file_identity(
            "2024-01",
            path,
            Some(&candidates),
            &|_| true,
            &|_, _, id, _, _| found.lock().unwrap().push(*id),
        )
        .unwrap();
        found.into_inner().unwrap()
    }

    #[test]
    fn a_partition_replaced_by_rename_has_another_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.parquet");
        std::fs::write(&path, b"first").unwrap();
        let first = FileStamp::at(&path).unwrap();
        assert_eq!(
            FileStamp::at(&path),
            Some(first),
            "the same file, the same stamp"
        );
        // Same length, written beside and renamed over, as a publish does.
        let tmp = dir.path().join(".data.parquet.tmp");
        std::fs::write(&tmp, b"other").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_ne!(FileStamp::at(&path), Some(first));
        assert_eq!(FileStamp::at(&dir.path().join("none")), None);
    }

    #[test]
    fn row_groups_whose_bloom_filters_hold_no_candidate_are_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = partition(dir.path());
        // A candidate in the second row group: its rows are read, the first group's not.
        let found = scan(&path, &[4321, 999_999]);
        assert_eq!(found.len(), 3000);
        assert!(found.contains(&id(4321)) && !found.contains(&id(10)));
        // Candidates in both: every row; in neither: none.
        assert_eq!(scan(&path, &[1, 5999]).len(), 6000);
        assert!(scan(&path, &[1_000_000, 1_000_001]).is_empty());
        // More candidates than a row group has rows: no filter is asked.
        let many: Vec<u32> = (100_000..103_001).collect();
        assert_eq!(scan(&path, &many).len(), 6000);
    }
}
