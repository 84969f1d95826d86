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
    state
        .add_override(dataset, record_id, kind, reason, &by)
        .await?;
    state.close().await;
    println!(
        "{} recorded for {dataset} {record_id} by {by}: {reason}; the next push withdraws it upstream (xinyong push)",
        kind.as_str()
    );
    Ok(0)
}

/// `xinyong release`.
pub async fn release(config: Option<PathBuf>, a: ReleaseArgs) -> anyhow::Result<i32> {
    let config = deployment(config)?;
    let state = StateStore::open(&config.state).await?;
    let n = state
        .release_hold(&a.dataset, &a.record_id, &a.outcome)
        .await?;
    state.close().await;
    if n == 0 {
        anyhow::bail!("no hold in force on {} {}", a.dataset, a.record_id);
    }
    println!(
        "released {} {} ({}); the next push re-publishes it (xinyong push)",
        a.dataset, a.record_id, a.outcome
    );
    Ok(0)
}

/// `xinyong holds`: exit 1 when a hold is past its 20 working days.
pub async fn list(config: Option<PathBuf>) -> anyhow::Result<i32> {
    let config = deployment(config)?;
    let state = StateStore::open(&config.state).await?;
    let holds = status::holds(&state).await?;
    state.close().await;
    for h in &holds {
        let o = &h.entry;
        println!(
            "{}\t{}\t{}\t{}\t{} 个工作日 working days\t{}\t{}{}",
            o.kind.as_str(),
            o.dataset,
            o.record_id,
            o.at,
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
