//! `xinyong reconcile`: what each platform holds against the ledger; exit 1 when they
//! differ.

use super::deployment;
use std::path::PathBuf;

/// Which platforms and datasets, and whether to repair.
#[derive(clap::Args)]
pub struct ReconcileArgs {
    /// Only these platforms (repeatable).
    #[arg(long = "platform")]
    platforms: Vec<String>,
    /// Only these datasets (repeatable).
    #[arg(long = "dataset")]
    datasets: Vec<String>,
    /// Re-push or withdraw to converge, then reconcile again.
    #[arg(long)]
    repair: bool,
}

/// `xinyong reconcile`.
pub async fn reconcile(config: Option<PathBuf>, a: ReconcileArgs) -> anyhow::Result<i32> {
    let config = deployment(config)?;
    let report = pipeline::reconcile::run(&config, &a.platforms, &a.datasets, a.repair).await?;
    out!("{}", pipeline::reconcile::render(&report));
    Ok(if report.differences() == 0 { 0 } else { 1 })
}
