//! `xinyong withdraw`, `hold`, `release` and `holds`: the clerk's tools for records
//! withdrawn by hand (credit repair) or under objection (异议).

use super::deployment;
use pipeline::orchestrate::status;
use pipeline::state::{OverrideKind, StateStore};
use std::path::PathBuf;

/// Which record a withdrawal or hold is about, why, and who decided.
#[derive(clap::Args)]
pub struct OverrideArgs {
    /// Dataset (xzcf, xzxk, …).
    #[arg(long)]
    dataset: String,
    /// Record id.
    #[arg(long)]
    record_id: String,
    /// Why (e.g. 信用修复, or the objection).
    #[arg(long)]
    reason: String,
    /// Who decided (default: $USER).
    #[arg(long)]
    by: Option<String>,
    /// Record it although neither the snapshot nor the ledger knows the record id.
    #[arg(long)]
    force: bool,
}

/// Which hold ends, and how.
#[derive(clap::Args)]
pub struct ReleaseArgs {
    /// Dataset.
    #[arg(long)]
    dataset: String,
    /// Record id.
    #[arg(long)]
    record_id: String,
    /// Outcome.
    #[arg(long, value_parser = ["corrected", "confirmed"])]
    outcome: String,
    /// Release it although neither the snapshot nor the ledger knows the record id.
    #[arg(long)]
    force: bool,
}

/// Whether the snapshot or the ledger knows a record id.
async fn known(
    config: &pipeline::config::Config,
    state: &StateStore,
    dataset: &str,
    record_id: &str,
) -> anyhow::Result<bool> {
    if state.ledger_knows(dataset, record_id).await? {
        return Ok(true);
    }
    let store = pipeline::snapshot::SnapshotStore::new(&config.data_dir);
    let mut found = false;
    store.read_dataset(dataset, Some(&["record_id"]), |b| {
        if let Some(ids) = pipeline::snapshot::str_col(&b, "record_id") {
            found |= ids.iter().flatten().any(|id| id == record_id);
        }
        Ok(())
    })?;
    Ok(found)
}

/// `xinyong withdraw` and `xinyong hold`.
pub async fn add(
    config: Option<PathBuf>,
    kind: OverrideKind,
    a: OverrideArgs,
) -> anyhow::Result<i32> {
    let config = deployment(config)?;
    let (dataset, record_id, reason) =
        (a.dataset.as_str(), a.record_id.as_str(), a.reason.as_str());
    if pipeline::domain::schema::registry().get(dataset).is_none() {
        anyhow::bail!("unknown dataset {dataset:?}");
    }
    let by =
        a.by.or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "unknown".into());
    let state = StateStore::open(&config.state).await?;
    if !a.force && !known(&config, &state, dataset, record_id).await? {
        state.close().await;
        anyhow::bail!(
            "neither the snapshot nor the ledger knows {dataset} record {record_id}: find its id with `xinyong find` (or pass --force for a record not read yet)"
        );
    }
    let in_force = state
        .overrides(Some(dataset))
        .await?
        .into_iter()
        .any(|o| o.record_id == record_id && o.kind == kind);
    if in_force {
        state.close().await;
        outln!(
            "{} already in force for {dataset} {record_id}; nothing changed",
            kind.as_str()
        );
        return Ok(0);
    }
    state
        .add_override(dataset, record_id, kind, reason, &by)
        .await?;
    state.close().await;
    outln!(
        "{} recorded for {dataset} {record_id} by {by}: {reason}; the next push withdraws it upstream (xinyong push)",
        kind.as_str()
    );
    Ok(0)
}

/// `xinyong release`.
pub async fn release(config: Option<PathBuf>, a: ReleaseArgs) -> anyhow::Result<i32> {
    let config = deployment(config)?;
    let state = StateStore::open(&config.state).await?;
    if !a.force && !known(&config, &state, &a.dataset, &a.record_id).await? {
        state.close().await;
        anyhow::bail!(
            "neither the snapshot nor the ledger knows {} record {} (pass --force to release it anyway)",
            a.dataset,
            a.record_id
        );
    }
    let n = state
        .release_hold(&a.dataset, &a.record_id, &a.outcome)
        .await?;
    state.close().await;
    if n == 0 {
        outln!(
            "no hold in force on {} {}; nothing changed",
            a.dataset,
            a.record_id
        );
        return Ok(0);
    }
    outln!(
        "released {} {} ({}); the next push re-publishes it (xinyong push)",
        a.dataset,
        a.record_id,
        a.outcome
    );
    Ok(0)
}

/// `xinyong holds`: exit 1 when a hold is past its 20 working days.
pub async fn list(config: Option<PathBuf>) -> anyhow::Result<i32> {
    let config = deployment(config)?;
    let state = StateStore::open(&config.state).await?;
    let holds = status::holds(&state).await?;
    state.close().await;
    outln!("类型 kind\t数据集 dataset\t记录编号 record id\t时间 since\t工作日 working days\t经办人 by\t原因 reason");
    if holds.is_empty() {
        outln!("无 none");
    }
    for h in &holds {
        let o = &h.entry;
        outln!(
            "{}\t{}\t{}\t{}\t{} 个工作日 working days\t{}\t{}{}",
            match o.kind {
                OverrideKind::Hold => "异议暂停 hold",
                OverrideKind::Withdraw => "撤回 withdraw",
            },
            o.dataset,
            o.record_id,
            pipeline::clock::beijing(&o.at),
            h.working_days
                .map(|d| d.to_string())
                .unwrap_or_else(|| "?".into()),
            o.by_whom,
            o.reason,
            if h.overdue {
                "\t超过20个工作日 OVER 20 WORKING DAYS"
            } else {
                ""
            }
        );
    }
    Ok(if holds.iter().any(|h| h.overdue) {
        1
    } else {
        0
    })
}
