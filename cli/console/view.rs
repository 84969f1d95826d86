//! What the console's page shows, gathered from the state store and the data directory
//! on each request: the status (feeds, platforms, jobs, holds), the problems open per
//! department, the latest reconciliation of each platform, dataset and unit, and the
//! office reports written so far.

use pipeline::config::Config;
use pipeline::orchestrate::status::{self, Status};
use pipeline::report::CorrectionRow;
use pipeline::state::{ReconciliationRow, StateStore};
use std::path::Path;

/// Office reports listed on the page, newest first.
pub const REPORTS_LISTED: usize = 12;

/// Everything on the page.
pub struct View {
    /// Feeds, platforms, jobs, holds, calendar warning.
    pub status: Status,
    /// The problems open now, masked, in department order.
    pub open_corrections: Vec<CorrectionRow>,
    /// The latest reconciliation of each platform, dataset and unit.
    pub reconciliations: Vec<ReconciliationRow>,
    /// Reporting unit → department, from the feeds.
    pub departments: Vec<(String, String)>,
    /// Office reports: (period directory, written at RFC 3339, has the workbook).
    pub reports: Vec<(String, String, bool)>,
    /// When the page was gathered (Beijing time).
    pub at: String,
    /// Whether the configuration has a schedules directory.
    pub has_schedules: bool,
}

impl View {
    /// The department of a reporting unit, or the unit itself.
    pub fn department_of_unit<'a>(&'a self, unit: &'a str) -> &'a str {
        self.departments
            .iter()
            .find(|(u, _)| u == unit)
            .map(|(_, d)| d.as_str())
            .unwrap_or(unit)
    }
}

/// Gathers the page's contents.
pub async fn gather(config: &Config, state: &StateStore) -> anyhow::Result<View> {
    let status = status::gather(config, state).await?;
    let open_corrections = pipeline::report::open_corrections(config, state).await?;
    let reconciliations = state.latest_reconciliations_before("9999").await?;
    let departments = config
        .feeds_each()?
        .feeds
        .iter()
        .map(|f| (f.source_unit.clone(), f.department.clone()))
        .collect();
    Ok(View {
        status,
        open_corrections,
        reconciliations,
        departments,
        reports: reports(&config.data_dir.join("reports")),
        at: pipeline::clock::beijing_of(pipeline::clock::now()),
        has_schedules: config.schedules.is_some(),
    })
}

/// Whether a name can be a report's period directory (`2026-11`,
/// `run-20261202T032641.573Z-551c`, `2026-11-01_2026-11-30`): letters, digits, `-`, `_`
/// and `.`, not starting with a dot.
pub fn is_report_period(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The office reports under `dir` that have a page, newest first.
fn reports(dir: &Path) -> Vec<(String, String, bool)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(std::time::SystemTime, String, bool)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let page = e.path().join("report.html");
            let written = std::fs::metadata(&page).ok()?.modified().ok()?;
            is_report_period(&name).then(|| (written, name, e.path().join("report.xlsx").is_file()))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    found
        .into_iter()
        .take(REPORTS_LISTED)
        .map(|(t, name, xlsx)| {
            let t: chrono::DateTime<chrono::Utc> = t.into();
            (name, pipeline::clock::beijing_of(t), xlsx)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_periods_are_plain_names() {
        for ok in [
            "2026-11",
            "run-20261202T032641.573Z-551c",
            "2026-11-01_2026-11-30",
        ] {
            assert!(is_report_period(ok), "{ok}");
        }
        for bad in ["", "..", ".hidden", "a/b", "../state", "a b", "%2e%2e"] {
            assert!(!is_report_period(bad), "{bad}");
        }
    }

    #[test]
    fn reports_are_listed_newest_first_and_only_with_a_page() {
        let d = tempfile::tempdir().unwrap();
        for (name, page) in [("2026-10", true), ("2026-11", true), ("empty", false)] {
            std::fs::create_dir_all(d.path().join(name)).unwrap();
            if page {
                std::fs::write(d.path().join(name).join("report.html"), "<p>").unwrap();
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        std::fs::write(d.path().join("2026-11/report.xlsx"), "x").unwrap();
        let listed = reports(d.path());
        let names: Vec<(&str, bool)> = listed.iter().map(|(n, _, x)| (n.as_str(), *x)).collect();
        assert_eq!(names, [("2026-11", true), ("2026-10", false)]);
        assert!(listed[0].1.ends_with("+08:00"));
    }
}
