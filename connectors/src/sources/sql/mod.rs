//! The SQL source: a department's PostgreSQL, MySQL/MariaDB or SQLite database, read
//! incrementally with keyset pagination on (watermark, primary key).
//!
//! The feed's query is wrapped as a subquery, ordered by (watermark, key) and resumed
//! strictly after the last (watermark, key) pair read, one query per batch — so rows
//! sharing a timestamp with the watermark are never skipped nor read twice. Values
//! arrive as the raw strings a file export would give (DECIMAL as its decimal text,
//! DATE as `YYYY-MM-DD`, DATETIME as `YYYY-MM-DD HH:MM:SS`, NULL as empty).
//!
//! The connection URL comes from an environment variable or a secret file and never
//! appears in logs or errors. The position reached ([`Source::checkpoint`]) is recorded
//! by the pipeline only once the run's records are in the snapshot; a later run passes
//! it back in [`ReadContext::position`]. Rows whose watermark is NULL are not read.

mod query;
pub use query::check_query;

use super::Runtime;
use crate::header::normalise_header;
use crate::{ConnectorError, InputUnit, RawBatch, RawRow, ReadContext, Result, Source};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::types::chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sqlx::types::Decimal;
use sqlx::{Column, ConnectOptions, Row, TypeInfo};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// `[source] type = "sql"` in a mapping file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// Environment variable holding the connection URL (`postgres://…`, `mysql://…`, `sqlite:…`).
    #[serde(default)]
    pub url_env: Option<String>,
    /// File holding the connection URL (relative to the config's base directory).
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// The SELECT whose rows the feed reads; the source wraps it (no trailing clauses needed).
    pub query: String,
    /// Column of the query's result that only grows when a row is added or changed.
    pub watermark: String,
    /// Column of the query's result that identifies a row (the tie-breaker).
    pub key: String,
    /// Rows per query.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

fn default_batch_size() -> usize {
    1000
}

/// How far a SQL feed has read: the last (watermark, key) pair, with their types so
/// they bind back as the database's own values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlPosition {
    /// The watermark of the last row read.
    pub watermark: TypedValue,
    /// The key of the last row read.
    pub key: TypedValue,
}

/// A value with its kind, as stored in a position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypedValue {
    /// `text`, `int`, `uint`, `float`, `bool`, `decimal`, `date`, `time`, `datetime` or `timestamptz`.
    pub kind: String,
    /// The value in its export text (datetimes with their full fraction).
    pub value: String,
}

/// One cell decoded from a database row.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Text(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Decimal(Decimal),
    Date(NaiveDate),
    Time(NaiveTime),
    DateTime(NaiveDateTime),
    DateTimeUtc(DateTime<Utc>),
}

const DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f";

impl Cell {
    /// The text a file export would give.
    fn export_text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::UInt(u) => u.to_string(),
            Cell::Float(f) => f.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Decimal(d) => d.to_string(),
            Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
            Cell::Time(t) => t.format("%H:%M:%S%.f").to_string(),
            Cell::DateTime(t) => t.format(DATETIME_FORMAT).to_string(),
            Cell::DateTimeUtc(t) => t.naive_utc().format(DATETIME_FORMAT).to_string(),
        }
    }

    fn typed(&self) -> Option<TypedValue> {
        let kind = match self {
            Cell::Null => return None,
            Cell::Text(_) => "text",
            Cell::Int(_) => "int",
            Cell::UInt(_) => "uint",
            Cell::Float(_) => "float",
            Cell::Bool(_) => "bool",
            Cell::Decimal(_) => "decimal",
            Cell::Date(_) => "date",
            Cell::Time(_) => "time",
            Cell::DateTime(_) => "datetime",
            Cell::DateTimeUtc(_) => "timestamptz",
        };
        Some(TypedValue {
            kind: kind.to_string(),
            value: self.export_text(),
        })
    }

    fn from_typed(t: &TypedValue) -> Option<Cell> {
        let v = t.value.as_str();
        Some(match t.kind.as_str() {
            "text" => Cell::Text(v.to_string()),
            "int" => Cell::Int(v.parse().ok()?),
            "uint" => Cell::UInt(v.parse().ok()?),
            "float" => Cell::Float(v.parse().ok()?),
            "bool" => Cell::Bool(v.parse().ok()?),
            "decimal" => Cell::Decimal(Decimal::from_str(v).ok()?),
            "date" => Cell::Date(NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?),
            "time" => Cell::Time(NaiveTime::parse_from_str(v, "%H:%M:%S%.f").ok()?),
            "datetime" => Cell::DateTime(NaiveDateTime::parse_from_str(v, DATETIME_FORMAT).ok()?),
            "timestamptz" => Cell::DateTimeUtc(
                NaiveDateTime::parse_from_str(v, DATETIME_FORMAT)
                    .ok()?
                    .and_utc(),
            ),
            _ => return None,
        })
    }
}

