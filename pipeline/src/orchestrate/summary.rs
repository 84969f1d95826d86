//! The end-of-run summary a person reads: Chinese labels with the English codes, the
//! accounting check per feed, what each platform took, and where things are.

use crate::orchestrate::runner::RunReport;
use std::fmt::Write;

/// Renders the summary as text.
pub fn render(r: &RunReport) -> String {
    let mut s = String::new();
    let dry = if r.dry_run {
        "（演练 dry run：未写入、未推送）"
    } else {
        ""
    };
    let _ = writeln!(s, "xinyong 运行摘要 run {} {dry}", r.run_id);
    let _ = writeln!(s, "用时 elapsed {:.1}s", r.seconds);
    let _ = writeln!(s);
    let _ = writeln!(s, "数据源 feeds");
    for f in &r.feeds {
        let _ = writeln!(s, "  {} · {} [{}]", f.feed, f.title, f.dataset);
        if let Some(e) = &f.error {
            let _ = writeln!(s, "    失败 FAILED: {e}");
            continue;
        }
        let c = &f.counts;
        let _ = writeln!(
            s,
            "    读取 read {} = 保留 kept {} + 隔离 quarantined {} + 被替代 superseded {}   {}",
            c.read,
            c.kept,
            c.quarantined,
            c.superseded,
            if c.balanced() {
                "✓ 平衡 balanced"
            } else {
                "✗ 不平衡 UNBALANCED"
            }
        );
        let _ = writeln!(
            s,
            "    保留 kept: 新增 new {} · 变更 changed {} · 未变 unchanged {}",
            c.new, c.changed, c.unchanged
        );
        if f.over_threshold() {
            let _ = writeln!(
                s,
                "    ⚠ 隔离比例 {:.1}% 超过阈值 {:.1}% (quarantine over the feed's threshold: call the department)",
                100.0 * c.quarantined as f64 / c.read as f64,
                100.0 * f.max_quarantine_ratio.unwrap_or(0.0)
            );
        }
        if c.uscc_unknown_type > 0 {
            let _ = writeln!(s, "    提示 warning: {} 条记录的信用代码登记管理部门/机构类别不在公布表中 (uscc_unknown_type; kept, not rejected)", c.uscc_unknown_type);
        }
        if c.outside_window + c.vanished > 0 {
            let _ = writeln!(s, "    补录窗口 backfill window: 窗口外跳过 outside {} · 源已删除 vanished {} (将撤回 to be withdrawn)", c.outside_window, c.vanished);
        }
        if !c.quarantined_by_reason.is_empty() {
            let reasons: Vec<String> = c
                .quarantined_by_reason
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(s, "    隔离原因 reasons: {}", reasons.join(" · "));
        }
        let _ = writeln!(
            s,
            "    文件 files: 本次读取 read {} · 已读跳过 skipped {}",
            f.files.len(),
            f.skipped_files.len()
        );
        for w in &f.warnings {
            let _ = writeln!(s, "    ⚠ {w}");
        }
        for a in &f.set_aside {
            let _ = writeln!(
                s,
                "    ⚠ 文件无法读取，已搁置 set aside: {} — {} (the other files were read; fix the file and drop it again)",
                a.path.display(),
                a.reason
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "上报平台 platforms");
    if r.platforms.is_empty() {
        let _ = writeln!(s, "  （未推送 no push）");
    }
    for p in &r.platforms {
        let rejected: u64 = p.rejected.values().sum();
        let _ = writeln!(
            s,
            "  {} {}: 推送 pushed {} (其中撤回 withdrawals {}) · 接受 accepted {} · 拒绝 rejected {} · 待推送 pending {}",
            p.platform, p.title, p.pushed, p.withdrawn, p.accepted, rejected, p.pending
        );
        if !p.rejected.is_empty() {
            let codes: Vec<String> = p.rejected.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(s, "    拒绝原因 rejected by code: {}", codes.join(" · "));
        }
        let w = &p.wire;
        if w.rate_limited + w.server_errors + w.transport_errors + w.polls > 0 {
            let _ = writeln!(
                s,
                "    重试 retries: 429×{} · 5xx×{} · 超时/断连 timeout/lost×{} · 轮询 polls×{}",
                w.rate_limited, w.server_errors, w.transport_errors, w.polls
            );
        }
        if p.configuration_error.is_some() {
            let _ = writeln!(
                s,
                "    密钥或配置错误 configuration error: the platform refuses our requests; check its secret, app id and base_url"
            );
        }
        if let Some(e) = &p.error {
            let _ = writeln!(s, "    未完成 incomplete: {e}");
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "快照 snapshot:    {}", r.snapshot_dir.display());
    let _ = writeln!(s, "隔离区 quarantine: {}", r.quarantine_dir.display());
    let _ = writeln!(s, "状态库 state:      {}", r.state_path.display());
    if let Some(p) = &r.report_file {
        let _ = writeln!(s, "运行报告 report:   {}", p.display());
    }
    if let Some(p) = &r.office_report {
        let _ = writeln!(s, "办公室报告 office: {}", p.display());
        let _ = writeln!(
            s,
            "                   （同目录有 report.xlsx、report.json 和各部门的整改清单）"
        );
    }
    s
}
