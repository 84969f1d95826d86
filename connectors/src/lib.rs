//! Sources for xinyong: each yields bounded batches of raw rows (strings, with the
//! file and line they came from) and never interprets the data. Interpretation —
//! mapping, validation, identity — belongs to the pipeline.
//!
//! The contract is [`Source`]: pull [`RawBatch`]es until `None`; the pipeline
//! decides when a source's position ([`Source::completed`], [`Source::checkpoint`]) is
//! safe to record.
#![warn(missing_docs)]

pub mod cells;
pub mod encoding;
pub mod header;
pub mod registry;
pub mod retry;
pub mod signing;
pub mod sources;
pub mod wire;

use std::path::PathBuf;
use std::sync::Arc;

pub use cells::Cells;
pub use registry::SourceConfig;

/// Rows per batch handed to the pipeline: bounded so memory does not grow with a feed.
pub const BATCH_ROWS: usize = 2048;

/// One file (or other unit of input) being read, shared by all the rows that came from it.
#[derive(Debug, Clone)]
pub struct InputUnit {
    /// Path as configured (shown to operators in errors and quarantine rows).
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the file's bytes: the identity used to skip files already
    /// read. Empty while a new file is being read and hashed on the way (the completed
    /// unit has it).
    pub sha256: String,
    /// Size in bytes, for files.
    pub bytes: Option<u64>,
    /// Column names of the detected header row, trimmed.
    pub headers: Vec<String>,
    /// 1-based line (CSV) or sheet row (XLSX) of the header.
    pub header_line: u64,
    /// Encoding the text was decoded from (`UTF-8`, `GB18030`, or `xlsx`).
    pub encoding: &'static str,
}

impl InputUnit {
    /// The file name for display.
    pub fn display_name(&self) -> String {
        self.path.display().to_string()
    }
}

/// One raw row: the cells as decoded text, aligned with [`InputUnit::headers`].
#[derive(Debug, Clone, PartialEq)]
pub struct RawRow {
    /// 1-based line number in the file (CSV: the line the record starts on; XLSX: the sheet row).
    pub line: u64,
    /// Cell texts, exactly as decoded (not trimmed). Bytes that could not be decoded
    /// are shown as `\xB3` in the text, never as U+FFFD.
    pub values: Cells,
    /// The first cell whose bytes could not be decoded, when there is one: the row
    /// cannot become a record (the pipeline quarantines it as `encoding_invalid`).
    pub undecodable: Option<Box<Undecodable>>,
}

impl RawRow {
    /// A row whose cells all decoded.
    pub fn new(line: u64, values: Cells) -> Self {
        RawRow {
            line,
            values,
            undecodable: None,
        }
    }
}

/// Bytes of a cell that are not text in the file's encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    /// The 0-based column of the cell.
    pub column: usize,
    /// The first malformed byte sequence, as it is in the file.
    pub bytes: Vec<u8>,
}

/// A bounded batch of raw rows from one input unit.
#[derive(Debug, Clone)]
pub struct RawBatch {
    /// Where the rows came from.
    pub unit: Arc<InputUnit>,
    /// The rows, in file order.
    pub rows: Vec<RawRow>,
}

/// What stops a source. Bad *rows* never become errors; bad *files* do.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The CSV could not be parsed at a given line.
    #[error("{path}: line {line}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What the parser said.
        message: String,
    },
    /// A workbook could not be read.
    #[error("{path}: cannot read workbook: {message}")]
    Workbook {
        /// The file.
        path: PathBuf,
        /// What calamine said.
        message: String,
    },
    /// No row among the first few looks like the header the mapping expects.
    #[error("{path}: no header row found in the first {scanned} rows (expected columns such as {expected})")]
    NoHeader {
        /// The file.
        path: PathBuf,
        /// How many rows were looked at.
        scanned: usize,
        /// A few of the expected column names.
        expected: String,
    },
    /// The run was cancelled (a scheduled job's timeout) before the source was read to
    /// its end.
    #[error("cancelled before the source was read to its end (the job's timeout)")]
    Cancelled,
    /// The source's configuration is unusable.
    #[error("source configuration: {0}")]
    Config(String),
    /// A database query failed (the message never contains the connection URL).
    #[error("feed {feed}: database: {message}")]
    Database {
        /// The feed.
        feed: String,
        /// What the driver said, with the URL and password masked.
        message: String,
    },
    /// An HTTP API failed (a 4xx, or retries used up); the token is masked.
    #[error("feed {feed}: HTTP source: {message}")]
    Http {
        /// The feed.
        feed: String,
        /// Status and body excerpt, or the last error.
        message: String,
    },
}

/// Result type of this crate.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

/// An input file that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SetAside {
    /// The file.
    pub path: PathBuf,
    /// Its content hash.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Why it cannot be read.
    pub reason: String,
}

/// A source of raw rows for one feed.
pub trait Source: Send {
    /// The next batch, or `None` when the source is exhausted for this run.
    /// An `Err` stops this feed (not the run's other feeds).
    fn next_batch(&mut self) -> Result<Option<RawBatch>>;

    /// Input units read to the end so far (by content hash). The pipeline records
    /// them in the state store only after their rows are safely in the snapshot.
    fn completed(&self) -> Vec<Arc<InputUnit>>;

    /// Input units skipped because they had been read by an earlier run.
    fn skipped(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    /// Input units that could not be read at all (empty, not a workbook, corrupt, no
    /// header): set aside with their reason, while the source's other units are read.
    /// The pipeline records them like files read, so they are not tried again until
    /// their content changes.
    fn set_aside(&self) -> Vec<SetAside> {
        Vec::new()
    }

    /// What an operator should know about this read that is not an error (rows a
    /// source could not place, such as a NULL watermark): shown in the run report.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// An opaque position (e.g. the last watermark and key read) that a later run hands
    /// back in [`ReadContext::position`]. The pipeline stores it only after this run's
    /// records are safely in the snapshot. Sources without one return `None`.
    fn checkpoint(&self) -> Option<String> {
        None
    }

    /// How far the source is, in bytes, when it knows its size (for a progress bar
    /// with an ETA). The counter is shared: it moves while the source is read elsewhere.
    fn progress(&self) -> Option<Arc<ByteProgress>> {
        None
    }
}

/// Bytes read out of the bytes there are to read.
#[derive(Debug, Default)]
pub struct ByteProgress {
    /// Bytes read so far.
    pub done: std::sync::atomic::AtomicU64,
    /// Bytes in all the inputs of this run.
    pub total: u64,
}

impl ByteProgress {
    /// (done, total).
    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(std::sync::atomic::Ordering::Relaxed),
            self.total,
        )
    }
}

/// What a source needs to know from the pipeline: the columns the mapping reads (for
/// header detection) and the content hashes already read (to skip them).
#[derive(Debug, Clone, Default)]
pub struct ReadContext {
    /// Source column names the feed's mapping refers to.
    pub expected_columns: Vec<String>,
    /// SHA-256 of inputs recorded as read by earlier runs.
    pub already_read: std::collections::HashSet<String>,
    /// The sizes of the inputs recorded as read, when all are known: a file of another
    /// size is new, so its hash is computed while it is read rather than before.
    pub already_read_sizes: Option<std::collections::HashSet<u64>>,
    /// Base directory that relative paths in the source configuration are resolved against.
    pub base_dir: PathBuf,
    /// The feed's name (for errors and logs).
    pub feed: String,
    /// The position an earlier run recorded ([`Source::checkpoint`]), to resume after.
    pub position: Option<String>,
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
