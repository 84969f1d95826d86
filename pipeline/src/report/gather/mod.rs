//! Gathering the office report from the state store, the snapshots and the quarantine.
//! Values are masked here, as they are read (identity numbers keep 6 + 4 characters,
//! natural persons' names their surname), so no writer ever sees a full one.
//!
//! **Timeliness.** A 双公示 record (licence or penalty) counts in the period when its
//! first acknowledged upsert on any platform falls in the period. Its publication date
//! is the `received_at` of the platform's batch receipt (`push_batches.receipt`, joined
//! by batch id), read in China time; when a receipt lacks it, the ledger's
//! acknowledgement time (`push_ledger.updated_at`) stands in. The earliest over the
//! platforms counts. The decision date is the snapshot's decision-date column
//! (`Dataset::decision_date`: CF_JDRQ, XK_JDRQ). Working days come from the calendar:
//! on time when published by the 7th working day after the decision (the decision day
//! not counted); dates missing, unreadable or outside the calendar's years are "not
//! computable" and listed, never guessed.

use super::timeliness::{self, Verdict};
use super::*;
use crate::clock::{china_date_of as china_date, CHINA};
use crate::domain::calendar::{Calendar, OBJECTION_DAYS};
use crate::domain::masking::{
    mask_id_number, mask_ids_in_text, mask_name, mask_operator, NATURAL_PERSON,
};
use crate::domain::schema::{registry, Dataset, FieldType};
use crate::mapping::{Feed, FieldSource};
use crate::snapshot::{self, SnapshotStore};
use crate::state::{
    FeedRunRow, LedgerCount, LedgerRow, OutstandingCount, OverrideHistory, Publication,
    ReconciliationRow, RunRow, StateStore,
};
use anyhow::Context as _;
use arrow_array::{Array, StringArray};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use std::collections::{HashMap, HashSet};

mod corrections;
mod on_time;
mod overrides;
mod platforms;
mod ranking;
mod records;
use corrections::*;
use on_time::*;
use overrides::*;
use platforms::*;
use ranking::*;
use records::*;

/// The snapshot's copy of a record: where it came from and its values in field order.
struct SnapRow {
    feed: String,
    source_unit: String,
    source_file: String,
    source_line: u64,
    values: Vec<String>,
}

/// (dataset, record id) → the snapshot's copy.
type SnapshotRows = HashMap<(String, String), SnapRow>;

/// The deployment as the report needs it: departments, feeds, platforms, calendar.
struct Context {
    cal: &'static Calendar,
    feeds: Vec<Feed>,
    departments: Vec<String>,
    platforms: Vec<PlatformInfo>,
    store: SnapshotStore,
}

impl Context {
    fn new(config: &Config) -> anyhow::Result<Context> {
        let feeds = config.feeds_each()?.feeds;
        let mut departments: Vec<String> = Vec::new();
        for f in &feeds {
            if !departments.contains(&f.department) {
                departments.push(f.department.clone());
            }
        }
        Ok(Context {
            cal: Calendar::built_in(),
            feeds,
            departments,
            platforms: config
                .platforms
                .iter()
                .map(|p| PlatformInfo {
                    name: p.name.clone(),
                    title: p.title.clone(),
                })
                .collect(),
            store: SnapshotStore::new(&config.data_dir),
        })
    }

    fn feed(&self, name: &str) -> Option<&Feed> {
        self.feeds.iter().find(|f| f.name == name)
    }

    fn department_of_unit(&self, unit: &str) -> String {
        self.feeds
            .iter()
            .find(|f| f.source_unit == unit)
            .map(|f| f.department.clone())
            .unwrap_or_else(|| format!("未登记单位 {unit}"))
    }

    fn department_of_feed(&self, feed: &str, unit: &str) -> String {
        match self.feed(feed) {
            Some(f) => f.department.clone(),
            None => self.department_of_unit(unit),
        }
    }

    fn department_order(&self, department: &str) -> usize {
        self.departments
            .iter()
            .position(|d| d == department)
            .unwrap_or(usize::MAX)
    }

    fn platform_order(&self, platform: &str) -> usize {
        self.platforms
            .iter()
            .position(|p| p.name == platform)
            .unwrap_or(usize::MAX)
    }

