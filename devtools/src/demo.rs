//! `xinyong demo` (what `make run` runs): starts the two platform simulators on
//! loopback, points the configuration's platforms at them, runs every feed of the
//! built-in fixtures, and stops the simulators. Their holdings persist under the data
//! directory, so a second demo run finds them as the first left them. Then it writes the
//! leading-group office's report of the run (`<data>/reports/run-<run id>/`).
//!
//! The housing bureau's feed (`mappings/zjj_xzcf.toml`) reads a SQLite database: the demo
//! creates it under `<data>/sources/` from `fixtures/sql/zjj_xzcf.sql` when it is missing,
//! with the secret file holding its URL.

use crate::simulator::{self, FaultKind, SimConfig};
use anyhow::Context;
use pipeline::config::Config;
use pipeline::orchestrate::runner::{self, RunOptions, RunReport};
use pipeline::state::RunKind;
use std::collections::HashMap;
use std::path::PathBuf;

/// Demo options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Share of batch POSTs that meet an injected fault.
    pub fault_rate: f64,
    /// Fault kinds to inject.
    pub faults: Vec<FaultKind>,
    /// Dry run.
    pub dry_run: bool,
}

/// Runs the demo.
pub async fn run(mut config: Config, opts: DemoOptions) -> anyhow::Result<RunReport> {
    let fixture = config.base_dir.join(SQL_FIXTURE);
    if fixture.exists() {
        let dir = config.data_dir.join("sources");
        prepare_sql_fixture(&fixture, &dir.join("zjj.db"), &dir.join("zjj_xzcf.url")).await?;
    }
    // The court's API, and where the court feed's mapping finds it.
    let (court_url, court_stop) = crate::court_api::start().await?;
    pipeline::snapshot::write_atomic(
        &config.data_dir.join("sources").join("court-api.url"),
        court_url.as_bytes(),
    )?;
    tracing::info!(url = %court_url, "court API started");
    let mut sims = Vec::new();
    for p in &mut config.platforms {
        let secret = p.resolve_secret().map_err(anyhow::Error::msg)?;
        let sim = simulator::start(
            SimConfig {
                name: p.name.clone(),
                apps: HashMap::from([(p.app_id.clone(), secret)]),
                fault_rate: opts.fault_rate,
                faults: opts.faults.clone(),
                slow_ms: ((p.timeout_seconds + 1.0) * 1000.0) as u64,
                processing_ms: 300,
                seed: 7,
                state_file: Some(
                    config
                        .data_dir
                        .join("simulator")
                        .join(format!("{}.json", p.name)),
                ),
                reject_prefix: None,
                read_fault_rate: 0.0,
            },
            "127.0.0.1:0",
        )
        .await?;
        tracing::info!(platform = %p.name, url = %sim.url(), "simulator started");
        p.base_url = sim.url();
        sims.push(sim);
    }
    let result = runner::run(
        &config,
        &RunOptions::feeds(RunKind::Demo, Vec::new(), None, opts.dry_run),
    )
    .await;
    let _ = court_stop.send(());
    for s in sims {
        s.stop().await;
    }
    let mut report = result?;
    if !opts.dry_run {
        report.office_report = Some(write_office_report(&config, &report.run_id).await?);
    }
    Ok(report)
}

/// Writes the office's report of a run to its default directory; returns the HTML file.
async fn write_office_report(config: &Config, run_id: &str) -> anyhow::Result<PathBuf> {
    let office = pipeline::report::build(config, pipeline::report::Period::Run(run_id.into()))
        .await
        .context("gathering the office report")?;
    let dir = pipeline::report::default_dir(config, &office);
    let files = pipeline::report::write_all(&office, &dir).context("writing the office report")?;
    Ok(files.html)
}

/// The housing bureau's case database, as SQL statements (relative to the base directory).
pub const SQL_FIXTURE: &str = "fixtures/sql/zjj_xzcf.sql";

/// Creates the SQLite database `db` from the statements in `fixture` when it does not
/// exist yet (an existing one is left as the last runs left it), and writes the secret
/// file `url_file` holding its URL, as a department would hand it over.
pub async fn prepare_sql_fixture(
    fixture: &std::path::Path,
    db: &std::path::Path,
    url_file: &std::path::Path,
) -> anyhow::Result<()> {
    use sqlx::{ConnectOptions, Executor};
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if !db.exists() {
        let statements = std::fs::read_to_string(fixture)
            .with_context(|| format!("reading {}", fixture.display()))?;
        let partial = db.with_extension("db.partial");
        let _ = std::fs::remove_file(&partial);
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&partial)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Delete)
            .connect()
            .await
            .with_context(|| format!("creating {}", partial.display()))?;
        conn.execute(sqlx::raw_sql(&statements))
            .await
            .with_context(|| format!("loading {}", fixture.display()))?;
        sqlx::Connection::close(conn).await?;
        std::fs::rename(&partial, db).with_context(|| format!("creating {}", db.display()))?;
        tracing::info!(database = %db.display(), "demo SQL database created");
    }
    let absolute = std::path::absolute(db).with_context(|| format!("locating {}", db.display()))?;
    pipeline::snapshot::write_atomic(
        url_file,
        format!("sqlite://{}?mode=ro\n", absolute.display()).as_bytes(),
    )?;
    Ok(())
}
