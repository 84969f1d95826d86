//! The development tools as commands: `demo` (what `make run` runs), `simulate` (the
//! platforms' contract on loopback), `gen-load` and `gen-fixtures` (hidden). They live
//! in the `devtools` crate, outside the product.

use super::{config_path, load_config, shutdown_signal};
use anyhow::Context;
use devtools::simulator::{self, FaultKind, SimConfig};
use std::path::PathBuf;

/// A share from 0 to 1 (a fault rate).
fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share from 0 to 1")),
    }
}

/// Demo options.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Share of batch POSTs that meet an injected fault (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    pub fault_rate: f64,
    /// Which faults (default: all kinds).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub faults: Vec<FaultKind>,
    /// Change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Simulator options.
#[derive(clap::Args)]
pub struct SimulateArgs {
    /// Platform name (for logs).
    #[arg(long, default_value = "platform")]
    pub platform: String,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Application credentials, APP_ID=SECRET (repeatable).
    #[arg(long = "app", required = true)]
    pub apps: Vec<String>,
    /// Share of batch POSTs that meet a fault (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    pub fault_rate: f64,
    /// Which faults (default: all kinds).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub faults: Vec<FaultKind>,
    /// Delay of a slow answer, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub slow_ms: u64,
    /// How long a 202 batch stays processing, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub processing_ms: u64,
    /// Seed of the fault dice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep holdings in this JSON file across restarts.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Reject records whose id starts with this prefix (bad_value), for tests of rejections.
    #[arg(long)]
    pub reject_prefix: Option<String>,
    /// Share of reads (summary, listing, polls) that meet a fault (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    pub read_fault_rate: f64,
}

/// What load to generate.
#[derive(clap::Args)]
pub struct GenLoadArgs {
    /// Rows.
    #[arg(long)]
    pub rows: u64,
    /// Seed.
    #[arg(long, default_value_t = 8)]
    pub seed: u64,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
    /// Write the incremental export that follows a history of this many rows.
    #[arg(long)]
    pub incremental_of: Option<u64>,
    /// Rows in a scrambled order, not by decision date (as departments export them).
    #[arg(long)]
    pub unsorted: bool,
    /// With --incremental-of: corrections and new records spread over every month of the history.
    #[arg(long, requires = "incremental_of")]
    pub spread: bool,
}

/// Where the fixtures go.
#[derive(clap::Args)]
pub struct GenFixturesArgs {
    /// Output directory.
    #[arg(long, default_value = "fixtures")]
    pub out: PathBuf,
}

fn faults_or_all(faults: Vec<FaultKind>) -> Vec<FaultKind> {
    if faults.is_empty() {
        simulator::ALL_FAULTS.to_vec()
    } else {
        faults
    }
}

/// `xinyong demo`.
pub async fn demo(config: Option<PathBuf>, a: DemoArgs) -> anyhow::Result<i32> {
    let config = load_config(&config_path(config, true))?;
    let report = devtools::demo::run(
        config,
        devtools::demo::DemoOptions {
            fault_rate: a.fault_rate,
            faults: faults_or_all(a.faults),
            dry_run: a.dry_run,
        },
    )
    .await?;
    out!("{}", pipeline::orchestrate::summary::render(&report));
    Ok(report.exit_code())
}

/// `xinyong simulate`: serves until SIGTERM or Ctrl-C.
pub async fn simulate(a: SimulateArgs) -> anyhow::Result<i32> {
    let apps = a
        .apps
        .iter()
        .map(|x| {
            x.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .context("--app takes APP_ID=SECRET")
        })
        .collect::<anyhow::Result<_>>()?;
    let cfg = SimConfig {
        name: a.platform.clone(),
        apps,
        fault_rate: a.fault_rate,
        faults: faults_or_all(a.faults),
        slow_ms: a.slow_ms,
        processing_ms: a.processing_ms,
        seed: a.seed,
        state_file: a.state_file,
        reject_prefix: a.reject_prefix,
        read_fault_rate: a.read_fault_rate,
    };
    let running = simulator::start(cfg, &a.listen)
        .await
        .with_context(|| format!("cannot listen on {}", a.listen))?;
    outln!("listening on {}", running.url());
    tracing::info!(platform = %a.platform, url = %running.url(), fault_rate = a.fault_rate, "simulator serving");
    shutdown_signal().await;
    running.stop().await;
    Ok(0)
}

/// `xinyong gen-load`.
pub fn gen_load(a: GenLoadArgs) -> anyhow::Result<i32> {
    let order = devtools::loadgen::ExportOrder {
        unsorted: a.unsorted,
        spread: a.spread,
    };
    devtools::loadgen::write_export_as(&a.out, a.rows, a.seed, a.incremental_of, order)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    outln!("wrote {} ({} rows)", a.out.display(), a.rows);
    Ok(0)
}

/// `xinyong gen-fixtures`.
pub fn gen_fixtures(a: GenFixturesArgs) -> anyhow::Result<i32> {
    for p in devtools::fixtures::generate_demo(&a.out)? {
        outln!("wrote {}", p.display());
    }
    Ok(0)
}
