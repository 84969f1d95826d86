//! The state store: an embedded SQLite database (sqlx) holding runs, the files each
//! feed has read, and the push ledger — an outbox per platform in which each record
//! version moves `pending → sent → acked | rejected`, with the batch and its receipt.
//!
//! Every change that must be all-or-nothing (a feed's files and counts; a batch and its
//! records' states) is one transaction, so a crash leaves the store at one side of it.

use crate::ingest::{FeedCounts, FileRead};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A state-store failure (the run stops: without its state it cannot be trusted).
#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {source}")]
pub struct StateError {
    path: PathBuf,
    #[source]
    source: sqlx::Error,
}

type Result<T> = std::result::Result<T, StateError>;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS feed_runs (
    run_id TEXT NOT NULL,
    feed TEXT NOT NULL,
    dataset TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    counts TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (run_id, feed)
);
CREATE TABLE IF NOT EXISTS files_read (
    feed TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    rows INTEGER NOT NULL,
    encoding TEXT NOT NULL,
    run_id TEXT NOT NULL,
    read_at TEXT NOT NULL,
    bytes INTEGER,
    PRIMARY KEY (feed, sha256)
);
CREATE TABLE IF NOT EXISTS push_ledger (
    platform TEXT NOT NULL,
    dataset TEXT NOT NULL,
    record_id TEXT NOT NULL,
    source_unit TEXT NOT NULL,
    version TEXT NOT NULL,
    op TEXT NOT NULL,
    status TEXT NOT NULL,
    batch_id TEXT,
    code TEXT,
    message TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (platform, dataset, record_id)
);
CREATE INDEX IF NOT EXISTS push_ledger_status ON push_ledger (platform, status);
CREATE INDEX IF NOT EXISTS push_ledger_batch ON push_ledger (platform, batch_id);
CREATE TABLE IF NOT EXISTS push_batches (
    platform TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    dataset TEXT NOT NULL,
    source_unit TEXT NOT NULL,
    records INTEGER NOT NULL,
    body BLOB NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER,
    receipt TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (platform, batch_id)
);
CREATE INDEX IF NOT EXISTS push_batches_status ON push_batches (platform, status);
CREATE TABLE IF NOT EXISTS record_overrides (
    dataset TEXT NOT NULL,
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    by_whom TEXT NOT NULL,
    at TEXT NOT NULL,
    released_at TEXT,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS record_overrides_active ON record_overrides (dataset, record_id);
CREATE TABLE IF NOT EXISTS leases (
    job TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS job_runs (
    job TEXT NOT NULL,
    scheduled_for INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    outcome TEXT,
    run_id TEXT
);
CREATE INDEX IF NOT EXISTS job_runs_job ON job_runs (job, scheduled_for);
CREATE TABLE IF NOT EXISTS source_positions (
    feed TEXT PRIMARY KEY,
    position TEXT NOT NULL,
    run_id TEXT NOT NULL,
    saved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reconciliations (
    at TEXT NOT NULL,
    platform TEXT NOT NULL,
    dataset TEXT NOT NULL,
    source_unit TEXT NOT NULL,
    clean INTEGER NOT NULL,
    differences INTEGER NOT NULL,
    result TEXT NOT NULL
);
"#;

/// A ledger entry: what the pipeline believes a platform holds (or is about to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Version sent (a withdraw's version is `w-<record version>`).
    pub version: String,
    /// `pending`, `sent`, `acked` or `rejected`.
    pub status: String,
    /// `upsert` or `withdraw`.
    pub op: String,
    /// The reporting unit.
    pub source_unit: String,
}

/// A change to send: one record's desired state on a platform.
#[derive(Debug, Clone)]
pub struct PendingOp {
    /// Record id.
    pub record_id: String,
    /// Reporting unit.
    pub source_unit: String,
    /// Version to send.
    pub version: String,
    /// `upsert` or `withdraw`.
    pub op: String,
    /// Why (withdrawals).
    pub reason: Option<String>,
}

/// A feed's latest run, for `xinyong status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastFeedRun {
    /// Feed.
    pub feed: String,
    /// Run id.
    pub run_id: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// `ok` or `failed`.
    pub outcome: String,
    /// Counts (JSON of `FeedCounts`).
    pub counts: String,
    /// The error, when failed.
    pub error: Option<String>,
    /// When the feed finished (RFC 3339).
    pub finished_at: String,
    /// `run`, `demo`, `push`, `schedule:<job>`, …
    pub kind: String,
}

/// A manual withdrawal or an objection hold in force.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Override {
    /// Dataset.
    pub dataset: String,
    /// Record id.
    pub record_id: String,
    /// `withdraw` or `hold`.
    pub kind: String,
    /// Why.
    pub reason: String,
    /// Who.
    pub by_whom: String,
    /// Since when (RFC 3339).
    pub at: String,
}

