//! What `xinyong status` and `xinyong holds` show, gathered as data: per feed its last
//! run and how much it has read, per platform its ledger by status, per scheduled job its
//! next fire and last one, and the withdrawals and holds in force with their age in
//! working days (a hold past the 20 working days of an objection check is overdue).

use crate::config::Config;
use crate::domain::calendar::{Calendar, OBJECTION_DAYS};
use crate::orchestrate::schedule;
use crate::state::{LastFeedRun, LedgerStatus, Override, OverrideKind, StateStore};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;

/// One feed's state.
#[derive(Debug, Clone)]
pub struct FeedStatus {
    /// Feed name.
    pub name: String,
    /// Title for people.
    pub title: String,
    /// Its latest run, if it ever ran.
    pub last: Option<LastFeedRun>,
    /// How long that run took the feed, in seconds.
    pub seconds: f64,
    /// Files read so far.
    pub files_read: u64,
    /// When the newest of them was read.
    pub last_read_at: Option<String>,
    /// Files set aside as unreadable: (path, reason, when).
    pub set_aside: Vec<(String, String, String)>,
}

/// One platform's ledger.
#[derive(Debug, Clone)]
pub struct PlatformStatus {
    /// Platform name.
    pub name: String,
    /// Title for people.
    pub title: String,
    /// Ledger rows by status.
    pub counts: BTreeMap<LedgerStatus, u64>,
    /// A configuration error in force (what the platform answered, since when).
    pub configuration_error: Option<(String, String)>,
    /// Receipts that contradicted their batch or left records unconfirmed.
    pub untrusted_receipts: u64,
    /// When the platform last acknowledged a batch (RFC 3339).
    pub last_acknowledged: Option<String>,
}

impl PlatformStatus {
    /// Rows of one status.
    pub fn count(&self, s: LedgerStatus) -> u64 {
        self.counts.get(&s).copied().unwrap_or(0)
    }
}

/// One scheduled job.
#[derive(Debug, Clone)]
pub struct JobStatus {
    /// The job.
    pub job: schedule::Job,
    /// Its next fire time.
    pub next: Option<DateTime<Utc>>,
    /// Its last fire time.
    pub last_fired: Option<DateTime<Utc>>,
}

/// A withdrawal or hold in force, with its age.
#[derive(Debug, Clone)]
pub struct HoldStatus {
    /// The override.
    pub entry: Override,
    /// Working days since it was recorded (`None`: outside the calendar's years).
    pub working_days: Option<i64>,
    /// A hold older than the objection check's 20 working days.
    pub overdue: bool,
}

/// Everything `xinyong status` shows.
#[derive(Debug, Clone)]
pub struct Status {
    /// Per feed of the configuration.
    pub feeds: Vec<FeedStatus>,
    /// Per platform of the configuration.
    pub platforms: Vec<PlatformStatus>,
    /// Per scheduled job (none without a `schedules` directory).
    pub jobs: Vec<JobStatus>,
    /// Withdrawals and holds in force.
    pub holds: Vec<HoldStatus>,
    /// A warning when the holiday calendar's coverage ends within 60 days (or has).
    pub calendar_warning: Option<String>,
}

/// Days before the calendar's coverage ends that `status` starts warning.
pub const CALENDAR_WARNING_DAYS: i64 = 60;

/// The warning about the calendar's coverage on `today`, if it is due.
pub fn calendar_warning(calendar: &Calendar, today: chrono::NaiveDate) -> Option<String> {
    let end = calendar.last_covered_day()?;
    let left = (end - today).num_days();
    (left <= CALENDAR_WARNING_DAYS).then(|| {
        let next = end.format("%Y").to_string().parse::<i32>().unwrap_or(0) + 1;
        let when = if left >= 0 {
            format!("ends in {left} days ({end})")
        } else {
            format!("ended on {end}")
        };
        format!(
            "节假日表覆盖至 {end}，{next}年起的期限按只扣除周末估算（估算）。The holiday calendar {when}: add {next} from the State Council notice (calendar = \"holidays.toml\" in the configuration; see the README)"
        )
    })
}

