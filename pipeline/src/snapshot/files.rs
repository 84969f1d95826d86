//! Parquet and file I/O of the snapshot and the quarantine: the writer settings, files
//! written beside their final name, fsynced and renamed into place ([`AtomicParquet`],
//! [`write_atomic`]), leftovers of a crash swept, and batch-by-batch reading.

use super::{fmt_err, io_err, Result};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

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

/// Bytes a Parquet writer buffers before it closes the row group.
const ROW_GROUP_BUFFER_BYTES: usize = 24 << 20;

/// Rows a snapshot row group holds at most.
pub const MAX_ROW_GROUP_ROWS: usize = 128 * 1024;

/// Whether a column is dictionary-encoded: code lists, units, authorities, provenance —
/// values that repeat.
pub(super) fn dictionary_encoded(name: &str) -> bool {
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
            "_LB", "CFLB", "XKLB", "_ZT", "JG", "JGDM", "SJLY", "SJLYDM", "LYDW", "LYDWDM", "WFXW",
            "_YJ", "ZJLX", "_NR", "_MC", "FRDB",
        ]
        .iter()
        .any(|s| name.ends_with(s))
}

pub(super) fn writer_props(schema: &SchemaRef) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid level"),
        ))
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        // Ids, versions, names, facts and file lines are nearly unique: a dictionary
        // only costs time there. Code lists, units and authorities repeat.
        .set_dictionary_enabled(false)
        // Min/max statistics help a reader skip data only on dates, codes and the
        // bookkeeping columns; on names and free text they cost a comparison per value.
        .set_statistics_enabled(EnabledStatistics::None)
        // A Bloom filter of each row group's record ids: a night asks every partition for
        // the copies of its few thousand records, and a partition whose filters hold
        // none of them is passed over without decompressing its ids. One wrong answer in
        // 100,000 (the filter is folded to that once the row group's ids are in: 64 KiB
        // for a month of 20,000 records), so ten thousand questions rarely meet one.
        .set_column_bloom_filter_enabled("record_id".into(), true)
        .set_column_bloom_filter_max_ndv("record_id".into(), MAX_ROW_GROUP_ROWS as u64)
        .set_column_bloom_filter_fpp("record_id".into(), 1e-5)
        // Update times share their leading characters (a month's share "2024-06-"), file
        // lines grow by small steps: stored as differences, they leave zstd less to do —
        // a night re-encodes both in every row group it corrects. DuckDB, pyarrow,
        // polars and Spark read both encodings.
        .set_column_encoding(
            "updated_at".into(),
            parquet::basic::Encoding::DELTA_BYTE_ARRAY,
        )
        // What is left of an update time past its shared prefix is digit soup: zstd
        // halves it at a third of a spread night's encoding time (the slowest column to
        // compress). Left uncompressed: the night's CPU −7 %, the snapshot +8 %.
        .set_column_compression("updated_at".into(), Compression::UNCOMPRESSED)
        .set_column_encoding(
            "source_line".into(),
            parquet::basic::Encoding::DELTA_BINARY_PACKED,
        )
        // Ids and versions are 32 hex characters each: stored with their lengths apart
        // (not a 4-byte length before every value), zstd sees hex alone — a night that
        // re-encodes the versions of every corrected row group and reads every id spends
        // 9 % less CPU, and the snapshot is 3.6 % smaller.
        .set_column_encoding(
            "record_id".into(),
            parquet::basic::Encoding::DELTA_LENGTH_BYTE_ARRAY,
        )
        .set_column_encoding(
            "version".into(),
            parquet::basic::Encoding::DELTA_LENGTH_BYTE_ARRAY,
        )
        // A version is 128 random bits in hex: zstd only halves it, by entropy coding,
        // and a night that corrects records in every month decodes and encodes every
        // row group's versions again — a fifth of a spread night's CPU went to zstd,
        // most of it here. Left uncompressed: spread night CPU −10 % (0.595 → 0.535 s in
        // pairs), the 1M history's snapshot +19 % (72 → 86 MB).
        .set_column_compression("version".into(), Compression::UNCOMPRESSED);
    for f in schema.fields() {
        if dictionary_encoded(f.name()) {
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
            .map_err(|e| fmt_err(&self.tmp)(e.to_string()))?;
        // A row group closes at 128k rows or at this many bytes buffered, whichever
        // first: a writer's memory does not grow with its partition.
        if self.writer.in_progress_size() > ROW_GROUP_BUFFER_BYTES {
            self.writer
                .flush()
                .map_err(|e| fmt_err(&self.tmp)(e.to_string()))?;
        }
        Ok(())
    }

    /// Closes the row group in progress (tests that need several).
    #[cfg(test)]
    pub(super) fn close_row_group(&mut self) {
        self.writer.flush().expect("a row group closes");
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
        let (rows, written) = self.close()?;
        written.publish()?;
        Ok(rows)
    }

    /// Finishes the file; its rows and the publish still to do (see [`Written`]).
    pub(super) fn close(self) -> Result<(u64, Written)> {
        let file = self
            .writer
            .into_inner()
            .map_err(|e| fmt_err(&self.tmp)(e.to_string()))?;
        Ok((
            self.rows,
            Written {
                file,
                tmp: self.tmp,
                dest: self.dest,
            },
        ))
    }
}

