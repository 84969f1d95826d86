//! CSV exports: encoding detected (UTF-8 with or without BOM, UTF-16 with BOM,
//! GB18030/GBK), decoded while streaming, header row found among the first rows.

use super::file_drop::RowReader;
use crate::header::{find_header, HEADER_SCAN_ROWS};
use crate::{encoding, Cells, ConnectorError, InputUnit, RawRow, Result};
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

type Decoded = LineTracked<DecodeReaderBytes<BufReader<Counted<File>>, Vec<u8>>>;

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
        let mut sample = vec![0u8; 64 * 1024];
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
        // 64 KiB steps through decoding and parsing: the 8 KiB defaults spend a tenth of
        // the reader's time on per-call setup.
        let decoded = DecodeReaderBytesBuilder::new()
            .encoding(Some(enc))
            .bom_override(true)
            .build_with_buffer(
                BufReader::with_capacity(
                    1 << 20,
                    Counted {
                        inner: file,
                        progress,
                        hash: hash.clone(),
                    },
                ),
                vec![0; 1 << 16],
            )
            .map_err(io)?;
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Newlines::default()));
        let tracked = LineTracked {
            inner: decoded,
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
                Ok(Some(RawRow {
                    line,
                    values: cells_of(&self.record),
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

/// The cells of a parsed record, copied in one piece. The decoder emits valid UTF-8 only
/// (malformed input becomes U+FFFD) and the CSV parser splits on ASCII bytes, so the
/// record's bytes are valid UTF-8 and every field ends on a character boundary
/// (`Cells::from_parts` checks the boundaries); validating the text again cost 6% of a
/// full load. Debug builds still check.
fn cells_of(record: &csv::ByteRecord) -> Cells {
    let bytes = record.as_slice();
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    let mut ends = Vec::with_capacity(record.len());
    let mut end = 0u32;
    for field in record.iter() {
        end += u32::try_from(field.len()).expect("a cell under 4 GiB");
        ends.push(end);
    }
    // SAFETY: see above — the bytes come from a UTF-8 decoder, cut at ASCII delimiters.
    let text = unsafe { String::from_utf8_unchecked(bytes.to_vec()) };
    Cells::from_parts(text, ends)
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
