//! The report for the leading-group office (社会信用体系建设工作领导小组办公室): for a
//! month, a date range or one run, per department (reporting unit) and dataset — what
//! was collected, kept, quarantined and superseded; what each platform accepted,
//! rejected or still owes; 双公示 timeliness; red/black list entries and exits;
//! withdrawals and objection holds; the latest reconciliation; a ranking of whom to
//! call; and per department a correction workbook (退回整改清单).
//!
//! [`build`] gathers everything into an [`OfficeReport`] (masked once, here: identity
//! numbers and natural persons' names never reach the writers), and [`write_all`]
//! writes it as one self-contained HTML page ([`html`]), an XLSX workbook and one
//! correction workbook per department ([`xlsx`]), and JSON with the same numbers.
//!
//! Where the numbers come from:
//! - intake: the `feed_runs` counts of the runs started in the period;
//! - platforms: ledger rows whose last change (the receipt) falls in the period, plus
//!   the rows still owed that were queued before its end;
//! - timeliness: see the `gather` module comment and [`timeliness::assess`].

mod gather;
pub mod html;
pub mod tables;
pub mod timeliness;
pub mod xlsx;

use crate::config::Config;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The datasets of 双公示 (licences and penalties), judged for timeliness.
pub const SHUANGGONGSHI_DATASETS: [&str; 2] = ["xzxk", "xzcf"];
/// The datasets whose entries and exits are counted as red and black list changes.
pub const LIST_DATASETS: [&str; 2] = ["redlist", "blacklist"];
/// How many departments the ranking names.
pub const RANKING_SIZE: usize = 5;

/// The period a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Period {
    /// A calendar month (China time).
    Month {
        /// Year.
        year: i32,
        /// Month, 1–12.
        month: u32,
    },
    /// Dates from and to, both included (China time).
    Range {
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
    },
    /// One run, from its start to its end.
    Run(String),
    /// The newest run.
    LatestRun,
}

impl Period {
    /// A month written `YYYY-MM`.
    pub fn month(text: &str) -> anyhow::Result<Period> {
        let first = NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d")
            .map_err(|_| anyhow::anyhow!("--month takes YYYY-MM, e.g. 2026-11 (got {text:?})"))?;
        Ok(Period::Month {
            year: first.year(),
            month: first.month(),
        })
    }

    /// Dates `from` to `to`, both included.
    pub fn range(from: NaiveDate, to: NaiveDate) -> anyhow::Result<Period> {
        if to < from {
            anyhow::bail!("--to {to} is before --from {from}");
        }
        Ok(Period::Range { from, to })
    }
}

/// The period as the report states it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeriodInfo {
    /// `month`, `range` or `run`.
    pub kind: String,
    /// For people, e.g. 2026年11月.
    pub label: String,
    /// For file names, e.g. `2026-11`, `2026-11-01_2026-11-15`, `run-<id>`.
    pub slug: String,
    /// Start, included (RFC 3339, UTC).
    pub from: String,
    /// End, excluded (RFC 3339, UTC).
    pub to: String,
    /// The run, for a run's report.
    pub run_id: Option<String>,
    /// The day ages (of holds) are counted to: the period's last day, or today if earlier.
    pub as_of: NaiveDate,
}

/// A run in the period.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// Run id.
    pub run_id: String,
    /// `run`, `push` or `demo`.
    pub kind: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// `ok`, `degraded`, `failed`, or none while running.
    pub outcome: Option<String>,
}

/// A platform pushed to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformInfo {
    /// Name in the configuration.
    pub name: String,
    /// Title for people (信用佳木斯).
    pub title: String,
}

/// The report's headline numbers (each the sum of its table).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    /// Rows read from the departments' files.
    pub collected: u64,
    /// Rows kept in the snapshot.
    pub kept: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// Rows superseded by a newer row of the same record.
    pub superseded: u64,
    /// Feeds that failed in a run of the period.
    pub feed_failures: u64,
    /// Files set aside as unreadable.
    pub files_set_aside: u64,
    /// Records accepted by a platform (summed over platforms).
    pub accepted: u64,
    /// Withdrawals accepted by a platform.
    pub withdrawn: u64,
    /// Records rejected by a platform.
    pub rejected: u64,
    /// Records still owed to a platform.
    pub pending: u64,
    /// 双公示 records first published upward in the period.
    pub published: u64,
    /// Of those, published within 7 working days.
    pub on_time: u64,
    /// Of those, published later.
    pub late: u64,
    /// Of those, not computable (dates missing or outside the calendar).
    pub not_computable: u64,
    /// Of the judged, how many on an estimated calendar (a date outside its years,
    /// weekends alone: 估算).
    pub estimated: u64,
    /// `on_time / (on_time + late)`.
    pub on_time_share: Option<f64>,
    /// Objection holds in force at the period's end.
    pub holds_in_force: u64,
    /// Of those, older than 20 working days.
    pub holds_overdue: u64,
    /// Rows in the departments' correction workbooks.
    pub corrections: u64,
}