/// A file written in full under its temporary name, not yet published: the fsync (a few
/// milliseconds of waiting on the disk) can then be left to another thread while the
/// writer goes on encoding.
pub(super) struct Written {
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
}

impl Written {
    pub(super) fn new(file: File, tmp: PathBuf, dest: PathBuf) -> Written {
        Written { file, tmp, dest }
    }

    /// Fsyncs the file and renames it into place (see [`fsync_and_rename`]).
    pub(super) fn publish(self) -> Result<()> {
        fsync_and_rename(self.file, &self.tmp, &self.dest)
    }
}

/// Publishes a file written under `tmp`: fsync, rename over `dest`, fsync the directory.
pub(super) fn fsync_and_rename(file: File, tmp: &Path, dest: &Path) -> Result<()> {
    file.sync_all().map_err(io_err(tmp))?;
    std::fs::rename(tmp, dest).map_err(io_err(dest))?;
    sync_dir(dest.parent().expect("a parent"));
    Ok(())
}

/// The temporary name a file is written under before its rename: hidden (a leading
/// dot), so pyarrow, DuckDB and Spark skip it if a crash leaves it behind.
pub(super) fn hidden_tmp(dest: &Path) -> PathBuf {
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

/// Files up to this size are read into memory whole before they are decoded: one read,
/// not a system call for every page of every column read.
const READ_WHOLE_BYTES: u64 = 64 << 20;

/// Rows a batch of [`read_batches`] holds.
const BATCH_ROWS: usize = 8192;

/// A row selection of exactly `rows` (ascending positions in a file or row group), the
/// rows between them skipped — pages holding none of them are not decoded.
pub(super) fn select_rows(
    rows: impl IntoIterator<Item = usize>,
) -> parquet::arrow::arrow_reader::RowSelection {
    use parquet::arrow::arrow_reader::RowSelector;
    let mut selectors = Vec::new();
    let mut at = 0;
    for r in rows {
        if r > at {
            selectors.push(RowSelector::skip(r - at));
        }
        selectors.push(RowSelector::select(1));
        at = r + 1;
    }
    selectors.into()
}

/// Reads a Parquet file batch by batch, optionally only some columns.
pub fn read_batches(
    path: &Path,
    columns: Option<&[&str]>,
    each: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(io_err(path))?;
    let size = file.metadata().map_err(io_err(path))?.len();
    if size <= READ_WHOLE_BYTES {
        let mut bytes = Vec::with_capacity(size as usize);
        std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(io_err(path))?;
        read_batches_from(path, bytes::Bytes::from(bytes), columns, BATCH_ROWS, each)
    } else {
        read_batches_from(path, file, columns, BATCH_ROWS, each)
    }
}

/// Reads a Parquet file in batches of `rows`, page by page from the file (never whole):
/// for a reader that runs beside other work and must stay small.
pub fn read_small_batches(
    path: &Path,
    rows: usize,
    each: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(io_err(path))?;
    read_batches_from(path, file, None, rows, each)
}

fn read_batches_from<R: parquet::file::reader::ChunkReader + 'static>(
    path: &Path,
    source: R,
    columns: Option<&[&str]>,
    batch_rows: usize,
    mut each: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let fe = fmt_err(path);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(source).map_err(|e| fe(e.to_string()))?;
    let builder = match columns {
        Some(cols) => {
            let mask = ProjectionMask::columns(builder.parquet_schema(), cols.iter().copied());
            builder.with_projection(mask)
        }
        None => builder,
    };
    let reader = builder
        .with_batch_size(batch_rows.max(1))
        .build()
        .map_err(|e| fe(e.to_string()))?;
    for batch in reader {
        each(batch.map_err(|e| fe(e.to_string()))?)?;
    }
    Ok(())
}

/// One partition file in a manifest.
/// SHA-256 of a file.
pub fn file_sha256(path: &Path) -> Result<String> {
    connectors::sources::file_drop::sha256_file(path).map_err(|e| fmt_err(path)(e.to_string()))
}
