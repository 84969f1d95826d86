//! Header-row detection: departmental exports often put a title row (e.g.
//! 同江市市场监督管理局行政处罚信息公示表) or blank rows above the real header.

/// How many leading rows are examined for the header.
pub const HEADER_SCAN_ROWS: usize = 20;

/// Normalises a header cell for comparison: trimmed (including U+3000 and BOM),
/// full-width brackets made ASCII, inner spaces removed.
pub fn normalise_header(cell: &str) -> String {
    cell.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            other => other,
        })
        .collect()
}

/// Scores a candidate row: how many of the expected columns it contains.
fn score(row: &[String], expected: &[String]) -> usize {
    let cells: Vec<String> = row.iter().map(|c| normalise_header(c)).collect();
    expected
        .iter()
        .filter(|e| cells.iter().any(|c| *c == normalise_header(e)))
        .count()
}

/// Picks the header among the first rows: the first row that holds the most expected
/// columns, at least half of them. Returns its index in `rows`.
pub fn find_header(rows: &[Vec<String>], expected: &[String]) -> Option<usize> {
    if expected.is_empty() {
        // Without expectations, the first row with at least two non-empty cells.
        return rows
            .iter()
            .position(|r| r.iter().filter(|c| !c.trim().is_empty()).count() >= 2);
    }
    let need = expected.len().div_ceil(2);
    let mut best: Option<(usize, usize)> = None;
    for (i, row) in rows.iter().enumerate() {
        let s = score(row, expected);
        if s >= need && best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn skips_title_row() {
        let rows = vec![
            row(&["同江市市场监督管理局行政处罚信息公示表", "", ""]),
            row(&["企业名称", "统一社会信用代码 ", "罚款金额（元）"]),
            row(&["某公司", "9123", "1,000"]),
        ];
        let expected = row(&["企业名称", "统一社会信用代码", "罚款金额(元)"]);
        assert_eq!(find_header(&rows, &expected), Some(1));
    }

    #[test]
    fn none_when_nothing_matches() {
        let rows = vec![row(&["a", "b"]), row(&["c", "d"])];
        assert_eq!(find_header(&rows, &row(&["企业名称", "代码"])), None);
    }
}

/// How a note row under a table begins (注：以上信息由…提供, 制表人, 填报单位, …).
const NOTE_PREFIXES: [&str; 16] = [
    "注：",
    "注:",
    "注1",
    "备注：",
    "备注:",
    "说明：",
    "说明:",
    "制表人",
    "制表单位",
    "制表日期",
    "填报单位",
    "填报人",
    "填报日期",
    "审核人",
    "数据来源",
    "联系电话",
];

/// Whether a row is a note under the table rather than data: one text (a merged cell,
/// or the same text repeated across the merge) that begins like a note.
pub fn is_note_row<'a>(cells: impl IntoIterator<Item = &'a str>) -> bool {
    let mut text: Option<&str> = None;
    for c in cells {
        let c = c.trim_matches(|x: char| x.is_whitespace());
        if c.is_empty() {
            continue;
        }
        match text {
            // A data row's first cell is no note: decided without trimming the others.
            None if !NOTE_PREFIXES.iter().any(|p| c.starts_with(p)) => return false,
            None => text = Some(c),
            Some(t) if t == c => {}
            Some(_) => return false,
        }
    }
    text.is_some()
}

#[cfg(test)]
mod note_tests {
    use super::is_note_row;

    #[test]
    fn notes_under_the_table_are_not_data() {
        assert!(is_note_row([
            "注：以上信息由同江市市场监督管理局提供",
            "",
            ""
        ]));
        assert!(is_note_row(["", "制表人：张三", ""]));
        assert!(is_note_row(["备注：无", "备注：无"]));
        assert!(!is_note_row(["注：以上", "91230881MA1B2C3D4E"]));
        assert!(!is_note_row(["同江市某某公司", "", ""]));
        assert!(!is_note_row(["", ""]));
    }
}