/// A batch sent but not yet resolved (no final receipt).
#[derive(Debug, Clone)]
pub struct OpenBatch {
    /// Batch id (= Idempotency-Key).
    pub batch_id: String,
    /// Dataset.
    pub dataset: String,
    /// The exact body sent (resent byte for byte).
    pub body: Vec<u8>,
}

/// One per-record rejection from a receipt.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Record id.
    pub record_id: String,
    /// Machine code.
    pub code: String,
    /// Human text.
    pub message: String,
}

/// How asking for a job's lease ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// Free: now ours.
    Acquired,
    /// Held by a run whose heartbeat went stale (killed, machine lost): now ours.
    TakenOver {
        /// Who held it.
        previous_holder: String,
        /// Its last heartbeat (Unix seconds).
        last_heartbeat: i64,
    },
    /// Held by a live run: not ours.
    Held {
        /// Who holds it.
        holder: String,
        /// Its last heartbeat (Unix seconds).
        last_heartbeat: i64,
    },
}

/// The embedded state store.
#[derive(Clone)]
pub struct StateStore {
    pool: SqlitePool,
    path: PathBuf,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl StateStore {
    /// Opens (creating if needed) the store at `path`.
    pub async fn open(path: &Path) -> Result<StateStore> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let err = |source| StateError {
            path: path.to_path_buf(),
            source,
        };
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts)
            .await
            .map_err(err)?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await.map_err(err)?;
        // Stores made before files_read had its `bytes` column get it (empty for the
        // files they recorded).
        let columns = sqlx::query("SELECT name FROM pragma_table_info('files_read')")
            .fetch_all(&pool)
            .await
            .map_err(err)?;
        if !columns.iter().any(|r| r.get::<String, _>(0) == "bytes") {
            sqlx::query("ALTER TABLE files_read ADD COLUMN bytes INTEGER")
                .execute(&pool)
                .await
                .map_err(err)?;
        }
        Ok(StateStore {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(sqlx::Error) -> StateError + '_ {
        |source| StateError {
            path: self.path.clone(),
            source,
        }
    }

    /// Content hashes of the files a feed has read, and their sizes — `None` when some
    /// size is unknown (files recorded before sizes were kept). A file of any other size
    /// cannot have been read, so the source hashes it while reading instead of before.
    pub async fn files_read(&self, feed: &str) -> Result<(HashSet<String>, Option<HashSet<u64>>)> {
        let rows = sqlx::query("SELECT sha256, bytes FROM files_read WHERE feed = ?")
            .bind(feed)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        let hashes = rows.iter().map(|r| r.get::<String, _>(0)).collect();
        let sizes = rows
            .iter()
            .map(|r| r.get::<Option<i64>, _>(1).map(|b| b as u64))
            .collect();
        Ok((hashes, sizes))
    }

    /// The position a feed's source reached in the last run that recorded one (SQL:
    /// last watermark and key), as the source wrote it.
    pub async fn source_position(&self, feed: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT position FROM source_positions WHERE feed = ?")
            .bind(feed)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// Records a feed's source position — called only once the run's records are
    /// safely in the snapshot, so a crash before it re-reads (and dedupe absorbs that).
    pub async fn save_source_position(
        &self,
        feed: &str,
        run_id: &str,
        position: &str,
    ) -> Result<()> {
        sqlx::query("INSERT OR REPLACE INTO source_positions (feed, position, run_id, saved_at) VALUES (?, ?, ?, ?)")
            .bind(feed)
            .bind(position)
            .bind(run_id)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Records the start of a run.
    pub async fn begin_run(&self, run_id: &str, kind: &str) -> Result<()> {
        sqlx::query("INSERT INTO runs (run_id, kind, started_at) VALUES (?, ?, ?)")
            .bind(run_id)
            .bind(kind)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Records a feed's outcome and, in the same transaction, the files it read — called
    /// only once the feed's records are safely in the snapshot.
    pub async fn record_feed(
        &self,
        run_id: &str,
        feed: &str,
        dataset: &str,
        counts: &FeedCounts,
        files: &[FileRead],
        error: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(self.err())?;
        let at = now();
        sqlx::query(
            "INSERT OR REPLACE INTO feed_runs (run_id, feed, dataset, outcome, error, counts, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(run_id)
        .bind(feed)
        .bind(dataset)
        .bind(if error.is_some() { "failed" } else { "ok" })
        .bind(error)
        .bind(serde_json::to_string(counts).expect("counts serialise"))
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(self.err())?;
        for f in files {
            sqlx::query(
                "INSERT OR IGNORE INTO files_read (feed, sha256, path, rows, encoding, run_id, read_at, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(feed)
            .bind(&f.sha256)
            .bind(&f.path)
            .bind(f.rows as i64)
            .bind(&f.encoding)
            .bind(run_id)
            .bind(&at)
            .bind(f.bytes.map(|b| b as i64))
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        }
        tx.commit().await.map_err(self.err())
    }

    /// Records the end of a run.
    pub async fn finish_run(
        &self,
        run_id: &str,
        outcome: &str,
        summary: &serde_json::Value,
    ) -> Result<()> {
        sqlx::query("UPDATE runs SET finished_at = ?, outcome = ?, summary = ? WHERE run_id = ?")
            .bind(now())
            .bind(outcome)
            .bind(summary.to_string())
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// The ledger of one platform and dataset: record id → (version, status).
    pub async fn ledger(
        &self,
        platform: &str,
        dataset: &str,
    ) -> Result<HashMap<String, LedgerEntry>> {
        let rows = sqlx::query(
            "SELECT record_id, version, status, op, source_unit FROM push_ledger WHERE platform = ? AND dataset = ?",
        )
        .bind(platform)
        .bind(dataset)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<String, _>(0),
                    LedgerEntry {
                        version: r.get(1),
                        status: r.get(2),
                        op: r.get(3),
                        source_unit: r.get(4),
                    },
                )
            })
            .collect())
    }

    /// Marks desired record states as pending for a platform (new records, new
    /// versions, withdrawals).
    pub async fn mark_pending(
        &self,
        platform: &str,
        dataset: &str,
        items: &[PendingOp],
    ) -> Result<()> {
        for chunk in items.chunks(500) {
            let mut tx = self.pool.begin().await.map_err(self.err())?;
            let at = now();
            for p in chunk {
                sqlx::query(
                    "INSERT INTO push_ledger (platform, dataset, record_id, source_unit, version, op, status, message, updated_at)
                     VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)
                     ON CONFLICT (platform, dataset, record_id) DO UPDATE SET
                       version = excluded.version, source_unit = excluded.source_unit, op = excluded.op,
                       status = 'pending', batch_id = NULL, code = NULL, message = excluded.message, updated_at = excluded.updated_at",
                )
                .bind(platform)
                .bind(dataset)
                .bind(&p.record_id)
                .bind(&p.source_unit)
                .bind(&p.version)
                .bind(&p.op)
                .bind(&p.reason)
                .bind(&at)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
            }
            tx.commit().await.map_err(self.err())?;
        }
        Ok(())
    }

    /// Pending ledger rows of a platform and dataset (with the reason of withdrawals).
    pub async fn pending(&self, platform: &str, dataset: &str) -> Result<Vec<PendingOp>> {
        let rows = sqlx::query("SELECT record_id, source_unit, version, op, message FROM push_ledger WHERE platform = ? AND dataset = ? AND status = 'pending'")
            .bind(platform)
            .bind(dataset)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| PendingOp {
                record_id: r.get(0),
                source_unit: r.get(1),
                version: r.get(2),
                op: r.get(3),
                reason: r.get(4),
            })
            .collect())
    }

