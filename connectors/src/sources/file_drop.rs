//! The file-drop source: a directory where a department leaves CSV or XLSX exports.
//! Files are read in name order; a file whose content hash was read by an earlier
//! run is skipped, so re-running a night reads nothing twice.

use super::csv_file::CsvReader;
use super::xlsx_file::XlsxReader;
use crate::{
    ByteProgress, ConnectorError, InputUnit, RawBatch, ReadContext, Result, SetAside, Source,
    BATCH_ROWS,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `[source] type = "file_drop"` in a mapping file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDropConfig {
    /// Directory the department drops files into (relative to the config's base directory).
    pub dir: PathBuf,
    /// File-name pattern with `*` and `?` wildcards, e.g. `*.csv`.
    #[serde(default = "default_pattern")]
    pub pattern: String,
    /// Worksheet to read in XLSX files (default: the first).
    #[serde(default)]
    pub sheet: Option<String>,
}

fn default_pattern() -> String {
    "*".to_string()
}

/// Reads the pending files of a drop directory, one after another.
pub struct FileDropSource {
    /// Files to read with their hash, or `None` for a file hashed while it is read.
    pending: std::vec::IntoIter<(PathBuf, Option<String>)>,
    current: Option<(Arc<InputUnit>, Box<dyn RowReader>)>,
    completed: Vec<Arc<InputUnit>>,
    skipped: Vec<PathBuf>,
    set_aside: Vec<SetAside>,
    expected_columns: Vec<String>,
    sheet: Option<String>,
    progress: Arc<ByteProgress>,
}

/// A reader of one file's data rows (after the header).
pub(crate) trait RowReader: Send {
    /// Up to `max` rows; an empty vector at the end of the file.
    fn next_rows(&mut self, max: usize) -> Result<Vec<crate::RawRow>>;

    /// Once the rows are exhausted: the SHA-256 of the bytes read, when the reader
    /// hashed the file on the way.
    fn streamed_sha256(&mut self) -> Option<String> {
        None
    }
}

impl FileDropSource {
    /// Lists the drop directory and hashes every matching file.
    pub fn new(cfg: FileDropConfig, cx: &ReadContext) -> Result<Self> {
        let dir = cx.base_dir.join(&cfg.dir);
        let entries = std::fs::read_dir(&dir).map_err(|source| ConnectorError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| ConnectorError::Io {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_file() && !name.starts_with('.') && wildcard_match(&cfg.pattern, &name) {
                files.push(path);
            }
        }
        files.sort();
        let sizes: Vec<u64> = files
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()))
            .collect::<std::io::Result<_>>()
            .map_err(|source| ConnectorError::Io {
                path: dir.clone(),
                source,
            })?;
        // A file is hashed before it is read only when it could be one already read or a
        // copy of another in the directory: same size as one of those. Any other file is
        // new, and hashing it on the way saves a whole pass over it before the first row.
        let mut size_count: HashMap<u64, usize> = HashMap::new();
        for size in &sizes {
            *size_count.entry(*size).or_default() += 1;
        }
        let may_be_known = |size: u64| {
            size_count[&size] > 1
                || cx
                    .already_read_sizes
                    .as_ref()
                    .is_none_or(|known| known.contains(&size))
        };
        let mut seen: HashSet<String> = HashSet::new();
        let mut pending = Vec::new();
        let mut skipped = Vec::new();
        let mut total = 0;
        for (path, size) in files.into_iter().zip(sizes) {
            if !may_be_known(size) {
                pending.push((path, None));
                total += size;
                continue;
            }
            let hash = sha256_file(&path)?;
            if cx.already_read.contains(&hash) || !seen.insert(hash.clone()) {
                skipped.push(path);
            } else {
                pending.push((path, Some(hash)));
                total += size;
            }
        }
        Ok(FileDropSource {
            progress: Arc::new(ByteProgress {
                total,
                ..Default::default()
            }),
            pending: pending.into_iter(),
            current: None,
            completed: Vec::new(),
            skipped,
            set_aside: Vec::new(),
            expected_columns: cx.expected_columns.clone(),
            sheet: cfg.sheet,
        })
    }

    fn open(
        &self,
        path: &Path,
        sha256: Option<String>,
    ) -> Result<(Arc<InputUnit>, Box<dyn RowReader>)> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "xlsx" | "xlsm" | "xls" => {
                // Workbooks are read whole by the parser anyway: hash them first.
                let sha256 = match sha256 {
                    Some(h) => h,
                    None => sha256_file(path)?,
                };
                let (unit, reader) =
                    XlsxReader::open(path, sha256, &self.expected_columns, self.sheet.as_deref())?;
                let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                self.progress
                    .done
                    .fetch_add(size, std::sync::atomic::Ordering::Relaxed);
                Ok((Arc::new(unit), Box::new(reader)))
            }
            _ => {
                let (unit, reader) =
                    CsvReader::open(path, sha256, &self.expected_columns, self.progress.clone())?;
                Ok((Arc::new(unit), Box::new(reader)))
            }
        }
    }
}

