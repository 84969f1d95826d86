//! Retention: `[retention] days = N` in the configuration removes run reports
//! (`<data>/runs/*.json`), quarantine files (`<data>/quarantine/feed=*/run=*.parquet`)
//! and office reports (`<data>/reports/*/`) older than N days after each run. The
//! snapshot, the state store (with every problem of the quarantine, so the correction
//! loop loses nothing) and the newest file of each kind are never removed.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// `[retention]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Days kept (at least 1).
    pub days: u32,
}

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Run reports.
    pub runs: u64,
    /// Quarantine files.
    pub quarantine: u64,
    /// Office report folders.
    pub reports: u64,
}

/// Removes what is older than the retention under `data_dir`, by modification time.
pub fn sweep(data_dir: &Path, r: &Retention, now: SystemTime) -> Swept {
    let keep = Duration::from_secs(u64::from(r.days.max(1)) * 86_400);
    let old = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > keep)
    };
    let mut swept = Swept::default();
    let files_in = |dir: &Path, ext: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
            .collect();
        v.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        v
    };
    // The newest of each kind stays, whatever its age.
    let mut runs = files_in(&data_dir.join("runs"), "json");
    runs.pop();
    for p in runs.iter().filter(|p| old(p)) {
        if std::fs::remove_file(p).is_ok() {
            swept.runs += 1;
        }
    }
    for feed in std::fs::read_dir(data_dir.join("quarantine"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let mut files = files_in(&feed.path(), "parquet");
        files.pop();
        for p in files.iter().filter(|p| old(p)) {
            if std::fs::remove_file(p).is_ok() {
                swept.quarantine += 1;
            }
        }
    }
    let mut reports: Vec<PathBuf> = std::fs::read_dir(data_dir.join("reports"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    reports.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    reports.pop();
    for p in reports.iter().filter(|p| old(p)) {
        if std::fs::remove_dir_all(p).is_ok() {
            swept.reports += 1;
        }
    }
    if swept != Swept::default() {
        tracing::info!(
            runs = swept.runs,
            quarantine = swept.quarantine,
            reports = swept.reports,
            days = r.days,
            "retention: old files removed"
        );
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_files_go_the_newest_and_the_snapshot_stay() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["runs", "quarantine/feed=a", "reports/run-1", "snapshot"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        for f in [
            "runs/1.json",
            "runs/2.json",
            "quarantine/feed=a/run=1.parquet",
            "quarantine/feed=a/run=2.parquet",
            "snapshot/x.parquet",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        std::fs::create_dir_all(d.join("reports/run-2")).unwrap();
        // Forty days later, with 30 days kept.
        let later = SystemTime::now() + Duration::from_secs(40 * 86_400);
        let s = sweep(d, &Retention { days: 30 }, later);
        assert_eq!(
            s,
            Swept {
                runs: 1,
                quarantine: 1,
                reports: 1
            }
        );
        assert!(d.join("snapshot/x.parquet").exists());
        assert_eq!(std::fs::read_dir(d.join("runs")).unwrap().count(), 1);
        // Within the days kept nothing goes.
        let s = sweep(d, &Retention { days: 30 }, SystemTime::now());
        assert_eq!(s, Swept::default());
    }
}
