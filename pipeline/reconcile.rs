//! Reconciliation: does each platform hold what the ledger says it acknowledged?
//!
//! For every (dataset, reporting unit) the platform's `summary` digest is compared with
//! the digest of the ledger's acknowledged rows; when they differ (or records are in
//! flight), the platform's `records` listing is paged through and every difference is
//! classified: missing upstream, unknown upstream, version differs, withdrawn on one
//! side only. `--repair` queues what the platform lost (or holds wrongly) and pushes
//! again; the caller reconciles once more to show the result. Results are stored in the
//! state store and written as JSON and CSV for the office's report.

use crate::push::client::PlatformClient;
use crate::simulator::digest;
use crate::state::{PendingOp, StateStore};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Reason sent with a withdrawal of a record the platform should not hold.
pub const REASON_UNKNOWN: &str = "对账撤回：本市未报送 (reconcile: not sent by this city)";

/// One difference between the ledger and a platform.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Difference {
    /// Record id.
    pub record_id: String,
    /// `missing_upstream`, `unknown_upstream`, `version_differs`, `withdrawn_one_side`.
    pub kind: String,
    /// Version per the ledger.
    pub ledger_version: Option<String>,
    /// Version the platform holds.
    pub platform_version: Option<String>,
    /// Status per the ledger (`active`, `withdrawn`).
    pub ledger_status: Option<String>,
    /// Status the platform reports.
    pub platform_status: Option<String>,
}

/// The reconciliation of one dataset and reporting unit on one platform.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupResult {
    /// Platform.
    pub platform: String,
    /// Dataset.
    pub dataset: String,
    /// Reporting unit.
    pub source_unit: String,
    /// The platform's digest.
    pub platform_digest: String,
    /// The digest of the ledger's acknowledged rows.
    pub ledger_digest: String,
    /// Records active on the platform.
    pub platform_active: u64,
    /// Records withdrawn on the platform.
    pub platform_withdrawn: u64,
    /// Records not yet acknowledged (pending or sent): not counted as differences.
    pub in_flight: u64,
    /// The differences.
    pub differences: Vec<Difference>,
}

/// What one reconciliation found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReconcileReport {
    /// When (RFC 3339).
    pub at: String,
    /// Per platform, dataset and unit.
    pub groups: Vec<GroupResult>,
    /// The JSON file written.
    pub json_file: Option<PathBuf>,
    /// The CSV file written.
    pub csv_file: Option<PathBuf>,
}

