//! The map stage: one raw row → the dataset's fields, through the feed's rules (source
//! column or constant, null markers, transforms, code-list lookup, default), then the
//! legacy-code resolution ([`super::resolve`]) and the dataset's rules
//! ([`super::validate`]). A row that cannot become a record carries its first problem
//! in field order.

use super::resolve::Register;
pub use super::RowProblem;
use crate::domain::reasons::Reason;
use crate::mapping::transforms::{self, trim};
use crate::mapping::{Feed, FieldSource, MappingError};
use chrono::NaiveDateTime;
use connectors::InputUnit;
use connectors::RawRow;
use std::borrow::Cow;

/// A feed's rules bound to one file's columns.
#[derive(Debug, Clone)]
pub struct Binding {
    columns: Vec<Option<usize>>,
    updated_at: Option<usize>,
    width: usize,
    /// The last column the rules read (a shorter row is cut).
    needed: Option<usize>,
    /// The file's column names (for problems about a source cell).
    headers: Vec<String>,
}

impl Feed {
    /// Resolves the source columns against one file's header, before any row moves.
    pub fn bind(&self, unit: &InputUnit) -> Result<Binding, MappingError> {
        let find = |col: &str| unit.headers.iter().position(|h| h == col);
        let missing = |col: &str, line: usize| MappingError {
            file: self.file.clone(),
            line,
            message: format!(
                "column {col:?} is not in the header of {} (line {}); its columns are: {}",
                unit.display_name(),
                unit.header_line,
                unit.headers.join(", ")
            ),
        };
        let mut columns = Vec::with_capacity(self.rules.len());
        for r in &self.rules {
            columns.push(match &r.source {
                FieldSource::Column(c) => match find(c) {
                    Some(i) => Some(i),
                    None if r.optional => None,
                    None => return Err(missing(c, r.line)),
                },
                FieldSource::Value(_) => None,
            });
        }
        let updated_at = match &self.updated_at {
            Some(c) => Some(find(c).ok_or_else(|| missing(c, 0))?),
            None => None,
        };
        let needed = columns.iter().flatten().chain(&updated_at).max().copied();
        Ok(Binding {
            needed,
            columns,
            updated_at,
            width: unit.headers.len(),
            headers: unit.headers.clone(),
        })
    }
}

/// A raw row mapped to the dataset's fields.
#[derive(Debug, Clone)]
pub struct Mapped<'a> {
    /// Values in field order (`""` for none), borrowed from the row or the mapping
    /// wherever no transform changed them.
    pub values: Vec<Cow<'a, str>>,
    /// The update time, when the feed has one.
    pub updated_at: Option<NaiveDateTime>,
}

