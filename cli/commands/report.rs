//! `xinyong report`: the leading-group office's report for a month, a date range or a
//! run (default: the latest run), as HTML, XLSX, JSON and correction workbooks.

use super::deployment;
use pipeline::report;
use std::path::PathBuf;

/// Which period, and where to write.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// A calendar month, YYYY-MM.
    #[arg(long, conflicts_with_all = ["from", "to", "run"])]
    month: Option<String>,
    /// First day, YYYY-MM-DD (with --to).
    #[arg(long, requires = "to")]
    from: Option<chrono::NaiveDate>,
    /// Last day, YYYY-MM-DD, included (with --from).
    #[arg(long, requires = "from")]
    to: Option<chrono::NaiveDate>,
    /// One run, by id.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    run: Option<String>,
    /// Output directory (default: <data_dir>/reports/<period>).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `xinyong report`.
pub async fn report(config: Option<PathBuf>, a: ReportArgs) -> anyhow::Result<i32> {
    let config = deployment(config)?;
    let period = match (a.month, a.from.zip(a.to), a.run) {
        (Some(month), _, _) => report::Period::month(&month)?,
        (_, Some((from, to)), _) => report::Period::range(from, to)?,
        (_, _, Some(run)) => report::Period::Run(run),
        _ => report::Period::LatestRun,
    };
    let office = report::build(&config, period).await?;
    let dir = a
        .out
        .unwrap_or_else(|| report::default_dir(&config, &office));
    let files = report::write_all(&office, &dir)?;
    out!("{}", report::describe(&office, &files));
    Ok(0)
}
