//! Reconciliation: does each platform hold what the ledger says it acknowledged?
//!
//! For every (dataset, reporting unit) the platform's `summary` digest is compared with
//! the digest of the ledger's acknowledged rows; when they differ (or records are in
//! flight), the platform's `records` listing is paged through and every difference is
//! classified ([`compare`]): missing upstream, unknown upstream, version differs,
//! withdrawn on one side only. `--repair` queues what the platform lost (or holds
//! wrongly) and pushes again; the caller reconciles once more to show the result.
//! Results are stored in the state store and written as JSON and CSV ([`output`]) for
//! the office's report.

pub mod compare;
pub mod output;

pub use compare::{queue_repairs, reconcile_platform};
pub use output::{render, write_report};

use crate::orchestrate::runner::{self, RunOptions};
use crate::state::{RunKind, StateStore};
use std::path::PathBuf;

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
    /// When (RFC 3339, Beijing time with its offset).
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

/// `xinyong reconcile`: every selected platform and dataset; with `repair`, queue the
/// repairs, push, and reconcile again (the report is then the second reconciliation).
pub async fn run(
    config: &crate::config::Config,
    platforms: &[String],
    datasets: &[String],
    repair: bool,
) -> anyhow::Result<ReconcileReport> {
    let mut codes: Vec<String> = Vec::new();
    for f in config.feeds_each()?.feeds {
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
        let platform = p.connect().map_err(anyhow::Error::msg)?;
        groups.extend(reconcile_platform(platform.as_ref(), &state, &codes).await?);
    }
    if repair && groups.iter().any(|g| !g.differences.is_empty()) {
        let n = queue_repairs(&state, &groups).await?;
        tracing::info!(records = n, "repairs queued; pushing");
        state.close().await;
        let names: Vec<String> = selected.iter().map(|p| p.name.clone()).collect();
        runner::run(
            config,
            &RunOptions::push_only(RunKind::ReconcileRepair, Some(names)),
        )
        .await?;
        let state = StateStore::open(&config.state).await?;
        groups.clear();
        for p in &selected {
            let platform = p.connect().map_err(anyhow::Error::msg)?;
            groups.extend(reconcile_platform(platform.as_ref(), &state, &codes).await?);
        }
        state.close().await;
    } else {
        state.close().await;
    }
    let mut report = ReconcileReport {
        at: crate::clock::beijing_of(crate::clock::now()),
        groups,
        json_file: None,
        csv_file: None,
    };
    write_report(&config.data_dir, &mut report)?;
    Ok(report)
}
