//! Read-only queries for the office report. Times are compared as text, as stored (RFC
//! 3339 UTC with milliseconds); pass bounds in the same form.

use super::{LedgerStatus, Result, RunKind, StateStore};
use crate::domain::accounting::FeedCounts;
use crate::platform::contract::Op;
use sqlx::Row;

/// A run as the `runs` table keeps it.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// Run id.
    pub run_id: String,
    /// What started it.
    pub kind: RunKind,
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
    /// Files it set aside as unreadable: (path, reason).
    pub set_aside: Vec<(String, String)>,
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
    /// Upsert or withdraw.
    pub op: Op,
    /// Where it stands.
    pub status: LedgerStatus,
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
    /// Upsert or withdraw.
    pub op: Op,
    /// Acked or rejected.
    pub status: LedgerStatus,
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
        let aside = sqlx::query(
            "SELECT feed, path, set_aside FROM files_read WHERE run_id = ? AND set_aside IS NOT NULL ORDER BY feed, path",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| {
                let feed: String = r.get(1);
                let set_aside = aside
                    .iter()
                    .filter(|a| a.get::<String, _>(0) == feed)
                    .map(|a| (a.get(1), a.get(2)))
                    .collect();
                FeedRunRow {
                    run_id: r.get(0),
                    feed,
                    dataset: r.get(2),
                    error: r.get(3),
                    counts: serde_json::from_str(&r.get::<String, _>(4)).unwrap_or_default(),
                    set_aside,
                }
            })
            .collect())
    }

    /// Ledger rows answered (`acked` or `rejected`) in `[from, to)`, counted by platform,
    /// dataset, unit, operation, status and code; acknowledged withdrawals also by
    /// their reason.
    pub async fn ledger_counts_between(&self, from: &str, to: &str) -> Result<Vec<LedgerCount>> {
        let rows = sqlx::query(
            "SELECT platform, dataset, source_unit, op, status, code,
                    CASE WHEN status = ?1 AND op = ?2 THEN message END AS reason,
                    COUNT(*)
             FROM push_ledger
             WHERE updated_at >= ?3 AND updated_at < ?4 AND status IN (?1, ?5)
             GROUP BY platform, dataset, source_unit, op, status, code, reason
             ORDER BY platform, dataset, source_unit, op, status, code, reason",
        )
        .bind(LedgerStatus::Acked.as_str())
        .bind(Op::Withdraw.as_str())
        .bind(from)
        .bind(to)
        .bind(LedgerStatus::Rejected.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        rows.iter()
            .map(|r| {
                Ok(LedgerCount {
                    platform: r.get(0),
                    dataset: r.get(1),
                    source_unit: r.get(2),
                    op: self.op_of(&r.get::<String, _>(3))?,
                    status: self.status_of(&r.get::<String, _>(4))?,
                    code: r.get(5),
                    reason: r.get(6),
                    records: r.get::<i64, _>(7) as u64,
                })
            })
            .collect()
    }

    /// Records of `dataset` acknowledged in `[from, to)` on any platform, each counted
    /// once, by unit and operation (`upsert`: entered; `withdraw`: left).
    pub async fn distinct_acked_between(
        &self,
        dataset: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, Op, u64)>> {
        let rows = sqlx::query(
            "SELECT source_unit, op, COUNT(DISTINCT record_id) FROM push_ledger
             WHERE dataset = ? AND status = ? AND updated_at >= ? AND updated_at < ?
             GROUP BY source_unit, op ORDER BY source_unit, op",
        )
        .bind(dataset)
        .bind(LedgerStatus::Acked.as_str())
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.get(0),
                    self.op_of(&r.get::<String, _>(1))?,
                    r.get::<i64, _>(2) as u64,
                ))
            })
            .collect()
    }

    /// Ledger rows rejected in `[from, to)` (every platform), with code and message.
    pub async fn rejections_between(&self, from: &str, to: &str) -> Result<Vec<LedgerRow>> {
        let rows = sqlx::query(
            "SELECT platform, dataset, record_id, source_unit, op, status, code, message, updated_at FROM push_ledger WHERE status = ? AND updated_at >= ? AND updated_at < ? ORDER BY platform, dataset, record_id",
        )
        .bind(LedgerStatus::Rejected.as_str())
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        rows.iter()
            .map(|r| {
                Ok(LedgerRow {
                    platform: r.get(0),
                    dataset: r.get(1),
                    record_id: r.get(2),
                    source_unit: r.get(3),
                    op: self.op_of(&r.get::<String, _>(4))?,
                    status: self.status_of(&r.get::<String, _>(5))?,
                    code: r.get(6),
                    message: r.get(7),
                    updated_at: r.get(8),
                })
            })
            .collect()
    }

    /// Ledger rows still owed (`pending` or `sent`) that were queued before `to`, by
    /// platform, dataset and unit.
    pub async fn outstanding_before(&self, to: &str) -> Result<Vec<OutstandingCount>> {
        let rows = sqlx::query(
            "SELECT platform, dataset, source_unit, COUNT(*) FROM push_ledger WHERE status IN (?, ?) AND updated_at < ? GROUP BY platform, dataset, source_unit ORDER BY platform, dataset, source_unit",
        )
        .bind(LedgerStatus::Pending.as_str())
        .bind(LedgerStatus::Sent.as_str())
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
                    MIN(COALESCE(b.received_at, l.updated_at)) AS published_at
             FROM push_ledger l
             LEFT JOIN push_batches b ON b.platform = l.platform AND b.batch_id = l.batch_id
             WHERE l.dataset = ? AND l.status = ? AND l.op = ?
             GROUP BY l.record_id
             HAVING MIN(l.updated_at) >= ? AND MIN(l.updated_at) < ?
             ORDER BY l.record_id",
        )
        .bind(dataset)
        .bind(LedgerStatus::Acked.as_str())
        .bind(Op::Upsert.as_str())
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
}

fn run_row(r: &sqlx::sqlite::SqliteRow) -> RunRow {
    RunRow {
        run_id: r.get(0),
        kind: RunKind::parse(&r.get::<String, _>(1)),
        started_at: r.get(2),
        finished_at: r.get(3),
        outcome: r.get(4),
    }
}
