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
//! it back in [`ReadContext::position`].
//!
//! A run starts `look_back_seconds` (default 600) before the stored watermark, so a
//! row committed late with an older watermark is still read; the rows at or near the
//! position that an earlier run read (kept in the position as (watermark, key) pairs)
//! are not handed on again, so a re-read reads nothing. A watermark column holding
//! text is compared as timestamps, not as text (`2024/3/5 9:00` and
//! `2024-03-05 09:00:00` are the same time): such a feed is walked by key and filtered
//! here. Rows whose watermark is NULL, or text that is not a time, cannot be placed:
//! they are not read, and counted in a warning of the run.

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
    /// How far before the stored watermark a run starts reading again, in seconds (late
    /// commits). Applies to date and time watermarks; numeric ones restart at the
    /// stored value itself.
    #[serde(default = "default_look_back")]
    pub look_back_seconds: u64,
}

fn default_look_back() -> u64 {
    600
}

/// The most (watermark, key) pairs a position keeps of the rows near it.
const WINDOW_CAP: usize = 50_000;

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
    /// The rows already read within the look-back window before `watermark`: their
    /// watermark (of `watermark`'s kind) and key, as export text.
    #[serde(default)]
    pub window: Vec<(String, String)>,
}

/// A watermark as it compares: times as times, numbers as numbers.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Mark {
    Time(NaiveDateTime),
    Number(f64),
    Text(String),
}

impl Mark {
    /// The mark of a cell; text is read as a time, `None` when it is not one.
    fn of(c: &Cell) -> Option<Mark> {
        Some(match c {
            Cell::Null => return None,
            Cell::Text(t) => Mark::Time(parse_time(t)?),
            Cell::Date(d) => Mark::Time(d.and_time(NaiveTime::MIN)),
            Cell::DateTime(t) => Mark::Time(*t),
            Cell::DateTimeUtc(t) => Mark::Time(t.naive_utc()),
            Cell::Int(i) => Mark::Number(*i as f64),
            Cell::UInt(u) => Mark::Number(*u as f64),
            Cell::Float(f) => Mark::Number(*f),
            Cell::Decimal(d) => Mark::Number(d.to_string().parse().unwrap_or(f64::NAN)),
            other => Mark::Text(other.export_text()),
        })
    }

    /// The mark as text, for the position's window: times in one format.
    fn canon(&self) -> String {
        match self {
            Mark::Time(t) => t.format(DATETIME_FORMAT).to_string(),
            Mark::Number(n) => n.to_string(),
            Mark::Text(t) => t.clone(),
        }
    }

    /// The mark of a window entry's text.
    fn of_canon(text: &str) -> Mark {
        if let Some(t) = parse_time(text) {
            Mark::Time(t)
        } else if let Ok(n) = text.parse() {
            Mark::Number(n)
        } else {
            Mark::Text(text.to_string())
        }
    }

    /// The earliest mark still in the look-back window of `self`.
    fn window_start(&self, look_back: chrono::Duration) -> Mark {
        match self {
            Mark::Time(t) => Mark::Time(t.checked_sub_signed(look_back).unwrap_or(*t)),
            other => other.clone(),
        }
    }
}

/// A text watermark as a time: the formats departments' databases hold.
fn parse_time(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    const TIMES: [&str; 8] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M",
        "%Y%m%d%H%M%S",
        "%Y年%m月%d日 %H:%M:%S",
        "%Y年%m月%d日 %H时%M分%S秒",
    ];
    if let Some(t) = TIMES
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
    {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Some(t.naive_utc());
    }
    ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(t, f).ok())
        .map(|d| d.and_time(NaiveTime::MIN))
}

