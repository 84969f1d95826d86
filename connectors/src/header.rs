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