    fn platform_title(&self, platform: &str) -> String {
        self.platforms
            .iter()
            .find(|p| p.name == platform)
            .map(|p| p.title.clone())
            .unwrap_or_else(|| platform.to_string())
    }
}

/// The period resolved to a time window and its runs.
struct Window {
    info: PeriodInfo,
    runs: Vec<RunRow>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn china_midnight(d: NaiveDate) -> DateTime<Utc> {
    CHINA
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .single()
        .expect("UTC+8 has no ambiguous times")
        .with_timezone(&Utc)
}

fn today_in_china() -> NaiveDate {
    crate::clock::today()
}

async fn resolve(state: &StateStore, period: Period) -> anyhow::Result<Window> {
    match period {
        Period::Month { year, month } => {
            let first = NaiveDate::from_ymd_opt(year, month, 1).context("no such month")?;
            let next = first
                .checked_add_months(chrono::Months::new(1))
                .context("month out of range")?;
            let (label, slug) = (format!("{year}年{month}月"), format!("{year}-{month:02}"));
            days_window(state, "month", label, slug, first, next).await
        }
        Period::Range { from, to } => {
            let next = to.succ_opt().context("date out of range")?;
            let label = format!("{from} 至 {to}");
            days_window(state, "range", label, format!("{from}_{to}"), from, next).await
        }
        Period::Run(id) => {
            let run = state
                .run_row(&id)
                .await?
                .with_context(|| format!("no run {id:?} in the state store"))?;
            Ok(run_window(run))
        }
        Period::LatestRun => {
            let run = state
                .latest_run()
                .await?
                .context("no run recorded yet: run `xinyong run` first, or give --month")?;
            Ok(run_window(run))
        }
    }
}

/// The days `[first, next)` in China time.
async fn days_window(
    state: &StateStore,
    kind: &str,
    label: String,
    slug: String,
    first: NaiveDate,
    next: NaiveDate,
) -> anyhow::Result<Window> {
    let (from, to) = (stamp(china_midnight(first)), stamp(china_midnight(next)));
    let runs = state.runs_started_between(&from, &to).await?;
    let last_day = next.pred_opt().unwrap_or(first);
    Ok(Window {
        info: PeriodInfo {
            kind: kind.into(),
            label,
            slug,
            from,
            to,
            run_id: None,
            as_of: last_day.min(today_in_china()),
        },
        runs,
    })
}

/// One run, from its start to just after its end (or now, while it runs).
fn run_window(run: RunRow) -> Window {
    let parse = |t: &str| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc));
    let from = parse(&run.started_at).unwrap_or_else(|_| crate::clock::now());
    let to = run
        .finished_at
        .as_deref()
        .and_then(|t| parse(t).ok())
        .map(|t| t + chrono::Duration::milliseconds(1))
        .unwrap_or_else(crate::clock::now);
    let end_day = to.with_timezone(&CHINA).date_naive();
    Window {
        info: PeriodInfo {
            kind: "run".into(),
            // Beijing time, as 生成时间 is: the run's start and end.
            label: {
                let (a, b) = (from.with_timezone(&CHINA), to.with_timezone(&CHINA));
                if a.date_naive() == b.date_naive() {
                    format!(
                        "{} 至 {}（北京时间）",
                        a.format("%Y-%m-%d %H:%M"),
                        b.format("%H:%M")
                    )
                } else {
                    format!(
                        "{} 至 {}（北京时间）",
                        a.format("%Y-%m-%d %H:%M"),
                        b.format("%Y-%m-%d %H:%M")
                    )
                }
            },
            slug: format!("run-{}", run.run_id),
            from: stamp(from),
            to: stamp(to),
            run_id: Some(run.run_id.clone()),
            as_of: end_day.min(today_in_china()),
        },
        runs: vec![run],
    }
}

/// Gathers the report (see the module comment for timeliness).
/// The problems open now (退回整改), masked as in the report, in department order.
pub(super) async fn open_corrections(
    config: &Config,
    state: &StateStore,
) -> anyhow::Result<Vec<CorrectionRow>> {
    let cx = Context::new(config)?;
    let problems = state.problems(None, Some("open")).await?;
    let now = stamp(crate::clock::now() + chrono::Duration::seconds(1));
    let (mut open, _) = problem_corrections(&cx, &problems, &now, &now);
    open.sort_by_key(|r| cx.department_order(&r.department));
    Ok(open)
}