    /// Sets ledger rows back to `pending` at the version they hold (reconcile's repair:
    /// what the platform lost is sent again).
    pub async fn requeue(
        &self,
        platform: &str,
        dataset: &str,
        record_ids: &[String],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(self.err())?;
        for id in record_ids {
            sqlx::query("UPDATE push_ledger SET status = 'pending', batch_id = NULL, updated_at = ? WHERE platform = ? AND dataset = ? AND record_id = ? AND status IN ('acked', 'rejected')")
                .bind(now())
                .bind(platform)
                .bind(dataset)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
        }
        tx.commit().await.map_err(self.err())
    }

    /// Records a manual withdrawal or an objection hold.
    pub async fn add_override(
        &self,
        dataset: &str,
        record_id: &str,
        kind: &str,
        reason: &str,
        by_whom: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO record_overrides (dataset, record_id, kind, reason, by_whom, at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(dataset)
            .bind(record_id)
            .bind(kind)
            .bind(reason)
            .bind(by_whom)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Ends the holds in force on a record, with their outcome; returns how many ended.
    pub async fn release_hold(&self, dataset: &str, record_id: &str, outcome: &str) -> Result<u64> {
        let r = sqlx::query("UPDATE record_overrides SET released_at = ?, outcome = ? WHERE dataset = ? AND record_id = ? AND kind = 'hold' AND released_at IS NULL")
            .bind(now())
            .bind(outcome)
            .bind(dataset)
            .bind(record_id)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(r.rows_affected())
    }

    /// Withdrawals and holds in force (all datasets when `dataset` is `None`).
    pub async fn overrides(&self, dataset: Option<&str>) -> Result<Vec<Override>> {
        let rows = sqlx::query("SELECT dataset, record_id, kind, reason, by_whom, at FROM record_overrides WHERE released_at IS NULL AND (? IS NULL OR dataset = ?) ORDER BY at")
            .bind(dataset)
            .bind(dataset)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| Override {
                dataset: r.get(0),
                record_id: r.get(1),
                kind: r.get(2),
                reason: r.get(3),
                by_whom: r.get(4),
                at: r.get(5),
            })
            .collect())
    }