/// Intake of one department and dataset.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IntakeRow {
    /// Department.
    pub department: String,
    /// Dataset code.
    pub dataset: String,
    /// Dataset name.
    pub dataset_name: String,
    /// Feed runs counted.
    pub feed_runs: u64,
    /// Of those, failed.
    pub failures: u64,
    /// Rows read.
    pub collected: u64,
    /// Rows kept.
    pub kept: u64,
    /// Kept and new.
    pub new: u64,
    /// Kept and changed.
    pub changed: u64,
    /// Kept and unchanged.
    pub unchanged: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// Rows superseded.
    pub superseded: u64,
    /// Files set aside as unreadable (empty, not a workbook, corrupt, no header).
    pub files_set_aside: u64,
    /// Quarantined rows by reason code.
    pub quarantined_by_reason: BTreeMap<String, u64>,
}

/// What one platform did with one department's dataset.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PushRow {
    /// Platform name.
    pub platform: String,
    /// Platform title.
    pub platform_title: String,
    /// Department.
    pub department: String,
    /// Dataset code.
    pub dataset: String,
    /// Dataset name.
    pub dataset_name: String,
    /// Records the platform acknowledged (upserts).
    pub accepted: u64,
    /// Withdrawals the platform acknowledged.
    pub withdrawn: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Rejected records by code.
    pub rejected_by_code: BTreeMap<String, u64>,
    /// Records still owed (pending or sent without an answer).
    pub pending: u64,
}

/// 双公示 timeliness of one department and dataset.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TimelinessRow {
    /// Department.
    pub department: String,
    /// Dataset code.
    pub dataset: String,
    /// Dataset name.
    pub dataset_name: String,
    /// Records first published upward in the period.
    pub published: u64,
    /// Within 7 working days.
    pub on_time: u64,
    /// Later.
    pub late: u64,
    /// Not computable.
    pub not_computable: u64,
    /// Of the judged, how many on an estimated calendar (a date outside its years,
    /// weekends alone: 估算).
    pub estimated: u64,
    /// `on_time / (on_time + late)`.
    pub on_time_share: Option<f64>,
    /// The most working days late.
    pub max_days_late: i64,
}

/// A record published late.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LateRecord {
    /// Department.
    pub department: String,
    /// Dataset code.
    pub dataset: String,
    /// Record id.
    pub record_id: String,
    /// The decision's document number (文号).
    pub document_number: String,
    /// The subject (masked when a natural person).
    pub subject: String,
    /// Decision date.
    pub decision_date: NaiveDate,
    /// The 7th working day after it.
    pub deadline: NaiveDate,
    /// When the platform received it (China date).
    pub published_date: NaiveDate,
    /// Working days from decision to publication.
    pub working_days: i64,
    /// Working days past the deadline.
    pub days_late: i64,
    /// Whether the deadline is an estimate (outside the calendar's years: 估算).
    pub estimated: bool,
}

/// A record whose timeliness cannot be computed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UncomputableRecord {
    /// Department.
    pub department: String,
    /// Dataset code.
    pub dataset: String,
    /// Record id.
    pub record_id: String,
    /// Document number.
    pub document_number: String,
    /// The decision date as recorded.
    pub decision_date: String,
    /// When the platform received it (China date), if readable.
    pub published_date: Option<NaiveDate>,
    /// Why (无法计算 …).
    pub reason: String,
}

/// Red or black list entries and exits of one department.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListChangeRow {
    /// Department.
    pub department: String,
    /// Dataset code.
    pub dataset: String,
    /// Dataset name.
    pub dataset_name: String,
    /// Records published (entered) in the period.
    pub entries: u64,
    /// Records withdrawn (exited) in the period.
    pub exits: u64,
}

/// Withdrawals a platform acknowledged in the period, by reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WithdrawalRow {
    /// Platform title.
    pub platform_title: String,
    /// Department.
    pub department: String,
    /// Dataset code.
    pub dataset: String,
    /// Why (credit repair, end of publication, …).
    pub reason: String,
    /// Records.
    pub records: u64,
}

