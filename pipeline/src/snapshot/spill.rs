//! A run's spill: the good rows of one feed, in the scratch layout, as one Arrow IPC file
//! per decision month under `<data>/tmp/<run>-<feed>/`, written while the rows are read
//! (before the winners are known), so the snapshot's month partitions can then be
//! rewritten one at a time. A run whose rows all fit in the first gathering (a night's
//! few thousand) keeps them in memory instead: no file per month to create, write, read
//! back and unlink. Removed when the feed is done; a crash's leftovers are swept at the
//! next run.

use super::{spill_schema, SnapshotError, SnapshotStore};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Mutex;

/// Batches whose parts are gathered before they are written (each batch's rows are
/// held until then: 8 batches of 2,048 rows, about 10 MiB).
pub const GATHER_BATCHES: usize = 8;

/// After the first gathering, a month's gathered rows are written as soon as they are
/// this many: a sorted export's batch (one month) goes out as it comes, without a copy
/// into a larger batch that no cache holds (that copy, and the kernel's copy of it, cost
/// a sorted 1M load a second). The first gathering waits whole, in case the run ends in
/// it and is kept in memory.
pub const WRITE_ROWS: usize = 512;

/// Each month file's write buffer: the IPC writer writes every column's buffers (and
/// their padding) apart, and an unbuffered unsorted 1M load made 400,000 write calls.
const WRITE_BUFFER: usize = 64 * 1024;

/// One feed's spill in one run.
pub struct SpillDir {
    dir: PathBuf,
    schema: SchemaRef,
    /// The months' parts of a run that ended within its first gathering, kept rather
    /// than written (empty otherwise).
    held: Mutex<BTreeMap<String, Vec<RecordBatch>>>,
}

impl SpillDir {
    /// Creates the spill directory of `feed` in `run_id`, for a snapshot of `schema`.
    pub fn create(
        store: &SnapshotStore,
        run_id: &str,
        feed: &str,
        schema: &SchemaRef,
    ) -> Result<SpillDir, SnapshotError> {
        let dir = store.scratch_dir().join(format!("{run_id}-{feed}"));
        std::fs::create_dir_all(&dir).map_err(|source| SnapshotError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(SpillDir {
            dir,
            schema: spill_schema(schema),
            held: Mutex::new(BTreeMap::new()),
        })
    }

    /// The spill's directory (the dedupe index keeps its runs under it too).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The scratch layout's schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn file(&self, month: &str) -> PathBuf {
        self.dir.join(format!("{month}.arrows"))
    }