/// Tries each Rust type in turn; the first the column's type accepts decodes the cell.
macro_rules! decode_cell {
    ($row:expr, $i:expr, [$($ty:ty => $make:expr),* $(,)?]) => {{
        $(
            if let Ok(v) = $row.try_get::<Option<$ty>, _>($i) {
                return Ok(v.map($make).unwrap_or(Cell::Null));
            }
        )*
        Err($row.column($i).type_info().name().to_string())
    }};
}

fn pg_cell(row: &PgRow, i: usize) -> std::result::Result<Cell, String> {
    if row.column(i).type_info().name() == "NUMERIC" {
        if let Ok(Some(mut d)) = row.try_get::<Option<Decimal>, _>(i) {
            // Keep the column's scale (a NUMERIC(14,2) zero is `0.00`, as exports write it):
            // the binary form's fourth 16-bit word is the display scale.
            let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
            if let Ok([_, _, _, _, _, _, hi, lo, ..]) = raw.as_bytes() {
                d.rescale(u16::from_be_bytes([*hi, *lo]).into());
            }
            return Ok(Cell::Decimal(d));
        }
    }
    decode_cell!(row, i, [
        String => Cell::Text,
        i64 => Cell::Int,
        i32 => |v| Cell::Int(v.into()),
        i16 => |v| Cell::Int(v.into()),
        Decimal => Cell::Decimal,
        NaiveDate => Cell::Date,
        NaiveDateTime => Cell::DateTime,
        DateTime<Utc> => Cell::DateTimeUtc,
        NaiveTime => Cell::Time,
        f64 => Cell::Float,
        f32 => |v| Cell::Float(v.into()),
        bool => Cell::Bool,
    ])
}

fn mysql_cell(row: &MySqlRow, i: usize) -> std::result::Result<Cell, String> {
    decode_cell!(row, i, [
        String => Cell::Text,
        i64 => Cell::Int,
        u64 => Cell::UInt,
        Decimal => Cell::Decimal,
        NaiveDate => Cell::Date,
        NaiveDateTime => Cell::DateTime,
        DateTime<Utc> => Cell::DateTimeUtc,
        NaiveTime => Cell::Time,
        f64 => Cell::Float,
        f32 => |v| Cell::Float(v.into()),
        bool => Cell::Bool,
    ])
}

fn sqlite_cell(row: &SqliteRow, i: usize) -> std::result::Result<Cell, String> {
    decode_cell!(row, i, [
        String => Cell::Text,
        i64 => Cell::Int,
        f64 => Cell::Float,
    ])
}

/// The database behind a feed, by URL scheme.
enum Connection {
    Postgres(PgConnection),
    MySql(MySqlConnection),
    Sqlite(SqliteConnection),
}

/// Reads one SQL feed in (watermark, key) order, a batch per query.
pub struct SqlSource {
    feed: String,
    cfg: SqlConfig,
    runtime: Runtime,
    connection: Connection,
    /// Texts that must never appear in an error: the URL and its password.
    secrets: Vec<String>,
    position: Option<SqlPosition>,
    unit: Option<Arc<InputUnit>>,
    rows_read: u64,
    exhausted: bool,
}

