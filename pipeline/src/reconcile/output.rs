//! Writing a reconciliation for the office (JSON and CSV) and rendering it for people.

use super::ReconcileReport;
use std::collections::BTreeMap;
use std::path::Path;

/// Writes the report as JSON and CSV under `<data>/reconcile/`.
pub fn write_report(data_dir: &Path, report: &mut ReconcileReport) -> anyhow::Result<()> {
    let dir = data_dir.join("reconcile");
    let stamp = crate::clock::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let json_path = dir.join(format!("{stamp}.json"));
    let csv_path = dir.join(format!("{stamp}.csv"));
    report.json_file = Some(json_path.clone());
    report.csv_file = Some(csv_path.clone());
    crate::snapshot::write_atomic(&json_path, &serde_json::to_vec_pretty(report)?)?;
    let mut csv = String::from("\u{feff}platform,dataset,source_unit,record_id,kind,ledger_version,platform_version,ledger_status,platform_status\r\n");
    for g in &report.groups {
        for d in &g.differences {
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\r\n",
                g.platform,
                g.dataset,
                g.source_unit,
                d.record_id,
                d.kind,
                d.ledger_version.as_deref().unwrap_or(""),
                d.platform_version.as_deref().unwrap_or(""),
                d.ledger_status.as_deref().unwrap_or(""),
                d.platform_status.as_deref().unwrap_or("")
            ));
        }
    }
    crate::snapshot::write_atomic(&csv_path, csv.as_bytes())?;
    Ok(())
}

/// Renders a reconciliation for people.
pub fn render(r: &ReconcileReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "对账 reconcile {}", r.at);
    for g in &r.groups {
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for d in &g.differences {
            *kinds.entry(d.kind.as_str()).or_default() += 1;
        }
        let verdict = if g.differences.is_empty() {
            "一致 clean".to_string()
        } else {
            format!("差异 {} differences", g.differences.len())
        };
        let _ = writeln!(
            s,
            "  {} · {} · {}: 平台 active {} / withdrawn {} · 在途 in flight {} · {verdict}",
            g.platform,
            g.dataset,
            g.source_unit,
            g.platform_active,
            g.platform_withdrawn,
            g.in_flight
        );
        for (k, n) in kinds {
            let zh = match k {
                "missing_upstream" => "平台缺失",
                "unknown_upstream" => "平台多出",
                "version_differs" => "版本不一致",
                _ => "撤回状态不一致",
            };
            let _ = writeln!(s, "    {zh} {k}: {n}");
        }
    }
    if let (Some(j), Some(c)) = (&r.json_file, &r.csv_file) {
        let _ = writeln!(s, "结果 result: {} · {}", j.display(), c.display());
    }
    s
}