impl Status {
    /// Whether some feed's latest run failed, or a platform refuses our requests
    /// (`status` exits 2).
    pub fn any_failure(&self) -> bool {
        self.feeds
            .iter()
            .any(|f| f.last.as_ref().is_some_and(|r| r.outcome == "failed"))
            || self
                .platforms
                .iter()
                .any(|p| p.configuration_error.is_some())
    }

    /// Holds past their 20 working days.
    pub fn overdue_holds(&self) -> usize {
        self.holds.iter().filter(|h| h.overdue).count()
    }
}

/// The age of an override in working days at `today`, and whether it is an overdue hold.
pub fn hold_age(o: &Override, calendar: &Calendar, today: NaiveDate) -> HoldStatus {
    let working_days = crate::clock::china_date_of(&o.at)
        .map(|since| calendar.working_days_between_estimated(since, today).value);
    HoldStatus {
        entry: o.clone(),
        working_days,
        overdue: o.kind == OverrideKind::Hold
            && working_days.is_some_and(|d| d > i64::from(OBJECTION_DAYS)),
    }
}

/// The withdrawals and holds in force, with their ages.
pub async fn holds(state: &StateStore) -> anyhow::Result<Vec<HoldStatus>> {
    let calendar = Calendar::built_in();
    let today = crate::clock::today();
    Ok(state
        .overrides(None)
        .await?
        .iter()
        .map(|o| hold_age(o, calendar, today))
        .collect())
}

/// Gathers the status of a deployment.
pub async fn gather(config: &Config, state: &StateStore) -> anyhow::Result<Status> {
    let runs = state.last_feed_runs().await?;
    let mut feeds = Vec::new();
    let loaded = config.feeds_each()?;
    for b in &loaded.broken {
        feeds.push(FeedStatus {
            name: b.name.clone(),
            title: format!("映射文件错误 broken mapping: {}", b.error),
            last: runs.iter().find(|r| r.feed == b.name).cloned(),
            seconds: 0.0,
            files_read: 0,
            last_read_at: None,
            set_aside: Vec::new(),
        });
    }
    for f in loaded.feeds {
        let (files_read, last_read_at) = state.feed_position(&f.name).await?;
        let last = runs.iter().find(|r| r.feed == f.name).cloned();
        let seconds = last
            .as_ref()
            .and_then(|r| {
                let end = DateTime::parse_from_rfc3339(&r.finished_at).ok()?;
                let start = DateTime::parse_from_rfc3339(&r.started_at).ok()?;
                Some((end - start).num_milliseconds() as f64 / 1000.0)
            })
            .unwrap_or(0.0);
        feeds.push(FeedStatus {
            name: f.name.clone(),
            title: f.title.clone(),
            last,
            seconds,
            files_read,
            last_read_at,
            set_aside: state.set_aside_files(&f.name).await?,
        });
    }
    let mut platforms = Vec::new();
    for p in &config.platforms {
        platforms.push(PlatformStatus {
            name: p.name.clone(),
            title: p.title.clone(),
            counts: state.status_counts(&p.name).await?,
            configuration_error: state.platform_problem(&p.name).await?,
            untrusted_receipts: state.untrusted_receipts(&p.name).await?,
            last_acknowledged: state.last_acknowledged(&p.name).await?,
        });
    }
    let mut jobs = Vec::new();
    if let Some(dir) = &config.schedules {
        let now = crate::clock::now();
        for job in schedule::load_dir(dir)? {
            let last_fired = state
                .last_fired(&job.name)
                .await?
                .and_then(|s| DateTime::from_timestamp(s, 0));
            jobs.push(JobStatus {
                next: job.next_after(now),
                last_fired,
                job,
            });
        }
    }
    Ok(Status {
        feeds,
        platforms,
        jobs,
        holds: holds(state).await?,
        calendar_warning: calendar_warning(Calendar::built_in(), crate::clock::today()),
    })
}