/// Where a query starts.
enum Start {
    /// From the first row.
    Beginning,
    /// From the rows whose watermark is at least this (a run's first query).
    From(Cell),
    /// Strictly after this (watermark, key), or this key when walking by key.
    After(Cell, Cell),
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

impl Cell {
    /// The watermark a run starts from: `look_back` earlier for times (a date is its
    /// own day, read from its start).
    fn earlier_by(&self, look_back: chrono::Duration) -> Cell {
        match self {
            Cell::DateTime(t) => Cell::DateTime(t.checked_sub_signed(look_back).unwrap_or(*t)),
            Cell::DateTimeUtc(t) => {
                Cell::DateTimeUtc(t.checked_sub_signed(look_back).unwrap_or(*t))
            }
            other => other.clone(),
        }
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
    /// The position this run reaches (the stored one until a row is read).
    position: Option<SqlPosition>,
    /// The rows an earlier run read near its position: (watermark, key) texts.
    known: std::collections::HashSet<(String, String)>,
    /// Rows with a smaller watermark were read by an earlier run.
    start_mark: Option<Mark>,
    /// Where the next query starts.
    start: Start,
    /// Walked by key and filtered here (a text watermark), once known.
    by_key: Option<bool>,
    /// The greatest watermark read in this run, and its row's (watermark, key).
    newest: Option<(Mark, TypedValue, TypedValue)>,
    /// (watermark, key) of rows read in this run near the greatest watermark.
    recent: Vec<(Mark, String, String)>,
    /// Rows that cannot be placed: NULL watermark, or text that is not a time (with an
    /// example).
    null_rows: u64,
    unplaceable: (u64, Option<String>),
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
        let look_back =
            chrono::Duration::seconds(cfg.look_back_seconds.min(10 * 365 * 86_400) as i64);
        let stored = position.as_ref().and_then(|p| {
            let cell = Cell::from_typed(&p.watermark)?;
            Some((Mark::of(&cell)?, cell))
        });
        let start = match &stored {
            None => Start::Beginning,
            Some((_, cell)) => Start::From(cell.earlier_by(look_back)),
        };
        let start_mark = stored.as_ref().map(|(m, _)| m.window_start(look_back));
        let mut known: std::collections::HashSet<(String, String)> = position
            .iter()
            .flat_map(|p| p.window.iter().cloned())
            .collect();
        if let Some((m, _)) = &stored {
            if let Some(p) = &position {
                known.insert((m.canon(), p.key.value.clone()));
            }
        }
        Ok(SqlSource {
            feed,
            cfg,
            runtime,
            connection,
            secrets,
            position,
            known,
            start_mark,
            start,
            by_key: None,
            newest: None,
            recent: Vec::new(),
            null_rows: 0,
            unplaceable: (0, None),
            unit: None,
            rows_read: 0,
            exhausted: false,
        })
    }

    fn db_error(&self, message: String) -> ConnectorError {
        ConnectorError::Database {
            feed: self.feed.clone(),
            message: mask(&message, &self.secrets),
        }
    }

    /// The dialect: `$n` placeholders (PostgreSQL) or `?`, and the identifier quote.
    fn dialect(&self) -> (bool, char) {
        match self.connection {
            Connection::Postgres(_) => (true, '"'),
            Connection::MySql(_) => (false, '`'),
            Connection::Sqlite(_) => (false, '"'),
        }
    }

    /// A column name quoted for the dialect.
    fn quoted(&self, name: &str) -> String {
        let (_, quote) = self.dialect();
        let escaped = name.replace(quote, &format!("{quote}{quote}"));
        format!("{quote}{escaped}{quote}")
    }

    /// The feed's query wrapped, with a condition and what follows it.
    fn wrapped(&self, select: &str, condition: &str, rest: &str) -> String {
        format!(
            "SELECT {select} FROM ({query}) AS xinyong_feed WHERE {condition}{rest}",
            query = self.cfg.query
        )
    }

    /// One batch's SQL and parameters.
    fn batch_query(&self) -> (String, Vec<Cell>) {
        let (postgres, _) = self.dialect();
        let p = |n: usize| {
            if postgres {
                format!("${n}")
            } else {
                "?".into()
            }
        };
        let (wm, key) = (self.quoted(&self.cfg.watermark), self.quoted(&self.cfg.key));
        let by_key = self.by_key == Some(true);
        let (after, params) = match (&self.start, by_key) {
            (Start::Beginning, _) | (Start::From(_), true) => (String::new(), vec![]),
            (Start::From(w), false) => (format!(" AND {wm} >= {}", p(1)), vec![w.clone()]),
            (Start::After(_, k), true) => (format!(" AND {key} > {}", p(1)), vec![k.clone()]),
            (Start::After(w, k), false) => (
                format!(
                    " AND ({wm} > {} OR ({wm} = {} AND {key} > {}))",
                    p(1),
                    p(2),
                    p(3)
                ),
                vec![w.clone(), w.clone(), k.clone()],
            ),
        };
        let order = if by_key {
            key.clone()
        } else {
            format!("{wm}, {key}")
        };
        let sql = self.wrapped(
            "*",
            &format!("{wm} IS NOT NULL{after}"),
            &format!(" ORDER BY {order} LIMIT {}", self.cfg.batch_size),
        );
        (sql, params)
    }