impl SqlSource {
    /// Resolves the URL, connects, and takes up the stored position if any.
    pub fn new(cfg: SqlConfig, cx: &ReadContext) -> Result<Self> {
        let feed = if cx.feed.is_empty() {
            "(unnamed)".to_string()
        } else {
            cx.feed.clone()
        };
        let config_error = |what: String| ConnectorError::Config(format!("feed {feed}: {what}"));
        if cfg.batch_size == 0 {
            return Err(config_error("batch_size must be at least 1".into()));
        }
        let query = check_query(&cfg.query).map_err(config_error)?;
        let url = match (&cfg.url_env, &cfg.url_file) {
            (Some(var), None) => std::env::var(var).map_err(|_| {
                config_error(format!(
                    "environment variable {var} (the database URL) is not set"
                ))
            })?,
            (None, Some(file)) => {
                let path = cx.base_dir.join(file);
                std::fs::read_to_string(&path).map_err(|e| {
                    config_error(format!(
                        "cannot read the database URL file {}: {e}",
                        path.display()
                    ))
                })?
            }
            _ => {
                return Err(config_error(
                    "give exactly one of url_env and url_file".into(),
                ))
            }
        };
        let url = url.trim().to_string();
        let secrets = secrets_of(&url);
        let position = match &cx.position {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<SqlPosition>(text)
                    .map_err(|e| config_error(format!("stored position unreadable: {e}")))?,
            ),
        };
        let runtime = Runtime::current_or_own()
            .map_err(|e| config_error(format!("cannot start a runtime: {e}")))?;
        let db_error = |e: sqlx::Error| ConnectorError::Database {
            feed: feed.clone(),
            message: mask(&e.to_string(), &secrets),
        };
        let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
        let connection = match scheme.as_str() {
            "postgres" | "postgresql" => {
                let opts = PgConnectOptions::from_str(&url).map_err(db_error)?;
                Connection::Postgres(runtime.block_on(opts.connect()).map_err(db_error)?)
            }
            "mysql" | "mariadb" => {
                let url = url.replacen("mariadb:", "mysql:", 1);
                let opts = MySqlConnectOptions::from_str(&url).map_err(db_error)?;
                Connection::MySql(runtime.block_on(opts.connect()).map_err(db_error)?)
            }
            "sqlite" => {
                let opts = SqliteConnectOptions::from_str(&url).map_err(db_error)?;
                Connection::Sqlite(runtime.block_on(opts.connect()).map_err(db_error)?)
            }
            _ => {
                return Err(config_error(format!(
                "unsupported database URL scheme {scheme:?} (postgres, mysql, mariadb or sqlite)"
            )))
            }
        };
        // Defence in depth: the session itself refuses writes.
        let read_only = match &connection {
            Connection::Postgres(_) => "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            Connection::MySql(_) => "SET SESSION TRANSACTION READ ONLY",
            Connection::Sqlite(_) => "PRAGMA query_only = ON",
        };
        let mut connection = connection;
        let done = match &mut connection {
            Connection::Postgres(c) => runtime
                .block_on(sqlx::query(read_only).execute(&mut *c))
                .map(|_| ()),
            Connection::MySql(c) => runtime
                .block_on(sqlx::query(read_only).execute(&mut *c))
                .map(|_| ()),
            Connection::Sqlite(c) => runtime
                .block_on(sqlx::query(read_only).execute(&mut *c))
                .map(|_| ()),
        };
        done.map_err(db_error)?;
        let cfg = SqlConfig {
            query: query.to_string(),
            ..cfg
        };
        tracing::info!(feed = %feed, database = %scheme, resume = position.is_some(), "SQL source connected");
        Ok(SqlSource {
            feed,
            cfg,
            runtime,
            connection,
            secrets,
            position,
            unit: None,
            rows_read: 0,
            exhausted: false,
        })
    }

    /// The position reached so far.
    pub fn position(&self) -> Option<&SqlPosition> {
        self.position.as_ref()
    }

    fn db_error(&self, message: String) -> ConnectorError {
        ConnectorError::Database {
            feed: self.feed.clone(),
            message: mask(&message, &self.secrets),
        }
    }

    /// One batch's SQL for a dialect: `$n` placeholders for PostgreSQL, `?` elsewhere.
    fn batch_sql(&self, postgres: bool, quote: char, resume: bool) -> String {
        let q = |name: &str| {
            let escaped = name.replace(quote, &format!("{quote}{quote}"));
            format!("{quote}{escaped}{quote}")
        };
        let (wm, key) = (q(&self.cfg.watermark), q(&self.cfg.key));
        let after = if !resume {
            String::new()
        } else if postgres {
            format!(" AND ({wm} > $1 OR ({wm} = $1 AND {key} > $2))")
        } else {
            format!(" AND ({wm} > ? OR ({wm} = ? AND {key} > ?))")
        };
        format!(
            "SELECT * FROM ({query}) AS xinyong_feed WHERE {wm} IS NOT NULL{after} ORDER BY {wm}, {key} LIMIT {limit}",
            query = self.cfg.query,
            limit = self.cfg.batch_size,
        )
    }

    /// Runs one batch query: the column names and the decoded rows.
    fn fetch(&mut self) -> Result<(Vec<String>, Vec<Vec<Cell>>)> {
        let after = match &self.position {
            None => None,
            Some(p) => Some(
                Cell::from_typed(&p.watermark)
                    .zip(Cell::from_typed(&p.key))
                    .ok_or_else(|| {
                        ConnectorError::Config(format!(
                            "feed {}: stored position has an unknown value kind",
                            self.feed
                        ))
                    })?,
            ),
        };
        macro_rules! bind {
            ($q:expr, $cell:expr) => {
                match $cell.clone() {
                    Cell::Null => $q.bind(None::<String>),
                    Cell::Text(v) => $q.bind(v),
                    Cell::Int(v) => $q.bind(v),
                    Cell::UInt(v) => $q.bind(v as i64),
                    Cell::Float(v) => $q.bind(v),
                    Cell::Bool(v) => $q.bind(v),
                    Cell::Decimal(v) => $q.bind(v.to_string()),
                    Cell::Date(v) => $q.bind(v.format("%Y-%m-%d").to_string()),
                    Cell::Time(v) => $q.bind(v.format("%H:%M:%S%.f").to_string()),
                    Cell::DateTime(v) => $q.bind(v.format(DATETIME_FORMAT).to_string()),
                    Cell::DateTimeUtc(v) => {
                        $q.bind(v.naive_utc().format(DATETIME_FORMAT).to_string())
                    }
                }
            };
            ($q:expr, $cell:expr, typed) => {
                match $cell.clone() {
                    Cell::Null => $q.bind(None::<String>),
                    Cell::Text(v) => $q.bind(v),
                    Cell::Int(v) => $q.bind(v),
                    Cell::UInt(v) => $q.bind(v as i64),
                    Cell::Float(v) => $q.bind(v),
                    Cell::Bool(v) => $q.bind(v),
                    Cell::Decimal(v) => $q.bind(v),
                    Cell::Date(v) => $q.bind(v),
                    Cell::Time(v) => $q.bind(v),
                    Cell::DateTime(v) => $q.bind(v),
                    Cell::DateTimeUtc(v) => $q.bind(v),
                }
            };
        }
        macro_rules! decode_rows {
            ($feed:expr, $rows:expr, $cell:ident) => {{
                let names: Vec<String> = $rows
                    .first()
                    .map(|r| r.columns().iter().map(|c| c.name().to_string()).collect())
                    .unwrap_or_default();
                let mut out = Vec::with_capacity($rows.len());
                let mut unreadable = None;
                'rows: for r in &$rows {
                    let mut cells = Vec::with_capacity(names.len());
                    for (i, name) in names.iter().enumerate() {
                        match $cell(r, i) {
                            Ok(c) => cells.push(c),
                            Err(ty) => {
                                unreadable = Some(ConnectorError::Database {
                                    feed: $feed.clone(),
                                    message: format!(
                                        "column {name:?} has type {ty}, which the SQL source cannot read"
                                    ),
                                });
                                break 'rows;
                            }
                        }
                    }
                    out.push(cells);
                }
                match unreadable {
                    Some(e) => Err(e),
                    None => Ok((names, out)),
                }
            }};
        }
        let (postgres, quote) = match self.connection {
            Connection::Postgres(_) => (true, '"'),
            Connection::MySql(_) => (false, '`'),
            Connection::Sqlite(_) => (false, '"'),
        };
        let sql = self.batch_sql(postgres, quote, after.is_some());
        let (feed, runtime) = (&self.feed, &self.runtime);
        // PostgreSQL numbers its parameters ($1 twice); the others take `?` three times.
        let result = match &mut self.connection {
            Connection::Postgres(conn) => {
                let mut q = sqlx::query(&sql);
                if let Some((wm, key)) = &after {
                    q = bind!(q, wm, typed);
                    q = bind!(q, key, typed);
                }
                runtime
                    .block_on(q.fetch_all(&mut *conn))
                    .map(|rows| decode_rows!(feed, rows, pg_cell))
            }
            Connection::MySql(conn) => {
                let mut q = sqlx::query(&sql);
                if let Some((wm, key)) = &after {
                    q = bind!(q, wm, typed);
                    q = bind!(q, wm, typed);
                    q = bind!(q, key, typed);
                }
                runtime
                    .block_on(q.fetch_all(&mut *conn))
                    .map(|rows| decode_rows!(feed, rows, mysql_cell))
            }
            Connection::Sqlite(conn) => {
                let mut q = sqlx::query(&sql);
                if let Some((wm, key)) = &after {
                    q = bind!(q, wm);
                    q = bind!(q, wm);
                    q = bind!(q, key);
                }
                runtime
                    .block_on(q.fetch_all(&mut *conn))
                    .map(|rows| decode_rows!(feed, rows, sqlite_cell))
            }
        };
        result.map_err(|e| self.db_error(e.to_string()))?
    }
}

