//! The console's page: one self-contained HTML document in Chinese (inline style, no
//! script), refreshed by the browser every minute. Personal data is masked as in the
//! office report: identity numbers 6 + 4, natural persons' and clerks' names to their
//! surname, identity numbers inside messages too.

use super::view::View;
use pipeline::clock::beijing;
use pipeline::domain::masking::{mask_ids_in_text, mask_operator};
use pipeline::domain::reasons::Reason;
use pipeline::report::html::esc;
use pipeline::report::OfficeReport;
use pipeline::state::{LedgerStatus, OverrideKind};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Open problems listed one by one (the department's correction workbook has them all).
const PROBLEMS_LISTED: usize = 15;

const STYLE: &str = r#"
* { box-sizing: border-box; }
body { margin: 0; color: #1f2328; background: #f6f8fa;
  font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", "WenQuanYi Micro Hei", sans-serif;
  font-size: 14px; line-height: 1.5; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 28px 40px; }
header { border-bottom: 3px solid #a61b1b; padding-bottom: 8px; margin-bottom: 12px; }
header .org { color: #a61b1b; font-weight: 700; letter-spacing: 2px; font-size: 13px; }
h1 { font-size: 24px; margin: 2px 0; }
header .meta { color: #57606a; font-size: 12.5px; }
h2 { font-size: 17px; margin: 22px 0 8px; padding-left: 8px; border-left: 4px solid #a61b1b; }
.banner { background: #fff4e5; border: 1px solid #f0b45b; border-radius: 4px; padding: 8px 12px; margin: 8px 0; }
.banner.bad { background: #fdecea; border-color: #e5a29b; }
.kpis { display: grid; grid-template-columns: repeat(5, 1fr); gap: 10px; margin: 10px 0 4px; }
.kpi { background: #fff; border: 1px solid #d0d7de; border-radius: 4px; padding: 8px 12px; }
.kpi .v { display: block; font-size: 24px; font-weight: 700; }
.kpi .k { color: #57606a; font-size: 12.5px; }
.kpi.bad .v { color: #a61b1b; }
table { width: 100%; border-collapse: collapse; font-size: 13px; margin: 4px 0 8px; background: #fff; }
th, td { border: 1px solid #c9d1d9; padding: 4px 7px; vertical-align: top; }
th { background: #eef2f7; font-weight: 600; text-align: center; white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.c { white-space: nowrap; }
tr.alert td { background: #fdecea; }
tr.warn td { background: #fff8e6; }
.ok { color: #1a7f37; font-weight: 600; }
.fail { color: #a61b1b; font-weight: 700; }
.note { color: #57606a; font-size: 12px; margin: 2px 0 8px; }
.none { color: #57606a; font-style: italic; margin: 4px 0 10px; }
a { color: #0550ae; }
footer { margin-top: 24px; border-top: 1px solid #d0d7de; padding-top: 8px; color: #57606a; font-size: 12px; }
"#;

/// The whole page.
pub fn render(v: &View) -> String {
    let mut body = String::new();
    body.push_str(&header(v));
    body.push_str(&feeds(v));
    body.push_str(&platforms(v));
    body.push_str(&corrections(v));
    body.push_str(&holds(v));
    body.push_str(&reconciliations(v));
    if v.has_schedules {
        body.push_str(&jobs(v));
    }
    body.push_str(&reports(v));
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta http-equiv=\"refresh\" content=\"60\">\n<title>xinyong 运行台</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}<footer>xinyong {} · 只读页面，每 60 秒刷新 · 时间均为北京时间 · 身份证件号码、自然人及经办人姓名已脱敏</footer>\n</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn kpi(label: &str, value: u64, bad: bool) -> String {
    format!(
        "<div class=\"kpi{}\"><span class=\"v\">{value}</span><span class=\"k\">{}</span></div>",
        if bad && value > 0 { " bad" } else { "" },
        esc(label)
    )
}

fn header(v: &View) -> String {
    let s = &v.status;
    let failed = s
        .feeds
        .iter()
        .filter(|f| f.last.as_ref().is_some_and(|r| r.outcome == "failed"))
        .count() as u64;
    let owed: u64 = s
        .platforms
        .iter()
        .map(|p| p.count(LedgerStatus::Pending) + p.count(LedgerStatus::Sent))
        .sum();
    let rejected: u64 = s
        .platforms
        .iter()
        .map(|p| p.count(LedgerStatus::Rejected))
        .sum();
    let mut out = format!(
        "<header>\n<div class=\"org\">社会信用体系建设工作领导小组办公室</div>\n<h1>公共信用信息归集运行台</h1>\n<div class=\"meta\">页面生成时间：{} · <a href=\"/status.json\">状态 JSON</a></div>\n</header>\n",
        esc(&v.at)
    );
    if s.any_failure() {
        out.push_str("<div class=\"banner bad\"><b>需要处理：</b>有数据源最近一次运行失败，或上报平台报告密钥或配置错误（见下表）。</div>\n");
    }
    if s.calendar_warning.is_some() {
        if let Some(end) = pipeline::domain::calendar::Calendar::built_in().last_covered_day() {
            let next = chrono::Datelike::year(&end) + 1;
            let _ = writeln!(
                out,
                "<div class=\"banner\">⚠ 节假日表覆盖至 {end}：此后的工作日期限（双公示 7 个工作日、异议 20 个工作日）按只扣除周末估算，报告中标“估算”。请按国务院办公厅通知补充 {next} 年的放假安排（配置项 <code>calendar = \"holidays.toml\"</code>，见 README）。</div>"
            );
        }
    }
    let _ = writeln!(
        out,
        "<div class=\"kpis\">{}{}{}{}{}</div>",
        kpi(
            &format!("数据源（{failed} 个失败）"),
            s.feeds.len() as u64,
            false
        ),
        kpi("待报送 / 待确认记录", owed, true),
        kpi("被上级平台退回", rejected, true),
        kpi("待整改问题", v.open_corrections.len() as u64, true),
        kpi("撤回与异议", s.holds.len() as u64, false),
    );
    out
}

fn outcome(o: &str) -> String {
    match o {
        "ok" => "<span class=\"ok\">成功</span>".into(),
        "failed" => "<span class=\"fail\">失败</span>".into(),
        other => esc(other),
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

fn feeds(v: &View) -> String {
    let mut out = String::from("<h2>数据源</h2>\n");
    if v.status.feeds.is_empty() {
        out.push_str("<p class=\"none\">配置中没有数据源。</p>\n");
        return out;
    }
    out.push_str("<table>\n<thead><tr><th>数据源</th><th>名称</th><th>最近运行</th><th>结果</th><th>用时</th><th>读入</th><th>入库</th><th>隔离</th><th>被替代</th><th>已读文件</th><th>最近读入</th></tr></thead>\n<tbody>\n");
    for f in &v.status.feeds {
        let failed = f.last.as_ref().is_some_and(|r| r.outcome == "failed");
        let class = if failed {
            " class=\"alert\""
        } else if !f.set_aside.is_empty() {
            " class=\"warn\""
        } else {
            ""
        };
        match &f.last {
            Some(r) => {
                let c = &r.counts;
                let _ = writeln!(
                    out,
                    "<tr{class}><td class=\"c\">{}</td><td>{}</td><td class=\"c\">{}</td><td class=\"c\">{}</td><td class=\"n\">{:.1} 秒</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"c\">{}</td></tr>",
                    esc(&f.name),
                    esc(&f.title),
                    esc(&beijing(&r.started_at)),
                    outcome(&r.outcome),
                    f.seconds,
                    c.read,
                    c.kept,
                    c.quarantined,
                    c.superseded,
                    f.files_read,
                    esc(&f.last_read_at.as_deref().map(beijing).unwrap_or_default()),
                );
                if let Some(e) = &r.error {
                    let _ = writeln!(
                        out,
                        "<tr class=\"alert\"><td></td><td colspan=\"10\">错误：{}</td></tr>",
                        esc(&mask_ids_in_text(e))
                    );
                }
            }
            None => {
                let _ = writeln!(
                    out,
                    "<tr{class}><td class=\"c\">{}</td><td>{}</td><td colspan=\"7\" class=\"none\">尚未运行</td><td class=\"n\">{}</td><td></td></tr>",
                    esc(&f.name),
                    esc(&f.title),
                    f.files_read
                );
            }
        }
        for (path, reason, at) in &f.set_aside {
            let _ = writeln!(
                out,
                "<tr class=\"warn\"><td></td><td colspan=\"10\">已搁置文件 {}（{}）：{}</td></tr>",
                esc(file_name(path)),
                esc(&beijing(at)),
                esc(&mask_ids_in_text(reason))
            );
        }
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn platforms(v: &View) -> String {
    let mut out = String::from("<h2>上报平台</h2>\n");
    if v.status.platforms.is_empty() {
        out.push_str("<p class=\"none\">配置中没有上报平台。</p>\n");
        return out;
    }
    out.push_str("<table>\n<thead><tr><th>平台</th><th>名称</th><th>待报送</th><th>已发送待确认</th><th>已确认</th><th>被退回</th><th>最近确认</th><th>状态</th></tr></thead>\n<tbody>\n");
    for p in &v.status.platforms {
        let mut state = match &p.configuration_error {
            Some((message, since)) => format!(
                "<span class=\"fail\">密钥或配置错误</span>（自 {}）：{}",
                esc(&beijing(since)),
                esc(&mask_ids_in_text(message))
            ),
            None => "<span class=\"ok\">正常</span>".to_string(),
        };
        if p.untrusted_receipts > 0 {
            let _ = write!(
                state,
                "；不可信回执 {} 批（其记录未记为已确认，已重新上报）",
                p.untrusted_receipts
            );
        }
        let _ = writeln!(
            out,
            "<tr{}><td class=\"c\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"c\">{}</td><td>{state}</td></tr>",
            if p.configuration_error.is_some() { " class=\"alert\"" } else { "" },
            esc(&p.name),
            esc(&p.title),
            p.count(LedgerStatus::Pending),
            p.count(LedgerStatus::Sent),
            p.count(LedgerStatus::Acked),
            p.count(LedgerStatus::Rejected),
            esc(&p.last_acknowledged.as_deref().map(beijing).unwrap_or_else(|| "从未".into())),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn reason_label(code: &str) -> String {
    Reason::parse(code)
        .map(|r| r.label_zh().to_string())
        .unwrap_or_else(|| code.to_string())
}

fn corrections(v: &View) -> String {
    let mut out = String::from("<h2>待整改问题（按部门）</h2>\n");
    if v.open_corrections.is_empty() {
        out.push_str("<p class=\"none\">没有待整改的问题。</p>\n");
        return out;
    }
    // Per department: count, oldest first seen, longest open, reasons by count.
    struct Summary<'a> {
        count: u64,
        oldest: &'a str,
        longest: Option<i64>,
        reasons: BTreeMap<String, u64>,
    }
    let mut order: Vec<&str> = Vec::new();
    let mut by: BTreeMap<&str, Summary> = BTreeMap::new();
    for r in &v.open_corrections {
        if !order.contains(&r.department.as_str()) {
            order.push(&r.department);
        }
        let s = by.entry(&r.department).or_insert(Summary {
            count: 0,
            oldest: &r.first_seen,
            longest: None,
            reasons: BTreeMap::new(),
        });
        s.count += 1;
        if !r.first_seen.is_empty() && (s.oldest.is_empty() || r.first_seen.as_str() < s.oldest) {
            s.oldest = &r.first_seen;
        }
        s.longest = s.longest.max(r.working_days_open);
        *s.reasons.entry(reason_label(&r.reason_code)).or_default() += 1;
    }
    out.push_str("<table>\n<thead><tr><th>部门</th><th>待整改</th><th>最早发现</th><th>最长已开放（工作日）</th><th>主要问题</th></tr></thead>\n<tbody>\n");
    for d in &order {
        let s = &by[d];
        let mut reasons: Vec<(&String, &u64)> = s.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let reasons: Vec<String> = reasons
            .iter()
            .take(4)
            .map(|(r, n)| format!("{} {n}", esc(r)))
            .collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"c\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(d),
            s.count,
            esc(s.oldest),
            s.longest.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
            reasons.join("；")
        );
    }
    out.push_str("</tbody>\n</table>\n");
    let _ = writeln!(
        out,
        "<p class=\"note\">以下列出前 {} 条；各部门的整改工作簿（<code>xinyong report</code> 生成）列出全部，并附原始行。</p>",
        PROBLEMS_LISTED.min(v.open_corrections.len())
    );
    out.push_str("<table>\n<thead><tr><th>部门</th><th>数据集</th><th>文件</th><th>行</th><th>字段</th><th>值</th><th>问题</th><th>首次发现</th><th>已开放（工作日）</th></tr></thead>\n<tbody>\n");
    for r in v.open_corrections.iter().take(PROBLEMS_LISTED) {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"c\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&r.department),
            esc(&r.dataset_name),
            esc(&r.source_file),
            r.source_line,
            esc(&r.field_name),
            esc(&r.value),
            esc(&r.reason),
            esc(&r.first_seen),
            r.working_days_open.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn holds(v: &View) -> String {
    let mut out = String::from("<h2>撤回与异议</h2>\n");
    if v.status.holds.is_empty() {
        out.push_str("<p class=\"none\">没有生效中的撤回或异议。</p>\n");
        return out;
    }
    out.push_str("<table>\n<thead><tr><th>类型</th><th>数据集</th><th>记录</th><th>自</th><th>经办人</th><th>原因</th><th>已过工作日</th></tr></thead>\n<tbody>\n");
    for h in &v.status.holds {
        let e = &h.entry;
        let _ = writeln!(
            out,
            "<tr{}><td class=\"c\">{}</td><td>{}</td><td class=\"c\">{}</td><td class=\"c\">{}</td><td class=\"c\">{}</td><td>{}</td><td class=\"n\">{}{}</td></tr>",
            if h.overdue { " class=\"alert\"" } else { "" },
            match e.kind {
                OverrideKind::Hold => "异议暂停",
                OverrideKind::Withdraw => "撤回",
            },
            esc(&OfficeReport::dataset_name(&e.dataset)),
            esc(&e.record_id),
            esc(&beijing(&e.at)),
            esc(&mask_operator(&e.by_whom)),
            esc(&mask_ids_in_text(&e.reason)),
            h.working_days.map(|d| d.to_string()).unwrap_or_else(|| "?".into()),
            if h.overdue { "（超过 20 个工作日）" } else { "" },
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn reconciliations(v: &View) -> String {
    let mut out = String::from("<h2>最近对账</h2>\n");
    if v.reconciliations.is_empty() {
        out.push_str("<p class=\"none\">尚未对账（<code>xinyong reconcile</code>）。</p>\n");
        return out;
    }
    let title = |name: &str| {
        v.status
            .platforms
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.title.clone())
            .unwrap_or_else(|| name.to_string())
    };
    out.push_str("<table>\n<thead><tr><th>平台</th><th>数据集</th><th>部门</th><th>对账时间</th><th>差异</th></tr></thead>\n<tbody>\n");
    for r in &v.reconciliations {
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td class=\"c\">{}</td><td class=\"n\">{}</td></tr>",
            if r.differences > 0 { " class=\"alert\"" } else { "" },
            esc(&title(&r.platform)),
            esc(&OfficeReport::dataset_name(&r.dataset)),
            esc(v.department_of_unit(&r.source_unit)),
            esc(&beijing(&r.at)),
            if r.differences == 0 {
                "<span class=\"ok\">一致</span>".to_string()
            } else {
                r.differences.to_string()
            },
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn jobs(v: &View) -> String {
    let mut out = String::from("<h2>计划运行</h2>\n");
    if v.status.jobs.is_empty() {
        out.push_str("<p class=\"none\">计划目录中没有任务。</p>\n");
        return out;
    }
    out.push_str("<table>\n<thead><tr><th>任务</th><th>计划</th><th>下次运行</th><th>上次运行</th></tr></thead>\n<tbody>\n");
    for j in &v.status.jobs {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"c\"><code>{}</code></td><td class=\"c\">{}</td><td class=\"c\">{}</td></tr>",
            esc(&j.job.name),
            esc(&j.job.cron_text),
            j.next
                .map(|t| esc(&pipeline::clock::beijing_of(t)))
                .unwrap_or_else(|| "-".into()),
            j.last_fired
                .map(|t| esc(&pipeline::clock::beijing_of(t)))
                .unwrap_or_else(|| "从未".into()),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn reports(v: &View) -> String {
    let mut out = String::from("<h2>办公室报告</h2>\n");
    if v.reports.is_empty() {
        out.push_str("<p class=\"none\">尚无报告（每次运行后自动生成，或 <code>xinyong report --month YYYY-MM</code>）。</p>\n");
        return out;
    }
    out.push_str(
        "<table>\n<thead><tr><th>期间</th><th>生成时间</th><th>文件</th></tr></thead>\n<tbody>\n",
    );
    for (period, at, xlsx) in &v.reports {
        let p = esc(period);
        let _ = writeln!(
            out,
            "<tr><td class=\"c\">{p}</td><td class=\"c\">{}</td><td><a href=\"/reports/{p}/report.html\">网页（可打印）</a>{}</td></tr>",
            esc(at),
            if *xlsx {
                format!(" · <a href=\"/reports/{p}/report.xlsx\">表格 XLSX</a>")
            } else {
                String::new()
            }
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}
