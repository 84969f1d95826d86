//! `xinyong schedule`: the scheduler in the foreground, or with `--next N` the next fire
//! times of every job (which also checks the schedule files).

use super::{deployment, shutdown_signal};
use anyhow::Context;
use std::path::PathBuf;

/// Scheduler options.
#[derive(clap::Args)]
pub struct ScheduleArgs {
    /// Print the next N fire times of every job (local time) and exit.
    #[arg(long)]
    next: Option<usize>,
    /// Seconds a run in hand may take to finish after SIGTERM or Ctrl-C.
    #[arg(long, default_value_t = 30)]
    grace_seconds: u64,
}

/// `xinyong schedule`.
pub async fn schedule(config: Option<PathBuf>, a: ScheduleArgs) -> anyhow::Result<i32> {
    let config = deployment(config)?;
    let dir = config
        .schedules
        .clone()
        .context("the configuration names no `schedules` directory")?;
    let jobs = pipeline::orchestrate::schedule::load_dir(&dir)?;
    if let Some(n) = a.next {
        let now = pipeline::clock::now();
        for j in &jobs {
            outln!(
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
                        outln!(
                            "  {}",
                            f.with_timezone(&j.tz).format("%Y-%m-%dT%H:%M:%S%:z (%a)")
                        );
                        t = f;
                    }
                    None => break,
                }
            }
        }
        return Ok(0);
    }
    let grace = std::time::Duration::from_secs(a.grace_seconds);
    // A second signal ends the process at once; state stays consistent by design.
    let first = async {
        shutdown_signal().await;
        tracing::warn!("shutdown requested; a second signal exits at once");
        tokio::spawn(async {
            shutdown_signal().await;
            std::process::exit(130);
        });
    };
    pipeline::orchestrate::schedule::serve(&config, jobs, first, grace).await?;
    Ok(0)
}