impl ReconcileReport {
    /// Total differences.
    pub fn differences(&self) -> usize {
        self.groups.iter().map(|g| g.differences.len()).sum()
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reconciles one platform for the given datasets.
pub async fn reconcile_platform(
    client: &PlatformClient,
    state: &StateStore,
    datasets: &[String],
) -> anyhow::Result<Vec<GroupResult>> {
    let name = &client.config.name;
    let mut out = Vec::new();
    for ds in datasets {
        let ledger = state.ledger(name, ds).await?;
        let units: BTreeSet<String> = ledger.values().map(|e| e.source_unit.clone()).collect();
        for unit in units {
            // What the ledger says the platform holds: acknowledged rows.
            let mut expected: BTreeMap<&str, (String, &'static str)> = BTreeMap::new();
            let mut in_flight: BTreeSet<&str> = BTreeSet::new();
            for (id, e) in ledger.iter().filter(|(_, e)| e.source_unit == unit) {
                match e.status.as_str() {
                    "acked" => {
                        let status = if e.op == "withdraw" {
                            "withdrawn"
                        } else {
                            "active"
                        };
                        expected.insert(id.as_str(), (e.version.clone(), status));
                    }
                    "pending" | "sent" => {
                        in_flight.insert(id.as_str());
                    }
                    _ => {}
                }
            }
            let ledger_digest = digest(expected.iter().map(|(id, (v, s))| (*id, v.as_str(), *s)));
            let summary = client
                .get_json(&format!(
                    "/api/v1/summary?dataset={}&source_unit={}",
                    enc(ds),
                    enc(&unit)
                ))
                .await
                .map_err(anyhow::Error::msg)?;
            let platform_digest = summary["digest"].as_str().unwrap_or_default().to_string();
            let mut result = GroupResult {
                platform: name.clone(),
                dataset: ds.clone(),
                source_unit: unit.clone(),
                platform_digest: platform_digest.clone(),
                ledger_digest: ledger_digest.clone(),
                platform_active: summary["active"].as_u64().unwrap_or(0),
                platform_withdrawn: summary["withdrawn"].as_u64().unwrap_or(0),
                in_flight: in_flight.len() as u64,
                differences: Vec::new(),
            };
            if platform_digest != ledger_digest || !in_flight.is_empty() {
                let mut held: BTreeMap<String, (String, String)> = BTreeMap::new();
                let mut token = String::new();
                loop {
                    let v = client
                        .get_json(&format!(
                            "/api/v1/records?dataset={}&source_unit={}&page_size=5000&page_token={}",
                            enc(ds),
                            enc(&unit),
                            enc(&token)
                        ))
                        .await
                        .map_err(anyhow::Error::msg)?;
                    for r in v["records"].as_array().into_iter().flatten() {
                        held.insert(
                            r["record_id"].as_str().unwrap_or_default().to_string(),
                            (
                                r["version"].as_str().unwrap_or_default().to_string(),
                                r["status"].as_str().unwrap_or_default().to_string(),
                            ),
                        );
                    }
                    match v["next_page_token"].as_str() {
                        Some(t) if !t.is_empty() => token = t.to_string(),
                        _ => break,
                    }
                }
                let ids: BTreeSet<&str> = expected
                    .keys()
                    .copied()
                    .chain(held.keys().map(String::as_str))
                    .collect();
                for id in ids {
                    if in_flight.contains(id) {
                        continue;
                    }
                    let e = expected.get(id);
                    let p = held.get(id);
                    let kind = match (e, p) {
                        (Some(_), None) => "missing_upstream",
                        (None, Some(_)) => "unknown_upstream",
                        (Some((_, es)), Some((_, ps))) if *es != ps.as_str() => {
                            "withdrawn_one_side"
                        }
                        (Some((ev, _)), Some((pv, _))) if ev != pv => "version_differs",
                        _ => continue,
                    };
                    result.differences.push(Difference {
                        record_id: id.to_string(),
                        kind: kind.into(),
                        ledger_version: e.map(|x| x.0.clone()),
                        platform_version: p.map(|x| x.0.clone()),
                        ledger_status: e.map(|x| x.1.to_string()),
                        platform_status: p.map(|x| x.1.clone()),
                    });
                }
            }
            let json = serde_json::to_value(&result)?;
            state
                .record_reconciliation(name, ds, &unit, result.differences.len(), &json)
                .await?;
            out.push(result);
        }
    }
    Ok(out)
}

/// Queues repairs for the differences found: records the platform lost or holds at
/// another version or status are sent again (as the ledger has them); records it holds
/// but the city never sent are withdrawn.
pub async fn queue_repairs(state: &StateStore, groups: &[GroupResult]) -> anyhow::Result<usize> {
    let mut n = 0;
    for g in groups {
        let resend: Vec<String> = g
            .differences
            .iter()
            .filter(|d| d.kind != "unknown_upstream")
            .map(|d| d.record_id.clone())
            .collect();
        state.requeue(&g.platform, &g.dataset, &resend).await?;
        let withdraw: Vec<PendingOp> = g
            .differences
            .iter()
            .filter(|d| {
                d.kind == "unknown_upstream" && d.platform_status.as_deref() == Some("active")
            })
            .map(|d| PendingOp {
                record_id: d.record_id.clone(),
                source_unit: g.source_unit.clone(),
                version: format!("w-{}", d.platform_version.clone().unwrap_or_default()),
                op: "withdraw".into(),
                reason: Some(REASON_UNKNOWN.into()),
            })
            .collect();
        state
            .mark_pending(&g.platform, &g.dataset, &withdraw)
            .await?;
        n += resend.len() + withdraw.len();
    }
    Ok(n)
}

/// Writes the report as JSON and CSV under `<data>/reconcile/`.
pub fn write_report(data_dir: &Path, report: &mut ReconcileReport) -> anyhow::Result<()> {
    let dir = data_dir.join("reconcile");
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
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

/// `xinyong reconcile`: every selected platform and dataset; with `repair`, queue the
/// repairs, push, and reconcile again (the report is then the second reconciliation).
pub async fn run(
    config: &crate::config::Config,
    platforms: &[String],
    datasets: &[String],
    repair: bool,
) -> anyhow::Result<ReconcileReport> {
    let mut codes: Vec<String> = Vec::new();
    for f in config.feeds()? {
        if f.dataset.push
            && !codes.contains(&f.dataset.code)
            && (datasets.is_empty() || datasets.contains(&f.dataset.code))
        {
            codes.push(f.dataset.code.clone());
        }
    }
    let selected: Vec<_> = config
        .platforms
        .iter()
        .filter(|p| platforms.is_empty() || platforms.contains(&p.name))
        .cloned()
        .collect();
    let state = StateStore::open(&config.state).await?;
    let mut groups = Vec::new();
    for p in &selected {
        let client = PlatformClient::new(p.clone()).map_err(anyhow::Error::msg)?;
        groups.extend(reconcile_platform(&client, &state, &codes).await?);
    }
    if repair && groups.iter().any(|g| !g.differences.is_empty()) {
        let n = queue_repairs(&state, &groups).await?;
        tracing::info!(records = n, "repairs queued; pushing");
        state.close().await;
        let names: Vec<String> = selected.iter().map(|p| p.name.clone()).collect();
        crate::runner::run(
            config,
            &crate::runner::RunOptions {
                kind: "reconcile-repair".into(),
                platforms: Some(names),
                skip_ingest: true,
                ..Default::default()
            },
        )
        .await?;
        let state = StateStore::open(&config.state).await?;
        groups.clear();
        for p in &selected {
            let client = PlatformClient::new(p.clone()).map_err(anyhow::Error::msg)?;
            groups.extend(reconcile_platform(&client, &state, &codes).await?);
        }
        state.close().await;
    } else {
        state.close().await;
    }
    let mut report = ReconcileReport {
        at: chrono::Utc::now().to_rfc3339(),
        groups,
        json_file: None,
        csv_file: None,
    };
    write_report(&config.data_dir, &mut report)?;
    Ok(report)
}