    /// Before the first batch: whether the watermark holds text (then the feed is
    /// walked by key), and how many rows have none.
    fn probe(&mut self) -> Result<()> {
        let wm = self.quoted(&self.cfg.watermark);
        let sql = self.wrapped(&wm, &format!("{wm} IS NOT NULL"), " LIMIT 1");
        let (_, rows) = self.run_query(&sql, &[])?;
        self.by_key = Some(matches!(
            rows.first().and_then(|r| r.first()),
            Some(Cell::Text(_))
        ));
        let sql = self.wrapped("COUNT(*)", &format!("{wm} IS NULL"), "");
        let (_, rows) = self.run_query(&sql, &[])?;
        self.null_rows = match rows.first().and_then(|r| r.first()) {
            Some(Cell::Int(n)) => (*n).max(0) as u64,
            Some(Cell::UInt(n)) => *n,
            Some(Cell::Decimal(d)) => d.to_string().parse().unwrap_or(0),
            Some(Cell::Text(t)) => t.parse().unwrap_or(0),
            _ => 0,
        };
        if self.null_rows > 0 {
            tracing::warn!(feed = %self.feed, rows = self.null_rows, column = %self.cfg.watermark, "rows with a NULL watermark are not read");
        }
        Ok(())
    }

    /// Runs one query: the column names and the decoded rows.
    fn run_query(&mut self, sql: &str, params: &[Cell]) -> Result<(Vec<String>, Vec<Vec<Cell>>)> {
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
        let (feed, runtime) = (&self.feed, &self.runtime);
        let result = match &mut self.connection {
            Connection::Postgres(conn) => {
                let mut q = sqlx::query(sql);
                for c in params {
                    q = bind!(q, c, typed);
                }
                runtime
                    .block_on(q.fetch_all(&mut *conn))
                    .map(|rows| decode_rows!(feed, rows, pg_cell))
            }
            Connection::MySql(conn) => {
                let mut q = sqlx::query(sql);
                for c in params {
                    q = bind!(q, c, typed);
                }
                runtime
                    .block_on(q.fetch_all(&mut *conn))
                    .map(|rows| decode_rows!(feed, rows, mysql_cell))
            }
            Connection::Sqlite(conn) => {
                let mut q = sqlx::query(sql);
                for c in params {
                    q = bind!(q, c);
                }
                runtime
                    .block_on(q.fetch_all(&mut *conn))
                    .map(|rows| decode_rows!(feed, rows, sqlite_cell))
            }
        };
        result.map_err(|e| self.db_error(e.to_string()))?
    }

    /// Notes a row read in this run (for the position and its window); `false` when an
    /// earlier run read it, or its watermark cannot be placed.
    fn note(&mut self, wm: &Cell, key: &Cell) -> bool {
        let Some(mark) = Mark::of(wm) else {
            self.unplaceable.0 += 1;
            self.unplaceable.1.get_or_insert_with(|| wm.export_text());
            return false;
        };
        let (canon, key_text) = (mark.canon(), key.export_text());
        let typed_wm = match wm {
            // A text watermark is kept as the time it says.
            Cell::Text(_) => match &mark {
                Mark::Time(t) => Cell::DateTime(*t).typed(),
                _ => wm.typed(),
            },
            _ => wm.typed(),
        };
        if let (Some(w), Some(k)) = (typed_wm, key.typed()) {
            if self.newest.as_ref().is_none_or(|(m, _, _)| mark >= *m) {
                self.newest = Some((mark.clone(), w, k));
            }
        }
        let earlier = self.start_mark.as_ref().is_some_and(|start| mark < *start)
            || self.known.contains(&(canon.clone(), key_text.clone()));
        self.recent.push((mark, canon, key_text));
        if self.recent.len() > 2 * WINDOW_CAP {
            self.prune_recent();
        }
        !earlier
    }

