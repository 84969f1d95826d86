//! CSV exports: encoding detected (UTF-8 with or without BOM, UTF-16 with BOM,
//! GB18030/GBK), header row found among the first rows. UTF-8 and GB18030 are parsed
//! as bytes (their delimiters are ASCII) and each cell decoded on its own, so a
//! malformed byte marks its row rather than turning into U+FFFD; UTF-16 is transcoded
//! while streaming.

use super::file_drop::RowReader;
use crate::header::{find_header, HEADER_SCAN_ROWS};
use crate::{encoding, Cells, ConnectorError, InputUnit, RawRow, Result, Undecodable};
use encoding_rs::{Encoding, UTF_8};
use encoding_rs_io::DecodeReaderBytesBuilder;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

type Decoded = LineTracked<Box<dyn Read + Send>>;

/// Counts the raw bytes read from the file (for progress and its ETA) and, for a new
/// file, hashes them on the way.
struct Counted<R> {
    inner: R,
    progress: std::sync::Arc<crate::ByteProgress>,
    hash: Option<std::sync::Arc<std::sync::Mutex<StreamHash>>>,
}

/// The SHA-256 of the bytes read so far.
#[derive(Default)]
struct StreamHash {
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress
            .done
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = &self.hash {
            let mut h = h.lock().expect("not poisoned");
            h.hasher.update(&buf[..n]);
            h.bytes += n as u64;
        }
        Ok(n)
    }
}

/// Where the newlines are in the decoded text, so each record gets the line it really
/// starts on: the csv crate's own line numbers run one behind after CRLF endings and
/// skipped blank lines, and departments export CRLF.
#[derive(Debug, Default)]
struct Newlines {
    /// Byte offsets of `\n` not yet passed.
    offsets: VecDeque<u64>,
    /// Newlines already passed.
    passed: u64,
    /// Bytes seen so far.
    seen: u64,
}

impl Newlines {
    /// The 1-based line of a record whose position the csv crate gives as `byte`: skip
    /// the CR/LF run the record's reported start points into (line ends, blank lines).
    fn line_of_record(&mut self, byte: u64) -> u64 {
        while self.offsets.front().is_some_and(|o| *o < byte) {
            self.offsets.pop_front();
            self.passed += 1;
        }
        let mut p = byte;
        while let Some(&o) = self.offsets.front() {
            if o == p || o == p + 1 {
                self.offsets.pop_front();
                self.passed += 1;
                p = o + 1;
            } else {
                break;
            }
        }
        self.passed + 1
    }
}

/// A reader that notes where the newlines are as the text streams through.
struct LineTracked<R> {
    inner: R,
    lines: std::sync::Arc<std::sync::Mutex<Newlines>>,
}

impl<R: Read> Read for LineTracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut lines = self.lines.lock().expect("not poisoned");
        let base = lines.seen;
        for i in memchr::memchr_iter(b'\n', &buf[..n]) {
            lines.offsets.push_back(base + i as u64);
        }
        lines.seen += n as u64;
        Ok(n)
    }
}

/// Streams the data rows of one CSV file.
pub struct CsvReader {
    path: PathBuf,
    reader: csv::Reader<Decoded>,
    lines: std::sync::Arc<std::sync::Mutex<Newlines>>,
    /// Rows read during header detection that come after the header.
    buffered: VecDeque<RawRow>,
    record: csv::ByteRecord,
    /// What the parsed bytes are: UTF-8 or GB18030 (UTF-16 is transcoded to UTF-8).
    cell_encoding: &'static Encoding,
    /// The file hashed on the way (a new file), and its size.
    hash: Option<std::sync::Arc<std::sync::Mutex<StreamHash>>>,
    bytes: u64,
}