/// A manual withdrawal or objection hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OverrideRow {
    /// `withdraw` or `hold`.
    pub kind: String,
    /// 撤回 or 异议暂停公示.
    pub kind_label: String,
    /// Department.
    pub department: String,
    /// Dataset code.
    pub dataset: String,
    /// Record id.
    pub record_id: String,
    /// Why.
    pub reason: String,
    /// Who (a person's name masked).
    pub by_whom: String,
    /// Since (China date).
    pub since: Option<NaiveDate>,
    /// Working days from then to its release or the report's day.
    pub working_days: Option<i64>,
    /// When a hold ended (China date).
    pub released: Option<NaiveDate>,
    /// `confirmed` or `corrected`.
    pub outcome: Option<String>,
    /// A hold in force for more than 20 working days.
    pub overdue: bool,
}

/// One reconciled dataset and unit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReconciliationGroup {
    /// Dataset code.
    pub dataset: String,
    /// Department.
    pub department: String,
    /// When (RFC 3339).
    pub at: String,
    /// Records active on the platform.
    pub platform_active: u64,
    /// Differences found.
    pub differences: u64,
}

/// The latest reconciliation of one platform.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReconciliationSummary {
    /// Platform name.
    pub platform: String,
    /// Platform title.
    pub platform_title: String,
    /// The newest check (RFC 3339).
    pub at: String,
    /// Groups (dataset and unit) checked.
    pub groups: u64,
    /// Groups without differences.
    pub clean_groups: u64,
    /// Differences in all.
    pub differences: u64,
    /// Differences by kind (`missing_upstream`, …).
    pub by_kind: BTreeMap<String, u64>,
    /// Per group.
    pub details: Vec<ReconciliationGroup>,
}

/// A department in the ranking.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RankingRow {
    /// 1, 2, …
    pub rank: u64,
    /// Department.
    pub department: String,
    /// Records published late.
    pub late: u64,
    /// Records rejected by a platform (each record once).
    pub rejected: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// The sum.
    pub total: u64,
}

/// One line of a department's correction workbook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorrectionRow {
    /// Department.
    pub department: String,
    /// Dataset code.
    pub dataset: String,
    /// Dataset name.
    pub dataset_name: String,
    /// 本地校验未通过 or 上级平台退回（platform）.
    pub source: String,
    /// The run that read the row (quarantine) or `""`.
    pub run_id: String,
    /// Source file.
    pub source_file: String,
    /// Row in the source file.
    pub source_line: u64,
    /// Field code, if known.
    pub field: String,
    /// Field name (Chinese), if known.
    pub field_name: String,
    /// The value (identity numbers and natural persons' names masked).
    pub value: String,
    /// The subject (masked when a natural person).
    pub subject: String,
    /// Document number.
    pub document_number: String,
    /// Record id (rejections).
    pub record_id: String,
    /// Reason code.
    pub reason_code: String,
    /// The reason in plain Chinese.
    pub reason: String,
    /// When the problem was first seen (Beijing date), for quarantine problems.
    #[serde(default)]
    pub first_seen: String,
    /// Working days it has been open (to its correction, or to the report's end).
    #[serde(default)]
    pub working_days_open: Option<i64>,
    /// When a later file brought it valid (Beijing date), if it was.
    #[serde(default)]
    pub resolved_at: String,
    /// The platform's own message (rejections; identity numbers masked).
    pub platform_message: String,
}

/// The office report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfficeReport {
    /// Title.
    pub title: String,
    /// The period.
    pub period: PeriodInfo,
    /// When the report was made (RFC 3339).
    pub generated_at: String,
    /// Runs in the period.
    pub runs: Vec<RunInfo>,
    /// Platforms configured.
    pub platforms: Vec<PlatformInfo>,
    /// Departments, in the deployment's order.
    pub departments: Vec<String>,
    /// Headline numbers.
    pub totals: Totals,
    /// Intake per department and dataset.
    pub intake: Vec<IntakeRow>,
    /// Platforms per department and dataset.
    pub push: Vec<PushRow>,
    /// Timeliness per department and dataset.
    pub timeliness: Vec<TimelinessRow>,
    /// Late records, most late first.
    pub late_records: Vec<LateRecord>,
    /// Records whose timeliness cannot be computed.
    pub uncomputable_records: Vec<UncomputableRecord>,
    /// Red and black list entries and exits.
    pub list_changes: Vec<ListChangeRow>,
    /// Withdrawals acknowledged, by reason.
    pub withdrawals: Vec<WithdrawalRow>,
    /// Manual withdrawals and holds.
    pub overrides: Vec<OverrideRow>,
    /// Latest reconciliation per platform.
    pub reconciliations: Vec<ReconciliationSummary>,
    /// Departments with the most late, rejected or quarantined records.
    pub ranking: Vec<RankingRow>,
    /// Every department's correction lines (the open problems, each once).
    pub corrections: Vec<CorrectionRow>,
    /// Problems corrected in the period (已整改), each once.
    #[serde(default)]
    pub resolved_corrections: Vec<CorrectionRow>,
}

