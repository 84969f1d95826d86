//! A month partition patched rather than rewritten: a night that corrects a few records
//! of every month must not decode and encode the whole history again. The partition's
//! row groups are copied as they are, byte for byte, where the run changed none of their
//! records; in a row group that holds changed records, a corrected record keeps its place
//! and only the columns whose values changed are encoded anew (the others — the key,
//! most fields — are copied as encoded); records that left the month are dropped from
//! their row group; the month's new records follow as a row group of their own. The file
//! is a new file all the same (written beside its name, fsynced, renamed), so readers
//! still see the partition old or new, never half of one.
//!
//! Small row groups pile up night after night: past `[snapshot] patch_row_groups`
//! ([`DEFAULT_PATCH_ROW_GROUPS`]) the partition is
//! rewritten whole instead (compaction), as it is when the run brings more than a quarter
//! of the month's records, or when the file was written under another schema.

use super::files::{dictionary_encoded, hidden_tmp, writer_props, Written};
use super::spill::SpillDir;
use super::{filter, required_str_col, spill_to_snapshot, u64_col, PartitionEntry, Provenance};
use super::{fmt_err, io_err, Result, SnapshotError};
use crate::domain::identity::{pack_id, IdMap, IdSet};
use crate::stages::dedupe::DedupeIndex;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, StringArray};
use arrow_schema::{DataType, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::arrow_writer::compute_leaves;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::bloom_filter::Sbbf;
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use parquet::file::writer::SerializedFileWriter;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

/// Row groups a partition may hold and still be patched; past them it is rewritten
/// whole (compacted).
pub const DEFAULT_PATCH_ROW_GROUPS: usize = 16;

/// Columns a correction always changes: encoded anew without a comparison.
const VOLATILE: [&str; 5] = [
    "version",
    "updated_at",
    "source_file",
    "source_line",
    "run_id",
];

/// The field columns a run's corrections were found to change, in any row group of any
/// partition (shared by the partition writers). A night's corrections change a few
/// columns, the same ones over and over: once they are known, a row group's corrected
/// rows are checked against their old versions instead of column by column (see
/// [`patch_partition`]).
pub(super) struct ChangedColumns(Vec<std::sync::atomic::AtomicBool>);

impl ChangedColumns {
    pub(super) fn new(columns: usize) -> Self {
        Self((0..columns).map(|_| false.into()).collect())
    }

    fn seen(&self, c: usize) -> bool {
        self.0
            .get(c)
            .is_some_and(|b| b.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn mark(&self, c: usize) {
        if let Some(b) = self.0.get(c) {
            b.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// What a month's partition becomes.
pub(super) struct Patched {
    pub rows: u64,
    pub rows_by_feed: BTreeMap<String, u64>,
    /// The new file, to publish.
    pub written: Written,
}

/// Patches `dest` (the partition of `month`) with the run's winners of that month, written
/// beside it (publishing it is the caller's: [`Patched::written`]),
/// dropping the `replaced` records that are not among them (`None`: the month holds no
/// replaced record, so its rows are copied without a look). `located`, when known, are
/// the rows of the file whose records are among the run's or the replaced (see
/// [`super::LocatedRows`]): the others are kept without decoding their ids. `None` when
/// the partition should be rewritten whole instead (see the module comment); nothing is
/// written then.
#[allow(clippy::too_many_arguments)]
pub(super) fn patch_partition(
    dest: &Path,
    month: &str,
    schema: &SchemaRef,
    spill: &SpillDir,
    from: &Provenance<'_>,
    index: &DedupeIndex,
    replaced: Option<&IdSet>,
    before: Option<&PartitionEntry>,
    max_row_groups: usize,
    located: Option<&super::Located>,
    changed: &ChangedColumns,
) -> Result<Option<Patched>> {
    let Some(before) = before.filter(|b| !b.rows_by_feed.is_empty()) else {
        return Ok(None);
    };
    let (bytes, stamp) = match read_with_stamp(dest) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(dest)(e)),
    };
    // The located rows hold for the file the comparison read, and only for it.
    let located = located
        .filter(|l| l.file == Some(stamp))
        .map(|l| l.rows.as_slice());
    let fe = |e: parquet::errors::ParquetError| fmt_err(dest)(e.to_string());
    let meta = ArrowReaderMetadata::load(
        &bytes,
        ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Optional),
    )
    .map_err(fe)?;
    let pq = meta.metadata().clone();
    let old_rows: i64 = pq.row_groups().iter().map(|g| g.num_rows()).sum();
    if meta.schema().fields() != schema.fields()
        || pq.num_row_groups() >= max_row_groups
        || old_rows as u64 != before.rows
    {
        return Ok(None);
    }
    // Dictionary-encoded text columns are read as dictionaries: no value is copied out
    // of the page's dictionary a row, and the writer, given them back, hashes each
    // distinct value once instead of once a row. A chunk whose dictionary overflowed
    // into plain pages is read as plain text (see `all_dictionary_pages`).
    let dictionary_meta = ArrowReaderMetadata::try_new(
        pq.clone(),
        ArrowReaderOptions::new().with_schema(dictionary_schema(schema)),
    )
    .map_err(fe)?;
    // The run's winners of the month, in the snapshot's layout.
    let mut parts = Vec::new();
    spill.read_month(month, |b| {
        let seqs = u64_col(&b, "_seq").ok_or_else(|| SnapshotError::Format {
            path: dest.to_path_buf(),
            message: "the spill has no _seq column".into(),
        })?;
        let keep: Vec<bool> = (0..b.num_rows())
            .map(|i| index.is_winner(seqs.value(i)))
            .collect();
        parts.push(spill_to_snapshot(&filter(&b, keep), schema, from));
        Ok(())
    })?;
    let run = arrow_select::concat::concat_batches(schema, &parts)
        .map_err(|e| fmt_err(dest)(e.to_string()))?;
    drop(parts);
    if run.num_rows() as i64 * 4 > old_rows {
        return Ok(None);
    }
    let run_ids = required_str_col(&run, "record_id")?;
    let run_at: IdMap<usize> = (0..run.num_rows())
        .map(|i| (pack_id(run_ids.value(i)), i))
        .collect();
    let mut placed = vec![false; run.num_rows()];

    let record_id = schema
        .index_of("record_id")
        .map_err(|e| fmt_err(dest)(e.to_string()))?;
    let version_at = schema
        .index_of("version")
        .map_err(|e| fmt_err(dest)(e.to_string()))?;
    // The record's fields (what its version hashes): the columns after the bookkeeping.
    let first_field = super::layout::META_COLUMNS.len();
    let feed_at = schema
        .index_of("feed")
        .map_err(|e| fmt_err(dest)(e.to_string()))?;
    let mut by_feed = before.rows_by_feed.clone();
    let run_feeds = required_str_col(&run, "feed")?;

    let tmp = hidden_tmp(dest);
    let file = File::create(&tmp).map_err(io_err(&tmp))?;
    let writer =
        ArrowWriter::try_new(file, schema.clone(), Some(writer_props(schema))).map_err(fe)?;
    let (mut out, factory) = writer.into_serialized_writer().map_err(fe)?;
    let (mut written_rows, mut groups) = (0u64, 0usize);
    // Column `c` of row group `g`: all its rows, or only the given ones (pages without
    // them are skipped).
    let read = |g: usize, c: usize, only: Option<&[usize]>| -> Result<ArrayRef> {
        let mask = ProjectionMask::leaves(pq.file_metadata().schema_descr(), [c]);
        let chunk_meta = if all_dictionary_pages(pq.row_group(g).column(c)) {
            &dictionary_meta
        } else {
            &meta
        };
        let mut builder =
            ParquetRecordBatchReaderBuilder::new_with_metadata(bytes.clone(), chunk_meta.clone())
                .with_row_groups(vec![g])
                .with_projection(mask);
        builder = match only {
            Some(rows) => builder
                .with_row_selection(super::files::select_rows(rows.iter().copied()))
                .with_batch_size(rows.len().max(1)),
            None => builder.with_batch_size(pq.row_group(g).num_rows().max(1) as usize),
        };
        let mut arrays = Vec::new();
        for b in builder.build().map_err(fe)? {
            arrays.push(
                b.map_err(|e| fmt_err(dest)(e.to_string()))?
                    .column(0)
                    .clone(),
            );
        }
        let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
        arrow_select::concat::concat(&refs).map_err(|e| fmt_err(dest)(e.to_string()))
    };
    let result = (|| -> Result<()> {
        let mut first_row = 0usize;
        for g in 0..pq.num_row_groups() {
            let rows = pq.row_group(g).num_rows() as usize;
            let start = first_row;
            first_row += rows;
            let Some(replaced) = replaced else {
                // Nothing of the month is replaced: every row group as it is.
                written_rows += copy_row_group(&mut out, &bytes, &pq, g).map_err(fe)?;
                groups += 1;
                continue;
            };
            // The row group's rows whose records the run brings or replaces: those the
            // comparison located, or every row, its id decoded.
            let looked_at: Vec<(usize, [u8; 16])> = match located {
                Some(all) => {
                    let from = all.partition_point(|r| r.0 < start);
                    let to = all.partition_point(|r| r.0 < start + rows);
                    all[from..to]
                        .iter()
                        .map(|&(r, id)| (r - start, id))
                        .collect()
                }
                None => {
                    let ids = read(g, record_id, None)?;
                    let ids = ids
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .ok_or_else(|| fmt_err(dest)("record_id is not text".into()))?;
                    (0..ids.len()).map(|i| (i, pack_id(ids.value(i)))).collect()
                }
            };
            // The row group's rows as they will be: (0, old row) kept, (1, run row) a
            // correction in the old row's place; the others are dropped.
            let mut plan: Vec<(usize, usize)> = Vec::with_capacity(rows);
            let (mut patched, mut dropped) = (Vec::new(), 0usize);
            let mut next = 0usize;
            for (i, id) in looked_at {
                plan.extend((next..i).map(|k| (0, k)));
                next = i + 1;
                match run_at.get(&id) {
                    Some(&j) if !placed[j] => {
                        placed[j] = true;
                        patched.push((i, j));
                        plan.push((1, j));
                    }
                    _ if replaced.contains(&id) || run_at.contains_key(&id) => dropped += 1,
                    _ => plan.push((0, i)),
                }
            }
            plan.extend((next..rows).map(|k| (0, k)));
            if patched.is_empty() && dropped == 0 {
                written_rows += copy_row_group(&mut out, &bytes, &pq, g).map_err(fe)?;
                groups += 1;
                continue;
            }
            // The old rows that leave: their feeds' counts go down.
            let mut stays = vec![false; rows];
            for p in &plan {
                if let (0, i) = *p {
                    stays[i] = true;
                }
            }
            let old_feeds = read(g, feed_at, None)?;
            for i in (0..rows).filter(|i| !stays[*i]) {
                if let Some(n) = text_at(old_feeds.as_ref(), i).and_then(|f| by_feed.get_mut(f)) {
                    *n = n.saturating_sub(1);
                }
            }
            if plan.is_empty() {
                // Every record of the row group left it.
                continue;
            }
            // Where the run's corrections were seen to change some field columns: those
            // are read whole, put back to their old values in each corrected row, and
            // the row hashed as its version is. Where every corrected row gives its old
            // version, the other field columns hold the run's values already (the same
            // 128-bit hash that tells an unchanged record) and are copied unread.
            // Columns of the row group read whole, each at most once (the feeds are).
            let mut whole: std::collections::HashMap<usize, ArrayRef> =
                std::collections::HashMap::from([(feed_at, old_feeds)]);
            let suspects: Vec<usize> = (first_field..schema.fields().len())
                .filter(|c| changed.seen(*c))
                .collect();
            let rest_unchanged = dropped == 0 && !suspects.is_empty() && {
                for &c in suspects.iter().chain([&version_at]) {
                    whole.insert(c, read(g, c, None)?);
                }
                old_versions_hold(schema, first_field, &whole, version_at, &run, &patched)
            };
            let mut rg = out.next_row_group().map_err(fe)?;
            let writers = factory.create_column_writers(groups).map_err(fe)?;
            for ((c, field), mut w) in schema.fields().iter().enumerate().zip(writers) {
                let unchanged_field = rest_unchanged && c >= first_field && !whole.contains_key(&c);
                if unchanged_field || (c == record_id && dropped == 0) {
                    rg.append_column(&bytes, copied(&bytes, &pq, g, c))
                        .map_err(fe)?;
                    continue;
                }
                let new_col = run.column(c);
                // Whether the corrections changed the column: their rows alone are read.
                // A correction always brings its own version and provenance.
                let same = dropped == 0 && !VOLATILE.contains(&field.name().as_str()) && {
                    let before = match whole.get(&c) {
                        Some(all) => arrow_select::take::take(
                            all.as_ref(),
                            &arrow_array::UInt32Array::from_iter_values(
                                patched.iter().map(|p| p.0 as u32),
                            ),
                            None,
                        )
                        .map_err(|e| fmt_err(dest)(e.to_string()))?,
                        None => read(g, c, Some(&patched.iter().map(|p| p.0).collect::<Vec<_>>()))?,
                    };
                    patched
                        .iter()
                        .enumerate()
                        .all(|(k, &(_, j))| same_value(before.as_ref(), k, new_col.as_ref(), j))
                };
                if same {
                    rg.append_column(&bytes, copied(&bytes, &pq, g, c))
                        .map_err(fe)?;
                    continue;
                }
                if c >= first_field {
                    changed.mark(c);
                }
                let old = match whole.remove(&c) {
                    Some(all) => all,
                    None => read(g, c, None)?,
                };
                let merged = merged(old.as_ref(), new_col.as_ref(), &plan)
                    .map_err(|e| fmt_err(dest)(e.to_string()))?;
                for leaf in compute_leaves(field, &merged).map_err(fe)? {
                    w.write(&leaf).map_err(fe)?;
                }
                w.close()
                    .map_err(fe)?
                    .append_to_row_group(&mut rg)
                    .map_err(fe)?;
            }
            groups += 1;
            rg.close().map_err(fe)?;
            written_rows += plan.len() as u64;
        }
        // The month's new records: a row group of their own.
        let fresh: Vec<u32> = (0..run.num_rows() as u32)
            .filter(|j| !placed[*j as usize])
            .collect();
        if !fresh.is_empty() {
            let take = arrow_array::UInt32Array::from(fresh);
            let rows = arrow_select::take::take_record_batch(&run, &take)
                .map_err(|e| fmt_err(dest)(e.to_string()))?;
            let mut rg = out.next_row_group().map_err(fe)?;
            let writers = factory.create_column_writers(groups).map_err(fe)?;
            for ((field, col), mut w) in schema.fields().iter().zip(rows.columns()).zip(writers) {
                for leaf in compute_leaves(field, col).map_err(fe)? {
                    w.write(&leaf).map_err(fe)?;
                }
                w.close()
                    .map_err(fe)?
                    .append_to_row_group(&mut rg)
                    .map_err(fe)?;
            }
            rg.close().map_err(fe)?;
            written_rows += rows.num_rows() as u64;
        }
        Ok(())
    })();
    if let Err(e) = result {
        drop(out);
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    for j in 0..run.num_rows() {
        *by_feed.entry(run_feeds.value(j).to_string()).or_default() += 1;
    }
    by_feed.retain(|_, n| *n > 0);
    let file = out.into_inner().map_err(fe)?;
    Ok(Some(Patched {
        rows: written_rows,
        rows_by_feed: by_feed,
        written: Written::new(file, tmp, dest.to_path_buf()),
    }))
}

/// The file's bytes and the stamp of the file they were read from.
fn read_with_stamp(path: &Path) -> std::io::Result<(Bytes, super::FileStamp)> {
    use std::io::Read;
    let mut file = File::open(path)?;
    let stamp = super::FileStamp::of(&file.metadata()?);
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok((Bytes::from(bytes), stamp))
}

/// `schema` with its dictionary-encoded text columns as dictionaries of text (how a
/// patch reads them).
fn dictionary_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<arrow_schema::FieldRef> = schema
        .fields()
        .iter()
        .map(|f| {
            if *f.data_type() == DataType::Utf8 && dictionary_encoded(f.name()) {
                std::sync::Arc::new(f.as_ref().clone().with_data_type(text_dictionary()))
            } else {
                f.clone()
            }
        })
        .collect();
    std::sync::Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn text_dictionary() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Whether every data page of a column chunk is dictionary-encoded. A dictionary that
/// overflowed into plain pages (long, distinct texts) would have to be made again from
/// those values, each hashed once more: such a chunk is read as plain text.
fn all_dictionary_pages(chunk: &parquet::file::metadata::ColumnChunkMetaData) -> bool {
    use parquet::basic::{Encoding, PageType};
    let dictionary =
        |e: Encoding| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY);
    chunk.dictionary_page_offset().is_some()
        && (chunk.page_encoding_stats_mask().is_some_and(|m| {
            m.is_only(Encoding::RLE_DICTIONARY) || m.is_only(Encoding::PLAIN_DICTIONARY)
        }) || chunk.page_encoding_stats().is_some_and(|stats| {
            stats
                .iter()
                .filter(|s| matches!(s.page_type, PageType::DATA_PAGE | PageType::DATA_PAGE_V2))
                .all(|s| dictionary(s.encoding))
        }))
}

/// Whether `a` is text, plain or as a dictionary.
fn is_text(a: &dyn Array) -> bool {
    *a.data_type() == DataType::Utf8 || *a.data_type() == text_dictionary()
}

/// Row `r` of a text column, plain or a dictionary (`None`: a null, or not text).
fn text_at(a: &dyn Array, r: usize) -> Option<&str> {
    if a.is_null(r) {
        return None;
    }
    if let Some(s) = a.as_any().downcast_ref::<StringArray>() {
        return Some(s.value(r));
    }
    let d = a.as_any().downcast_ref::<DictionaryArray<Int32Type>>()?;
    let values = d.values().as_any().downcast_ref::<StringArray>()?;
    let k = usize::try_from(d.keys().value(r)).ok()?;
    (k < values.len() && values.is_valid(k)).then(|| values.value(k))
}

/// Whether each corrected row (`patched`: (old row, run row)), its field columns taken
/// from the run except those in `old` (read whole from the partition, old values), hashes
/// to the old row's version: then the run changed no other field column of those rows.
fn old_versions_hold(
    schema: &SchemaRef,
    first_field: usize,
    old: &std::collections::HashMap<usize, ArrayRef>,
    version_at: usize,
    run: &arrow_array::RecordBatch,
    patched: &[(usize, usize)],
) -> bool {
    let text = |a: &ArrayRef| a.as_any().downcast_ref::<StringArray>().cloned();
    let Some(versions) = old.get(&version_at).and_then(text) else {
        return false;
    };
    let mut columns: Vec<(&str, &dyn Array, bool)> = Vec::new();
    for c in first_field..schema.fields().len() {
        let (array, is_old) = match old.get(&c) {
            Some(a) => (a.as_ref(), true),
            None => (run.column(c).as_ref(), false),
        };
        if !is_text(array) {
            return false;
        }
        columns.push((schema.field(c).name().as_str(), array, is_old));
    }
    patched.iter().all(|&(i, j)| {
        let fields = columns.iter().map(|(code, a, is_old)| {
            (
                *code,
                text_at(*a, if *is_old { i } else { j }).unwrap_or_default(),
            )
        });
        versions.is_valid(i)
            && *crate::domain::identity::hex32(&crate::domain::identity::version_of_fields(fields))
                == *versions.value(i)
    })
}

/// Copies row group `g` of the old file as it is encoded; its row count.
fn copy_row_group(
    out: &mut SerializedFileWriter<File>,
    bytes: &Bytes,
    pq: &ParquetMetaData,
    g: usize,
) -> parquet::errors::Result<u64> {
    let mut rg = out.next_row_group()?;
    for c in 0..pq.row_group(g).num_columns() {
        rg.append_column(bytes, copied(bytes, pq, g, c))?;
    }
    rg.close()?;
    Ok(pq.row_group(g).num_rows() as u64)
}

/// The close result that lets a row group writer splice column `c` of row group `g` in
/// as it is encoded (its page locations and Bloom filter carried over; no column index).
fn copied(bytes: &Bytes, pq: &ParquetMetaData, g: usize, c: usize) -> ColumnCloseResult {
    let chunk = pq.row_group(g).column(c).clone();
    let offset_index = pq.page_index_for_row_group(g).offset_index(c).cloned();
    // An unreadable filter is left out: a reader then reads the ids themselves.
    let bloom_filter = Sbbf::read_from_column_chunk(&chunk, bytes).ok().flatten();
    ColumnCloseResult {
        bytes_written: chunk.compressed_size() as u64,
        rows_written: pq.row_group(g).num_rows() as u64,
        metadata: chunk,
        bloom_filter,
        column_index: None,
        offset_index,
    }
}

/// A row group's column as it will be: `plan`'s rows, each taken from the old column
/// (`(0, row)`) or the run's (`(1, row)`). The old rows that stay come in runs (a few
/// corrections among thousands of rows), each run copied at once.
fn merged(
    old: &dyn Array,
    new: &dyn Array,
    plan: &[(usize, usize)],
) -> std::result::Result<ArrayRef, arrow_schema::ArrowError> {
    // A column read as a dictionary is patched with the run's values as one.
    let as_dictionary: Option<ArrayRef> = (*old.data_type() == text_dictionary())
        .then(|| new.as_any().downcast_ref::<StringArray>())
        .flatten()
        .map(|s| std::sync::Arc::new(s.iter().collect::<DictionaryArray<Int32Type>>()) as ArrayRef);
    let new = as_dictionary.as_deref().unwrap_or(new);
    if old.data_type() != new.data_type() {
        return Err(arrow_schema::ArrowError::InvalidArgumentError(format!(
            "a column of {} patched with one of {}",
            old.data_type(),
            new.data_type()
        )));
    }
    let (old, new) = (old.to_data(), new.to_data());
    let mut out =
        arrow_data::transform::MutableArrayData::try_new(vec![&old, &new], false, plan.len())?;
    let mut k = 0;
    while let Some(&(from, start)) = plan.get(k) {
        let mut end = start + 1;
        k += 1;
        while plan.get(k) == Some(&(from, end)) {
            end += 1;
            k += 1;
        }
        out.try_extend(from, start, end)?;
    }
    Ok(arrow_array::make_array(out.freeze()))
}

/// Whether row `i` of `a` and row `j` of `b` hold the same value (text or number).
fn same_value(a: &dyn Array, i: usize, b: &dyn Array, j: usize) -> bool {
    if a.is_null(i) || b.is_null(j) {
        return a.is_null(i) == b.is_null(j);
    }
    if is_text(a) && is_text(b) {
        return text_at(a, i) == text_at(b, j);
    }
    if let (Some(x), Some(y)) = (
        a.as_any().downcast_ref::<arrow_array::UInt64Array>(),
        b.as_any().downcast_ref::<arrow_array::UInt64Array>(),
    ) {
        return x.value(i) == y.value(j);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{StringArray, UInt64Array};
    use proptest::prelude::*;

    proptest! {
        // The run-copying merge builds what arrow's interleave builds, nulls included.
        #[test]
        fn merged_is_the_interleave(
            old in proptest::collection::vec(proptest::option::of("[a-z]{0,5}"), 1..60),
            new in proptest::collection::vec(proptest::option::of("[a-z]{0,5}"), 1..20),
            picks in proptest::collection::vec((any::<bool>(), any::<usize>()), 0..80),
        ) {
            let old = StringArray::from(old);
            let new = StringArray::from(new);
            let plan: Vec<(usize, usize)> = picks
                .iter()
                .map(|&(from_run, at)| if from_run { (1, at % new.len()) } else { (0, at % old.len()) })
                .collect();
            let expected = arrow_select::interleave::interleave(&[&old, &new], &plan).unwrap();
            let got = merged(&old, &new, &plan).unwrap();
            prop_assert_eq!(got.to_data(), expected.to_data());
        }
    }

    /// A snapshot schema of two fields (A, B) and a batch of its rows.
    fn rows(fields: &[(&str, &str)], versions: &[String]) -> (SchemaRef, arrow_array::RecordBatch) {
        use arrow_schema::{DataType, Field, Schema};
        let meta = super::super::layout::META_COLUMNS;
        let mut cols: Vec<Field> = meta
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect();
        cols.push(Field::new("A", DataType::Utf8, true));
        cols.push(Field::new("B", DataType::Utf8, true));
        let schema = std::sync::Arc::new(Schema::new(cols));
        let n = fields.len();
        let mut arrays: Vec<ArrayRef> = meta
            .iter()
            .map(|c| -> ArrayRef {
                if *c == "version" {
                    std::sync::Arc::new(StringArray::from_iter_values(versions))
                } else {
                    std::sync::Arc::new(StringArray::from_iter_values(vec!["x"; n]))
                }
            })
            .collect();
        let opt = |v: &str| (!v.is_empty()).then(|| v.to_string());
        arrays.push(std::sync::Arc::new(StringArray::from_iter(
            fields.iter().map(|f| opt(f.0)),
        )));
        arrays.push(std::sync::Arc::new(StringArray::from_iter(
            fields.iter().map(|f| opt(f.1)),
        )));
        (
            schema.clone(),
            arrow_array::RecordBatch::try_new(schema, arrays).unwrap(),
        )
    }

    fn version(a: &str, b: &str) -> String {
        let v = crate::domain::identity::version_of_fields([("A", a), ("B", b)].into_iter());
        crate::domain::identity::hex32(&v).to_string()
    }

    #[test]
    fn old_versions_tell_whether_only_the_suspected_columns_changed() {
        // The snapshot's rows (A, B) and their versions; the run corrects rows 0 and 1.
        let old = [("罚款100元", "事由一"), ("警告", "")];
        let old_versions: Vec<String> = old.iter().map(|(a, b)| version(a, b)).collect();
        let (schema, snapshot) = rows(&old, &old_versions);
        let first_field = super::super::layout::META_COLUMNS.len();
        let (a, b, v) = (first_field, first_field + 1, 1);
        let whole = |cols: &[usize]| {
            cols.iter()
                .map(|c| (*c, snapshot.column(*c).clone()))
                .collect::<std::collections::HashMap<_, _>>()
        };
        let patched = [(0, 1), (1, 0)];
        let holds = |old: &[usize], run: &arrow_array::RecordBatch| {
            old_versions_hold(&schema, first_field, &whole(old), v, run, &patched)
        };
        // Only A changed (the run's rows in another order): B is copied unread.
        let run_rows = [("警告（更正）", ""), ("罚款200元", "事由一")];
        let run_versions: Vec<String> = run_rows.iter().map(|(a, b)| version(a, b)).collect();
        let (_, run) = rows(&run_rows, &run_versions);
        assert!(holds(&[a, v], &run));
        // B changed too, in one row: A alone put back does not give the old version.
        let run_rows = [("警告（更正）", ""), ("罚款200元", "事由二")];
        let (_, run) = rows(&run_rows, &run_versions);
        assert!(!holds(&[a, v], &run));
        assert!(holds(&[a, b, v], &run));
        // A value that became empty counts as a change.
        let run_rows = [("警告（更正）", ""), ("罚款200元", "")];
        let (_, run) = rows(&run_rows, &run_versions);
        assert!(!holds(&[a, v], &run));
        // Without the old versions nothing is assumed.
        assert!(!holds(&[a], &run));
    }

    #[test]
    fn a_column_read_as_a_dictionary_is_patched_with_the_runs_text() {
        let old: DictionaryArray<Int32Type> = vec![Some("a"), Some("b"), None, Some("a")]
            .into_iter()
            .collect();
        let new = StringArray::from(vec![Some("x"), None]);
        let plan = [(0, 0), (1, 0), (0, 2), (1, 1), (0, 3)];
        let out = merged(&old, &new, &plan).unwrap();
        assert_eq!(*out.data_type(), text_dictionary());
        let texts: Vec<Option<&str>> = (0..out.len()).map(|r| text_at(out.as_ref(), r)).collect();
        assert_eq!(texts, [Some("a"), Some("x"), None, None, Some("a")]);
        assert!(same_value(out.as_ref(), 1, &new, 0));
        assert!(!same_value(out.as_ref(), 0, &new, 0));
        assert!(
            same_value(out.as_ref(), 3, &new, 1),
            "two nulls are the same"
        );
    }

    /// A dictionary-encoded column whose dictionary overflowed into plain pages (long,
    /// distinct texts) reads as a dictionary all the same, every value in its place.
    #[test]
    fn a_dictionary_column_past_its_dictionary_page_reads_as_a_dictionary() {
        let schema: SchemaRef = std::sync::Arc::new(Schema::new(vec![arrow_schema::Field::new(
            "CF_NR",
            DataType::Utf8,
            true,
        )]));
        let texts: Vec<Option<String>> = (0..5000)
            .map(|i| (i % 7 != 0).then(|| format!("处罚内容第{i}条：责令改正，罚款{}元", i * 37)))
            .collect();
        let batch = arrow_array::RecordBatch::try_new(
            schema.clone(),
            vec![std::sync::Arc::new(StringArray::from(texts.clone()))],
        )
        .unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_dictionary_page_size_limit(1024)
            .set_data_page_size_limit(1024)
            .build();
        let mut bytes = Vec::new();
        let mut w = ArrowWriter::try_new(&mut bytes, schema.clone(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let bytes = Bytes::from(bytes);
        let meta = ArrowReaderMetadata::load(
            &bytes,
            ArrowReaderOptions::new().with_schema(dictionary_schema(&schema)),
        )
        .unwrap();
        let encodings = meta
            .metadata()
            .row_group(0)
            .column(0)
            .encodings()
            .collect::<Vec<_>>();
        assert!(
            encodings.contains(&parquet::basic::Encoding::PLAIN),
            "the dictionary overflowed: {encodings:?}"
        );
        assert!(!all_dictionary_pages(
            meta.metadata().row_group(0).column(0)
        ));
        let mut read = Vec::new();
        for b in ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, meta)
            .build()
            .unwrap()
        {
            let column = b.unwrap().column(0).clone();
            assert_eq!(*column.data_type(), text_dictionary());
            read.extend((0..column.len()).map(|r| text_at(column.as_ref(), r).map(str::to_string)));
        }
        assert_eq!(read, texts);
    }

    #[test]
    fn a_small_dictionary_column_has_dictionary_pages_only() {
        let schema: SchemaRef = std::sync::Arc::new(Schema::new(vec![arrow_schema::Field::new(
            "run_id",
            DataType::Utf8,
            false,
        )]));
        let runs = StringArray::from_iter_values((0..5000).map(|i| format!("run-{}", i % 3)));
        let batch =
            arrow_array::RecordBatch::try_new(schema.clone(), vec![std::sync::Arc::new(runs)])
                .unwrap();
        let mut bytes = Vec::new();
        let mut w =
            ArrowWriter::try_new(&mut bytes, schema.clone(), Some(writer_props(&schema))).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let meta =
            ArrowReaderMetadata::load(&Bytes::from(bytes), ArrowReaderOptions::new()).unwrap();
        assert!(all_dictionary_pages(meta.metadata().row_group(0).column(0)));
    }

    #[test]
    fn merged_copies_runs_of_numbers() {
        let old = UInt64Array::from(vec![1, 2, 3, 4, 5]);
        let new = UInt64Array::from(vec![Some(40), None]);
        let plan = [(0, 0), (0, 1), (1, 0), (0, 3), (0, 4), (1, 1)];
        let got = merged(&old, &new, &plan).unwrap();
        let got = got.as_any().downcast_ref::<UInt64Array>().unwrap();
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            vec![Some(1), Some(2), Some(40), Some(4), Some(5), None]
        );
    }
}
