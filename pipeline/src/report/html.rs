//! The report as one self-contained HTML page, in Chinese, printable on A4: no script,
//! no font, image or style from the network; bar charts per department (双公示
//! timeliness, data quality) are inline SVG. Long lists are cut to their first rows with
//! a pointer to the XLSX workbook, which has them whole.

use super::tables::{self, Cell, Table};
use super::*;
use std::fmt::Write;

/// Rows of a long list shown in the page (the workbook has them all).
const LIST_ROWS: usize = 30;

const STYLE: &str = r#"
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { margin: 0; color: #1f2328; background: #fff;
  font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", "WenQuanYi Micro Hei", sans-serif;
  font-size: 10.5pt; line-height: 1.5; }
main { max-width: 940px; margin: 0 auto; padding: 28px 32px 40px; }
header { border-bottom: 3px solid #a61b1b; padding-bottom: 10px; margin-bottom: 14px; }
header .org { color: #a61b1b; font-weight: 700; letter-spacing: 2px; font-size: 10pt; }
h1 { font-size: 20pt; margin: 4px 0 2px; }
header .meta { color: #57606a; font-size: 9.5pt; }
h2 { font-size: 13.5pt; margin: 22px 0 8px; padding-left: 8px; border-left: 4px solid #a61b1b; page-break-after: avoid; }
h3 { font-size: 11pt; margin: 12px 0 4px; page-break-after: avoid; }
h2 + p.note, h3 + p.note { page-break-after: avoid; break-after: avoid; }
.kpis { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; margin: 8px 0 4px; }
.kpi { border: 1px solid #d0d7de; border-radius: 4px; padding: 6px 10px; }
.kpi .v { display: block; font-size: 17pt; font-weight: 700; }
.kpi .k { color: #57606a; font-size: 9pt; }
.kpi.bad .v { color: #a61b1b; }
table { width: 100%; border-collapse: collapse; font-size: 9pt; margin: 4px 0 8px; }
th, td { border: 1px solid #c9d1d9; padding: 3px 6px; vertical-align: top; }
th { background: #eef2f7; font-weight: 600; text-align: center; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.c { white-space: nowrap; }
th { white-space: nowrap; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; }
tr.alert td { background: #fdecea; }
.note { color: #57606a; font-size: 8.5pt; margin: 2px 0 8px; }
.none { color: #57606a; font-style: italic; margin: 4px 0 10px; }
svg { display: block; margin: 4px 0 10px; }
svg text { font-family: inherit; }
footer { margin-top: 24px; border-top: 1px solid #d0d7de; padding-top: 8px; color: #57606a; font-size: 8.5pt; }
@media print { main { max-width: none; padding: 0; } .kpi { break-inside: avoid; } }
"#;

/// Escapes text for HTML.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
pub fn render(r: &OfficeReport) -> String {
    let mut body = String::new();
    body.push_str(&header(r));
    body.push_str(&overview(r));
    body.push_str(&ranking(r));
    body.push_str(&intake(r));
    body.push_str(&timeliness(r));
    body.push_str(&platforms(r));
    body.push_str(&lists_and_holds(r));
    body.push_str(&reconciliation(r));
    body.push_str(&corrections(r));
    body.push_str(&footer(r));
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{} · {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        esc(&r.title),
        esc(&r.period.label)
    )
}

fn header(r: &OfficeReport) -> String {
    let runs = match r.runs.len() {
        0 => "本期无运行记录".to_string(),
        1 => format!("运行 {}", r.runs[0].run_id),
        n => format!("{n} 次运行"),
    };
    format!(
        "<header>\n<div class=\"org\">社会信用体系建设工作领导小组办公室</div>\n<h1>{}</h1>\n<div class=\"meta\">统计期间：{} · {} · 生成时间：{}</div>\n</header>\n",
        esc(&r.title),
        esc(&r.period.label),
        esc(&runs),
        esc(&tables::china_time_text(&r.generated_at))
    )
}

fn kpi(label: &str, value: String, bad: bool) -> String {
    format!(
        "<div class=\"kpi{}\"><span class=\"v\">{}</span><span class=\"k\">{}</span></div>",
        if bad { " bad" } else { "" },
        esc(&value),
        esc(label)
    )
}

fn overview(r: &OfficeReport) -> String {
    let x = &r.totals;
    let share = Cell::Share(x.on_time_share).text();
    let cards = [
        kpi("读取记录", x.collected.to_string(), false),
        kpi("保留入库", x.kept.to_string(), false),
        kpi(
            "隔离（未通过校验）",
            x.quarantined.to_string(),
            x.quarantined > 0,
        ),
        kpi("被新版本替代", x.superseded.to_string(), false),
        kpi("平台接收", x.accepted.to_string(), false),
        kpi("平台退回", x.rejected.to_string(), x.rejected > 0),
        kpi("待推送", x.pending.to_string(), x.pending > 0),
        kpi("双公示按时率", share, x.late > 0),
    ];
    let mut s = format!(
        "<section>\n<h2>一、总体情况</h2>\n<div class=\"kpis\">{}</div>\n",
        cards.concat()
    );
    let _ = writeln!(
        s,
        "<p class=\"note\">双公示：本期首次上报的许可、处罚记录 {} 条，7个工作日内上报 {} 条，逾期 {} 条，无法计算 {} 条。异议暂停公示 {} 条，其中超过20个工作日 {} 条。</p>\n</section>",
        x.published, x.on_time, x.late, x.not_computable, x.holds_in_force, x.holds_overdue
    );
    if x.estimated > 0 {
        let (_, last) = crate::domain::calendar::Calendar::built_in().years();
        let _ = writeln!(
            s,
            "<p class=\"note\">注意：其中 {} 条记录的期限涉及{}年以后的日期，节假日安排尚未录入，按只扣除周末估算（估算），待国务院办公厅节假日通知发布后补录日历即可准确计算。</p>",
            x.estimated,
            last
        );
    }
    s
}

fn ranking(r: &OfficeReport) -> String {
    let mut s = String::from("<section>\n<h2>二、重点关注部门</h2>\n");
    s.push_str(
        "<p class=\"note\">按逾期、上级平台退回和隔离记录之和排序，请督促以下部门整改。</p>\n",
    );
    s.push_str(&table_html(
        &tables::ranking(r),
        None,
        "本期各部门均无逾期、退回或隔离记录。",
    ));
    s.push_str("</section>\n");
    s
}

fn intake(r: &OfficeReport) -> String {
    let mut s = String::from("<section>\n<h2>三、各部门数据归集情况</h2>\n");
    s.push_str(&quality_chart(r));
    let table = tables::intake(r).columns(&[
        "部门",
        "数据集",
        "读取",
        "保留",
        "隔离",
        "被替代",
        "失败次数",
        "隔离原因",
    ]);
    s.push_str(&table_html(&table, None, "本期没有读取数据。"));
    s.push_str("</section>\n");
    s
}

fn timeliness(r: &OfficeReport) -> String {
    let mut s = String::from("<section>\n<h2>四、双公示及时性</h2>\n");
    s.push_str("<p class=\"note\">行政许可、行政处罚自决定之日起7个工作日内上报为按时（决定当日不计，按国务院节假日安排的工作日历计算）；上报日期取上级平台回执的接收时间。</p>\n");
    s.push_str(&timeliness_chart(r));
    s.push_str(&table_html(
        &tables::timeliness(r),
        None,
        "本期没有首次上报的许可、处罚记录。",
    ));
    s.push_str("<h3>逾期记录</h3>\n");
    let late = tables::late_records(r).columns(&[
        "部门",
        "数据集",
        "决定文书号",
        "相对人",
        "决定日期",
        "公示期限",
        "上报日期",
        "逾期（工作日）",
    ]);
    s.push_str(&table_html(&late, Some(LIST_ROWS), "本期没有逾期记录。"));
    if !r.uncomputable_records.is_empty() {
        s.push_str("<h3>无法计算的记录</h3>\n");
        let table = tables::uncomputable(r).columns(&[
            "部门",
            "数据集",
            "决定文书号",
            "决定日期",
            "上报日期",
            "原因",
        ]);
        s.push_str(&table_html(&table, Some(LIST_ROWS), ""));
    }
    s.push_str("</section>\n");
    s
}

fn platforms(r: &OfficeReport) -> String {
    let mut s = String::from("<section>\n<h2>五、上报平台情况</h2>\n");
    s.push_str(&table_html(&tables::push(r), None, "本期没有推送记录。"));
    s.push_str("</section>\n");
    s
}

fn lists_and_holds(r: &OfficeReport) -> String {
    let mut s = String::from("<section>\n<h2>六、红黑名单、撤回与异议</h2>\n");
    s.push_str("<h3>红黑名单列入与移出</h3>\n");
    s.push_str(&table_html(
        &tables::list_changes(r),
        None,
        "本期没有红黑名单变动。",
    ));
    s.push_str("<h3>平台已撤回的记录</h3>\n");
    s.push_str(&table_html(
        &tables::withdrawals(r),
        None,
        "本期没有撤回记录（信用修复、公示期满等）。",
    ));
    s.push_str("<h3>人工撤回与异议暂停公示</h3>\n");
    if r.totals.holds_overdue > 0 {
        let _ = writeln!(
            s,
            "<p class=\"note\"><b>有 {} 条异议超过20个工作日仍未办结（红色标出），请尽快处理。</b></p>",
            r.totals.holds_overdue
        );
    }
    let table = tables::overrides(r).columns(&[
        "类型",
        "部门",
        "数据集",
        "原因",
        "登记人",
        "登记日期",
        "已历工作日",
        "解除日期",
        "结果",
        "超过20个工作日",
    ]);
    let alerts: Vec<bool> = r.overrides.iter().map(|o| o.overdue).collect();
    s.push_str(&table_rows_html(
        &table,
        None,
        &alerts,
        "本期没有人工撤回或异议。",
    ));
    s.push_str("</section>\n");
    s
}

fn reconciliation(r: &OfficeReport) -> String {
    let mut s = String::from("<section>\n<h2>七、对账情况</h2>\n");
    s.push_str("<p class=\"note\">各平台最近一次对账：比对平台实际在库记录与本市推送台账。</p>\n");
    s.push_str(&table_html(
        &tables::reconciliations(r),
        None,
        "本期尚未与上级平台对账。",
    ));
    s.push_str("</section>\n");
    s
}

fn corrections(r: &OfficeReport) -> String {
    let mut s = String::from("<section>\n<h2>八、退回整改清单</h2>\n");
    s.push_str("<p class=\"note\">每个部门一份整改清单（XLSX），列出本期未通过校验或被上级平台退回的每条记录：源文件、行号、字段、当前值和整改要求。</p>\n");
    let rows: Vec<Vec<Cell>> = r
        .departments
        .iter()
        .map(|d| {
            let lines: Vec<&CorrectionRow> = r.corrections_of(d).collect();
            let rejected = lines.iter().filter(|c| !c.record_id.is_empty()).count();
            vec![
                Cell::Text(d.clone()),
                Cell::Int((lines.len() - rejected) as i64),
                Cell::Int(rejected as i64),
                Cell::Text(corrections_file_name(d)),
            ]
        })
        .collect();
    let table = Table {
        sheet: "整改清单",
        headers: vec!["部门", "未通过校验", "上级平台退回", "整改清单文件"],
        rows,
    };
    s.push_str(&table_html(&table, None, "没有部门。"));
    s.push_str("</section>\n");
    s
}

fn footer(r: &OfficeReport) -> String {
    format!(
        "<footer>证件号码保留前6位和后4位、自然人姓名保留姓氏，其余以*代替。完整数据见同目录 report.xlsx（每张表一个工作表）和 report.json。统计口径：归集数据按本期运行统计；平台数据按回执时间在本期内的推送台账统计，待推送为截至期末仍未完成的记录。统计时段：{} 至 {}（北京时间，不含截止时刻）。</footer>\n",
        esc(&tables::china_time_text(&r.period.from)),
        esc(&tables::china_time_text(&r.period.to))
    )
}

fn table_html(table: &Table, limit: Option<usize>, empty: &str) -> String {
    table_rows_html(table, limit, &[], empty)
}

/// A table; rows whose `alerts` entry is true are highlighted.
fn table_rows_html(table: &Table, limit: Option<usize>, alerts: &[bool], empty: &str) -> String {
    if table.rows.is_empty() {
        return format!("<p class=\"none\">{}</p>\n", esc(empty));
    }
    let mut s = String::from("<table>\n<thead><tr>");
    for h in &table.headers {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    let shown = limit.unwrap_or(usize::MAX).min(table.rows.len());
    for (i, row) in table.rows.iter().take(shown).enumerate() {
        let class = if alerts.get(i).copied().unwrap_or(false) {
            " class=\"alert\""
        } else {
            ""
        };
        let _ = write!(s, "<tr{class}>");
        for cell in row {
            let class = if cell.numeric() {
                " class=\"n\""
            } else if is_short_code(&cell.text()) {
                " class=\"c\""
            } else {
                ""
            };
            let _ = write!(s, "<td{class}>{}</td>", esc(&cell.text()));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    if shown < table.rows.len() {
        let _ = writeln!(
            s,
            "<p class=\"note\">共 {} 条，此处列出前 {shown} 条；完整清单见 report.xlsx 的“{}”工作表。</p>",
            table.rows.len(),
            esc(table.sheet)
        );
    }
    s
}

/// Short text (dates, codes, names of departments and datasets, document numbers) is
/// kept on one line.
fn is_short_code(text: &str) -> bool {
    text.chars().count() <= 16
}

/// One bar of a chart: a label, segments (value, colour) and the text at its end.
struct Bar {
    label: String,
    segments: Vec<(f64, &'static str)>,
    text: String,
}

const LABEL_WIDTH: f64 = 230.0;
const BAR_AREA: f64 = 470.0;
const ROW_HEIGHT: f64 = 26.0;

/// A horizontal bar chart as inline SVG; values are scaled to `max`.
fn bar_chart(title: &str, bars: &[Bar], max: f64, legend: &[(&str, &str)]) -> String {
    let width = LABEL_WIDTH + BAR_AREA + 150.0;
    let top = 28.0;
    let height = top + ROW_HEIGHT * bars.len() as f64 + 8.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\">\n<text x=\"0\" y=\"16\" font-size=\"13\" font-weight=\"700\" fill=\"#1f2328\">{}</text>\n",
        esc(title),
        esc(title)
    );
    let mut x = LABEL_WIDTH + BAR_AREA + 148.0;
    for (name, colour) in legend.iter().rev() {
        let w = em_width(name) * 12.0 + 18.0;
        x -= w;
        let _ = writeln!(
            s,
            "<rect x=\"{x}\" y=\"6\" width=\"11\" height=\"11\" fill=\"{colour}\"/><text x=\"{}\" y=\"16\" font-size=\"11\" fill=\"#57606a\">{}</text>",
            x + 14.0,
            esc(name)
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = top + ROW_HEIGHT * i as f64;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\" fill=\"#1f2328\">{}</text>",
            LABEL_WIDTH - 8.0,
            y + 16.0,
            esc(&bar.label)
        );
        let _ = writeln!(
            s,
            "<rect x=\"{LABEL_WIDTH}\" y=\"{}\" width=\"{BAR_AREA}\" height=\"16\" fill=\"#f0f2f5\"/>",
            y + 4.0
        );
        let mut offset = LABEL_WIDTH;
        for (value, colour) in &bar.segments {
            let w = if max > 0.0 {
                (value / max).clamp(0.0, 1.0) * BAR_AREA
            } else {
                0.0
            };
            if w > 0.0 {
                let _ = writeln!(
                    s,
                    "<rect x=\"{offset:.1}\" y=\"{}\" width=\"{w:.1}\" height=\"16\" fill=\"{colour}\"/>",
                    y + 4.0
                );
            }
            offset += w;
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#1f2328\">{}</text>",
            LABEL_WIDTH + BAR_AREA + 8.0,
            y + 16.0,
            esc(&bar.text)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Rough width of a legend label in em.
fn em_width(text: &str) -> f64 {
    xlsx::display_width(text) / 2.0
}

/// Per department: the share of 双公示 records published on time.
fn timeliness_chart(r: &OfficeReport) -> String {
    let mut by_department: BTreeMap<usize, (String, u64, u64, u64)> = BTreeMap::new();
    for t in &r.timeliness {
        let order = r.departments.iter().position(|d| *d == t.department);
        let e = by_department
            .entry(order.unwrap_or(usize::MAX))
            .or_insert_with(|| (t.department.clone(), 0, 0, 0));
        e.1 += t.on_time;
        e.2 += t.late;
        e.3 += t.not_computable;
    }
    if by_department.is_empty() {
        return String::new();
    }
    let bars: Vec<Bar> = by_department
        .into_values()
        .map(|(department, on_time, late, _)| {
            let share = timeliness::on_time_share(on_time, late);
            Bar {
                label: department,
                segments: vec![
                    (share.unwrap_or(0.0), "#2f7d4f"),
                    (share.map(|s| 1.0 - s).unwrap_or(0.0), "#c8553d"),
                ],
                text: match share {
                    Some(s) => format!("{:.1}%（{on_time}/{}）", s * 100.0, on_time + late),
                    None => "无法计算".into(),
                },
            }
        })
        .collect();
    bar_chart(
        "各部门双公示按时率",
        &bars,
        1.0,
        &[("按时", "#2f7d4f"), ("逾期", "#c8553d")],
    )
}

/// Per department: the share of rows read that were quarantined, and records rejected.
fn quality_chart(r: &OfficeReport) -> String {
    let mut rows: Vec<(String, u64, u64, u64)> = Vec::new();
    // The ratio on the CLI summary's basis: the reference register (not pushed) is not
    // credit information a department reports.
    let reported = |i: &&crate::report::IntakeRow| {
        crate::domain::schema::registry()
            .get(&i.dataset)
            .is_none_or(|ds| ds.push)
    };
    for d in &r.departments {
        let read: u64 = r
            .intake
            .iter()
            .filter(reported)
            .filter(|i| &i.department == d)
            .map(|i| i.collected)
            .sum();
        let quarantined: u64 = r
            .intake
            .iter()
            .filter(reported)
            .filter(|i| &i.department == d)
            .map(|i| i.quarantined)
            .sum();
        let rejected: u64 = r
            .push
            .iter()
            .filter(|p| &p.department == d)
            .map(|p| p.rejected)
            .sum();
        if read + rejected > 0 {
            rows.push((d.clone(), read, quarantined, rejected));
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let bars: Vec<Bar> = rows
        .into_iter()
        .map(|(department, read, quarantined, rejected)| {
            let rate = |n: u64| {
                if read > 0 {
                    n as f64 / read as f64
                } else {
                    0.0
                }
            };
            Bar {
                label: department,
                segments: vec![(rate(quarantined), "#d9822b"), (rate(rejected), "#a61b1b")],
                text: format!(
                    "隔离 {quarantined}（{:.1}%）· 退回 {rejected}",
                    rate(quarantined) * 100.0
                ),
            }
        })
        .collect();
    let widest = bars
        .iter()
        .map(|b| b.segments.iter().map(|s| s.0).sum::<f64>())
        .fold(0.0, f64::max);
    let max = full_scale(widest);
    bar_chart(
        &format!(
            "各部门数据质量（占读取记录的比例，满格为{:.0}%）",
            max * 100.0
        ),
        &bars,
        max,
        &[("隔离", "#d9822b"), ("平台退回", "#a61b1b")],
    )
}

/// A round full scale for shares: the first of 5%, 10%, 20%, 25%, 50%, 100% that fits.
fn full_scale(widest: f64) -> f64 {
    [0.05, 0.1, 0.2, 0.25, 0.5]
        .into_iter()
        .find(|s| widest <= *s)
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_get_a_round_full_scale() {
        assert_eq!(full_scale(0.0), 0.05);
        assert_eq!(full_scale(0.065), 0.1);
        assert_eq!(full_scale(0.3), 0.5);
        assert_eq!(full_scale(1.7), 1.0);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn charts_are_inline_svg_and_bars_scale() {
        let bars = [
            Bar {
                label: "甲局".into(),
                segments: vec![(0.5, "#000")],
                text: "50%".into(),
            },
            Bar {
                label: "乙局".into(),
                segments: vec![(1.0, "#000")],
                text: "100%".into(),
            },
        ];
        let svg = bar_chart("图", &bars, 1.0, &[("按时", "#000")]);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains(&format!("width=\"{:.1}\"", BAR_AREA / 2.0)));
        assert!(svg.contains(&format!("width=\"{BAR_AREA:.1}\"")));
        assert!(!svg
            .replace("http://www.w3.org/2000/svg", "")
            .contains("http"));
    }
}