impl OfficeReport {
    /// The correction lines of one department.
    pub fn corrections_of<'a>(
        &'a self,
        department: &'a str,
    ) -> impl Iterator<Item = &'a CorrectionRow> + 'a {
        self.corrections
            .iter()
            .filter(move |c| c.department == department)
    }

    /// The problems of one department corrected in the period.
    pub fn resolved_of<'a>(
        &'a self,
        department: &'a str,
    ) -> impl Iterator<Item = &'a CorrectionRow> + 'a {
        self.resolved_corrections
            .iter()
            .filter(move |c| c.department == department)
    }

    /// A dataset's Chinese name (the code when unknown).
    pub fn dataset_name(code: &str) -> String {
        crate::domain::schema::registry()
            .get(code)
            .map(|d| d.name.clone())
            .unwrap_or_else(|| code.to_string())
    }
}

/// The files a report was written to.
#[derive(Debug, Clone, Serialize)]
pub struct ReportFiles {
    /// The directory.
    pub dir: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// `report.xlsx`.
    pub xlsx: PathBuf,
    /// `report.json`.
    pub json: PathBuf,
    /// `整改清单-<department>.xlsx`, one per department.
    pub corrections: Vec<PathBuf>,
}

/// Gathers the report of a period from the state store, the snapshots and the quarantine.
pub async fn build(config: &Config, period: Period) -> anyhow::Result<OfficeReport> {
    gather::build(config, period).await
}

/// The problems open now (退回整改), masked as the report masks them, in the
/// configuration's department order (for the web console).
pub async fn open_corrections(
    config: &Config,
    state: &crate::state::StateStore,
) -> anyhow::Result<Vec<CorrectionRow>> {
    gather::open_corrections(config, state).await
}

/// The default directory of a period's report: `<data_dir>/reports/<period slug>`.
pub fn default_dir(config: &Config, report: &OfficeReport) -> PathBuf {
    config.data_dir.join("reports").join(&report.period.slug)
}

/// The file name of a department's correction workbook.
pub fn corrections_file_name(department: &str) -> String {
    let safe: String = department
        .chars()
        .map(|c| {
            if c.is_whitespace() || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("整改清单-{safe}.xlsx")
}

/// Where the files are, for people (what `xinyong report` prints).
pub fn describe(report: &OfficeReport, files: &ReportFiles) -> String {
    let mut s = format!(
        "领导小组办公室报告 office report · {}\n",
        report.period.label
    );
    s.push_str(&format!("  网页 HTML:  {}\n", files.html.display()));
    s.push_str(&format!("  表格 XLSX:  {}\n", files.xlsx.display()));
    s.push_str(&format!("  数据 JSON:  {}\n", files.json.display()));
    s.push_str("  退回整改清单 correction workbooks:\n");
    for f in &files.corrections {
        s.push_str(&format!("    {}\n", f.display()));
    }
    s
}

/// Writes `report.html`, `report.xlsx`, `report.json` and one correction workbook per
/// department into `out_dir` (each file atomically).
pub fn write_all(report: &OfficeReport, out_dir: &Path) -> anyhow::Result<ReportFiles> {
    let write = |name: &str, bytes: &[u8]| -> anyhow::Result<PathBuf> {
        let path = out_dir.join(name);
        crate::snapshot::write_atomic(&path, bytes)?;
        Ok(path)
    };
    let html = write("report.html", html::render(report).as_bytes())?;
    let xlsx = write("report.xlsx", &xlsx::office_workbook(report)?)?;
    let json = write("report.json", &serde_json::to_vec_pretty(report)?)?;
    let mut corrections = Vec::new();
    for department in &report.departments {
        let bytes = xlsx::corrections_workbook(report, department)?;
        corrections.push(write(&corrections_file_name(department), &bytes)?);
    }
    Ok(ReportFiles {
        dir: out_dir.to_path_buf(),
        html,
        xlsx,
        json,
        corrections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse() {
        assert_eq!(
            Period::month("2026-11").unwrap(),
            Period::Month {
                year: 2026,
                month: 11
            }
        );
        assert!(Period::month("2026-13").is_err());
        assert!(Period::month("11/2026").is_err());
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(Period::range(d("2026-11-02"), d("2026-11-01")).is_err());
        assert!(Period::range(d("2026-11-01"), d("2026-11-01")).is_ok());
    }

    #[test]
    fn correction_file_names_are_safe() {
        assert_eq!(
            corrections_file_name("同江市 市场/监督管理局"),
            "整改清单-同江市_市场_监督管理局.xlsx"
        );
    }
}