impl CsvReader {
    /// Opens the file, detects its encoding and its header row.
    pub fn open(
        path: &Path,
        sha256: Option<String>,
        expected: &[String],
        progress: std::sync::Arc<crate::ByteProgress>,
    ) -> Result<(InputUnit, Self)> {
        let io = |source| ConnectorError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut sample = vec![0u8; encoding::SAMPLE_BYTES];
        let mut file = File::open(path).map_err(io)?;
        let mut filled = 0;
        while filled < sample.len() {
            let n = file.read(&mut sample[filled..]).map_err(io)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        sample.truncate(filled);
        let enc = encoding::detect(&sample);
        let file = File::open(path).map_err(io)?;
        let bytes = file.metadata().map_err(io)?.len();
        let hash = sha256
            .is_none()
            .then(|| std::sync::Arc::new(std::sync::Mutex::new(StreamHash::default())));
        let counted = BufReader::with_capacity(
            1 << 20,
            Counted {
                inner: file,
                progress,
                hash: hash.clone(),
            },
        );
        let (stream, cell_encoding): (Box<dyn Read + Send>, _) =
            if enc == UTF_8 || enc == encoding_rs::GB18030 {
                // ASCII-compatible: parsed as bytes, a BOM (UTF-8's) skipped.
                (Box::new(SkipBom::new(counted)), enc)
            } else {
                // 64 KiB steps through decoding and parsing: the 8 KiB defaults spend a
                // tenth of the reader's time on per-call setup.
                let decoded = DecodeReaderBytesBuilder::new()
                    .encoding(Some(enc))
                    .bom_override(true)
                    .build_with_buffer(counted, vec![0; 1 << 16])
                    .map_err(io)?;
                (Box::new(decoded), UTF_8)
            };
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Newlines::default()));
        let tracked = LineTracked {
            inner: stream,
            lines: lines.clone(),
        };
        let reader = csv::ReaderBuilder::new()
            .buffer_capacity(1 << 16)
            .has_headers(false)
            .flexible(true)
            .from_reader(tracked);
        let mut this = CsvReader {
            path: path.to_path_buf(),
            reader,
            lines,
            buffered: VecDeque::new(),
            record: csv::ByteRecord::new(),
            cell_encoding,
            hash,
            bytes,
        };
        let mut head = Vec::new();
        while head.len() < HEADER_SCAN_ROWS {
            match this.read_one()? {
                Some(row) => head.push(row),
                None => break,
            }
        }
        let cells: Vec<Vec<String>> = head.iter().map(|r| r.values.to_vec()).collect();
        let Some(h) = find_header(&cells, expected) else {
            return Err(ConnectorError::NoHeader {
                path: path.to_path_buf(),
                scanned: head.len(),
                expected: expected
                    .iter()
                    .take(4)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let header_line = head[h].line;
        let headers = head[h]
            .values
            .iter()
            .map(crate::header::normalise_header)
            .collect();
        this.buffered = head.into_iter().skip(h + 1).collect();
        let unit = InputUnit {
            path: path.to_path_buf(),
            sha256: sha256.unwrap_or_default(),
            bytes: Some(bytes),
            headers,
            header_line,
            encoding: encoding::name(enc),
        };
        Ok((unit, this))
    }

    fn read_one(&mut self) -> Result<Option<RawRow>> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {
                let byte = self.record.position().map(|p| p.byte()).unwrap_or(0);
                let line = self
                    .lines
                    .lock()
                    .expect("not poisoned")
                    .line_of_record(byte);
                let (values, undecodable) = cells_of(&self.record, self.cell_encoding);
                Ok(Some(RawRow {
                    line,
                    values,
                    undecodable,
                }))
            }
            Ok(false) => Ok(None),
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                Err(ConnectorError::Csv {
                    path: self.path.clone(),
                    line,
                    message: e.to_string(),
                })
            }
        }
    }
}

/// The cells of a parsed record. Valid UTF-8 (the common case) is copied in one piece;
/// otherwise each cell is decoded on its own, malformed bytes escaped and the first
/// reported.
fn cells_of(record: &csv::ByteRecord, enc: &'static Encoding) -> (Cells, Option<Box<Undecodable>>) {
    let bytes = record.as_slice();
    let whole = if enc == UTF_8 || bytes.is_ascii() {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    };
    if let Some(text) = whole {
        let mut ends = Vec::with_capacity(record.len());
        let mut end = 0usize;
        let mut boundaries = true;
        for field in record.iter() {
            end += field.len();
            // The parser cuts at ASCII delimiters and quotes, so an end is a character
            // boundary — unless a damaged file splits one character over two cells
            // (valid only when joined): then each cell is decoded on its own.
            boundaries &= text.is_char_boundary(end);
            ends.push(u32::try_from(end).unwrap_or(u32::MAX));
        }
        if boundaries && u32::try_from(end).is_ok() {
            return (Cells::from_parts(text.to_string(), ends), None);
        }
    }
    let mut text = String::new();
    let mut ends = Vec::with_capacity(record.len());
    if enc == encoding_rs::GB18030
        && encoding::decode_gb18030_record(record.iter(), bytes.len(), &mut text, &mut ends)
    {
        return (Cells::from_parts(text, ends), None);
    }
    text.reserve(bytes.len() + bytes.len() / 2);
    let mut undecodable = None;
    for (column, field) in record.iter().enumerate() {
        if let Some(bad) = encoding::decode_cell(enc, field, &mut text) {
            undecodable.get_or_insert_with(|| Box::new(Undecodable { column, bytes: bad }));
        }
        ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
    }
    (Cells::from_parts(text, ends), undecodable)
}

/// Skips a UTF-8 BOM at the start of a byte stream.
struct SkipBom<R> {
    inner: R,
    checked: bool,
}

impl<R> SkipBom<R> {
    fn new(inner: R) -> Self {
        SkipBom {
            inner,
            checked: false,
        }
    }
}

impl<R: std::io::BufRead> Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.checked {
            self.checked = true;
            // The BufReader holds at least the first 3 bytes unless the file is shorter.
            let head = self.inner.fill_buf()?;
            if head.starts_with(b"\xEF\xBB\xBF") {
                self.inner.consume(3);
            }
        }
        self.inner.read(buf)
    }
}

impl RowReader for CsvReader {
    fn streamed_sha256(&mut self) -> Option<String> {
        let h = self.hash.take()?;
        let h = std::mem::take(&mut *h.lock().expect("not poisoned"));
        // The parser reads to the end of the file; should it ever stop short, the caller
        // hashes the file whole instead.
        (h.bytes == self.bytes).then(|| hex::encode(h.hasher.finalize()))
    }

    fn next_rows(&mut self, max: usize) -> Result<Vec<RawRow>> {
        let mut out = Vec::with_capacity(max.min(1024));
        while out.len() < max {
            if let Some(row) = self.buffered.pop_front() {
                out.push(row);
                continue;
            }
            match self.read_one()? {
                Some(row) => out.push(row),
                None => break,
            }
        }
        Ok(out)
    }
}