    fn format_err(
        &self,
        path: &std::path::Path,
    ) -> impl Fn(arrow_schema::ArrowError) -> SnapshotError + '_ {
        let path = path.to_path_buf();
        move |e| SnapshotError::Format {
            path: path.clone(),
            message: e.to_string(),
        }
    }

    /// Writes every (month, rows) part received until the sender hangs up; returns the
    /// months written (the spill writer thread's body). An unsorted export splits each
    /// batch over dozens of months: the parts are gathered for [`GATHER_BATCHES`] batches
    /// (or, after the first gathering, until a month has [`WRITE_ROWS`]) and each month's
    /// written as one record batch, not as dozens of tiny ones. Parts that end within the
    /// first gathering are kept in memory, as they were gathered, and nothing is written.
    pub fn write_from(
        &self,
        parts: Receiver<Vec<(String, RecordBatch)>>,
    ) -> Result<Vec<String>, SnapshotError> {
        let mut files: BTreeMap<String, arrow_ipc::writer::FileWriter<BufWriter<File>>> =
            BTreeMap::new();
        let mut gathered: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
        let mut batches = 0usize;
        // Until the first gathering is written, a month's parts wait for the end of it.
        let mut first = true;
        for batch in parts {
            for (month, b) in batch {
                let parts = gathered.entry(month.clone()).or_default();
                parts.push(b);
                if !first && parts.iter().map(RecordBatch::num_rows).sum::<usize>() >= WRITE_ROWS {
                    if let Some(ready) = gathered.remove_entry(&month) {
                        self.flush(&mut files, &mut BTreeMap::from([ready]))?;
                    }
                }
            }
            batches += 1;
            if batches >= GATHER_BATCHES {
                self.flush(&mut files, &mut gathered)?;
                batches = 0;
                first = false;
            }
        }
        if first {
            let months = gathered.keys().cloned().collect();
            *self.held.lock().unwrap_or_else(|p| p.into_inner()) = gathered;
            return Ok(months);
        }
        self.flush(&mut files, &mut gathered)?;
        for w in files.values_mut() {
            w.finish().map_err(self.format_err(&self.dir))?;
        }
        Ok(files.into_keys().collect())
    }

    /// Writes the gathered parts, one record batch a month.
    fn flush(
        &self,
        files: &mut BTreeMap<String, arrow_ipc::writer::FileWriter<BufWriter<File>>>,
        gathered: &mut BTreeMap<String, Vec<RecordBatch>>,
    ) -> Result<(), SnapshotError> {
        for (month, parts) in std::mem::take(gathered) {
            let w = match files.entry(month) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let path = self.file(v.key());
                    let f = File::create(&path).map_err(|source| SnapshotError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    let f = BufWriter::with_capacity(WRITE_BUFFER, f);
                    let w = arrow_ipc::writer::FileWriter::try_new(f, &self.schema)
                        .map_err(self.format_err(&path))?;
                    v.insert(w)
                }
            };
            let one = if parts.len() == 1 {
                parts.into_iter().next().expect("one part")
            } else {
                arrow_select::concat::concat_batches(&self.schema, &parts)
                    .map_err(self.format_err(&self.dir))?
            };
            w.write(&one).map_err(self.format_err(&self.dir))?;
        }
        Ok(())
    }

    /// Reads one month's spilled rows, batch by batch (nothing when none spilled); as
    /// often as asked, until [`SpillDir::remove_month`].
    pub fn read_month(
        &self,
        month: &str,
        mut each: impl FnMut(RecordBatch) -> Result<(), SnapshotError>,
    ) -> Result<(), SnapshotError> {
        let held = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(month)
            .cloned();
        if let Some(parts) = held {
            return parts.into_iter().try_for_each(each);
        }
        let path = self.file(month);
        if !path.exists() {
            return Ok(());
        }
        let file = File::open(&path).map_err(|source| SnapshotError::Io {
            path: path.clone(),
            source,
        })?;
        let reader =
            arrow_ipc::reader::FileReader::try_new(file, None).map_err(self.format_err(&path))?;
        // SAFETY: the spill was written moments ago by this process's own IPC writer from
        // arrays that were valid when built; validating every string again cost a sixth
        // of the snapshot pass.
        let reader = unsafe { reader.with_skip_validation(true) };
        for b in reader {
            each(b.map_err(self.format_err(&path))?)?;
        }
        Ok(())
    }

    /// Removes one month's spilled rows, once its partition is written: the unlinking
    /// (the kernel freeing the file's cached pages) then happens beside the other
    /// writer's encoding, not all at once at the end of the feed, where nothing else
    /// runs (an unsorted 1M load spent 1 % of its CPU there).
    pub fn remove_month(&self, month: &str) {
        if self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(month)
            .is_none()
        {
            let _ = std::fs::remove_file(self.file(month));
        }
    }

    /// Removes the spill.
    pub fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, StringArray, UInt64Array};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    /// A spill of a one-field snapshot.
    fn spill(dir: &std::path::Path) -> SpillDir {
        let snapshot = Arc::new(Schema::new(vec![Field::new(
            "CF_WSH",
            DataType::Utf8,
            true,
        )]));
        SpillDir::create(&SnapshotStore::new(dir), "run", "feed", &snapshot).unwrap()
    }

    /// A part of `rows` rows, their read order numbered from `first`.
    fn part(spill: &SpillDir, first: u64, rows: u64) -> RecordBatch {
        let docs: Vec<String> = (first..first + rows).map(|n| format!("文号{n}")).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(docs)),
            Arc::new(UInt64Array::from_iter_values(first..first + rows)),
        ];
        RecordBatch::try_new(spill.schema().clone(), columns).unwrap()
    }

    fn seqs(spill: &SpillDir, month: &str) -> Vec<u64> {
        let mut out = Vec::new();
        spill
            .read_month(month, |b| {
                let seq = b.column(1).as_any().downcast_ref::<UInt64Array>().unwrap();
                out.extend(seq.values().iter().copied());
                Ok(())
            })
            .unwrap();
        out
    }

    fn files(spill: &SpillDir) -> usize {
        std::fs::read_dir(spill.dir()).unwrap().count()
    }

    /// Sends `batches` batches of two months' parts (100 rows each) through the writer.
    fn write(spill: &SpillDir, batches: u64) -> Vec<String> {
        let (tx, rx) = std::sync::mpsc::channel();
        for n in 0..batches {
            tx.send(vec![
                ("2024-01".to_string(), part(spill, n * 200, 100)),
                ("2024-02".to_string(), part(spill, n * 200 + 100, 100)),
            ])
            .unwrap();
        }
        drop(tx);
        spill.write_from(rx).unwrap()
    }

    #[test]
    fn a_run_within_one_gathering_is_kept_in_memory_and_read_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let spill = spill(dir.path());
        let months = write(&spill, GATHER_BATCHES as u64 - 1);
        assert_eq!(months, ["2024-01", "2024-02"]);
        assert_eq!(files(&spill), 0, "nothing written");
        let january: Vec<u64> = (0..GATHER_BATCHES as u64 - 1)
            .flat_map(|n| n * 200..n * 200 + 100)
            .collect();
        // A patch that gives up reads the month again before the rewrite does.
        assert_eq!(seqs(&spill, "2024-01"), january);
        assert_eq!(seqs(&spill, "2024-01"), january);
        spill.remove_month("2024-01");
        assert!(seqs(&spill, "2024-01").is_empty());
        assert_eq!(seqs(&spill, "2024-02").len(), 100 * (GATHER_BATCHES - 1));
    }

    #[test]
    fn a_longer_run_is_written_and_reads_back_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let spill = spill(dir.path());
        let batches = 2 * GATHER_BATCHES as u64 + 3;
        let months = write(&spill, batches);
        assert_eq!(months, ["2024-01", "2024-02"]);
        assert_eq!(files(&spill), 2, "one file a month");
        let january: Vec<u64> = (0..batches).flat_map(|n| n * 200..n * 200 + 100).collect();
        assert_eq!(seqs(&spill, "2024-01"), january);
        spill.remove_month("2024-01");
        assert_eq!(files(&spill), 1);
        assert!(seqs(&spill, "2024-01").is_empty());
    }
}
