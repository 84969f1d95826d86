//! The deployment configuration (`xinyong.toml`): where data and state live, where the
//! mapping files are, and the platforms to push to. Parsed, then checked into a
//! [`Config`] that the runner accepts; relative paths are resolved against the file.

use crate::mapping::{self, Feed, MappingError};
use crate::push::client::PlatformConfig;
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
    /// Platforms pushed to.
    #[serde(default)]
    platform: Vec<PlatformConfig>,
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
            line: e.span().map(|s| text[..s.start].matches('\n').count() + 1).unwrap_or(0),
            message: e.message().to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let abs = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { dir.join(p) };
        let data_dir = abs(&raw.data_dir);
        let mut names = std::collections::HashSet::new();
        for p in &raw.platform {
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
            state: raw.state.as_deref().map(abs).unwrap_or_else(|| data_dir.join("state.sqlite")),
            mappings: abs(&raw.mappings),
            schedules: raw.schedules.as_deref().map(abs),
            base_dir: raw.base_dir.as_deref().map(abs).unwrap_or(dir.clone()),
            data_dir,
            platforms: raw.platform,
        })
    }

    /// The feeds of this deployment.
    pub fn feeds(&self) -> Result<Vec<Feed>, MappingError> {
        mapping::load_dir(&self.mappings)
    }
}