impl Source for SqlSource {
    fn next_batch(&mut self) -> Result<Option<RawBatch>> {
        if self.exhausted {
            return Ok(None);
        }
        let (names, rows) = self.fetch()?;
        if rows.len() < self.cfg.batch_size {
            self.exhausted = true;
        }
        if rows.is_empty() {
            return Ok(None);
        }
        // Headers as file sources give them (trimmed, full-width brackets made ASCII).
        let names: Vec<String> = names.iter().map(|n| normalise_header(n)).collect();
        let column = |name: &str| {
            let wanted = normalise_header(name);
            names.iter().position(|n| *n == wanted).ok_or_else(|| {
                ConnectorError::Config(format!(
                    "feed {}: the query has no column {name:?} (its columns: {})",
                    self.feed,
                    names.join(", ")
                ))
            })
        };
        let (wm_at, key_at) = (column(&self.cfg.watermark)?, column(&self.cfg.key)?);
        let unit = match &self.unit {
            Some(u) if u.headers == names => u.clone(),
            _ => {
                let u = Arc::new(InputUnit {
                    path: PathBuf::from(format!("sql:{}", self.feed)),
                    bytes: None,
                    sha256: hex::encode(Sha256::digest(
                        format!("sql\0{}\0{}", self.feed, self.cfg.query).as_bytes(),
                    )),
                    headers: names.clone(),
                    header_line: 0,
                    encoding: "sql",
                });
                self.unit = Some(u.clone());
                u
            }
        };
        let last = rows.last().expect("not empty");
        let position = match (last[wm_at].typed(), last[key_at].typed()) {
            (Some(watermark), Some(key)) => SqlPosition { watermark, key },
            _ => {
                return Err(ConnectorError::Database {
                    feed: self.feed.clone(),
                    message: format!("the key column {:?} is NULL in a row", self.cfg.key),
                })
            }
        };
        let raw_rows = rows
            .into_iter()
            .map(|cells| {
                self.rows_read += 1;
                RawRow::new(
                    self.rows_read,
                    cells.iter().map(Cell::export_text).collect(),
                )
            })
            .collect();
        self.position = Some(position);
        Ok(Some(RawBatch {
            unit,
            rows: raw_rows,
        }))
    }

    fn completed(&self) -> Vec<Arc<InputUnit>> {
        Vec::new()
    }

    fn checkpoint(&self) -> Option<String> {
        self.position
            .as_ref()
            .map(|p| serde_json::to_string(p).expect("a position serialises"))
    }
}

/// The URL and its password (raw and percent-decoded): what masking removes.
fn secrets_of(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    if let Some(rest) = url.split_once("://").map(|(_, r)| r) {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, password)) = userinfo.split_once(':') {
                if !password.is_empty() {
                    out.push(password.to_string());
                    out.push(percent_decode(password));
                }
            }
        }
    }
    out.retain(|s| s.len() >= 3);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces every secret in a message with `***`.
fn mask(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_string();
    for s in secrets {
        out = out.replace(s.as_str(), "***");
    }
    out
}

#[cfg(test)]
mod tests;
