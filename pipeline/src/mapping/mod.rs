//! Mapping files (`mappings/<feed>.toml`): one declarative file per departmental feed
//! saying where its rows come from, which dataset they feed, which source column
//! becomes which provincial field and through which transforms. A new department is a
//! new mapping file, not new Rust.
//!
//! Parsing checks everything that can be checked without data (unknown dataset, field,
//! transform, key); the source columns are checked against each file's header before
//! any of its rows move. Both kinds of error name the mapping file and line.

pub mod transforms;

use crate::domain::schema::{self, Dataset};
use connectors::header::normalise_header;
use connectors::SourceConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;
use transforms::Transform;

/// Values treated as "no value" when a department writes them in a cell.
pub const DEFAULT_NULL_MARKERS: [&str; 12] = [
    "无", "/", "／", "—", "——", "-", "--", "空", "NULL", "null", "N/A", "暂无",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    feed: String,
    title: String,
    department: String,
    dataset: Spanned<String>,
    source_unit: Spanned<String>,
    #[serde(default)]
    null_markers: Option<Vec<String>>,
    #[serde(default)]
    updated_at: Option<Spanned<String>>,
    #[serde(default)]
    max_quarantine_ratio: Option<f64>,
    #[serde(default)]
    full_export: bool,
    source: SourceConfig,
    field: Vec<FieldFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    to: Spanned<String>,
    #[serde(default)]
    from: Option<Spanned<String>>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    transforms: Vec<Transform>,
    /// Code-list lookup applied after the transforms: source value → provincial value.
    #[serde(default)]
    map: BTreeMap<String, String>,
    /// Value used when the source cell is empty.
    #[serde(default)]
    default: Option<String>,
    /// The column may be absent from a file (older exports): the field is then empty.
    #[serde(default)]
    optional: bool,
}

/// A mapping or configuration error, with the file and line it points to.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct MappingError {
    /// The mapping file.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Where one provincial field's value comes from.
#[derive(Debug, Clone)]
pub enum FieldSource {
    /// A source column, by its header name.
    Column(String),
    /// A constant.
    Value(String),
}

/// One compiled field rule.
#[derive(Debug, Clone)]
pub struct FieldRule {
    /// Position in the dataset.
    pub target: usize,
    /// Where the value comes from.
    pub source: FieldSource,
    /// Transforms, in order.
    pub transforms: Vec<Transform>,
    /// Lookup after the transforms.
    pub map: BTreeMap<String, String>,
    /// Value when empty.
    pub default: Option<String>,
    /// Whether the source column may be absent from a file.
    pub optional: bool,
    /// Line in the mapping file of the source column (or of the field) for errors.
    pub line: usize,
}

/// A compiled feed: everything the pipeline needs to turn raw rows into records.
#[derive(Debug, Clone)]
pub struct Feed {
    /// Feed name, unique in a deployment, e.g. `scjgj_xzcf`.
    pub name: String,
    /// Title for people, e.g. 同江市市场监督管理局 行政处罚.
    pub title: String,
    /// The department (reporting unit) in plain Chinese.
    pub department: String,
    /// The dataset fed.
    pub dataset: Arc<Dataset>,
    /// The reporting unit's credit code.
    pub source_unit: String,
    /// Where rows come from.
    pub source: SourceConfig,
    /// Field rules.
    pub rules: Vec<FieldRule>,
    /// Source column of the update time (dedupe: the newest wins).
    pub updated_at: Option<String>,
    /// Cell values that mean "none".
    pub null_markers: Vec<String>,
    /// Above this share of quarantined rows a run ends with exit code 1 (the department
    /// is to be called); none when `None`.
    pub max_quarantine_ratio: Option<f64>,
    /// Every file is a full export (no cursor): records missing from a new export have
    /// left the source and are withdrawn.
    pub full_export: bool,
    /// The mapping file.
    pub file: PathBuf,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Feed {
    /// Parses and checks one mapping file.
    pub fn load(path: &Path) -> Result<Feed, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|e| MappingError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        Feed::parse(path, &text)
    }

