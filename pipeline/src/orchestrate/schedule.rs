//! Schedules (`schedules/*.toml`) and the scheduler behind `xinyong schedule`.
//!
//! A job has a cron expression (5 fields, minute first; croner), a time zone
//! (Asia/Shanghai by default), feeds, platforms, a timeout and a missed-run policy.
//! The scheduler never starts a job while its previous run is still going: the guard is
//! a lease in the state store with a heartbeat, so a run killed with SIGKILL does not
//! leave the job stuck — a lease whose heartbeat is older than [`LEASE_STALE_SECONDS`]
//! is taken over, and the takeover is logged.
//!
//! Everything that depends on the time takes it as an argument, so tests drive the
//! scheduler with a fake clock.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A lease whose heartbeat is older than this is stale and may be taken over.
pub const LEASE_STALE_SECONDS: i64 = 120;
/// How often a running job renews its lease.
pub const HEARTBEAT_SECONDS: u64 = 20;

/// What to do about fire times that passed while the scheduler was not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    /// Forget them; wait for the next fire time.
    Skip,
    /// Run once now, however many were missed.
    RunOnce,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    name: String,
    cron: String,
    #[serde(default = "default_tz")]
    timezone: String,
    #[serde(default = "all")]
    feeds: Vec<String>,
    #[serde(default)]
    push: Option<Vec<String>>,
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
    #[serde(default = "default_missed")]
    missed: Missed,
}

fn default_tz() -> String {
    "Asia/Shanghai".into()
}
fn all() -> Vec<String> {
    vec!["*".into()]
}
fn default_timeout() -> u64 {
    3600
}
fn default_missed() -> Missed {
    Missed::RunOnce
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    job: Vec<JobFile>,
}

/// A checked job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Name, unique across schedule files.
    pub name: String,
    /// The cron expression as written.
    pub cron_text: String,
    cron: Cron,
    /// Time zone of the expression.
    pub tz: Tz,
    /// Feeds (`*` for all).
    pub feeds: Vec<String>,
    /// Platforms (`None`: all configured; empty: no push).
    pub push: Option<Vec<String>>,
    /// Longest a run may take.
    pub timeout_seconds: u64,
    /// Missed-run policy.
    pub missed: Missed,
    /// The file it came from.
    pub file: PathBuf,
}

impl Job {
    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The run this job makes: `feeds = ["*"]` all feeds, `[]` none (push only).
    pub fn run_options(&self) -> crate::orchestrate::runner::RunOptions {
        let all = self.feeds.iter().any(|f| f == "*");
        crate::orchestrate::runner::RunOptions {
            kind: crate::state::RunKind::Schedule(self.name.clone()),
            feeds: if all { Vec::new() } else { self.feeds.clone() },
            platforms: self.push.clone(),
            dry_run: false,
            skip_ingest: !all && self.feeds.is_empty(),
            window: None,
            cancel: Default::default(),
        }
    }

    /// Fire times in `(after, until]`, in order.
    pub fn fires_between(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = after;
        while let Some(n) = self.next_after(t) {
            if n > until || out.len() > 10_000 {
                break;
            }
            out.push(n);
            t = n;
        }
        out
    }

    /// What to run at `now`, given the last fire this job ran for (`None`: never ran)
    /// and the last time the scheduler looked (`None`: it just started): the fire times
    /// due since the last look, or — for the missed ones before this start — the
    /// policy's answer. At most one run: several due fires are one run.
    pub fn due(
        &self,
        last_fired: Option<DateTime<Utc>>,
        last_look: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match last_look {
            Some(look) => self.fires_between(look, now).last().copied(),
            None => {
                // Just started: fires missed while the scheduler was down.
                let since = last_fired?;
                let missed = self.fires_between(since, now);
                match self.missed {
                    Missed::RunOnce => missed.last().copied(),
                    Missed::Skip => None,
                }
            }
        }
    }
}

