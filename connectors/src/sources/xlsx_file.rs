//! XLSX workbooks (calamine): the first or a named worksheet, header row found among
//! the first rows; cells rendered as the text a clerk sees (integers without `.0`,
//! date-formatted cells as `YYYY-MM-DD`, raw serial numbers left as numbers).

use super::file_drop::RowReader;
use crate::header::{find_header, normalise_header, HEADER_SCAN_ROWS};
use crate::{ConnectorError, InputUnit, RawRow, Result};
use calamine::{open_workbook_auto, Data, Range, Reader};
use std::path::Path;

/// The most cells a worksheet's used range may span before it is refused: calamine
/// allocates the whole range, and one stray cell at `XFD1048576` would ask for
/// 17 billion cells (the process would abort, not fail).
pub const MAX_SHEET_CELLS: u64 = 50_000_000;

/// Streams an `.xlsx` worksheet's cells (without building its grid) and refuses one
/// whose used range, as its cells reach, spans more than
/// [`MAX_SHEET_CELLS`].
fn check_extent(path: &Path, sheet: &str) -> std::result::Result<(), String> {
    let is_xlsx = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx") || e.eq_ignore_ascii_case("xlsm"));
    if !is_xlsx {
        return Ok(());
    }
    let mut xl: calamine::Xlsx<_> =
        calamine::open_workbook(path).map_err(|e: calamine::XlsxError| e.to_string())?;
    let mut cells = xl
        .worksheet_cells_reader(sheet)
        .map_err(|e| format!("worksheet {sheet}: {e}"))?;
    let area = |(r0, c0): (u32, u32), (r1, c1): (u32, u32)| {
        (u64::from(r1.saturating_sub(r0)) + 1) * (u64::from(c1.saturating_sub(c0)) + 1)
    };
    let refuse = |(r, c): (u32, u32)| {
        format!(
            "worksheet {sheet}: its used range reaches row {} and column {} (over {MAX_SHEET_CELLS} cells); a stray cell far from the data? Delete the empty rows and columns and export again",
            u64::from(r) + 1,
            u64::from(c) + 1
        )
    };
    let (mut max_r, mut max_c) = (0u32, 0u32);
    let (mut min_r, mut min_c) = (u32::MAX, u32::MAX);
    while let Some(cell) = cells
        .next_cell()
        .map_err(|e| format!("worksheet {sheet}: {e}"))?
    {
        let (r, c) = cell.get_position();
        (max_r, max_c) = (max_r.max(r), max_c.max(c));
        (min_r, min_c) = (min_r.min(r), min_c.min(c));
        if area((min_r, min_c), (max_r, max_c)) > MAX_SHEET_CELLS {
            return Err(refuse((max_r, max_c)));
        }
    }
    Ok(())
}

/// The data rows of one worksheet (a departmental sheet fits in memory; calamine reads it whole).
pub struct XlsxReader {
    rows: std::vec::IntoIter<RawRow>,
}

impl XlsxReader {
    /// Opens the workbook and finds the header row.
    pub fn open(
        path: &Path,
        sha256: String,
        expected: &[String],
        sheet: Option<&str>,
    ) -> Result<(InputUnit, Self)> {
        let wb_err = |message: String| ConnectorError::Workbook {
            path: path.to_path_buf(),
            message,
        };
        let mut workbook = open_workbook_auto(path).map_err(|e| wb_err(e.to_string()))?;
        let name = match sheet {
            Some(s) => s.to_string(),
            None => workbook
                .sheet_names()
                .first()
                .cloned()
                .ok_or_else(|| wb_err("the workbook has no worksheet".into()))?,
        };
        check_extent(path, &name).map_err(wb_err)?;
        let range: Range<Data> = workbook
            .worksheet_range(&name)
            .map_err(|e| wb_err(format!("worksheet {name}: {e}")))?;
        let first_row = range.start().map(|(r, _)| r as u64).unwrap_or(0);
        let all: Vec<RawRow> = range
            .rows()
            .enumerate()
            .map(|(i, cells)| {
                RawRow::new(
                    first_row + i as u64 + 1,
                    cells.iter().map(cell_text).collect(),
                )
            })
            .collect();
        let head: Vec<Vec<String>> = all
            .iter()
            .take(HEADER_SCAN_ROWS)
            .map(|r| r.values.to_vec())
            .collect();
        let h = find_header(&head, expected).ok_or_else(|| ConnectorError::NoHeader {
            path: path.to_path_buf(),
            scanned: head.len(),
            expected: expected
                .iter()
                .take(4)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        let unit = InputUnit {
            path: path.to_path_buf(),
            bytes: std::fs::metadata(path).ok().map(|m| m.len()),
            sha256,
            headers: all[h].values.iter().map(normalise_header).collect(),
            header_line: all[h].line,
            encoding: "xlsx",
        };
        let rows: Vec<RawRow> = all.into_iter().skip(h + 1).collect();
        Ok((
            unit,
            XlsxReader {
                rows: rows.into_iter(),
            },
        ))
    }
}

impl RowReader for XlsxReader {
    fn next_rows(&mut self, max: usize) -> Result<Vec<RawRow>> {
        Ok(self.rows.by_ref().take(max).collect())
    }
}

/// The text of one cell as an export would show it.
pub fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => float_text(*f),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => {
                t.date().format("%Y-%m-%d").to_string()
            }
            Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => float_text(dt.as_f64()),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// Integral floats print without a fraction (a 15-digit registration number stored as a
/// number reads back as typed); others print in the shortest exact form.
fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e17 {
        format!("{f:.0}")
    } else {
        format!("{f}")
    }
}