    /// Stores one reconciliation result.
    pub async fn record_reconciliation(
        &self,
        platform: &str,
        dataset: &str,
        source_unit: &str,
        differences: usize,
        result: &serde_json::Value,
    ) -> Result<()> {
        sqlx::query("INSERT INTO reconciliations (at, platform, dataset, source_unit, clean, differences, result) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(now())
            .bind(platform)
            .bind(dataset)
            .bind(source_unit)
            .bind(differences == 0)
            .bind(differences as i64)
            .bind(result.to_string())
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Records a batch as sent before it leaves: the batch with its exact body, and its
    /// records moved to `sent` — one transaction.
    pub async fn open_batch(
        &self,
        platform: &str,
        batch_id: &str,
        dataset: &str,
        source_unit: &str,
        body: &[u8],
        record_ids: &[String],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(self.err())?;
        let at = now();
        sqlx::query(
            "INSERT INTO push_batches (platform, batch_id, dataset, source_unit, records, body, status, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, 'sent', ?, ?)",
        )
        .bind(platform)
        .bind(batch_id)
        .bind(dataset)
        .bind(source_unit)
        .bind(record_ids.len() as i64)
        .bind(body)
        .bind(&at)
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(self.err())?;
        for id in record_ids {
            sqlx::query(
                "UPDATE push_ledger SET status = 'sent', batch_id = ?, updated_at = ? WHERE platform = ? AND dataset = ? AND record_id = ?",
            )
            .bind(batch_id)
            .bind(&at)
            .bind(platform)
            .bind(dataset)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        }
        tx.commit().await.map_err(self.err())
    }

    /// Applies a final receipt: the batch is done; its records are acked, except the
    /// rejected ones, which keep their code and message.
    pub async fn close_batch(
        &self,
        platform: &str,
        batch_id: &str,
        http_status: u16,
        receipt: &str,
        rejected: &[Rejection],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(self.err())?;
        let at = now();
        sqlx::query("UPDATE push_batches SET status = 'done', http_status = ?, receipt = ?, updated_at = ? WHERE platform = ? AND batch_id = ?")
            .bind(http_status as i64)
            .bind(receipt)
            .bind(&at)
            .bind(platform)
            .bind(batch_id)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        for r in rejected {
            sqlx::query(
                "UPDATE push_ledger SET status = 'rejected', code = ?, message = ?, updated_at = ? WHERE platform = ? AND batch_id = ? AND record_id = ?",
            )
            .bind(&r.code)
            .bind(&r.message)
            .bind(&at)
            .bind(platform)
            .bind(batch_id)
            .bind(&r.record_id)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        }
        sqlx::query("UPDATE push_ledger SET status = 'acked', updated_at = ? WHERE platform = ? AND batch_id = ? AND status = 'sent'")
            .bind(&at)
            .bind(platform)
            .bind(batch_id)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        tx.commit().await.map_err(self.err())
    }

    /// A batch the platform refused as a whole (400/401/409/413): its records go back to
    /// `pending` and the batch is marked `failed` with the answer, for the operator.
    pub async fn fail_batch(
        &self,
        platform: &str,
        batch_id: &str,
        http_status: u16,
        answer: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(self.err())?;
        let at = now();
        sqlx::query("UPDATE push_batches SET status = 'failed', http_status = ?, receipt = ?, updated_at = ? WHERE platform = ? AND batch_id = ?")
            .bind(http_status as i64)
            .bind(answer)
            .bind(&at)
            .bind(platform)
            .bind(batch_id)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        sqlx::query("UPDATE push_ledger SET status = 'pending', batch_id = NULL, updated_at = ? WHERE platform = ? AND batch_id = ? AND status = 'sent'")
            .bind(&at)
            .bind(platform)
            .bind(batch_id)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        tx.commit().await.map_err(self.err())
    }

    /// Batches of a platform sent without a final receipt (a crash, a timeout, a 202
    /// never finished), oldest first: they are resent with the same key and body.
    pub async fn open_batches(&self, platform: &str) -> Result<Vec<OpenBatch>> {
        let rows = sqlx::query("SELECT batch_id, dataset, body FROM push_batches WHERE platform = ? AND status = 'sent' ORDER BY created_at, batch_id")
            .bind(platform)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| OpenBatch {
                batch_id: r.get(0),
                dataset: r.get(1),
                body: r.get(2),
            })
            .collect())
    }