/// A schedule error with the file and line.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ScheduleError {
    /// File.
    pub file: PathBuf,
    /// Line (0 when unknown).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn find_line(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or(0)
}

/// Parses one schedule file.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Job>, ScheduleError> {
    let err = |line, message| ScheduleError {
        file: path.to_path_buf(),
        line,
        message,
    };
    let f: ScheduleFile = toml::from_str(text).map_err(|e| {
        err(
            e.span()
                .map(|s| text[..s.start].matches('\n').count() + 1)
                .unwrap_or(0),
            e.message().to_string(),
        )
    })?;
    let mut jobs = Vec::new();
    for j in f.job {
        let cron: Cron = j.cron.parse().map_err(|e| {
            err(
                find_line(text, &j.cron),
                format!("job {}: cron {:?}: {e}", j.name, j.cron),
            )
        })?;
        let tz: Tz = j.timezone.parse().map_err(|_| {
            err(
                find_line(text, &j.timezone),
                format!("job {}: unknown time zone {:?}", j.name, j.timezone),
            )
        })?;
        jobs.push(Job {
            name: j.name,
            cron_text: j.cron,
            cron,
            tz,
            feeds: j.feeds,
            push: j.push,
            timeout_seconds: j.timeout_seconds,
            missed: j.missed,
            file: path.to_path_buf(),
        });
    }
    Ok(jobs)
}

/// Loads every `*.toml` of a schedule directory; job names must be unique.
pub fn load_dir(dir: &Path) -> Result<Vec<Job>, ScheduleError> {
    let rd = std::fs::read_dir(dir).map_err(|e| ScheduleError {
        file: dir.to_path_buf(),
        line: 0,
        message: e.to_string(),
    })?;
    let mut paths: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let mut jobs: Vec<Job> = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| ScheduleError {
            file: p.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        for j in parse(&p, &text)? {
            if let Some(other) = jobs.iter().find(|o| o.name == j.name) {
                return Err(ScheduleError {
                    file: p.clone(),
                    line: find_line(&text, &format!("\"{}\"", j.name)),
                    message: format!(
                        "job {:?} is also defined in {}",
                        j.name,
                        other.file.display()
                    ),
                });
            }
            jobs.push(j);
        }
    }
    Ok(jobs)
}

/// Runs the schedule in the foreground until `shutdown` resolves: fires each job on
/// time (one run at a time per job, guarded by the lease), logs each start and end.
/// On shutdown no new run starts; a run in hand gets `grace` to finish.
pub async fn serve(
    config: &crate::config::Config,
    jobs: Vec<Job>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: std::time::Duration,
) -> anyhow::Result<()> {
    use std::sync::Arc;
    let state = crate::state::StateStore::open(&config.state).await?;
    let holder = format!("{}-{}", hostname(), std::process::id());
    let config = Arc::new(config.clone());
    let mut last_look: Option<DateTime<Utc>> = None;
    let mut running: std::collections::HashMap<String, tokio::task::JoinHandle<()>> =
        Default::default();
    tokio::pin!(shutdown);
    tracing::info!(jobs = jobs.len(), %holder, "scheduler started");
    loop {
        let now = crate::clock::now();
        running.retain(|_, h| !h.is_finished());
        for job in &jobs {
            let last = state
                .last_fired(&job.name)
                .await?
                .and_then(|s| DateTime::from_timestamp(s, 0));
            let Some(fire) = job.due(last, last_look, now) else {
                continue;
            };
            if running.contains_key(&job.name) {
                tracing::warn!(job = %job.name, fire = %fire.with_timezone(&job.tz), "previous run still going; this fire is skipped");
                continue;
            }
            let (job, state, config, holder) =
                (job.clone(), state.clone(), config.clone(), holder.clone());
            let name = job.name.clone();
            running.insert(
                name,
                tokio::spawn(async move { run_job(&config, &state, &job, fire, &holder).await }),
            );
        }
        last_look = Some(now);
        let next = jobs.iter().filter_map(|j| j.next_after(now)).min();
        let wait = next
            .map(|n| (n - crate::clock::now()).to_std().unwrap_or_default())
            .unwrap_or(std::time::Duration::from_secs(60))
            .min(std::time::Duration::from_secs(60));
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(wait + std::time::Duration::from_millis(50)) => {}
        }
    }
    tracing::info!(
        running = running.len(),
        grace_seconds = grace.as_secs(),
        "shutting down: no new runs; waiting for the run in hand"
    );
    let wait_all = async {
        for (_, h) in running.drain() {
            let _ = h.await;
        }
    };
    if tokio::time::timeout(grace, wait_all).await.is_err() {
        tracing::warn!("grace period over; exiting with runs unfinished (state stays consistent: the next run resumes)");
    }
    state.close().await;
    Ok(())
}