impl Source for FileDropSource {
    fn next_batch(&mut self) -> Result<Option<RawBatch>> {
        loop {
            if self.current.is_none() {
                let Some((path, hash)) = self.pending.next() else {
                    return Ok(None);
                };
                // A file that cannot be opened (empty, not a workbook, corrupt, no
                // header; a reader that panics on it) is set aside; the others are read.
                let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.open(&path, hash.clone())
                }))
                .unwrap_or_else(|_| {
                    Err(ConnectorError::Io {
                        path: path.clone(),
                        source: std::io::Error::other(
                            "the reader failed on this file (it is malformed)",
                        ),
                    })
                });
                match opened {
                    Ok(current) => self.current = Some(current),
                    Err(e) => {
                        let sha256 = match hash {
                            Some(h) => h,
                            None => sha256_file(&path)?,
                        };
                        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                        tracing::warn!(file = %path.display(), reason = %e, "file set aside; the others are read");
                        self.set_aside.push(SetAside {
                            path,
                            sha256,
                            bytes,
                            reason: e.to_string(),
                        });
                    }
                }
                continue;
            }
            let (unit, reader) = self.current.as_mut().expect("current file is open");
            // A file that fails part way (a reader error or panic after its first rows)
            // is set aside from there on: the rows before it were handed on, the file
            // is not recorded as read, the other files are read.
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                reader.next_rows(BATCH_ROWS)
            }))
            .unwrap_or_else(|_| {
                Err(ConnectorError::Io {
                    path: unit.path.clone(),
                    source: std::io::Error::other(
                        "the reader failed in this file (it is malformed)",
                    ),
                })
            });
            let rows = match read {
                // Notes under the table (注：…, 制表人, merged note rows) are not data.
                Ok(mut rows) => {
                    let n = rows.len();
                    rows.retain(|r| !crate::header::is_note_row(r.values.iter()));
                    if rows.is_empty() && n > 0 {
                        continue;
                    }
                    rows
                }
                Err(e) => {
                    let (unit, _) = self.current.take().expect("current file is open");
                    let sha256 = match unit.sha256.as_str() {
                        "" => sha256_file(&unit.path)?,
                        h => h.to_string(),
                    };
                    tracing::warn!(file = %unit.path.display(), reason = %e, "file set aside part way; the others are read");
                    self.set_aside.push(SetAside {
                        path: unit.path.clone(),
                        sha256,
                        bytes: unit.bytes.unwrap_or(0),
                        reason: format!("failed part way, the rows before were read: {e}"),
                    });
                    continue;
                }
            };
            if rows.is_empty() {
                let (mut unit, mut reader) = self.current.take().expect("current file is open");
                if unit.sha256.is_empty() {
                    let sha256 = match reader.streamed_sha256() {
                        Some(h) => h,
                        None => sha256_file(&unit.path)?,
                    };
                    unit = Arc::new(InputUnit {
                        sha256,
                        ..(*unit).clone()
                    });
                }
                self.completed.push(unit);
                continue;
            }
            return Ok(Some(RawBatch {
                unit: unit.clone(),
                rows,
            }));
        }
    }

    fn completed(&self) -> Vec<Arc<InputUnit>> {
        self.completed.clone()
    }

    fn skipped(&self) -> Vec<PathBuf> {
        self.skipped.clone()
    }

    fn set_aside(&self) -> Vec<SetAside> {
        self.set_aside.clone()
    }

    fn progress(&self) -> Option<Arc<ByteProgress>> {
        Some(self.progress.clone())
    }
}

/// Lowercase hex SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let io = |source| ConnectorError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Matches a file name against a pattern with `*` (any run) and `?` (one character).
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi].eq_ignore_ascii_case(&n[ni])) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}
