//! `xinyong status`: per feed its last run and position, per platform its ledger, the
//! next and last fire of each scheduled job, withdrawals and holds; exit 2 when a feed's
//! last run failed or a platform refuses our requests (密钥或配置错误).

use super::deployment;
use pipeline::clock::{beijing, beijing_of};
use pipeline::domain::masking::mask_ids_in_text;
use pipeline::orchestrate::status::{self, Status};
use pipeline::state::{LedgerStatus, StateStore};
use std::fmt::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct StatusArgs {
    /// JSON (the shape is documented in the README: version 1), same exit codes.
    #[arg(long)]
    json: bool,
}

/// `xinyong status`.
pub async fn status(config: Option<PathBuf>, a: StatusArgs) -> anyhow::Result<i32> {
    let config = deployment(config)?;
    let state = StateStore::open(&config.state).await?;
    let s = status::gather(&config, &state).await?;
    state.close().await;
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json(&config.state, &s))?
        );
    } else {
        out!("{}", render(&config.state, config.schedules.is_some(), &s));
    }
    Ok(if s.any_failure() { 2 } else { 0 })
}

/// `status --json`, version 1: feeds, platforms, jobs, holds, calendar coverage.
pub fn json(state_path: &std::path::Path, s: &Status) -> serde_json::Value {
    use serde_json::json;
    let (first, last) = pipeline::domain::calendar::Calendar::built_in().years();
    json!({
        "version": 1,
        "state": state_path.display().to_string(),
        "failing": s.any_failure(),
        "calendar": { "first_year": first, "last_year": last, "warning": s.calendar_warning },
        "feeds": s.feeds.iter().map(|f| json!({
            "name": f.name,
            "title": f.title,
            "last_run": f.last.as_ref().map(|r| json!({
                "run_id": r.run_id,
                "outcome": r.outcome,
                "started_at": beijing(&r.started_at),
                "seconds": f.seconds,
                "read": r.counts.read,
                "kept": r.counts.kept,
                "quarantined": r.counts.quarantined,
                "superseded": r.counts.superseded,
                "error": r.error.as_deref().map(mask_ids_in_text),
            })),
            "files_read": f.files_read,
            "last_read_at": f.last_read_at.as_deref().map(beijing),
            "set_aside": f.set_aside.iter().map(|(path, reason, at)| json!({
                "path": path, "reason": reason, "at": beijing(at),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "platforms": s.platforms.iter().map(|p| json!({
            "name": p.name,
            "title": p.title,
            "pending": p.count(LedgerStatus::Pending),
            "sent": p.count(LedgerStatus::Sent),
            "acked": p.count(LedgerStatus::Acked),
            "rejected": p.count(LedgerStatus::Rejected),
            "configuration_error": p.configuration_error.as_ref().map(|(m, since)| json!({
                "message": mask_ids_in_text(m), "since": beijing(since),
            })),
            "untrusted_receipts": p.untrusted_receipts,
            "last_acknowledged": p.last_acknowledged.as_deref().map(beijing),
        })).collect::<Vec<_>>(),
        "jobs": s.jobs.iter().map(|j| json!({
            "name": j.job.name,
            "cron": j.job.cron_text,
            "next": j.next.map(beijing_of),
            "last_fired": j.last_fired.map(beijing_of),
        })).collect::<Vec<_>>(),
        "holds": s.holds.iter().map(|h| json!({
            "kind": h.entry.kind,
            "dataset": h.entry.dataset,
            "record_id": h.entry.record_id,
            "since": beijing(&h.entry.at),
            "by": h.entry.by_whom,
            "reason": h.entry.reason,
            "working_days": h.working_days,
            "overdue": h.overdue,
        })).collect::<Vec<_>>(),
    })
}

fn render(state_path: &std::path::Path, has_schedules: bool, s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "xinyong 状态 status · state {}", state_path.display());
    if let Some(w) = &s.calendar_warning {
        let _ = writeln!(out, "⚠ {w}");
    }
    let _ = writeln!(out, "数据源 feeds");
    for f in &s.feeds {
        match &f.last {
            Some(r) => {
                let c = &r.counts;
                let _ = writeln!(
                    out,
                    "  {} · {}: {} ({}, run {}, {:.1}s) read {} kept {} quarantined {} superseded {}",
                    f.name, f.title, r.outcome, beijing(&r.started_at), r.run_id, f.seconds, c.read, c.kept, c.quarantined, c.superseded
                );
                if let Some(e) = &r.error {
                    let _ = writeln!(out, "    error: {}", mask_ids_in_text(e));
                }
            }
            None => {
                let _ = writeln!(out, "  {} · {}: never run", f.name, f.title);
            }
        }
        let _ = writeln!(
            out,
            "    position: {} files read{}",
            f.files_read,
            f.last_read_at
                .as_ref()
                .map(|t| format!(", last at {}", beijing(t)))
                .unwrap_or_default()
        );
        for (path, reason, at) in &f.set_aside {
            let _ = writeln!(
                out,
                "    ⚠ 已搁置 set aside ({}): {path} — {reason}",
                beijing(at)
            );
        }
    }
    let _ = writeln!(out, "上报平台 platforms");
    for p in &s.platforms {
        let _ = writeln!(
            out,
            "  {} {}: pending {} · sent {} · acked {} · rejected {} · last acknowledged {}",
            p.name,
            p.title,
            p.count(LedgerStatus::Pending),
            p.count(LedgerStatus::Sent),
            p.count(LedgerStatus::Acked),
            p.count(LedgerStatus::Rejected),
            p.last_acknowledged
                .as_deref()
                .map(beijing)
                .unwrap_or_else(|| "never".into())
        );
        if let Some((message, since)) = &p.configuration_error {
            let _ = writeln!(
                out,
                "    密钥或配置错误 configuration error since {}: {}",
                beijing(since),
                mask_ids_in_text(message)
            );
        }
        if p.untrusted_receipts > 0 {
            let _ = writeln!(
                out,
                "    不可信回执 untrusted receipts: {} batches (their records were not acknowledged and went again)",
                p.untrusted_receipts
            );
        }
    }
    if has_schedules {
        let _ = writeln!(out, "计划 schedule");
        for j in &s.jobs {
            let next = j.next.map(beijing_of).unwrap_or_else(|| "-".into());
            let last = j
                .last_fired
                .map(beijing_of)
                .unwrap_or_else(|| "never".into());
            let _ = writeln!(out, "  {}: next {next} · last fired {last}", j.job.name);
        }
    }
    if !s.holds.is_empty() {
        let _ = writeln!(
            out,
            "撤回/异议 withdrawals and holds: {} · 异议超过20个工作日 holds over 20 working days: {} (see `xinyong holds`)",
            s.holds.len(),
            s.overdue_holds()
        );
    }
    out
}