async fn run_job(
    config: &crate::config::Config,
    state: &crate::state::StateStore,
    job: &Job,
    fire: DateTime<Utc>,
    holder: &str,
) {
    use crate::state::Lease;
    let now = crate::clock::now().timestamp();
    match state
        .acquire_lease(&job.name, holder, now, LEASE_STALE_SECONDS)
        .await
    {
        Ok(Lease::Acquired) => {}
        Ok(Lease::TakenOver {
            previous_holder,
            last_heartbeat,
        }) => {
            tracing::warn!(job = %job.name, %previous_holder, last_heartbeat, "took over a stale lease (its run was killed or lost)");
        }
        Ok(Lease::Held { holder: other, .. }) => {
            tracing::warn!(job = %job.name, holder = %other, "another run of this job is going; not starting");
            return;
        }
        Err(e) => {
            tracing::error!(job = %job.name, error = %e, "cannot take the job's lease");
            return;
        }
    }
    let _ = state.job_started(&job.name, fire.timestamp(), now).await;
    tracing::info!(job = %job.name, fire = %fire.with_timezone(&job.tz), "job started");
    let beat = {
        let (state, name, holder) = (state.clone(), job.name.clone(), holder.to_string());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(HEARTBEAT_SECONDS)).await;
                let _ = state
                    .heartbeat(&name, &holder, crate::clock::now().timestamp())
                    .await;
            }
        })
    };
    // On the timeout the run is cancelled and then waited for: its ingest thread cannot
    // be stopped from outside, so the lease (and its heartbeat) is held until it ends
    // and no second run can write the same snapshot meanwhile.
    let opts = job.run_options();
    let run = crate::orchestrate::runner::run(config, &opts);
    tokio::pin!(run);
    let limit = tokio::time::sleep(std::time::Duration::from_secs(job.timeout_seconds));
    let result = tokio::select! {
        r = &mut run => Ok(r),
        _ = limit => {
            tracing::error!(job = %job.name, timeout_seconds = job.timeout_seconds, "job timed out: cancelling the run, the lease held until it stops");
            opts.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = (&mut run).await;
            Err(())
        }
    };
    beat.abort();
    let (outcome, run_id) = match &result {
        Ok(Ok(r)) => (
            ["ok", "degraded", "failed"][r.exit_code().clamp(0, 2) as usize],
            Some(r.run_id.clone()),
        ),
        Ok(Err(e)) => {
            tracing::error!(job = %job.name, error = %connectors::wire::describe(e.as_ref()), "job failed");
            ("failed", None)
        }
        Err(()) => ("timeout", None),
    };
    let _ = state
        .job_finished(
            &job.name,
            fire.timestamp(),
            crate::clock::now().timestamp(),
            outcome,
            run_id.as_deref(),
        )
        .await;
    let _ = state.release_lease(&job.name, holder).await;
    tracing::info!(job = %job.name, outcome, run_id = run_id.as_deref().unwrap_or("-"), "job finished");
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "host".into())
}

#[cfg(test)]
mod tests;
