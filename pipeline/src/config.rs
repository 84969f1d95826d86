//! The deployment configuration (`xinyong.toml`): where data and state live, where the
//! mapping files are, and the platforms to push to. Parsed, then checked into a
//! [`Config`] that the runner accepts; relative paths are resolved against the file.

use crate::mapping::{self, Feed, MappingError};
use crate::platform::PlatformConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// Data directory (snapshots, quarantine, reports).
    data_dir: PathBuf,
    /// State store; default `<data_dir>/state.sqlite`.
    #[serde(default)]
    state: Option<PathBuf>,
    /// Directory of mapping files.
    mappings: PathBuf,
    /// Directory of schedule files.
    #[serde(default)]
    schedules: Option<PathBuf>,
    /// Base directory for relative paths inside mapping files (source directories).
    #[serde(default)]
    base_dir: Option<PathBuf>,
    /// A directory of dataset definitions replacing the built-in ones (optional).
    #[serde(default)]
    schema_dir: Option<PathBuf>,
    /// A holiday table (the shipped `cn-holidays.toml` format) adding or replacing
    /// years of the built-in calendar.
    #[serde(default)]
    calendar: Option<PathBuf>,
    /// Platforms pushed to.
    #[serde(default)]
    platform: Vec<PlatformConfig>,
    /// Where to tell of failures (webhook, WeCom, DingTalk).
    #[serde(default)]
    alert: Vec<crate::orchestrate::alerts::AlertConfig>,
    /// How long run reports, quarantine files and office reports are kept.
    #[serde(default)]
    retention: Option<crate::orchestrate::retention::Retention>,
    /// Memory limits of a run.
    #[serde(default)]
    memory: Option<MemoryFile>,
    /// How snapshot partitions are written.
    #[serde(default)]
    snapshot: Option<SnapshotFile>,
}

/// `[snapshot]`: how a run writes the month partitions it changes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotFile {
    /// Row groups a partition may hold and still be patched (0: always rewrite whole).
    patch_row_groups: usize,
}

/// `[memory]`: what a feed's run may hold in memory before it spills to scratch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemoryFile {
    /// MiB of dedupe entries (40 bytes a row) kept in memory; default 48.
    dedupe_mib: u64,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// Data directory.
    pub data_dir: PathBuf,
    /// State store path.
    pub state: PathBuf,
    /// Mapping directory.
    pub mappings: PathBuf,
    /// Schedule directory.
    pub schedules: Option<PathBuf>,
    /// Base directory for source paths.
    pub base_dir: PathBuf,
    /// Platforms.
    pub platforms: Vec<PlatformConfig>,
    /// Alert receivers.
    pub alerts: Vec<crate::orchestrate::alerts::AlertConfig>,
    /// Retention of old outputs (none: everything is kept).
    pub retention: Option<crate::orchestrate::retention::Retention>,
    /// Dedupe entries a feed's run keeps in memory before spilling (`[memory] dedupe_mib`).
    pub dedupe_budget: usize,
    /// Row groups a month partition may hold and still be patched rather than
    /// rewritten whole (`[snapshot] patch_row_groups`, default 16; 0: always rewrite).
    pub patch_row_groups: usize,
}

