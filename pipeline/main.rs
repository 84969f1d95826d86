//! The `xinyong` command line: parses arguments, sets up logging, and hands over to the
//! library. Exit codes: 0 ok; 1 finished, but something was left for the next run
//! (records pending on a platform); 2 failed.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use xinyong::config::Config;
use xinyong::simulator::{self, FaultKind, SimConfig};
use xinyong::{demo, fixtures_gen, ids, report, runner, summary};

/// mimalloc: rows are allocated on mapper threads and freed on others; glibc's malloc
/// spent a third more CPU on that traffic in the full-load benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEMO_CONFIG: &str = "fixtures/demo/xinyong.toml";

#[derive(Parser)]
#[command(
    name = "xinyong",
    version,
    about = "Public-credit data exchange: departmental feeds → 信用佳木斯 / 信用黑龙江"
)]
struct Cli {
    /// Configuration file (default: $XINYONG_CONFIG, then ./xinyong.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run feeds: read, map, validate, deduplicate, snapshot, push.
    Run {
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
    },
    /// Re-read one feed's window of decision dates (all its files, read before or not) without moving the nightly position: upserts for what changed, withdrawals for what vanished.
    Backfill {
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
    },
    /// Push what the snapshot and the ledger say each platform is owed, reading no feed.
    Push {
        /// Only these platforms (repeatable; default all).
        #[arg(long = "platform")]
        platforms: Vec<String>,
    },
    /// Withdraw a record from every platform by hand (credit repair, revocation); recorded with who and why.
    Withdraw(OverrideArgs),
    /// Put a record under objection (异议): withdrawn from public display upstream and not re-pushed while held.
    Hold(OverrideArgs),
    /// End an objection hold: `confirmed` re-publishes the record, `corrected` waits for the corrected record.
    Release {
        /// Dataset.
        #[arg(long)]
        dataset: String,
        /// Record id.
        #[arg(long)]
        record_id: String,
        /// Outcome.
        #[arg(long, value_parser = ["corrected", "confirmed"])]
        outcome: String,
    },
    /// List withdrawals and holds in force; holds older than 20 working days are called out.
    Holds,
    /// Run the schedules in the foreground (systemd- and container-friendly); `--next N` lists fire times and checks the files.
    Schedule {
        /// Print the next N fire times of every job (local time) and exit.
        #[arg(long)]
        next: Option<usize>,
        /// Seconds a run in hand may take to finish after SIGTERM or Ctrl-C.
        #[arg(long, default_value_t = 30)]
        grace_seconds: u64,
    },
    /// Did the last runs work? Per feed, platform and job; exit 2 when a feed's last run failed.
    Status,
    /// Write the leading-group office's report: HTML, XLSX, JSON and one correction workbook per department (default period: the latest run).
    Report {
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
    },
    /// Compare what each platform holds with the ledger; `--repair` converges.
    Reconcile {
        /// Only these platforms (repeatable).
        #[arg(long = "platform")]
        platforms: Vec<String>,
        /// Only these datasets (repeatable).
        #[arg(long = "dataset")]
        datasets: Vec<String>,
        /// Re-push or withdraw to converge, then reconcile again.
        #[arg(long)]
        repair: bool,
    },
    /// The demo: start both platform simulators on loopback and run every fixture feed.
    Demo {
        /// Share of batch POSTs that meet an injected fault (0 to 1).
        #[arg(long, default_value_t = 0.0)]
        fault_rate: f64,
        /// Which faults (default: all kinds).
        #[arg(long, value_enum, value_delimiter = ',')]
        faults: Vec<FaultKind>,
        /// Change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Serve the platforms' contract on loopback (with fault injection).
    Simulate {
        /// Platform name (for logs).
        #[arg(long, default_value = "platform")]
        platform: String,
        /// Address to listen on (port 0: any free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Application credentials, APP_ID=SECRET (repeatable).
        #[arg(long = "app", required = true)]
        apps: Vec<String>,
        /// Share of batch POSTs that meet a fault (0 to 1).
        #[arg(long, default_value_t = 0.0)]
        fault_rate: f64,
        /// Which faults (default: all kinds).
        #[arg(long, value_enum, value_delimiter = ',')]
        faults: Vec<FaultKind>,
        /// Delay of a slow answer, in milliseconds.
        #[arg(long, default_value_t = 5000)]
        slow_ms: u64,
        /// How long a 202 batch stays processing, in milliseconds.
        #[arg(long, default_value_t = 300)]
        processing_ms: u64,
        /// Seed of the fault dice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Keep holdings in this JSON file across restarts.
        #[arg(long)]
        state_file: Option<PathBuf>,
        /// Reject records whose id starts with this prefix (bad_value), for tests of rejections.
        #[arg(long)]
        reject_prefix: Option<String>,
    },
    /// Parse and check the configuration, every mapping file and the schema files.
    Check,
    /// Identifier tools.
    Id {
        #[command(subcommand)]
        command: IdCommand,
    },
    /// The State Council working-day calendar (2018–2026).
    Calendar {
        #[command(subcommand)]
        command: CalendarCommand,
    },
    /// Generate the benchmark's penalties export (deterministic; GB18030).
    #[command(hide = true)]
    GenLoad {
        /// Rows.
        #[arg(long)]
        rows: u64,
        /// Seed.
        #[arg(long, default_value_t = 8)]
        seed: u64,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Write the incremental export that follows a history of this many rows.
        #[arg(long)]
        incremental_of: Option<u64>,
    },
    /// Regenerate the demo fixtures (deterministic).
    #[command(hide = true)]
    GenFixtures {
        /// Output directory.
        #[arg(long, default_value = "fixtures")]
        out: PathBuf,
    },
}

/// Which record a withdrawal or hold is about, why, and who decided.
#[derive(clap::Args)]
struct OverrideArgs {
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

#[derive(Subcommand)]
enum IdCommand {
    /// Check codes given as arguments, or one a line on stdin.
    Check {
        /// Kind of code (default: guessed from the length).
        #[arg(long, value_enum)]
        kind: Option<IdKind>,
        /// Codes.
        codes: Vec<String>,
    },
}

#[derive(Subcommand)]
enum CalendarCommand {
    /// The N-th working day after DATE (the decision day is not counted).
    Deadline {
        /// The decision date, YYYY-MM-DD.
        date: chrono::NaiveDate,
        /// N.
        #[arg(long, default_value_t = xinyong::calendar::SHUANGGONGSHI_DAYS)]
        working_days: u32,
    },
    /// Working days after FROM up to and including TO.
    Between {
        /// From, YYYY-MM-DD (not counted).
        from: chrono::NaiveDate,
        /// To, YYYY-MM-DD (counted).
        to: chrono::NaiveDate,
    },
    /// Whether each DATE is a working day.
    Is {
        /// Dates, YYYY-MM-DD.
        dates: Vec<chrono::NaiveDate>,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum IdKind {
    Uscc,
    Org,
    Regno,
    Ric,
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,xinyong=info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
    }
}

fn config_path(cli: Option<PathBuf>, demo: bool) -> PathBuf {
    cli.or_else(|| std::env::var_os("XINYONG_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(if demo { DEMO_CONFIG } else { "xinyong.toml" }))
}

fn load_config(path: &Path) -> anyhow::Result<Config> {
    if !path.exists() {
        anyhow::bail!(
            "no configuration at {}: pass --config FILE or set XINYONG_CONFIG (the demo's is {DEMO_CONFIG})",
            path.display()
        );
    }
    Ok(Config::load(path)?)
}

fn id_line(kind: Option<IdKind>, raw: &str) -> String {
    let code = ids::normalise_code(raw);
    let kind = kind.unwrap_or(match code.chars().count() {
        15 => IdKind::Regno,
        9 | 10 => IdKind::Org,
        18 if code.starts_with(|c: char| c.is_ascii_digit()) && ids::check_ric(&code).is_ok() => {
            IdKind::Ric
        }
        _ => IdKind::Uscc,
    });
    let (name, result) = match kind {
        IdKind::Uscc => ("uscc", ids::check_uscc(&code)),
        IdKind::Org => ("org", ids::check_org_code(&code)),
        IdKind::Regno => ("regno", ids::check_regno(&code)),
        IdKind::Ric => ("ric", ids::check_ric(&code)),
    };
    let verdict = match result {
        Ok(()) if kind == IdKind::Uscc && !ids::uscc_known_type(&code) => {
            "valid (warning: unknown authority/type pair)".to_string()
        }
        Ok(()) => "valid".to_string(),
        Err(e) => format!("{name}_{}", e.code()),
    };
    format!("{raw}\t{code}\t{name}\t{verdict}")
}

async fn overrides(config: Option<PathBuf>, kind: &str, a: OverrideArgs) -> anyhow::Result<i32> {
    let config = load_config(&config_path(config, false))?;
    let (dataset, record_id, reason) =
        (a.dataset.as_str(), a.record_id.as_str(), a.reason.as_str());
    if xinyong::schema::registry().get(dataset).is_none() {
        anyhow::bail!("unknown dataset {dataset:?}");
    }
    let by =
        a.by.or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "unknown".into());
    let state = xinyong::state::StateStore::open(&config.state).await?;
    state
        .add_override(dataset, record_id, kind, reason, &by)
        .await?;
    state.close().await;
    println!("{kind} recorded for {dataset} {record_id} by {by}: {reason}; the next push withdraws it upstream (xinyong push)");
    Ok(0)
}

async fn status(config: &Config) -> anyhow::Result<i32> {
    let state = xinyong::state::StateStore::open(&config.state).await?;
    println!("xinyong 状态 status · state {}", config.state.display());
    println!("数据源 feeds");
    let runs = state.last_feed_runs().await?;
    let mut failed = false;
    for f in config.feeds()? {
        let (files, last_read) = state.feed_position(&f.name).await?;
        match runs.iter().find(|r| r.feed == f.name) {
            Some(r) => {
                let c: xinyong::ingest::FeedCounts =
                    serde_json::from_str(&r.counts).unwrap_or_default();
                let secs = chrono::DateTime::parse_from_rfc3339(&r.finished_at)
                    .ok()
                    .zip(chrono::DateTime::parse_from_rfc3339(&r.started_at).ok())
                    .map(|(a, b)| (a - b).num_milliseconds() as f64 / 1000.0)
                    .unwrap_or(0.0);
                failed |= r.outcome == "failed";
                println!(
                    "  {} · {}: {} ({}, run {}, {:.1}s) read {} kept {} quarantined {} superseded {}",
                    f.name, f.title, r.outcome, r.started_at, r.run_id, secs, c.read, c.kept, c.quarantined, c.superseded
                );
                if let Some(e) = &r.error {
                    println!("    error: {}", xinyong::masking::mask_ids_in_text(e));
                }
            }
            None => println!("  {} · {}: never run", f.name, f.title),
        }
        println!(
            "    position: {files} files read{}",
            last_read
                .map(|t| format!(", last at {t}"))
                .unwrap_or_default()
        );
    }
    println!("上报平台 platforms");
    for p in &config.platforms {
        let c = state.status_counts(&p.name).await?;
        let g = |k: &str| c.get(k).copied().unwrap_or(0);
        println!(
            "  {} {}: pending {} · sent {} · acked {} · rejected {}",
            p.name,
            p.title,
            g("pending"),
            g("sent"),
            g("acked"),
            g("rejected")
        );
    }
    if let Some(dir) = &config.schedules {
        println!("计划 schedule");
        let now = chrono::Utc::now();
        for j in xinyong::schedule::load_dir(dir)? {
            let next = j
                .next_after(now)
                .map(|t| {
                    t.with_timezone(&j.tz)
                        .format("%Y-%m-%d %H:%M %Z")
                        .to_string()
                })
                .unwrap_or_else(|| "-".into());
            let last = state
                .last_fired(&j.name)
                .await?
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .map(|t| t.with_timezone(&j.tz).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "never".into());
            println!("  {}: next {next} · last fired {last}", j.name);
        }
    }
    let overrides = state.overrides(None).await?;
    if !overrides.is_empty() {
        let cal = xinyong::calendar::Calendar::built_in();
        let cst = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
        let today = chrono::Utc::now().with_timezone(&cst).date_naive();
        let overdue = overrides
            .iter()
            .filter(|o| o.kind == "hold")
            .filter(|o| {
                chrono::DateTime::parse_from_rfc3339(&o.at).is_ok_and(|t| {
                    cal.working_days_between(t.with_timezone(&cst).date_naive(), today)
                        .is_ok_and(|d| d > xinyong::calendar::OBJECTION_DAYS as i64)
                })
            })
            .count();
        println!(
            "撤回/异议 withdrawals and holds: {} · 异议超过20个工作日 holds over 20 working days: {overdue} (see `xinyong holds`)",
            overrides.len()
        );
    }
    state.close().await;
    Ok(if failed { 2 } else { 0 })
}

fn weekday_zh(d: chrono::NaiveDate) -> &'static str {
    use chrono::Datelike;
    [
        "星期一",
        "星期二",
        "星期三",
        "星期四",
        "星期五",
        "星期六",
        "星期日",
    ][d.weekday().num_days_from_monday() as usize]
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn real_main(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run {
            feeds,
            platforms,
            no_push,
            dry_run,
        } => {
            let config = load_config(&config_path(cli.config, false))?;
            let platforms = if no_push {
                Some(Vec::new())
            } else if platforms.is_empty() {
                None
            } else {
                Some(platforms)
            };
            let report = runner::run(
                &config,
                &runner::RunOptions {
                    kind: "run".into(),
                    feeds,
                    platforms,
                    dry_run,
                    skip_ingest: false,
                    window: None,
                },
            )
            .await?;
            print!("{}", summary::render(&report));
            Ok(report.exit_code())
        }
        Command::Backfill {
            feed,
            from,
            to,
            push,
            dry_run,
        } => {
            if from > to {
                anyhow::bail!("--from {from} is after --to {to}");
            }
            let config = load_config(&config_path(cli.config, false))?;
            let report = runner::run(
                &config,
                &runner::RunOptions {
                    kind: "backfill".into(),
                    feeds: vec![feed],
                    platforms: if push || dry_run {
                        None
                    } else {
                        Some(Vec::new())
                    },
                    dry_run,
                    skip_ingest: false,
                    window: Some((from, to)),
                },
            )
            .await?;
            print!("{}", summary::render(&report));
            Ok(report.exit_code())
        }
        Command::Push { platforms } => {
            let config = load_config(&config_path(cli.config, false))?;
            let platforms = if platforms.is_empty() {
                None
            } else {
                Some(platforms)
            };
            let report = runner::run(
                &config,
                &runner::RunOptions {
                    kind: "push".into(),
                    platforms,
                    skip_ingest: true,
                    ..Default::default()
                },
            )
            .await?;
            print!("{}", summary::render(&report));
            Ok(report.exit_code())
        }
        Command::Withdraw(a) => overrides(cli.config, "withdraw", a).await,
        Command::Hold(a) => overrides(cli.config, "hold", a).await,
        Command::Release {
            dataset,
            record_id,
            outcome,
        } => {
            let config = load_config(&config_path(cli.config, false))?;
            let state = xinyong::state::StateStore::open(&config.state).await?;
            let n = state.release_hold(&dataset, &record_id, &outcome).await?;
            state.close().await;
            if n == 0 {
                anyhow::bail!("no hold in force on {dataset} {record_id}");
            }
            println!("released {dataset} {record_id} ({outcome}); the next push re-publishes it (xinyong push)");
            Ok(0)
        }
        Command::Holds => {
            let config = load_config(&config_path(cli.config, false))?;
            let state = xinyong::state::StateStore::open(&config.state).await?;
            let cal = xinyong::calendar::Calendar::built_in();
            let cst = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
            let today = chrono::Utc::now().with_timezone(&cst).date_naive();
            let mut overdue = 0;
            for o in state.overrides(None).await? {
                let since = chrono::DateTime::parse_from_rfc3339(&o.at)?
                    .with_timezone(&cst)
                    .date_naive();
                let days = cal.working_days_between(since, today);
                let late = o.kind == "hold"
                    && days
                        .as_ref()
                        .is_ok_and(|d| *d > xinyong::calendar::OBJECTION_DAYS as i64);
                overdue += late as u32;
                println!(
                    "{}\t{}\t{}\t{}\t{} 个工作日 working days\t{}\t{}{}",
                    o.kind,
                    o.dataset,
                    o.record_id,
                    o.at,
                    days.map(|d| d.to_string()).unwrap_or_else(|_| "?".into()),
                    o.by_whom,
                    o.reason,
                    if late {
                        "\t超过20个工作日 OVER 20 WORKING DAYS"
                    } else {
                        ""
                    }
                );
            }
            state.close().await;
            Ok(if overdue > 0 { 1 } else { 0 })
        }
        Command::Reconcile {
            platforms,
            datasets,
            repair,
        } => {
            let config = load_config(&config_path(cli.config, false))?;
            let report = xinyong::reconcile::run(&config, &platforms, &datasets, repair).await?;
            print!("{}", xinyong::reconcile::render(&report));
            Ok(if report.differences() == 0 { 0 } else { 1 })
        }
        Command::Schedule {
            next,
            grace_seconds,
        } => {
            let config = load_config(&config_path(cli.config, false))?;
            let dir = config
                .schedules
                .clone()
                .context("the configuration names no `schedules` directory")?;
            let jobs = xinyong::schedule::load_dir(&dir)?;
            if let Some(n) = next {
                let now = chrono::Utc::now();
                for j in &jobs {
                    println!(
                        "{} ({} · {} · missed: {:?}) from {}",
                        j.name,
                        j.cron_text,
                        j.tz,
                        j.missed,
                        j.file.display()
                    );
                    let mut t = now;
                    for _ in 0..n {
                        match j.next_after(t) {
                            Some(f) => {
                                println!(
                                    "  {}",
                                    f.with_timezone(&j.tz).format("%Y-%m-%d %H:%M %Z (%a)")
                                );
                                t = f;
                            }
                            None => break,
                        }
                    }
                }
                return Ok(0);
            }
            let grace = std::time::Duration::from_secs(grace_seconds);
            // A second signal ends the process at once; state stays consistent by design.
            let first = async {
                shutdown_signal().await;
                tracing::warn!("shutdown requested; a second signal exits at once");
                tokio::spawn(async {
                    shutdown_signal().await;
                    std::process::exit(130);
                });
            };
            xinyong::schedule::serve(&config, jobs, first, grace).await?;
            Ok(0)
        }
        Command::Status => {
            let config = load_config(&config_path(cli.config, false))?;
            status(&config).await
        }
        Command::Report {
            month,
            from,
            to,
            run,
            out,
        } => {
            let config = load_config(&config_path(cli.config, false))?;
            let period = match (month, from.zip(to), run) {
                (Some(month), _, _) => report::Period::month(&month)?,
                (_, Some((from, to)), _) => report::Period::range(from, to)?,
                (_, _, Some(run)) => report::Period::Run(run),
                _ => report::Period::LatestRun,
            };
            let office = report::build(&config, period).await?;
            let dir = out.unwrap_or_else(|| report::default_dir(&config, &office));
            let files = report::write_all(&office, &dir)?;
            print!("{}", report::describe(&office, &files));
            Ok(0)
        }
        Command::Demo {
            fault_rate,
            faults,
            dry_run,
        } => {
            let config = load_config(&config_path(cli.config, true))?;
            let faults = if faults.is_empty() {
                simulator::ALL_FAULTS.to_vec()
            } else {
                faults
            };
            let report = demo::run(
                config,
                demo::DemoOptions {
                    fault_rate,
                    faults,
                    dry_run,
                },
            )
            .await?;
            print!("{}", summary::render(&report));
            Ok(report.exit_code())
        }
        Command::Simulate {
            platform,
            listen,
            apps,
            fault_rate,
            faults,
            slow_ms,
            processing_ms,
            seed,
            state_file,
            reject_prefix,
        } => {
            let apps = apps
                .iter()
                .map(|a| {
                    a.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .context("--app takes APP_ID=SECRET")
                })
                .collect::<anyhow::Result<_>>()?;
            let faults = if faults.is_empty() {
                simulator::ALL_FAULTS.to_vec()
            } else {
                faults
            };
            let cfg = SimConfig {
                name: platform.clone(),
                apps,
                fault_rate,
                faults,
                slow_ms,
                processing_ms,
                seed,
                state_file,
                reject_prefix,
            };
            let running = simulator::start(cfg, &listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            println!("listening on {}", running.url());
            tracing::info!(platform = %platform, url = %running.url(), fault_rate, "simulator serving");
            shutdown_signal().await;
            running.stop().await;
            Ok(0)
        }
        Command::Check => {
            xinyong::schema::check_built_in().map_err(anyhow::Error::msg)?;
            let path = config_path(cli.config, true);
            let config = load_config(&path)?;
            let feeds = config.feeds()?;
            for p in &config.platforms {
                p.resolve_secret().map_err(anyhow::Error::msg)?;
            }
            println!(
                "ok: {} ({} feeds, {} platforms, {} datasets)",
                path.display(),
                feeds.len(),
                config.platforms.len(),
                xinyong::schema::registry().codes().len()
            );
            for f in &feeds {
                println!(
                    "  {} → {} ({} fields mapped) from {}",
                    f.name,
                    f.dataset.code,
                    f.rules.len(),
                    f.file.display()
                );
            }
            Ok(0)
        }
        Command::Id {
            command: IdCommand::Check { kind, codes },
        } => {
            let mut any_invalid = false;
            let mut out = |raw: &str| {
                let line = id_line(kind, raw);
                any_invalid |= !line.ends_with("valid") && !line.contains("\tvalid (");
                println!("{line}");
            };
            if codes.is_empty() {
                for line in std::io::stdin().lock().lines() {
                    let line = line?;
                    if !line.trim().is_empty() {
                        out(line.trim_end_matches(['\r', '\n']));
                    }
                }
            } else {
                for c in &codes {
                    out(c);
                }
            }
            Ok(if any_invalid { 1 } else { 0 })
        }
        Command::Calendar { command } => {
            let cal = xinyong::calendar::Calendar::built_in();
            match command {
                CalendarCommand::Deadline { date, working_days } => {
                    let d = cal.add_working_days(date, working_days)?;
                    println!(
                        "{d}\t{} ({working_days} working days after {date}, which is not counted)",
                        weekday_zh(d)
                    );
                }
                CalendarCommand::Between { from, to } => {
                    println!("{}", cal.working_days_between(from, to)?);
                }
                CalendarCommand::Is { dates } => {
                    for d in dates {
                        let w = cal.is_working_day(d)?;
                        println!(
                            "{d}\t{}\t{}",
                            weekday_zh(d),
                            if w {
                                "工作日 working day"
                            } else {
                                "休息日 day off"
                            }
                        );
                    }
                }
            }
            Ok(0)
        }
        Command::GenLoad {
            rows,
            seed,
            out,
            incremental_of,
        } => {
            xinyong::loadgen::write_export(&out, rows, seed, incremental_of)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("wrote {} ({rows} rows)", out.display());
            Ok(0)
        }
        Command::GenFixtures { out } => {
            let written = fixtures_gen::generate_demo(&out)?;
            for p in written {
                println!("wrote {}", p.display());
            }
            Ok(0)
        }
    }
}

fn main() {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = match rt.block_on(real_main(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}