impl Feed {
    /// Maps and validates one row. `Err` carries the first problem in field order.
    /// `register` resolves credit codes of records that carry only a legacy code.
    pub fn map_row<'a>(
        &'a self,
        b: &Binding,
        row: &'a RawRow,
        register: Option<&Register>,
    ) -> Result<Mapped<'a>, RowProblem> {
        let mut values = Vec::with_capacity(self.dataset.fields.len());
        let updated_at = self.map_row_into(b, row, register, &mut values)?;
        Ok(Mapped { values, updated_at })
    }

    /// [`Self::map_row`] into the end of `values` (the dataset's fields, in order), so a
    /// batch's rows share one vector; nothing is left there on `Err`. Returns the
    /// update time, when the feed has one.
    pub fn map_row_into<'a>(
        &'a self,
        b: &Binding,
        row: &'a RawRow,
        register: Option<&Register>,
        values: &mut Vec<Cow<'a, str>>,
    ) -> Result<Option<NaiveDateTime>, RowProblem> {
        let start = values.len();
        values.resize(start + self.dataset.fields.len(), Cow::Borrowed(""));
        let mapped = self.map_fields(b, row, register, &mut values[start..]);
        if mapped.is_err() {
            values.truncate(start);
        }
        mapped
    }

    /// The body of [`Self::map_row_into`]: `values` holds one empty value a field.
    fn map_fields<'a>(
        &'a self,
        b: &Binding,
        row: &'a RawRow,
        register: Option<&Register>,
        values: &mut [Cow<'a, str>],
    ) -> Result<Option<NaiveDateTime>, RowProblem> {
        let ds = &self.dataset;
        if row.values.iter().all(|v| v.trim().is_empty()) {
            return Err(RowProblem {
                reason: Reason::BlankRow,
                field: String::new(),
                value: String::new(),
            });
        }
        if row.values.len() > b.width
            && row
                .values
                .iter()
                .skip(b.width)
                .any(|v| !v.trim().is_empty())
        {
            return Err(RowProblem {
                reason: Reason::ColumnCount,
                field: String::new(),
                value: format!("{} cells, header has {}", row.values.len(), b.width),
            });
        }
        if let Some(p) = undecodable(b, row) {
            return Err(p);
        }
        if let Some(needed) = b.needed.filter(|&n| n >= row.values.len()) {
            return Err(RowProblem {
                reason: Reason::TooFewColumns,
                field: b.headers.get(needed).cloned().unwrap_or_default(),
                value: format!("{} cells, header has {}", row.values.len(), b.width),
            });
        }
        let cell = |i: usize| row.values.get(i).unwrap_or("");
        // The transform failure of the earliest field: (field, reason, raw value).
        let mut failed: Option<(usize, Reason, &str)> = None;
        for (rule, col) in self.rules.iter().zip(&b.columns) {
            let raw = match (&rule.source, col) {
                (FieldSource::Column(_), Some(i)) => cell(*i),
                (FieldSource::Value(v), _) => v.as_str(),
                _ => "",
            };
            let trimmed = trim(raw);
            let mut v = if self.null_markers.iter().any(|m| m == trimmed) {
                Cow::Borrowed("")
            } else {
                Cow::Borrowed(trimmed)
            };
            // `map` sees the cell first (`长期` → a date before the date transform runs);
            // a value it does not know goes through the transforms and is looked up again.
            let premapped = match rule.map.get(v.as_ref()) {
                Some(m) => {
                    v = Cow::Borrowed(m.as_str());
                    true
                }
                None => false,
            };
            for t in &rule.transforms {
                match t.apply(v) {
                    Ok(x) => v = x,
                    Err(e) => {
                        if failed.is_none_or(|(f, _, _)| rule.target < f) {
                            failed = Some((rule.target, e.reason, raw));
                        }
                        v = Cow::Borrowed("");
                        break;
                    }
                }
            }
            if !premapped {
                if let Some(m) = rule.map.get(v.as_ref()) {
                    v = Cow::Borrowed(m.as_str());
                }
            }
            if v.is_empty() {
                if let Some(d) = &rule.default {
                    v = Cow::Borrowed(d.as_str());
                }
            }
            values[rule.target] = v;
        }
        if let Some(p) = self.resolve_legacy(values, register) {
            return Err(p);
        }
        for i in 0..ds.fields.len() {
            let reason = match failed {
                Some((f, r, raw)) if f == i => Some((r, raw.to_string())),
                _ => ds
                    .check_field(i, values)
                    .err()
                    .map(|r| (r, self.raw_value(b, row, i))),
            };
            if let Some((reason, value)) = reason {
                return Err(RowProblem {
                    reason,
                    field: ds.fields[i].code.clone(),
                    value,
                });
            }
        }
        match b.updated_at {
            Some(i) => {
                let raw = trim(cell(i));
                if raw.is_empty() || self.null_markers.iter().any(|m| m == raw) {
                    Ok(None)
                } else {
                    Ok(Some(transforms::parse_datetime(raw).ok_or_else(|| {
                        RowProblem {
                            reason: Reason::BadUpdatedAt,
                            field: self.updated_at.clone().unwrap_or_default(),
                            value: raw.to_string(),
                        }
                    })?))
                }
            }
            None => Ok(None),
        }
    }

    /// The decision date a refused row's source cell says, when it can be read: a
    /// backfill passes over refused rows outside its window like valid ones.
    pub fn raw_decision_date(&self, b: &Binding, row: &RawRow) -> Option<chrono::NaiveDate> {
        let at = self.dataset.decision_date?;
        let raw = self.raw_value(b, row, at);
        transforms::parse_date(&raw, true)
    }

    /// The source cell behind a field, for the quarantine (the mapped value for constants).
    fn raw_value(&self, b: &Binding, row: &RawRow, field: usize) -> String {
        self.rules
            .iter()
            .zip(&b.columns)
            .find(|(r, _)| r.target == field)
            .map(|(r, col)| match (&r.source, col) {
                (FieldSource::Column(_), Some(i)) => {
                    row.values.get(*i).unwrap_or_default().to_string()
                }
                (FieldSource::Value(v), _) => v.clone(),
                _ => String::new(),
            })
            .unwrap_or_default()
    }
}

/// A row with bytes its file's encoding cannot decode, or a cell holding U+FFFD (a
/// source that replaced them before us): the cell as read, the bytes in hex.
fn undecodable(b: &Binding, row: &RawRow) -> Option<RowProblem> {
    let (column, value) = match &row.undecodable {
        Some(u) => {
            let hex: Vec<String> = u.bytes.iter().map(|x| format!("{x:02X}")).collect();
            let cell = row.values.get(u.column).unwrap_or_default();
            (u.column, format!("{cell}（字节 {}）", hex.join(" ")))
        }
        None if !contains_replacement_character(row.values.as_str()) => return None,
        None => {
            let column = row.values.iter().position(|v| v.contains('\u{FFFD}'))?;
            let cell = row.values.get(column).unwrap_or_default();
            (
                column,
                format!("{}（字节 EF BF BD）", cell.replace('\u{FFFD}', "\\uFFFD")),
            )
        }
    };
    Some(RowProblem {
        reason: Reason::EncodingInvalid,
        field: b.headers.get(column).cloned().unwrap_or_default(),
        value,
    })
}

/// Whether a text holds U+FFFD, found as its three UTF-8 bytes: every row is searched,
/// and a search for the character stops at each `BD` byte, which Chinese text is full of.
fn contains_replacement_character(text: &str) -> bool {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("\u{FFFD}".as_bytes()));
    FINDER.find(text.as_bytes()).is_some()
}