pub(super) async fn build(config: &Config, period: Period) -> anyhow::Result<OfficeReport> {
    let state = StateStore::open(&config.state).await?;
    let result = build_from(config, &state, period).await;
    state.close().await;
    result
}

async fn build_from(
    config: &Config,
    state: &StateStore,
    period: Period,
) -> anyhow::Result<OfficeReport> {
    let cx = Context::new(config)?;
    let w = resolve(state, period).await?;
    let (from, to) = (w.info.from.as_str(), w.info.to.as_str());
    let mut feed_runs = Vec::new();
    for run in &w.runs {
        feed_runs.extend(state.feed_runs_of(&run.run_id).await?);
    }
    let answered = state.ledger_counts_between(from, to).await?;
    let rejections = state.rejections_between(from, to).await?;
    let mut list_counts = Vec::new();
    for ds in LIST_DATASETS {
        let counts = state.distinct_acked_between(ds, from, to).await?;
        list_counts.extend(counts.into_iter().map(|(unit, op, n)| (ds, unit, op, n)));
    }
    let outstanding = state.outstanding_before(to).await?;
    let mut publications = Vec::new();
    for ds in SHUANGGONGSHI_DATASETS {
        publications.extend(state.first_publications_between(ds, from, to).await?);
    }
    let history = state.override_history().await?;
    let overrides_in = overrides_in_period(&history, from, to);
    let snapshot = snapshot_rows(
        &cx,
        wanted_records(&publications, &rejections, &overrides_in),
    )?;
    let reconciled = state.latest_reconciliations_before(to).await?;

    let intake = intake_rows(&cx, &feed_runs);
    let push = push_rows(&cx, &answered, &outstanding);
    let (timeliness, late_records, uncomputable_records) =
        timeliness_rows(&cx, &publications, &snapshot);
    // Problems of the quarantine, each once (open, or corrected in the period), and the
    // files set aside by the period's runs.
    let problems = state.problems(None, None).await?;
    let (mut corrections, resolved_corrections) = problem_corrections(&cx, &problems, from, to);
    corrections.extend(set_aside_corrections(&cx, &feed_runs));
    corrections.extend(rejection_corrections(&cx, &rejections, &snapshot));
    corrections.sort_by_key(|c| {
        (
            cx.department_order(&c.department),
            c.department.clone(),
            c.dataset.clone(),
            !c.record_id.is_empty(),
            c.source_file.clone(),
            c.source_line,
            c.source.clone(),
        )
    });
    let overrides = override_rows(&cx, &overrides_in, &snapshot, &w.info);
    let ranking = ranking_rows(&cx, &intake, &late_records, &rejections);
    let mut report = OfficeReport {
        title: "社会信用信息归集与上报情况报告".into(),
        period: w.info.clone(),
        generated_at: crate::clock::now_in_china().to_rfc3339(),
        runs: w
            .runs
            .iter()
            .map(|r| RunInfo {
                run_id: r.run_id.clone(),
                kind: r.kind.to_string(),
                started_at: r.started_at.clone(),
                outcome: r.outcome.clone(),
            })
            .collect(),
        platforms: cx.platforms.clone(),
        departments: cx.departments.clone(),
        totals: Totals::default(),
        intake,
        push,
        timeliness,
        late_records,
        uncomputable_records,
        list_changes: list_change_rows(&cx, &list_counts),
        withdrawals: withdrawal_rows(&cx, &answered),
        overrides,
        reconciliations: reconciliation_summaries(&cx, &reconciled),
        ranking,
        corrections,
        resolved_corrections,
    };
    add_unlisted_departments(&mut report);
    report.totals = totals(&report);
    Ok(report)
}

/// Departments met in the data but not in the deployment's feeds go last.
fn add_unlisted_departments(r: &mut OfficeReport) {
    let seen: Vec<String> = r
        .intake
        .iter()
        .map(|x| &x.department)
        .chain(r.push.iter().map(|x| &x.department))
        .chain(r.corrections.iter().map(|x| &x.department))
        .chain(r.timeliness.iter().map(|x| &x.department))
        .cloned()
        .collect();
    for d in seen {
        if !r.departments.contains(&d) {
            r.departments.push(d);
        }
    }
}

// ---- field helpers -------------------------------------------------------------------

#[cfg(test)]
mod tests;
