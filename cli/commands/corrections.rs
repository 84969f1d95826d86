//! `xinyong corrections`: the quarantine's problems and their life (退回整改) — each
//! refused decision once, open until a later run of its feed brings it valid, then
//! resolved with the date; how many working days each has been open.

use super::deployment;
use pipeline::domain::calendar::Calendar;
use pipeline::domain::masking::mask_ids_in_text;
use pipeline::domain::reasons::quarantine_text;
use pipeline::state::StateStore;
use std::path::PathBuf;

/// Which problems to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFilter {
    /// Not corrected yet.
    Open,
    /// Corrected by a later file.
    Resolved,
    /// Both.
    All,
}

#[derive(clap::Args)]
pub struct CorrectionsArgs {
    /// Only this feed's problems.
    #[arg(long)]
    feed: Option<String>,
    /// Only this department's problems (as its mappings name it).
    #[arg(long)]
    department: Option<String>,
    /// Open, resolved or all.
    #[arg(long, value_enum, default_value = "open")]
    status: StatusFilter,
    /// JSON (one array) instead of a table.
    #[arg(long)]
    json: bool,
}

/// One problem as listed.
struct Listed {
    feed: String,
    department: String,
    file: String,
    line: u64,
    field: String,
    reason_code: String,
    reason: String,
    value: String,
    status: String,
    first_seen: String,
    working_days_open: i64,
    resolved_at: Option<String>,
}

/// `xinyong corrections`.
pub async fn corrections(config: Option<PathBuf>, a: CorrectionsArgs) -> anyhow::Result<i32> {
    let config = deployment(config)?;
    let feeds = config.feeds_each()?;
    let department_of = |feed: &str| {
        feeds
            .feeds
            .iter()
            .find(|f| f.name == feed)
            .map(|f| f.department.clone())
            .unwrap_or_default()
    };
    if let Some(f) = &a.feed {
        if !feeds.feeds.iter().any(|x| &x.name == f) && !feeds.broken.iter().any(|x| &x.name == f) {
            anyhow::bail!("unknown feed {f:?}");
        }
    }
    let state = StateStore::open(&config.state).await?;
    let status = match a.status {
        StatusFilter::Open => Some("open"),
        StatusFilter::Resolved => Some("resolved"),
        StatusFilter::All => None,
    };
    let problems = state.problems(a.feed.as_deref(), status).await?;
    state.close().await;
    let cal = Calendar::built_in();
    let today = pipeline::clock::today();
    let listed: Vec<Listed> = problems
        .into_iter()
        .map(|p| {
            let department = department_of(&p.feed);
            let first = pipeline::clock::china_date_of(&p.first_seen);
            let until = p
                .resolved_at
                .as_deref()
                .and_then(pipeline::clock::china_date_of)
                .unwrap_or(today);
            Listed {
                working_days_open: first
                    .map(|f| cal.working_days_between_estimated(f, until).value)
                    .unwrap_or(0),
                feed: p.feed,
                department,
                file: p.file,
                line: p.line,
                field: p.field,
                reason: quarantine_text(&p.reason),
                reason_code: p.reason,
                value: mask_ids_in_text(&p.value),
                status: p.status,
                first_seen: pipeline::clock::beijing(&p.first_seen),
                resolved_at: p.resolved_at.as_deref().map(pipeline::clock::beijing),
            }
        })
        .filter(|l| a.department.as_ref().is_none_or(|d| &l.department == d))
        .collect();
    if a.json {
        let json: Vec<serde_json::Value> = listed
            .iter()
            .map(|l| {
                serde_json::json!({
                    "feed": l.feed,
                    "department": l.department,
                    "file": l.file,
                    "line": l.line,
                    "field": l.field,
                    "reason_code": l.reason_code,
                    "reason": l.reason,
                    "value": l.value,
                    "status": l.status,
                    "first_seen": l.first_seen,
                    "working_days_open": l.working_days_open,
                    "resolved_at": l.resolved_at,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(0);
    }
    outln!("整改问题 corrections: {} ({:?})", listed.len(), a.status);
    if listed.is_empty() {
        outln!("  无 none");
    }
    outln!("数据源 feed\t部门 department\t文件 file\t行 line\t字段 field\t原因 reason\t值 value\t状态 status\t首次发现 first seen\t工作日 days open\t整改于 resolved");
    for l in &listed {
        outln!(
            "{}\t{}\t{}\t{}\t{}\t{}（{}）\t{}\t{}\t{}\t{}\t{}",
            l.feed,
            l.department,
            l.file,
            l.line,
            l.field,
            l.reason_code,
            l.reason,
            l.value,
            if l.status == "open" {
                "未整改 open"
            } else {
                "已整改 resolved"
            },
            l.first_seen,
            l.working_days_open,
            l.resolved_at.as_deref().unwrap_or("-")
        );
    }
    Ok(0)
}