    /// Ledger rows of a platform by status.
    pub async fn status_counts(&self, platform: &str) -> Result<BTreeMap<String, u64>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) FROM push_ledger WHERE platform = ? GROUP BY status",
        )
        .bind(platform)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1) as u64))
            .collect())
    }

    /// Rejected records of a platform by code.
    pub async fn rejection_counts(&self, platform: &str) -> Result<BTreeMap<String, u64>> {
        let rows = sqlx::query("SELECT COALESCE(code, '?'), COUNT(*) FROM push_ledger WHERE platform = ? AND status = 'rejected' GROUP BY code")
            .bind(platform)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1) as u64))
            .collect())
    }

    /// Takes a job's lease unless a live run holds it; a lease whose heartbeat is older
    /// than `stale_after` seconds at `now` is taken over.
    pub async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        now: i64,
        stale_after: i64,
    ) -> Result<Lease> {
        let current = sqlx::query("SELECT holder, heartbeat_at FROM leases WHERE job = ?")
            .bind(job)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err())?
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)));
        let taken = sqlx::query(
            "INSERT INTO leases (job, holder, acquired_at, heartbeat_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at
             WHERE leases.heartbeat_at < ?4",
        )
        .bind(job)
        .bind(holder)
        .bind(now)
        .bind(now - stale_after)
        .execute(&self.pool)
        .await
        .map_err(self.err())?
        .rows_affected()
            == 1;
        Ok(match (taken, current) {
            (true, None) => Lease::Acquired,
            (true, Some((previous_holder, last_heartbeat))) => Lease::TakenOver {
                previous_holder,
                last_heartbeat,
            },
            (false, Some((holder, last_heartbeat))) => Lease::Held {
                holder,
                last_heartbeat,
            },
            (false, None) => Lease::Held {
                holder: "?".into(),
                last_heartbeat: now,
            },
        })
    }

    /// Renews a lease we hold.
    pub async fn heartbeat(&self, job: &str, holder: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE leases SET heartbeat_at = ? WHERE job = ? AND holder = ?")
            .bind(now)
            .bind(job)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Gives a lease back.
    pub async fn release_lease(&self, job: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE job = ? AND holder = ?")
            .bind(job)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Records that a job started for a fire time.
    pub async fn job_started(&self, job: &str, scheduled_for: i64, now: i64) -> Result<()> {
        sqlx::query("INSERT INTO job_runs (job, scheduled_for, started_at) VALUES (?, ?, ?)")
            .bind(job)
            .bind(scheduled_for)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Records how a job's run ended.
    pub async fn job_finished(
        &self,
        job: &str,
        scheduled_for: i64,
        now: i64,
        outcome: &str,
        run_id: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE job_runs SET finished_at = ?, outcome = ?, run_id = ? WHERE job = ? AND scheduled_for = ?")
            .bind(now)
            .bind(outcome)
            .bind(run_id)
            .bind(job)
            .bind(scheduled_for)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// The last fire time a job started for (Unix seconds).
    pub async fn last_fired(&self, job: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT MAX(scheduled_for) FROM job_runs WHERE job = ?")
            .bind(job)
            .fetch_one(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(row.get::<Option<i64>, _>(0))
    }

    /// The latest run of each feed: (feed, run id, run start, outcome, counts JSON, error, finished).
    pub async fn last_feed_runs(&self) -> Result<Vec<LastFeedRun>> {
        let rows = sqlx::query(
            "SELECT f.feed, f.run_id, r.started_at, f.outcome, f.counts, f.error, f.finished_at, r.kind
             FROM feed_runs f JOIN runs r ON r.run_id = f.run_id
             WHERE f.finished_at = (SELECT MAX(g.finished_at) FROM feed_runs g WHERE g.feed = f.feed)
             ORDER BY f.feed",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| LastFeedRun {
                feed: r.get(0),
                run_id: r.get(1),
                started_at: r.get(2),
                outcome: r.get(3),
                counts: r.get(4),
                error: r.get(5),
                finished_at: r.get(6),
                kind: r.get(7),
            })
            .collect())
    }

    /// Files a feed has read, and the newest of them.
    pub async fn feed_position(&self, feed: &str) -> Result<(u64, Option<String>)> {
        let row = sqlx::query("SELECT COUNT(*), MAX(read_at) FROM files_read WHERE feed = ?")
            .bind(feed)
            .fetch_one(&self.pool)
            .await
            .map_err(self.err())?;
        Ok((row.get::<i64, _>(0) as u64, row.get(1)))
    }

    /// Closes the pool (flushes WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A run as the `runs` table keeps it.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// Run id.
    pub run_id: String,
    /// `run`, `push` or `demo`.
    pub kind: String,
    /// Start (RFC 3339, UTC).
    pub started_at: String,
    /// End, when the run finished.
    pub finished_at: Option<String>,
    /// `ok`, `degraded` or `failed`, when finished.
    pub outcome: Option<String>,
}

/// One feed's outcome in one run, as `feed_runs` keeps it.
#[derive(Debug, Clone)]
pub struct FeedRunRow {
    /// Run id.
    pub run_id: String,
    /// Feed name.
    pub feed: String,
    /// Dataset.
    pub dataset: String,
    /// What stopped the feed, if anything.
    pub error: Option<String>,
    /// Its counts.
    pub counts: FeedCounts,
}

/// A ledger row with everything the office report needs.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    /// Platform.
    pub platform: String,
    /// Dataset.
    pub dataset: String,
    /// Record id.
    pub record_id: String,
    /// Reporting unit.
    pub source_unit: String,
    /// `upsert` or `withdraw`.
    pub op: String,
    /// `pending`, `sent`, `acked` or `rejected`.
    pub status: String,
    /// Rejection code.
    pub code: Option<String>,
    /// Rejection message, or a withdrawal's reason.
    pub message: Option<String>,
    /// Last change (RFC 3339, UTC).
    pub updated_at: String,
}

/// Ledger rows of one kind, counted.
#[derive(Debug, Clone)]
pub struct LedgerCount {
    /// Platform.
    pub platform: String,
    /// Dataset.
    pub dataset: String,
    /// Reporting unit.
    pub source_unit: String,
    /// `upsert` or `withdraw`.
    pub op: String,
    /// `acked` or `rejected`.
    pub status: String,
    /// Rejection code.
    pub code: Option<String>,
    /// An acknowledged withdrawal's reason.
    pub reason: Option<String>,
    /// Rows.
    pub records: u64,
}

/// The first acknowledged publication of a record on any platform.
#[derive(Debug, Clone)]
pub struct Publication {
    /// Dataset.
    pub dataset: String,
    /// Record id.
    pub record_id: String,
    /// Reporting unit.
    pub source_unit: String,
    /// When the platform said it received the record: the batch receipt's
    /// `received_at`, or the ledger's acknowledgement time when the receipt has none.
    pub published_at: String,
}

/// Ledger rows still owed to a platform, by group.
#[derive(Debug, Clone)]
pub struct OutstandingCount {
    /// Platform.
    pub platform: String,
    /// Dataset.
    pub dataset: String,
    /// Reporting unit.
    pub source_unit: String,
    /// Rows `pending` or `sent`.
    pub rows: u64,
}

/// A withdrawal or hold, in force or ended.
#[derive(Debug, Clone)]
pub struct OverrideHistory {
    /// The override.
    pub entry: Override,
    /// When a hold ended.
    pub released_at: Option<String>,
    /// `confirmed` or `corrected`, when ended.
    pub outcome: Option<String>,
}

/// One stored reconciliation of a dataset and unit on a platform.
#[derive(Debug, Clone)]
pub struct ReconciliationRow {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Platform.
    pub platform: String,
    /// Dataset.
    pub dataset: String,
    /// Reporting unit.
    pub source_unit: String,
    /// Differences found.
    pub differences: u64,
    /// The result (a `reconcile::GroupResult` as JSON).
    pub result: String,
}

/// Read-only queries for the office report. Times are compared as text, as stored (RFC
/// 3339 UTC with milliseconds); pass bounds in the same form.
impl StateStore {
    /// A run by id.
    pub async fn run_row(&self, run_id: &str) -> Result<Option<RunRow>> {
        let row = sqlx::query(
            "SELECT run_id, kind, started_at, finished_at, outcome FROM runs WHERE run_id = ?",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(row.as_ref().map(run_row))
    }

    /// The newest run.
    pub async fn latest_run(&self) -> Result<Option<RunRow>> {
        let row = sqlx::query(
            "SELECT run_id, kind, started_at, finished_at, outcome FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(row.as_ref().map(run_row))
    }

    /// Runs started in `[from, to)`, oldest first.
    pub async fn runs_started_between(&self, from: &str, to: &str) -> Result<Vec<RunRow>> {
        let rows = sqlx::query(
            "SELECT run_id, kind, started_at, finished_at, outcome FROM runs WHERE started_at >= ? AND started_at < ? ORDER BY started_at, run_id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows.iter().map(run_row).collect())
    }

    /// The feeds' outcomes of one run.
    pub async fn feed_runs_of(&self, run_id: &str) -> Result<Vec<FeedRunRow>> {
        let rows = sqlx::query(
            "SELECT run_id, feed, dataset, error, counts FROM feed_runs WHERE run_id = ? ORDER BY feed",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| FeedRunRow {
                run_id: r.get(0),
                feed: r.get(1),
                dataset: r.get(2),
                error: r.get(3),
                counts: serde_json::from_str(&r.get::<String, _>(4)).unwrap_or_default(),
            })
            .collect())
    }

    /// Ledger rows answered (`acked` or `rejected`) in `[from, to)`, counted by platform,
    /// dataset, unit, operation, status and code; acknowledged withdrawals also by
    /// their reason.
    pub async fn ledger_counts_between(&self, from: &str, to: &str) -> Result<Vec<LedgerCount>> {
        let rows = sqlx::query(
            "SELECT platform, dataset, source_unit, op, status, code,
                    CASE WHEN status = 'acked' AND op = 'withdraw' THEN message END AS reason,
                    COUNT(*)
             FROM push_ledger
             WHERE updated_at >= ? AND updated_at < ? AND status IN ('acked', 'rejected')
             GROUP BY platform, dataset, source_unit, op, status, code, reason
             ORDER BY platform, dataset, source_unit, op, status, code, reason",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| LedgerCount {
                platform: r.get(0),
                dataset: r.get(1),
                source_unit: r.get(2),
                op: r.get(3),
                status: r.get(4),
                code: r.get(5),
                reason: r.get(6),
                records: r.get::<i64, _>(7) as u64,
            })
            .collect())
    }

    /// Records of `dataset` acknowledged in `[from, to)` on any platform, each counted
    /// once, by unit and operation (`upsert`: entered; `withdraw`: left).
    pub async fn distinct_acked_between(
        &self,
        dataset: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, String, u64)>> {
        let rows = sqlx::query(
            "SELECT source_unit, op, COUNT(DISTINCT record_id) FROM push_ledger
             WHERE dataset = ? AND status = 'acked' AND updated_at >= ? AND updated_at < ?
             GROUP BY source_unit, op ORDER BY source_unit, op",
        )
        .bind(dataset)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get::<i64, _>(2) as u64))
            .collect())
    }

    /// Ledger rows rejected in `[from, to)` (every platform), with code and message.
    pub async fn rejections_between(&self, from: &str, to: &str) -> Result<Vec<LedgerRow>> {
        let rows = sqlx::query(
            "SELECT platform, dataset, record_id, source_unit, op, status, code, message, updated_at FROM push_ledger WHERE status = 'rejected' AND updated_at >= ? AND updated_at < ? ORDER BY platform, dataset, record_id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| LedgerRow {
                platform: r.get(0),
                dataset: r.get(1),
                record_id: r.get(2),
                source_unit: r.get(3),
                op: r.get(4),
                status: r.get(5),
                code: r.get(6),
                message: r.get(7),
                updated_at: r.get(8),
            })
            .collect())
    }

    /// Ledger rows still owed (`pending` or `sent`) that were queued before `to`, by
    /// platform, dataset and unit.
    pub async fn outstanding_before(&self, to: &str) -> Result<Vec<OutstandingCount>> {
        let rows = sqlx::query(
            "SELECT platform, dataset, source_unit, COUNT(*) FROM push_ledger WHERE status IN ('pending', 'sent') AND updated_at < ? GROUP BY platform, dataset, source_unit ORDER BY platform, dataset, source_unit",
        )
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| OutstandingCount {
                platform: r.get(0),
                dataset: r.get(1),
                source_unit: r.get(2),
                rows: r.get::<i64, _>(3) as u64,
            })
            .collect())
    }

    /// Records of `dataset` whose first acknowledged upsert on any platform happened in
    /// `[from, to)` (by the ledger's acknowledgement time), with the receipt's
    /// `received_at` as the publication time. The ledger keeps one row per record and
    /// platform, so a record re-sent with a new version counts from that version's
    /// acknowledgement.
    pub async fn first_publications_between(
        &self,
        dataset: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<Publication>> {
        let rows = sqlx::query(
            "SELECT l.record_id, MIN(l.source_unit),
                    MIN(COALESCE(json_extract(b.receipt, '$.received_at'), l.updated_at)) AS published_at
             FROM push_ledger l
             LEFT JOIN push_batches b ON b.platform = l.platform AND b.batch_id = l.batch_id
             WHERE l.dataset = ? AND l.status = 'acked' AND l.op = 'upsert'
             GROUP BY l.record_id
             HAVING MIN(l.updated_at) >= ? AND MIN(l.updated_at) < ?
             ORDER BY l.record_id",
        )
        .bind(dataset)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| Publication {
                dataset: dataset.to_string(),
                record_id: r.get(0),
                source_unit: r.get(1),
                published_at: r.get(2),
            })
            .collect())
    }

    /// Every withdrawal and hold ever recorded (in force or ended), oldest first.
    pub async fn override_history(&self) -> Result<Vec<OverrideHistory>> {
        let rows = sqlx::query(
            "SELECT dataset, record_id, kind, reason, by_whom, at, released_at, outcome FROM record_overrides ORDER BY at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| OverrideHistory {
                entry: Override {
                    dataset: r.get(0),
                    record_id: r.get(1),
                    kind: r.get(2),
                    reason: r.get(3),
                    by_whom: r.get(4),
                    at: r.get(5),
                },
                released_at: r.get(6),
                outcome: r.get(7),
            })
            .collect())
    }

    /// The latest stored reconciliation of each platform, dataset and unit before `to`.
    pub async fn latest_reconciliations_before(&self, to: &str) -> Result<Vec<ReconciliationRow>> {
        let rows = sqlx::query(
            "SELECT r.at, r.platform, r.dataset, r.source_unit, r.differences, r.result
             FROM reconciliations r
             WHERE r.at < ? AND r.at = (SELECT MAX(x.at) FROM reconciliations x
                 WHERE x.platform = r.platform AND x.dataset = r.dataset AND x.source_unit = r.source_unit AND x.at < ?)
             ORDER BY r.platform, r.dataset, r.source_unit",
        )
        .bind(to)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| ReconciliationRow {
                at: r.get(0),
                platform: r.get(1),
                dataset: r.get(2),
                source_unit: r.get(3),
                differences: r.get::<i64, _>(4) as u64,
                result: r.get(5),
            })
            .collect())
    }
}

fn run_row(r: &sqlx::sqlite::SqliteRow) -> RunRow {
    RunRow {
        run_id: r.get(0),
        kind: r.get(1),
        started_at: r.get(2),
        finished_at: r.get(3),
        outcome: r.get(4),
    }
}
