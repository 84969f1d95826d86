//! `xinyong run`, `backfill` and `push`: one run of the pipeline each, its summary
//! printed, its exit code the run's.

use super::deployment;
use pipeline::orchestrate::runner::{self, RunOptions};
use pipeline::orchestrate::summary;
use pipeline::state::RunKind;
use std::path::PathBuf;

/// Arguments of `xinyong run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Only these feeds (repeatable; default all).
    #[arg(long = "feed")]
    feeds: Vec<String>,
    /// Only these platforms (repeatable; default all).
    #[arg(long = "platform")]
    platforms: Vec<String>,
    /// Do not push.
    #[arg(long)]
    no_push: bool,
    /// Show what would be read, kept, quarantined and pushed; change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Arguments of `xinyong backfill`.
#[derive(clap::Args)]
pub struct BackfillArgs {
    /// The feed.
    #[arg(long)]
    feed: String,
    /// First decision date, YYYY-MM-DD.
    #[arg(long)]
    from: chrono::NaiveDate,
    /// Last decision date, YYYY-MM-DD (included).
    #[arg(long)]
    to: chrono::NaiveDate,
    /// Push the result now (otherwise the next run pushes it).
    #[arg(long)]
    push: bool,
    /// Show what would be read, written, pushed and withdrawn; change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Arguments of `xinyong push`.
#[derive(clap::Args)]
pub struct PushArgs {
    /// Only these platforms (repeatable; default all).
    #[arg(long = "platform")]
    platforms: Vec<String>,
}

/// `None` for all platforms, else the ones named.
fn selected(platforms: Vec<String>) -> Option<Vec<String>> {
    (!platforms.is_empty()).then_some(platforms)
}

/// Runs, prints the summary, and answers the run's exit code.
async fn run_and_print(config: Option<PathBuf>, opts: RunOptions) -> anyhow::Result<i32> {
    let config = deployment(config)?;
    let report = runner::run(&config, &opts).await?;
    out!("{}", summary::render(&report));
    Ok(report.exit_code())
}

/// `xinyong run`.
pub async fn run(config: Option<PathBuf>, a: RunArgs) -> anyhow::Result<i32> {
    let platforms = if a.no_push {
        Some(Vec::new())
    } else {
        selected(a.platforms)
    };
    run_and_print(
        config,
        RunOptions::feeds(RunKind::Run, a.feeds, platforms, a.dry_run),
    )
    .await
}

/// `xinyong backfill`.
pub async fn backfill(config: Option<PathBuf>, a: BackfillArgs) -> anyhow::Result<i32> {
    if a.from > a.to {
        anyhow::bail!("--from {} is after --to {}", a.from, a.to);
    }
    run_and_print(
        config,
        RunOptions::backfill(a.feed, (a.from, a.to), a.push, a.dry_run),
    )
    .await
}

/// `xinyong push`.
pub async fn push(config: Option<PathBuf>, a: PushArgs) -> anyhow::Result<i32> {
    run_and_print(
        config,
        RunOptions::push_only(RunKind::Push, selected(a.platforms)),
    )
    .await
}
