//! The report's Excel workbooks (rust_xlsxwriter): the office's workbook, one sheet per
//! table of [`super::tables`], and each department's correction workbook (退回整改清单)
//! with its lines and a sheet of instructions. Every sheet has a frozen header row,
//! column widths fitted to the content (a CJK character counts double; the widest columns
//! wrap their text) and prints on A4.

use super::tables::{self, Cell, Table};
use super::OfficeReport;
use rust_xlsxwriter::{Color, Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError};

/// Excel's row limit less the header: longer tables are cut with a note.
const MAX_ROWS: usize = 1_048_000;
/// Widest column, in Excel's character units.
const MAX_WIDTH: f64 = 60.0;
/// A4 in Excel's paper-size codes.
const PAPER_A4: u8 = 9;

/// The office's workbook.
pub fn office_workbook(report: &OfficeReport) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    for table in tables::all(report) {
        add_sheet(&mut wb, &table, "本期无记录")?;
    }
    wb.save_to_buffer()
}

/// One department's correction workbook.
pub fn corrections_workbook(report: &OfficeReport, department: &str) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let table = tables::corrections_of(report, department);
    let ws = add_sheet(&mut wb, &table, "本期无需整改的记录")?;
    ws.set_header(format!(
        "&C退回整改清单 {department} {}",
        report.period.label
    ));
    add_sheet(
        &mut wb,
        &tables::resolved_of(report, department),
        "本期没有已整改的记录",
    )?;
    add_instructions(&mut wb, report, department)?;
    wb.save_to_buffer()
}

fn header_format() -> Format {
    Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xDCE6F1))
        .set_border(FormatBorder::Thin)
        .set_align(FormatAlign::Center)
}

fn add_sheet<'a>(
    wb: &'a mut Workbook,
    table: &Table,
    empty_note: &str,
) -> Result<&'a mut Worksheet, XlsxError> {
    let ws = wb.add_worksheet();
    ws.set_name(table.sheet)?;
    let header = header_format();
    let share = Format::new().set_num_format("0.0%");
    let wrap = Format::new().set_text_wrap();
    let widths = column_widths(table);
    for (c, h) in table.headers.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &header)?;
    }
    for (r, row) in table.rows.iter().take(MAX_ROWS).enumerate() {
        let r = r as u32 + 1;
        for (c, cell) in row.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Text(s) if widths[c as usize] >= MAX_WIDTH => {
                    ws.write_string_with_format(r, c, s, &wrap)?
                }
                Cell::Text(s) => ws.write_string(r, c, s)?,
                Cell::Int(v) => ws.write_number(r, c, *v as f64)?,
                Cell::Share(Some(x)) => ws.write_number_with_format(r, c, *x, &share)?,
                Cell::Share(None) => ws.write_string(r, c, "—")?,
            };
        }
    }
    if table.rows.is_empty() {
        ws.write_string(1, 0, empty_note)?;
    } else if table.rows.len() > MAX_ROWS {
        let note = format!("（仅列出前 {MAX_ROWS} 行，完整数据见 report.json）");
        ws.write_string(MAX_ROWS as u32 + 1, 0, note)?;
    }
    ws.set_freeze_panes(1, 0)?;
    for (c, width) in widths.into_iter().enumerate() {
        ws.set_column_width(c as u16, width)?;
    }
    set_print_layout(ws, table.headers.len())?;
    Ok(ws)
}

fn set_print_layout(ws: &mut Worksheet, columns: usize) -> Result<(), XlsxError> {
    ws.set_paper_size(PAPER_A4);
    if columns > 6 {
        ws.set_landscape();
    }
    ws.set_print_fit_to_pages(1, 0);
    ws.set_repeat_rows(0, 0)?;
    Ok(())
}

/// Display width of text in Excel's units: CJK and full-width characters count double.
pub fn display_width(text: &str) -> f64 {
    text.chars()
        .map(|c| if is_wide(c) { 2.0 } else { 1.0 })
        .sum()
}

fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD)
}

/// Each column wide enough for its header and widest cell, within limits.
fn column_widths(table: &Table) -> Vec<f64> {
    table
        .headers
        .iter()
        .enumerate()
        .map(|(c, h)| {
            let widest = table
                .rows
                .iter()
                .filter_map(|row| row.get(c))
                .map(|cell| display_width(&cell.text()))
                .fold(display_width(h) + 2.0, f64::max);
            (widest + 2.0).clamp(6.0, MAX_WIDTH)
        })
        .collect()
}

fn add_instructions(
    wb: &mut Workbook,
    report: &OfficeReport,
    department: &str,
) -> Result<(), XlsxError> {
    let lines = [
        format!("退回整改清单：{department}"),
        format!("统计期间：{}", report.period.label),
        format!("生成时间：{}", tables::china_time_text(&report.generated_at)),
        String::new(),
        "“整改清单”表中每一行是一条需要更正的记录：".into(),
        "· 来源为“本地校验未通过”的，记录未入库，请按“源文件”和“行号”找到原始行，按“问题说明及整改要求”更正后，在下次报送时重新提交；".into(),
        "· 来源为“上级平台退回”的，记录已入库但上级平台未接收，请更正原始数据后重新报送，系统会自动再次推送；".into(),
        "· 证件号码和自然人姓名已按规定脱敏，核对时请以本单位原始数据为准。".into(),
        String::new(),
        "如有疑问，请联系市社会信用体系建设工作领导小组办公室。".into(),
    ];
    let ws = wb.add_worksheet();
    ws.set_name("说明")?;
    let title = Format::new().set_bold().set_font_size(14);
    for (r, line) in lines.iter().enumerate() {
        if r == 0 {
            ws.write_string_with_format(0, 0, line, &title)?;
        } else {
            ws.write_string(r as u32, 0, line)?;
        }
    }
    ws.set_column_width(0, 110)?;
    ws.set_paper_size(PAPER_A4);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_counts_double_in_column_widths() {
        assert_eq!(display_width("abc"), 3.0);
        assert_eq!(display_width("统一社会信用代码"), 16.0);
        assert_eq!(display_width("（2024）"), 8.0);
        let table = Table {
            sheet: "t",
            headers: vec!["部门", "n"],
            rows: vec![vec![
                Cell::Text("同江市市场监督管理局".into()),
                Cell::Int(7),
            ]],
        };
        assert_eq!(column_widths(&table), vec![22.0, 6.0]);
    }
}
