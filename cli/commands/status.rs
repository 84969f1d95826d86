//! `xinyong status`: per feed its last run and position, per platform its ledger, the
//! next and last fire of each scheduled job, withdrawals and holds; exit 2 when a feed's
//! last run failed or a platform refuses our requests (密钥或配置错误).

use super::deployment;
use pipeline::domain::masking::mask_ids_in_text;
use pipeline::orchestrate::status::{self, Status};
use pipeline::state::{LedgerStatus, StateStore};
use std::fmt::Write;
use std::path::PathBuf;

/// `xinyong status`.
pub async fn status(config: Option<PathBuf>) -> anyhow::Result<i32> {
    let config = deployment(config)?;
    let state = StateStore::open(&config.state).await?;
    let s = status::gather(&config, &state).await?;
    state.close().await;
    print!("{}", render(&config.state, config.schedules.is_some(), &s));
    Ok(if s.any_failure() { 2 } else { 0 })
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
                    f.name, f.title, r.outcome, r.started_at, r.run_id, f.seconds, c.read, c.kept, c.quarantined, c.superseded
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
                .map(|t| format!(", last at {t}"))
                .unwrap_or_default()
        );
        for (path, reason, at) in &f.set_aside {
            let _ = writeln!(out, "    ⚠ 已搁置 set aside ({at}): {path} — {reason}");
        }
    }
    let _ = writeln!(out, "上报平台 platforms");
    for p in &s.platforms {
        let _ = writeln!(
            out,
            "  {} {}: pending {} · sent {} · acked {} · rejected {}",
            p.name,
            p.title,
            p.count(LedgerStatus::Pending),
            p.count(LedgerStatus::Sent),
            p.count(LedgerStatus::Acked),
            p.count(LedgerStatus::Rejected)
        );
        if let Some((message, since)) = &p.configuration_error {
            let _ = writeln!(
                out,
                "    密钥或配置错误 configuration error since {since}: {}",
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
            let next = j
                .next
                .map(|t| {
                    t.with_timezone(&j.job.tz)
                        .format("%Y-%m-%d %H:%M %Z")
                        .to_string()
                })
                .unwrap_or_else(|| "-".into());
            let last = j
                .last_fired
                .map(|t| {
                    t.with_timezone(&j.job.tz)
                        .format("%Y-%m-%d %H:%M")
                        .to_string()
                })
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