    /// Keeps of `recent` only the rows within the look-back window of the newest.
    fn prune_recent(&mut self) {
        let Some((newest, _, _)) = &self.newest else {
            return;
        };
        let start = newest.window_start(self.look_back());
        self.recent.retain(|(m, _, _)| *m >= start);
        if self.recent.len() > WINDOW_CAP {
            self.recent
                .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            let cut = self.recent.len() - WINDOW_CAP;
            self.recent.drain(..cut);
        }
    }

    fn look_back(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.cfg.look_back_seconds.min(10 * 365 * 86_400) as i64)
    }
}

impl Source for SqlSource {
    fn next_batch(&mut self) -> Result<Option<RawBatch>> {
        if self.by_key.is_none() {
            self.probe()?;
        }
        loop {
            if self.exhausted {
                return Ok(None);
            }
            let (sql, params) = self.batch_query();
            let (names, rows) = self.run_query(&sql, &params)?;
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
            let mut raw_rows = Vec::with_capacity(rows.len());
            for cells in &rows {
                if cells[key_at] == Cell::Null {
                    return Err(ConnectorError::Database {
                        feed: self.feed.clone(),
                        message: format!("the key column {:?} is NULL in a row", self.cfg.key),
                    });
                }
                if self.note(&cells[wm_at], &cells[key_at]) {
                    self.rows_read += 1;
                    raw_rows.push(RawRow::new(
                        self.rows_read,
                        cells.iter().map(Cell::export_text).collect(),
                    ));
                }
            }
            let last = rows.last().expect("not empty");
            self.start = Start::After(last[wm_at].clone(), last[key_at].clone());
            if !raw_rows.is_empty() {
                return Ok(Some(RawBatch {
                    unit,
                    rows: raw_rows,
                }));
            }
        }
    }

    fn completed(&self) -> Vec<Arc<InputUnit>> {
        Vec::new()
    }

    fn checkpoint(&self) -> Option<String> {
        let previous = self.position.as_ref();
        let (mark, watermark, key) = match (&self.newest, previous) {
            (Some((m, w, k)), Some(p)) => {
                let stored = Cell::from_typed(&p.watermark).and_then(|c| Mark::of(&c));
                match stored {
                    Some(s) if s > *m => (s, p.watermark.clone(), p.key.clone()),
                    _ => (m.clone(), w.clone(), k.clone()),
                }
            }
            (Some((m, w, k)), None) => (m.clone(), w.clone(), k.clone()),
            (None, Some(p)) => return Some(serde_json::to_string(p).unwrap_or_default()),
            (None, None) => return None,
        };
        let start = mark.window_start(self.look_back());
        let mut window: Vec<(Mark, String, String)> = previous
            .into_iter()
            .flat_map(|p| p.window.iter())
            .map(|(w, k)| (Mark::of_canon(w), w.clone(), k.clone()))
            .chain(self.recent.iter().cloned())
            .filter(|(m, _, _)| *m >= start)
            .collect();
        window.sort_by(|a, b| {
            a.0.partial_cmp(&b.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.2.cmp(&b.2))
        });
        window.dedup_by(|a, b| a.1 == b.1 && a.2 == b.2);
        let cut = window.len().saturating_sub(WINDOW_CAP);
        let position = SqlPosition {
            watermark,
            key,
            window: window
                .into_iter()
                .skip(cut)
                .map(|(_, w, k)| (w, k))
                .collect(),
        };
        serde_json::to_string(&position).ok()
    }

    fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.null_rows > 0 {
            out.push(format!(
                "{} rows have no watermark ({} is NULL) and are not read: fill the column",
                self.null_rows, self.cfg.watermark
            ));
        }
        if let (n @ 1.., example) = &self.unplaceable {
            out.push(format!(
                "{n} rows have a watermark that is not a time (such as {:?}) and are not read: fix the column {}",
                example.clone().unwrap_or_default(),
                self.cfg.watermark
            ));
        }
        out
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
