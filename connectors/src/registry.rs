//! The closed set of source kinds a mapping file may name under `[source]`, and
//! `build()`, which turns a configuration into a running [`Source`].

use crate::sources::file_drop::{FileDropConfig, FileDropSource};
use crate::sources::http::{HttpConfig, HttpSource};
use crate::sources::sql::{SqlConfig, SqlSource};
use crate::{ReadContext, Result, Source};
use serde::Deserialize;

/// How a feed's raw rows are obtained (`type = "file_drop"`, …).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// A directory where a department drops CSV or XLSX exports.
    FileDrop(FileDropConfig),
    /// A department's database (PostgreSQL, MySQL/MariaDB, SQLite), read incrementally.
    Sql(SqlConfig),
    /// A department's JSON API, paginated, read incrementally (boxed: its settings are
    /// the largest, and configurations are built once a run).
    Http(Box<HttpConfig>),
}

impl SourceConfig {
    /// Starts the source for one run.
    pub fn build(&self, cx: &ReadContext) -> Result<Box<dyn Source>> {
        match self {
            SourceConfig::FileDrop(cfg) => Ok(Box::new(FileDropSource::new(cfg.clone(), cx)?)),
            SourceConfig::Sql(cfg) => Ok(Box::new(SqlSource::new(cfg.clone(), cx)?)),
            SourceConfig::Http(cfg) => Ok(Box::new(HttpSource::new((**cfg).clone(), cx)?)),
        }
    }

    /// Checks what can be checked without opening the source (`xinyong check`): an SQL
    /// feed's query must be one SELECT.
    pub fn check(&self) -> std::result::Result<(), String> {
        match self {
            SourceConfig::Sql(cfg) => crate::sources::sql::check_query(&cfg.query).map(|_| ()),
            SourceConfig::FileDrop(_) | SourceConfig::Http(_) => Ok(()),
        }
    }

    /// The kind, as written in the `type` key.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::FileDrop(_) => "file_drop",
            SourceConfig::Sql(_) => "sql",
            SourceConfig::Http(_) => "http",
        }
    }
}