impl Config {
    /// Loads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|e| MappingError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read the configuration: {e}"),
        })?;
        let raw: ConfigFile = toml::from_str(&text).map_err(|e| MappingError {
            file: path.to_path_buf(),
            line: e
                .span()
                .map(|s| text[..s.start].matches('\n').count() + 1)
                .unwrap_or(0),
            message: e.message().to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let abs = |p: &Path| {
            clean(&if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            })
        };
        let data_dir = abs(&raw.data_dir);
        if let Some(dir) = raw.schema_dir.as_deref().map(abs) {
            crate::domain::schema::install_dir(&dir).map_err(|message| MappingError {
                file: path.to_path_buf(),
                line: 0,
                message,
            })?;
        }
        if let Some(file) = raw.calendar.as_deref().map(abs) {
            crate::domain::calendar::install(&file).map_err(|message| MappingError {
                file: path.to_path_buf(),
                line: 0,
                message: format!("calendar = {:?}: {message}", file.display().to_string()),
            })?;
        }
        if raw.retention.as_ref().is_some_and(|r| r.days == 0) {
            return Err(MappingError {
                file: path.to_path_buf(),
                line: 0,
                message: "[retention] days = 0: keep at least 1 day".into(),
            });
        }
        let dedupe_budget = match &raw.memory {
            None => crate::stages::dedupe::DEFAULT_BUDGET,
            Some(m) if (1..=16_384).contains(&m.dedupe_mib) => {
                ((m.dedupe_mib as usize) << 20) / crate::stages::dedupe::ENTRY_MEMORY
            }
            Some(m) => {
                return Err(MappingError {
                    file: path.to_path_buf(),
                    line: 0,
                    message: format!(
                        "[memory] dedupe_mib = {}: give 1 to 16384 (MiB; default 48)",
                        m.dedupe_mib
                    ),
                })
            }
        };
        let patch_row_groups = match &raw.snapshot {
            None => crate::snapshot::DEFAULT_PATCH_ROW_GROUPS,
            Some(s) if s.patch_row_groups <= 1024 => s.patch_row_groups,
            Some(s) => {
                return Err(MappingError {
                    file: path.to_path_buf(),
                    line: 0,
                    message: format!(
                        "[snapshot] patch_row_groups = {}: give 0 to 1024 (default 16; 0 rewrites every changed partition whole)",
                        s.patch_row_groups
                    ),
                })
            }
        };
        let mut names = std::collections::HashSet::new();
        for p in &raw.platform {
            if let Err(message) = p.check_limits() {
                return Err(MappingError {
                    file: path.to_path_buf(),
                    line: 0,
                    message,
                });
            }
            if !names.insert(p.name.clone()) {
                return Err(MappingError {
                    file: path.to_path_buf(),
                    line: 0,
                    message: format!("platform {:?} is defined twice", p.name),
                });
            }
        }
        Ok(Config {
            file: path.to_path_buf(),
            state: raw
                .state
                .as_deref()
                .map(abs)
                .unwrap_or_else(|| data_dir.join("state.sqlite")),
            mappings: abs(&raw.mappings),
            schedules: raw.schedules.as_deref().map(abs),
            base_dir: raw
                .base_dir
                .as_deref()
                .map(abs)
                .unwrap_or_else(|| clean(&dir)),
            data_dir,
            platforms: raw.platform,
            alerts: raw.alert,
            retention: raw.retention,
            dedupe_budget,
            patch_row_groups,
        })
    }

    /// The feeds of this deployment; the first broken mapping is the error.
    pub fn feeds(&self) -> Result<Vec<Feed>, MappingError> {
        mapping::load_dir(&self.mappings)
    }

    /// The feeds of this deployment, each mapping on its own (a broken one is set
    /// aside with its error, the others run).
    pub fn feeds_each(&self) -> Result<mapping::Feeds, MappingError> {
        mapping::load_each(&self.mappings)
    }
}

/// Lexically normalises a path (`a/b/../c` → `a/c`), so messages show plain paths.
pub fn clean(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                let last_is_normal =
                    matches!(out.components().next_back(), Some(Component::Normal(_)));
                if last_is_normal {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::clean;
    use std::path::Path;

    #[test]
    fn cleans_paths() {
        assert_eq!(
            clean(Path::new("fixtures/demo/../../out/demo")),
            Path::new("out/demo")
        );
        assert_eq!(clean(Path::new("fixtures/demo/../..")), Path::new("."));
        assert_eq!(clean(Path::new("../x/./y")), Path::new("../x/y"));
        assert_eq!(clean(Path::new("/a/b/../c")), Path::new("/a/c"));
    }
}
