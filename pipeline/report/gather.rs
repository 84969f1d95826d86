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

use super::timeliness::{self, china_date, china_time, Verdict};
use super::*;
use crate::calendar::{Calendar, OBJECTION_DAYS};
use crate::mapping::{Feed, FieldSource};
use crate::masking::{mask_id_number, mask_ids_in_text, mask_name, NATURAL_PERSON};
use crate::schema::{registry, Dataset, FieldType};
use crate::snapshot::{self, SnapshotStore};
use crate::state::{
    FeedRunRow, LedgerCount, LedgerRow, OutstandingCount, OverrideHistory, Publication,
    ReconciliationRow, RunRow, StateStore,
};
use anyhow::Context as _;
use arrow_array::{Array, StringArray};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use std::collections::{HashMap, HashSet};

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
        let feeds = config.feeds()?;
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
    china_time()
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .single()
        .expect("UTC+8 has no ambiguous times")
        .with_timezone(&Utc)
}

fn today_in_china() -> NaiveDate {
    Utc::now().with_timezone(&china_time()).date_naive()
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
    let from = parse(&run.started_at).unwrap_or_else(|_| Utc::now());
    let to = run
        .finished_at
        .as_deref()
        .and_then(|t| parse(t).ok())
        .map(|t| t + chrono::Duration::milliseconds(1))
        .unwrap_or_else(Utc::now);
    let end_day = to.with_timezone(&china_time()).date_naive();
    Window {
        info: PeriodInfo {
            kind: "run".into(),
            label: format!("运行 {}", run.run_id),
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
    let mut corrections = quarantine_corrections(&cx, &feed_runs)?;
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
        generated_at: Utc::now().with_timezone(&china_time()).to_rfc3339(),
        runs: w
            .runs
            .iter()
            .map(|r| RunInfo {
                run_id: r.run_id.clone(),
                kind: r.kind.clone(),
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

/// The field telling a natural person from an organisation (…_LB, ZTLB, CN_ZTLB).
fn category_position(ds: &Dataset) -> Option<usize> {
    ds.fields
        .iter()
        .position(|f| f.code.ends_with("_LB") || f.code == "ZTLB" || f.code == "CN_ZTLB")
}

fn subject_position(ds: &Dataset) -> Option<usize> {
    ds.fields.iter().position(|f| f.subject_name)
}

/// The decision's document number: the business key's text field (文号).
fn document_position(ds: &Dataset) -> Option<usize> {
    ds.key
        .iter()
        .copied()
        .find(|&i| ds.fields[i].ty == FieldType::Text)
}

/// `Some(true)` for a natural person, `Some(false)` for an organisation, `None` unknown.
fn natural_person(category: &str) -> Option<bool> {
    (!category.trim().is_empty()).then(|| category.trim() == NATURAL_PERSON)
}

/// A field's value for the report: identity numbers and natural persons' names masked
/// (a subject's name also when it is unknown whether the subject is a person).
pub(super) fn mask_field(ds: &Dataset, i: usize, value: &str, natural: Option<bool>) -> String {
    let f = &ds.fields[i];
    if value.is_empty() {
        String::new()
    } else if f.ty == FieldType::IdNumber {
        mask_id_number(value)
    } else if f.personal_name || (f.subject_name && natural != Some(false)) {
        mask_name(value)
    } else {
        mask_ids_in_text(value)
    }
}

/// An operator's name is masked like a person's; an account name (ASCII) is kept.
fn mask_operator(by_whom: &str) -> String {
    let is_cjk = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c);
    if !by_whom.is_empty() && by_whom.chars().all(is_cjk) {
        mask_name(by_whom)
    } else {
        by_whom.to_string()
    }
}

/// A record's subject (masked) and document number.
fn describe(ds: &Dataset, value_of: impl Fn(usize) -> String) -> (String, String) {
    let natural = category_position(ds).and_then(|i| natural_person(&value_of(i)));
    let subject = subject_position(ds)
        .map(|i| mask_field(ds, i, &value_of(i), natural))
        .unwrap_or_default();
    let document = document_position(ds)
        .map(|i| mask_ids_in_text(&value_of(i)))
        .unwrap_or_default();
    (subject, document)
}

// ---- snapshot ------------------------------------------------------------------------

fn wanted_records(
    publications: &[Publication],
    rejections: &[LedgerRow],
    overrides: &[&OverrideHistory],
) -> BTreeMap<String, HashSet<String>> {
    let mut wanted: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    let mut want = |ds: &str, id: &str| {
        wanted
            .entry(ds.to_string())
            .or_default()
            .insert(id.to_string());
    };
    for p in publications {
        want(&p.dataset, &p.record_id);
    }
    for r in rejections {
        want(&r.dataset, &r.record_id);
    }
    for o in overrides {
        want(&o.entry.dataset, &o.entry.record_id);
    }
    wanted
}

/// Reads the wanted records' snapshot rows (memory follows the period, not the dataset).
fn snapshot_rows(
    cx: &Context,
    wanted: BTreeMap<String, HashSet<String>>,
) -> anyhow::Result<SnapshotRows> {
    let mut out = SnapshotRows::new();
    for (code, ids) in wanted {
        let Some(ds) = registry().get(&code) else {
            continue;
        };
        cx.store.read_dataset(&code, None, |b| {
            let col = |n: &str| snapshot::str_col(&b, n);
            let Some(record_ids) = col("record_id") else {
                return Ok(());
            };
            let lines = snapshot::u64_col(&b, "source_line");
            let fields: Vec<Option<&StringArray>> =
                ds.fields.iter().map(|f| col(&f.code)).collect();
            for i in 0..b.num_rows() {
                if !ids.contains(record_ids.value(i)) {
                    continue;
                }
                let text = |a: Option<&StringArray>| {
                    a.filter(|a| !a.is_null(i))
                        .map(|a| a.value(i).to_string())
                        .unwrap_or_default()
                };
                let row = SnapRow {
                    feed: text(col("feed")),
                    source_unit: text(col("source_unit")),
                    source_file: text(col("source_file")),
                    source_line: lines.map(|l| l.value(i)).unwrap_or(0),
                    values: fields.iter().map(|a| text(*a)).collect(),
                };
                out.insert((code.clone(), record_ids.value(i).to_string()), row);
            }
            Ok(())
        })?;
    }
    Ok(out)
}

// ---- intake and quarantine -----------------------------------------------------------

fn intake_rows(cx: &Context, feed_runs: &[FeedRunRow]) -> Vec<IntakeRow> {
    let mut rows: BTreeMap<(usize, String, String), IntakeRow> = BTreeMap::new();
    for fr in feed_runs {
        let department = cx
            .feed(&fr.feed)
            .map(|f| f.department.clone())
            .unwrap_or_else(|| format!("未登记数据源 {}", fr.feed));
        let key = (
            cx.department_order(&department),
            department.clone(),
            fr.dataset.clone(),
        );
        let row = rows.entry(key).or_insert_with(|| IntakeRow {
            department,
            dataset: fr.dataset.clone(),
            dataset_name: OfficeReport::dataset_name(&fr.dataset),
            ..Default::default()
        });
        let c = &fr.counts;
        row.feed_runs += 1;
        row.failures += fr.error.is_some() as u64;
        row.collected += c.read;
        row.kept += c.kept;
        row.new += c.new;
        row.changed += c.changed;
        row.unchanged += c.unchanged;
        row.quarantined += c.quarantined;
        row.superseded += c.superseded;
        for (reason, n) in &c.quarantined_by_reason {
            *row.quarantined_by_reason.entry(reason.clone()).or_default() += n;
        }
    }
    rows.into_values().collect()
}

/// The value of field `i` in a quarantined row's raw cells, through the feed's mapping
/// (the source column, trimmed, with the mapping's value lookup).
fn raw_value(feed: Option<&Feed>, raw: &serde_json::Value, i: usize) -> String {
    let Some(rule) = feed.and_then(|f| f.rules.iter().find(|r| r.target == i)) else {
        return String::new();
    };
    let cell = match &rule.source {
        FieldSource::Column(c) => raw.get(c).and_then(|v| v.as_str()).unwrap_or(""),
        FieldSource::Value(v) => v.as_str(),
    }
    .trim()
    .to_string();
    rule.map.get(&cell).cloned().unwrap_or(cell)
}

/// One quarantined row as the quarantine file keeps it.
struct Quarantined<'a> {
    run_id: &'a str,
    source_unit: &'a str,
    source_file: &'a str,
    source_line: u64,
    reason: &'a str,
    field: &'a str,
    value: &'a str,
    raw: serde_json::Value,
}

fn quarantine_line(cx: &Context, fr: &FeedRunRow, q: Quarantined<'_>) -> CorrectionRow {
    let feed = cx.feed(&fr.feed);
    let ds = registry().get(&fr.dataset);
    let position = ds.as_ref().and_then(|d| d.position(q.field));
    let (subject, document, value, field_name) = match (&ds, position) {
        (Some(ds), pos) => {
            let value_of = |i: usize| raw_value(feed, &q.raw, i);
            let natural = category_position(ds).and_then(|i| natural_person(&value_of(i)));
            let (subject, document) = describe(ds, value_of);
            let value = match pos {
                Some(i) => mask_field(ds, i, q.value, natural),
                None => mask_ids_in_text(q.value),
            };
            let name = pos.map(|i| ds.fields[i].name.clone());
            (subject, document, value, name)
        }
        (None, _) => (
            String::new(),
            String::new(),
            mask_ids_in_text(q.value),
            None,
        ),
    };
    CorrectionRow {
        department: cx.department_of_feed(&fr.feed, q.source_unit),
        dataset: fr.dataset.clone(),
        dataset_name: OfficeReport::dataset_name(&fr.dataset),
        source: "本地校验未通过".into(),
        run_id: q.run_id.to_string(),
        source_file: q.source_file.to_string(),
        source_line: q.source_line,
        field: q.field.to_string(),
        field_name: field_name.unwrap_or_else(|| q.field.to_string()),
        value,
        subject,
        document_number: document,
        record_id: String::new(),
        reason_code: q.reason.to_string(),
        reason: reasons::quarantine_text(q.reason),
        platform_message: String::new(),
    }
}

fn quarantine_corrections(
    cx: &Context,
    feed_runs: &[FeedRunRow],
) -> anyhow::Result<Vec<CorrectionRow>> {
    let mut out = Vec::new();
    for fr in feed_runs {
        let path = cx.store.quarantine_file(&fr.feed, &fr.run_id);
        if !path.exists() {
            continue;
        }
        snapshot::read_batches(&path, None, |b| {
            let col = |n: &str| snapshot::str_col(&b, n);
            let (Some(unit), Some(file), Some(reason), Some(field), Some(value), Some(raw)) = (
                col("source_unit"),
                col("source_file"),
                col("reason"),
                col("field"),
                col("value"),
                col("raw"),
            ) else {
                return Ok(());
            };
            let lines = snapshot::u64_col(&b, "source_line");
            for i in 0..b.num_rows() {
                let q = Quarantined {
                    run_id: &fr.run_id,
                    source_unit: unit.value(i),
                    source_file: file.value(i),
                    source_line: lines.map(|l| l.value(i)).unwrap_or(0),
                    reason: reason.value(i),
                    field: field.value(i),
                    value: value.value(i),
                    raw: serde_json::from_str(raw.value(i)).unwrap_or_default(),
                };
                out.push(quarantine_line(cx, fr, q));
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// Rejected records: where they came from (the snapshot) and the platform's reason.
fn rejection_corrections(
    cx: &Context,
    rejections: &[LedgerRow],
    snapshot: &SnapshotRows,
) -> Vec<CorrectionRow> {
    rejections
        .iter()
        .map(|r| {
            let ds = registry().get(&r.dataset);
            let snap = snapshot.get(&(r.dataset.clone(), r.record_id.clone()));
            let message = r.message.clone().unwrap_or_default();
            let code = r.code.clone().unwrap_or_default();
            // The platform names the field first ("CF_XDR_SHXYM 统一社会信用代码: …").
            let position = ds.as_ref().and_then(|d| {
                let token = message.split_whitespace().next()?;
                d.position(token.trim_end_matches(':'))
            });
            let value_of = |i: usize| {
                snap.and_then(|s| s.values.get(i).cloned())
                    .unwrap_or_default()
            };
            let (subject, document) = ds
                .as_ref()
                .map(|d| describe(d, value_of))
                .unwrap_or_default();
            let (field, field_name, value) = match (&ds, position) {
                (Some(d), Some(i)) => {
                    let natural = category_position(d).and_then(|c| natural_person(&value_of(c)));
                    (
                        d.fields[i].code.clone(),
                        d.fields[i].name.clone(),
                        mask_field(d, i, &value_of(i), natural),
                    )
                }
                _ => (String::new(), String::new(), String::new()),
            };
            CorrectionRow {
                department: match snap {
                    Some(s) => cx.department_of_feed(&s.feed, &s.source_unit),
                    None => cx.department_of_unit(&r.source_unit),
                },
                dataset: r.dataset.clone(),
                dataset_name: OfficeReport::dataset_name(&r.dataset),
                source: format!("上级平台退回（{}）", cx.platform_title(&r.platform)),
                run_id: String::new(),
                source_file: snap.map(|s| s.source_file.clone()).unwrap_or_default(),
                source_line: snap.map(|s| s.source_line).unwrap_or(0),
                field,
                field_name,
                value,
                subject,
                document_number: document,
                record_id: r.record_id.clone(),
                reason: reasons::rejection_text(&code),
                reason_code: code,
                platform_message: mask_ids_in_text(&message),
            }
        })
        .collect()
}

// ---- platforms -----------------------------------------------------------------------

type PushRows = HashMap<(String, String, String), PushRow>;

/// The row of a platform, reporting unit and dataset, created empty when new.
fn push_row<'a>(
    cx: &Context,
    rows: &'a mut PushRows,
    platform: &str,
    unit: &str,
    dataset: &str,
) -> &'a mut PushRow {
    let department = cx.department_of_unit(unit);
    rows.entry((platform.into(), department.clone(), dataset.into()))
        .or_insert_with(|| PushRow {
            platform: platform.into(),
            platform_title: cx.platform_title(platform),
            department,
            dataset: dataset.into(),
            dataset_name: OfficeReport::dataset_name(dataset),
            ..Default::default()
        })
}

fn push_rows(
    cx: &Context,
    answered: &[LedgerCount],
    outstanding: &[OutstandingCount],
) -> Vec<PushRow> {
    let mut rows = PushRows::new();
    for l in answered {
        let r = push_row(cx, &mut rows, &l.platform, &l.source_unit, &l.dataset);
        match (l.status.as_str(), l.op.as_str()) {
            ("acked", "withdraw") => r.withdrawn += l.records,
            ("acked", _) => r.accepted += l.records,
            _ => {
                r.rejected += l.records;
                let code = l.code.clone().unwrap_or_else(|| "?".into());
                *r.rejected_by_code.entry(code).or_default() += l.records;
            }
        }
    }
    for o in outstanding {
        push_row(cx, &mut rows, &o.platform, &o.source_unit, &o.dataset).pending += o.rows;
    }
    let mut out: Vec<PushRow> = rows.into_values().collect();
    out.sort_by_key(|r| {
        (
            cx.platform_order(&r.platform),
            r.platform.clone(),
            cx.department_order(&r.department),
            r.department.clone(),
            r.dataset.clone(),
        )
    });
    out
}

/// (dataset, unit, operation, distinct records) of the red and black lists.
type ListCount = (&'static str, String, String, u64);

fn list_change_rows(cx: &Context, counts: &[ListCount]) -> Vec<ListChangeRow> {
    let mut groups: BTreeMap<(usize, String, &str), ListChangeRow> = BTreeMap::new();
    for (dataset, unit, op, n) in counts {
        let department = cx.department_of_unit(unit);
        let key = (
            cx.department_order(&department),
            department.clone(),
            *dataset,
        );
        let row = groups.entry(key).or_insert_with(|| ListChangeRow {
            department,
            dataset: dataset.to_string(),
            dataset_name: OfficeReport::dataset_name(dataset),
            ..Default::default()
        });
        if op == "withdraw" {
            row.exits += n;
        } else {
            row.entries += n;
        }
    }
    groups.into_values().collect()
}

fn withdrawal_rows(cx: &Context, answered: &[LedgerCount]) -> Vec<WithdrawalRow> {
    // (platform order, platform, department order, department, dataset, reason)
    type Key = (usize, String, usize, String, String, String);
    let mut groups: BTreeMap<Key, WithdrawalRow> = BTreeMap::new();
    for l in answered
        .iter()
        .filter(|l| l.status == "acked" && l.op == "withdraw")
    {
        let department = cx.department_of_unit(&l.source_unit);
        let reason = l
            .reason
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            .map(mask_ids_in_text)
            .unwrap_or_else(|| "未注明".into());
        let key = (
            cx.platform_order(&l.platform),
            l.platform.clone(),
            cx.department_order(&department),
            department.clone(),
            l.dataset.clone(),
            reason.clone(),
        );
        let row = groups.entry(key).or_insert_with(|| WithdrawalRow {
            platform_title: cx.platform_title(&l.platform),
            department,
            dataset: l.dataset.clone(),
            reason,
            records: 0,
        });
        row.records += l.records;
    }
    groups.into_values().collect()
}

// ---- timeliness ----------------------------------------------------------------------

/// One publication judged.
struct Judged<'a> {
    department: String,
    publication: &'a Publication,
    decision: String,
    published: Option<NaiveDate>,
    verdict: Verdict,
    subject: String,
    document: String,
}

fn judge<'a>(cx: &Context, p: &'a Publication, snapshot: &SnapshotRows) -> Judged<'a> {
    let ds = registry().get(&p.dataset);
    let snap = snapshot.get(&(p.dataset.clone(), p.record_id.clone()));
    let published = china_date(&p.published_at);
    let decision = match (&ds, snap) {
        (Some(ds), Some(s)) => ds
            .decision_date
            .and_then(|i| s.values.get(i).cloned())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let verdict = match (snap, published) {
        (None, _) => Verdict::NotComputable("快照中已无此记录，无法取得决定日期".into()),
        (_, None) => Verdict::NotComputable("上报时间无法识别".into()),
        (Some(_), Some(day)) => timeliness::assess(cx.cal, &decision, day),
    };
    let (subject, document) = match (&ds, snap) {
        (Some(ds), Some(s)) => describe(ds, |i| s.values.get(i).cloned().unwrap_or_default()),
        _ => Default::default(),
    };
    Judged {
        department: match snap {
            Some(s) => cx.department_of_feed(&s.feed, &s.source_unit),
            None => cx.department_of_unit(&p.source_unit),
        },
        publication: p,
        decision,
        published,
        verdict,
        subject,
        document,
    }
}

fn timeliness_rows(
    cx: &Context,
    publications: &[Publication],
    snapshot: &SnapshotRows,
) -> (Vec<TimelinessRow>, Vec<LateRecord>, Vec<UncomputableRecord>) {
    let mut rows: BTreeMap<(usize, String, String), TimelinessRow> = BTreeMap::new();
    let (mut late, mut uncomputable) = (Vec::new(), Vec::new());
    for p in publications {
        let j = judge(cx, p, snapshot);
        let key = (
            cx.department_order(&j.department),
            j.department.clone(),
            p.dataset.clone(),
        );
        let row = rows.entry(key).or_insert_with(|| TimelinessRow {
            department: j.department.clone(),
            dataset: p.dataset.clone(),
            dataset_name: OfficeReport::dataset_name(&p.dataset),
            ..Default::default()
        });
        row.published += 1;
        match j.verdict {
            Verdict::OnTime { .. } => row.on_time += 1,
            Verdict::Late {
                deadline,
                working_days,
                days_late,
            } => {
                row.late += 1;
                row.max_days_late = row.max_days_late.max(days_late);
                late.push(LateRecord {
                    department: j.department,
                    dataset: p.dataset.clone(),
                    record_id: p.record_id.clone(),
                    document_number: j.document,
                    subject: j.subject,
                    decision_date: NaiveDate::parse_from_str(&j.decision, "%Y-%m-%d")
                        .unwrap_or(deadline),
                    deadline,
                    published_date: j.published.unwrap_or(deadline),
                    working_days,
                    days_late,
                });
            }
            Verdict::NotComputable(reason) => {
                row.not_computable += 1;
                uncomputable.push(UncomputableRecord {
                    department: j.department,
                    dataset: p.dataset.clone(),
                    record_id: j.publication.record_id.clone(),
                    document_number: j.document,
                    decision_date: j.decision,
                    published_date: j.published,
                    reason,
                });
            }
        }
    }
    let mut rows: Vec<TimelinessRow> = rows.into_values().collect();
    for r in &mut rows {
        r.on_time_share = timeliness::on_time_share(r.on_time, r.late);
    }
    late.sort_by(|a, b| {
        (
            b.days_late,
            cx.department_order(&a.department),
            &a.record_id,
        )
            .cmp(&(
                a.days_late,
                cx.department_order(&b.department),
                &b.record_id,
            ))
    });
    (rows, late, uncomputable)
}

// ---- withdrawals, holds, reconciliation, ranking, totals -----------------------------

fn overrides_in_period<'a>(
    history: &'a [OverrideHistory],
    from: &str,
    to: &str,
) -> Vec<&'a OverrideHistory> {
    history
        .iter()
        .filter(|h| {
            let at = h.entry.at.as_str();
            let created_in = at >= from && at < to;
            let hold_in_force = h.entry.kind == "hold"
                && at < to
                && h.released_at.as_deref().is_none_or(|r| r >= to);
            created_in || hold_in_force
        })
        .collect()
}

fn override_rows(
    cx: &Context,
    overrides: &[&OverrideHistory],
    snapshot: &SnapshotRows,
    period: &PeriodInfo,
) -> Vec<OverrideRow> {
    overrides
        .iter()
        .map(|h| {
            let e = &h.entry;
            let since = china_date(&e.at);
            let released = h
                .released_at
                .as_deref()
                .filter(|r| *r < period.to.as_str())
                .and_then(china_date);
            let until = released.unwrap_or(period.as_of);
            let working_days = since.and_then(|s| cx.cal.working_days_between(s, until).ok());
            let overdue = e.kind == "hold"
                && released.is_none()
                && working_days.is_some_and(|d| d > OBJECTION_DAYS as i64);
            let department = snapshot
                .get(&(e.dataset.clone(), e.record_id.clone()))
                .map(|s| cx.department_of_feed(&s.feed, &s.source_unit))
                .unwrap_or_else(|| "未知部门".into());
            OverrideRow {
                kind: e.kind.clone(),
                kind_label: if e.kind == "hold" {
                    "异议暂停公示"
                } else {
                    "撤回"
                }
                .into(),
                department,
                dataset: e.dataset.clone(),
                record_id: e.record_id.clone(),
                reason: mask_ids_in_text(&e.reason),
                by_whom: mask_operator(&e.by_whom),
                since,
                working_days,
                released,
                outcome: h.outcome.clone().filter(|_| released.is_some()),
                overdue,
            }
        })
        .collect()
}

fn reconciliation_summaries(
    cx: &Context,
    rows: &[ReconciliationRow],
) -> Vec<ReconciliationSummary> {
    let mut by_platform: BTreeMap<(usize, String), ReconciliationSummary> = BTreeMap::new();
    for r in rows {
        let s = by_platform
            .entry((cx.platform_order(&r.platform), r.platform.clone()))
            .or_insert_with(|| ReconciliationSummary {
                platform: r.platform.clone(),
                platform_title: cx.platform_title(&r.platform),
                at: String::new(),
                groups: 0,
                clean_groups: 0,
                differences: 0,
                by_kind: BTreeMap::new(),
                details: Vec::new(),
            });
        let result: serde_json::Value = serde_json::from_str(&r.result).unwrap_or_default();
        if r.at > s.at {
            s.at = r.at.clone();
        }
        s.groups += 1;
        s.clean_groups += (r.differences == 0) as u64;
        s.differences += r.differences;
        for d in result["differences"].as_array().into_iter().flatten() {
            let kind = d["kind"].as_str().unwrap_or("?").to_string();
            *s.by_kind.entry(kind).or_default() += 1;
        }
        s.details.push(ReconciliationGroup {
            dataset: r.dataset.clone(),
            department: cx.department_of_unit(&r.source_unit),
            at: r.at.clone(),
            platform_active: result["platform_active"].as_u64().unwrap_or(0),
            differences: r.differences,
        });
    }
    by_platform.into_values().collect()
}

/// What counts against a department in the ranking.
#[derive(Default)]
struct Score {
    late: u64,
    rejected: HashSet<(String, String)>,
    quarantined: u64,
}

fn ranking_rows(
    cx: &Context,
    intake: &[IntakeRow],
    late: &[LateRecord],
    rejections: &[LedgerRow],
) -> Vec<RankingRow> {
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    for r in intake {
        scores.entry(r.department.clone()).or_default().quarantined += r.quarantined;
    }
    for r in late {
        scores.entry(r.department.clone()).or_default().late += 1;
    }
    for l in rejections {
        let department = cx.department_of_unit(&l.source_unit);
        let score = scores.entry(department).or_default();
        score
            .rejected
            .insert((l.dataset.clone(), l.record_id.clone()));
    }
    let mut rows: Vec<RankingRow> = scores
        .into_iter()
        .map(|(department, s)| {
            let rejected = s.rejected.len() as u64;
            RankingRow {
                rank: 0,
                department,
                late: s.late,
                rejected,
                quarantined: s.quarantined,
                total: s.late + rejected + s.quarantined,
            }
        })
        .filter(|r| r.total > 0)
        .collect();
    rows.sort_by_key(|r| {
        (
            std::cmp::Reverse(r.total),
            cx.department_order(&r.department),
        )
    });
    rows.truncate(RANKING_SIZE);
    for (i, r) in rows.iter_mut().enumerate() {
        r.rank = i as u64 + 1;
    }
    rows
}

/// The headline numbers, each summed from its table.
pub(super) fn totals(r: &OfficeReport) -> Totals {
    let sum = |f: &dyn Fn(&IntakeRow) -> u64| r.intake.iter().map(f).sum::<u64>();
    let push = |f: &dyn Fn(&PushRow) -> u64| r.push.iter().map(f).sum::<u64>();
    let timely = |f: &dyn Fn(&TimelinessRow) -> u64| r.timeliness.iter().map(f).sum::<u64>();
    let holds_in_force = r
        .overrides
        .iter()
        .filter(|o| o.kind == "hold" && o.released.is_none());
    let (on_time, late) = (timely(&|t| t.on_time), timely(&|t| t.late));
    Totals {
        collected: sum(&|i| i.collected),
        kept: sum(&|i| i.kept),
        quarantined: sum(&|i| i.quarantined),
        superseded: sum(&|i| i.superseded),
        feed_failures: sum(&|i| i.failures),
        accepted: push(&|p| p.accepted),
        withdrawn: push(&|p| p.withdrawn),
        rejected: push(&|p| p.rejected),
        pending: push(&|p| p.pending),
        published: timely(&|t| t.published),
        on_time,
        late,
        not_computable: timely(&|t| t.not_computable),
        on_time_share: timeliness::on_time_share(on_time, late),
        holds_in_force: holds_in_force.clone().count() as u64,
        holds_overdue: holds_in_force.filter(|o| o.overdue).count() as u64,
        corrections: r.corrections.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_values_are_masked() {
        let ds = registry().get("xzcf").unwrap();
        let pos = |c: &str| ds.position(c).unwrap();
        // Identity numbers keep 6 + 4, whatever their validity.
        assert_eq!(
            mask_field(&ds, pos("CF_XDR_ZJHM"), "230881198307099457", Some(true)),
            "230881********9457"
        );
        // A natural person's name keeps the surname; an organisation's stays whole;
        // an unknown subject is masked.
        let name = pos("CF_XDR_MC");
        assert_eq!(mask_field(&ds, name, "吴静", Some(true)), "吴*");
        assert_eq!(mask_field(&ds, name, "吴静", None), "吴*");
        assert_eq!(
            mask_field(&ds, name, "同江市江华商贸有限公司", Some(false)),
            "同江市江华商贸有限公司"
        );
        // A legal representative is always a person.
        assert_eq!(
            mask_field(&ds, pos("CF_FRDB"), "王建国", Some(false)),
            "王**"
        );
        // An identity number typed into another field is masked too.
        assert_eq!(
            mask_field(&ds, pos("CF_XDR_SHXYM"), "34052419800101001X", Some(true)),
            "340524********001X"
        );
        assert_eq!(mask_operator("张科长"), "张**");
        assert_eq!(mask_operator("root"), "root");
    }

    #[test]
    fn subjects_and_document_numbers_come_from_the_schema() {
        let ds = registry().get("xzcf").unwrap();
        let mut v = vec![String::new(); ds.fields.len()];
        v[ds.position("CF_XDR_MC").unwrap()] = "李秀兰".into();
        v[ds.position("CF_XDR_LB").unwrap()] = "自然人".into();
        v[ds.position("CF_WSH").unwrap()] = "同市监处罚〔2024〕25号".into();
        let (subject, document) = describe(&ds, |i| v[i].clone());
        assert_eq!(subject, "李**");
        assert_eq!(document, "同市监处罚〔2024〕25号");
        v[ds.position("CF_XDR_LB").unwrap()] = "法人及非法人组织".into();
        v[ds.position("CF_XDR_MC").unwrap()] = "同江市江华商贸有限公司".into();
        assert_eq!(describe(&ds, |i| v[i].clone()).0, "同江市江华商贸有限公司");
    }
}