    /// Parses and checks mapping text (`path` is for messages).
    pub fn parse(path: &Path, text: &str) -> Result<Feed, MappingError> {
        let err = |line: usize, message: String| MappingError {
            file: path.to_path_buf(),
            line,
            message,
        };
        let file: MappingFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            err(line, e.message().to_string())
        })?;
        let at = |s: &std::ops::Range<usize>| line_of(text, s.start);
        let dataset = schema::registry()
            .get(file.dataset.get_ref())
            .ok_or_else(|| {
                err(
                    at(&file.dataset.span()),
                    format!(
                        "unknown dataset {:?} (known: {})",
                        file.dataset.get_ref(),
                        schema::registry().codes().join(", ")
                    ),
                )
            })?;
        let unit = crate::domain::ids::normalise_code(file.source_unit.get_ref());
        if let Err(e) = crate::domain::ids::check_uscc(&unit) {
            return Err(err(
                at(&file.source_unit.span()),
                format!(
                    "source_unit {unit:?} is not a valid credit code ({})",
                    e.code()
                ),
            ));
        }
        let mut rules = Vec::new();
        for f in file.field {
            let line = at(&f.to.span());
            let target = dataset.position(f.to.get_ref()).ok_or_else(|| {
                err(
                    line,
                    format!("dataset {} has no field {:?}", dataset.code, f.to.get_ref()),
                )
            })?;
            if rules.iter().any(|r: &FieldRule| r.target == target) {
                return Err(err(
                    line,
                    format!("field {} is mapped twice", f.to.get_ref()),
                ));
            }
            let mut source_line = line;
            let source = match (f.from, f.value) {
                (Some(col), None) => {
                    source_line = at(&col.span());
                    FieldSource::Column(normalise_header(col.get_ref()))
                }
                (None, Some(v)) => FieldSource::Value(v),
                _ => {
                    return Err(err(
                        line,
                        format!(
                            "field {}: give exactly one of `from` or `value`",
                            f.to.get_ref()
                        ),
                    ))
                }
            };
            rules.push(FieldRule {
                target,
                source,
                transforms: f.transforms,
                map: f.map,
                default: f.default,
                optional: f.optional,
                line: source_line,
            });
        }
        for k in &dataset.key {
            if !rules.iter().any(|r| r.target == *k) {
                return Err(err(
                    0,
                    format!(
                        "key field {} of dataset {} is not mapped",
                        dataset.fields[*k].code, dataset.code
                    ),
                ));
            }
        }
        if let Err(message) = file.source.check() {
            return Err(err(0, format!("[source]: {message}")));
        }
        if !is_plain_name(&file.feed) {
            return Err(err(
                1,
                format!(
                    "feed {:?}: a feed name is 1 to 64 characters of a-z, 0-9, _ and - (it names folders and files)",
                    file.feed
                ),
            ));
        }
        Ok(Feed {
            name: file.feed,
            title: file.title,
            department: file.department,
            dataset,
            source_unit: unit,
            source: file.source,
            rules,
            updated_at: file.updated_at.map(|s| normalise_header(s.get_ref())),
            max_quarantine_ratio: file.max_quarantine_ratio,
            full_export: file.full_export,
            null_markers: file
                .null_markers
                .unwrap_or_else(|| DEFAULT_NULL_MARKERS.iter().map(|s| s.to_string()).collect()),
            file: path.to_path_buf(),
        })
    }

    /// The document number (文书号) of a refused row's raw cells (header → text), through
    /// the mapping's rule for the dataset's document field: what a problem of the
    /// quarantine is known by.
    pub fn document_of_raw(&self, raw: &serde_json::Value) -> Option<String> {
        let at = self.dataset.document_position()?;
        let rule = self.rules.iter().find(|r| r.target == at)?;
        let cell = match &rule.source {
            FieldSource::Column(c) => raw.get(c).and_then(|v| v.as_str()).unwrap_or(""),
            FieldSource::Value(v) => v.as_str(),
        }
        .trim();
        if cell.is_empty() || self.null_markers.iter().any(|m| m == cell) {
            return None;
        }
        Some(
            rule.map
                .get(cell)
                .cloned()
                .unwrap_or_else(|| cell.to_string()),
        )
    }

    /// The source columns this mapping reads (for header detection).
    pub fn expected_columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = self
            .rules
            .iter()
            .filter_map(|r| match &r.source {
                FieldSource::Column(c) => Some(c.clone()),
                FieldSource::Value(_) => None,
            })
            .collect();
        cols.extend(self.updated_at.clone());
        cols
    }
}

/// A mapping file that cannot be used: its feed fails, the others run.
#[derive(Debug)]
pub struct BrokenFeed {
    /// The feed's name: the file's stem.
    pub name: String,
    /// Why.
    pub error: MappingError,
}

/// The mappings of a directory, each loaded on its own.
#[derive(Debug, Default)]
pub struct Feeds {
    /// The usable ones, sorted by file name.
    pub feeds: Vec<Feed>,
    /// The broken ones: a parse or check error, or a feed name defined twice.
    pub broken: Vec<BrokenFeed>,
}

/// Whether a name is safe in paths: 1 to 64 characters of `a-z`, `0-9`, `_` and `-`.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Loads every `*.toml` in a mappings directory, sorted by name, each on its own: one
/// department's typo fails that department's feed only. An unreadable directory is an
/// error of the whole.
pub fn load_each(dir: &Path) -> Result<Feeds, MappingError> {
    let rd = std::fs::read_dir(dir).map_err(|e| MappingError {
        file: dir.to_path_buf(),
        line: 0,
        message: format!("cannot list mappings: {e}"),
    })?;
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let mut out = Feeds::default();
    for p in paths {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let loaded =
            Feed::load(&p).and_then(
                |feed| match out.feeds.iter().find(|f| f.name == feed.name) {
                    Some(other) => Err(MappingError {
                        file: p.clone(),
                        line: 1,
                        message: format!(
                            "feed {:?} is also defined in {}",
                            feed.name,
                            other.file.display()
                        ),
                    }),
                    None => Ok(feed),
                },
            );
        match loaded {
            Ok(feed) => out.feeds.push(feed),
            Err(error) => out.broken.push(BrokenFeed { name: stem, error }),
        }
    }
    Ok(out)
}

/// Loads every `*.toml` in a mappings directory, sorted by name; the first broken one
/// is the error (`xinyong check`, and what needs every feed).
pub fn load_dir(dir: &Path) -> Result<Vec<Feed>, MappingError> {
    let mut loaded = load_each(dir)?;
    if !loaded.broken.is_empty() {
        return Err(loaded.broken.remove(0).error);
    }
    Ok(loaded.feeds)
}

#[cfg(test)]
mod tests;
