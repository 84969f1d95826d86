//! The push ledger — an outbox per platform in which each record version moves `pending
//! → sent → acked | rejected` — and the batches with their exact bodies and receipts. A
//! batch and its records' states change in one transaction, so a crash leaves the store
//! at one side of it.

use super::{now, LedgerStatus, Result, StateStore};
use crate::platform::contract::Op;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};

/// A ledger entry: what the pipeline believes a platform holds (or is about to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Version sent (a withdraw's version is `w-<record version>`).
    pub version: String,
    /// Where it stands.
    pub status: LedgerStatus,
    /// Upsert or withdraw.
    pub op: Op,
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
    /// Upsert or withdraw.
    pub op: Op,
    /// Why (withdrawals).
    pub reason: Option<String>,
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
    /// Records in it.
    pub records: u64,
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

impl StateStore {
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
        rows.iter()
            .map(|r| {
                Ok((
                    r.get::<String, _>(0),
                    LedgerEntry {
                        version: r.get(1),
                        status: self.status_of(&r.get::<String, _>(2))?,
                        op: self.op_of(&r.get::<String, _>(3))?,
                        source_unit: r.get(4),
                    },
                ))
            })
            .collect()
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
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (platform, dataset, record_id) DO UPDATE SET
                       version = excluded.version, source_unit = excluded.source_unit, op = excluded.op,
                       status = excluded.status, batch_id = NULL, code = NULL, message = excluded.message, updated_at = excluded.updated_at",
                )
                .bind(platform)
                .bind(dataset)
                .bind(&p.record_id)
                .bind(&p.source_unit)
                .bind(&p.version)
                .bind(p.op.as_str())
                .bind(LedgerStatus::Pending.as_str())
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
        let rows = sqlx::query("SELECT record_id, source_unit, version, op, message FROM push_ledger WHERE platform = ? AND dataset = ? AND status = ?")
            .bind(platform)
            .bind(dataset)
            .bind(LedgerStatus::Pending.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        rows.iter()
            .map(|r| {
                Ok(PendingOp {
                    record_id: r.get(0),
                    source_unit: r.get(1),
                    version: r.get(2),
                    op: self.op_of(&r.get::<String, _>(3))?,
                    reason: r.get(4),
                })
            })
            .collect()
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
            sqlx::query("UPDATE push_ledger SET status = ?, batch_id = NULL, updated_at = ? WHERE platform = ? AND dataset = ? AND record_id = ? AND status IN (?, ?)")
                .bind(LedgerStatus::Pending.as_str())
                .bind(now())
                .bind(platform)
                .bind(dataset)
                .bind(id)
                .bind(LedgerStatus::Acked.as_str())
                .bind(LedgerStatus::Rejected.as_str())
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
        }
        tx.commit().await.map_err(self.err())
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(platform)
        .bind(batch_id)
        .bind(dataset)
        .bind(source_unit)
        .bind(record_ids.len() as i64)
        .bind(body)
        .bind(BatchState::Sent.as_str())
        .bind(&at)
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(self.err())?;
        for id in record_ids {
            sqlx::query(
                "UPDATE push_ledger SET status = ?, batch_id = ?, updated_at = ? WHERE platform = ? AND dataset = ? AND record_id = ?",
            )
            .bind(LedgerStatus::Sent.as_str())
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

    /// Applies a final receipt: the batch is done (with the platform's `received_at`, as
    /// its dialect read it); its records are acked, except the rejected ones, which keep
    /// their code and message. A receipt that does not account for every record it
    /// answers (`confirmed` false) acknowledges none: the records it does not reject go
    /// back to `pending`, and the batch is kept as `unconfirmed` with the receipt.
    pub async fn close_batch(
        &self,
        platform: &str,
        batch_id: &str,
        receipt: &ClosedBatch<'_>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(self.err())?;
        let at = now();
        let (batch_state, others) = if receipt.confirmed {
            (BatchState::Done, LedgerStatus::Acked)
        } else {
            (BatchState::Unconfirmed, LedgerStatus::Pending)
        };
        sqlx::query("UPDATE push_batches SET status = ?, http_status = ?, receipt = ?, received_at = ?, updated_at = ? WHERE platform = ? AND batch_id = ?")
            .bind(batch_state.as_str())
            .bind(receipt.http_status as i64)
            .bind(receipt.raw)
            .bind(receipt.received_at)
            .bind(&at)
            .bind(platform)
            .bind(batch_id)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        for r in receipt.rejected {
            sqlx::query(
                "UPDATE push_ledger SET status = ?, code = ?, message = ?, updated_at = ? WHERE platform = ? AND batch_id = ? AND record_id = ?",
            )
            .bind(LedgerStatus::Rejected.as_str())
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
        sqlx::query("UPDATE push_ledger SET status = ?1, batch_id = CASE WHEN ?6 THEN NULL ELSE batch_id END, updated_at = ?2 WHERE platform = ?3 AND batch_id = ?4 AND status = ?5")
            .bind(others.as_str())
            .bind(&at)
            .bind(platform)
            .bind(batch_id)
            .bind(LedgerStatus::Sent.as_str())
            .bind(!receipt.confirmed)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        tx.commit().await.map_err(self.err())
    }

    /// A batch the platform refused as a whole (400/401/409/413), or whose receipt
    /// contradicts it (`protocol_error`): its records go back to `pending` and the batch
    /// is marked `failed` (or `protocol_error`) with the answer, for the operator.
    pub async fn fail_batch(
        &self,
        platform: &str,
        batch_id: &str,
        http_status: u16,
        answer: &str,
        protocol_error: bool,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(self.err())?;
        let at = now();
        let state = if protocol_error {
            BatchState::ProtocolError
        } else {
            BatchState::Failed
        };
        sqlx::query("UPDATE push_batches SET status = ?, http_status = ?, receipt = ?, updated_at = ? WHERE platform = ? AND batch_id = ?")
            .bind(state.as_str())
            .bind(http_status as i64)
            .bind(answer)
            .bind(&at)
            .bind(platform)
            .bind(batch_id)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        sqlx::query("UPDATE push_ledger SET status = ?, batch_id = NULL, updated_at = ? WHERE platform = ? AND batch_id = ? AND status = ?")
            .bind(LedgerStatus::Pending.as_str())
            .bind(&at)
            .bind(platform)
            .bind(batch_id)
            .bind(LedgerStatus::Sent.as_str())
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        tx.commit().await.map_err(self.err())
    }

    /// Batches of a platform sent without a final receipt (a crash, a timeout, a 202
    /// never finished), oldest first: they are resent with the same key and body.
    pub async fn open_batches(&self, platform: &str) -> Result<Vec<OpenBatch>> {
        let rows = sqlx::query("SELECT batch_id, dataset, body, records FROM push_batches WHERE platform = ? AND status = ? ORDER BY created_at, batch_id")
            .bind(platform)
            .bind(BatchState::Sent.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| OpenBatch {
                batch_id: r.get(0),
                dataset: r.get(1),
                body: r.get(2),
                records: r.get::<i64, _>(3).max(0) as u64,
            })
            .collect())
    }

    /// Ledger rows of a platform by status.
    pub async fn status_counts(&self, platform: &str) -> Result<BTreeMap<LedgerStatus, u64>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) FROM push_ledger WHERE platform = ? GROUP BY status",
        )
        .bind(platform)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        rows.iter()
            .map(|r| {
                Ok((
                    self.status_of(&r.get::<String, _>(0))?,
                    r.get::<i64, _>(1) as u64,
                ))
            })
            .collect()
    }

    /// When the platform last acknowledged a batch (RFC 3339 UTC), if ever.
    pub async fn last_acknowledged(&self, platform: &str) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT MAX(updated_at) FROM push_batches WHERE platform = ? AND status = ?",
        )
        .bind(platform)
        .bind(BatchState::Done.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(self.err())
    }

    /// Records of a platform still owed (`pending` or `sent`).
    pub async fn owed(&self, platform: &str) -> Result<u64> {
        let counts = self.status_counts(platform).await?;
        Ok(counts
            .iter()
            .filter(|(s, _)| s.is_owed())
            .map(|(_, n)| n)
            .sum())
    }

    /// Batches of a platform whose receipt contradicted them or left records
    /// unconfirmed (the platform answers badly).
    pub async fn untrusted_receipts(&self, platform: &str) -> Result<u64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM push_batches WHERE platform = ? AND status IN (?, ?)",
        )
        .bind(platform)
        .bind(BatchState::ProtocolError.as_str())
        .bind(BatchState::Unconfirmed.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(row.get::<i64, _>(0).max(0) as u64)
    }

    /// Records that a platform refuses this city's requests themselves (a wrong secret,
    /// a redirect, a protocol 4xx): shown by `status` until [`StateStore::clear_platform_problem`].
    pub async fn set_platform_problem(&self, platform: &str, message: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO platform_problems (platform, message, since) VALUES (?, ?, ?)
                     ON CONFLICT (platform) DO UPDATE SET message = excluded.message",
        )
        .bind(platform)
        .bind(message)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(())
    }

    /// A push to the platform succeeded: its configuration error is over.
    pub async fn clear_platform_problem(&self, platform: &str) -> Result<()> {
        sqlx::query("DELETE FROM platform_problems WHERE platform = ?")
            .bind(platform)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// A platform's configuration error in force: (what it said, since when).
    pub async fn platform_problem(&self, platform: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT message, since FROM platform_problems WHERE platform = ?")
            .bind(platform)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Rejected records of a platform by code.
    pub async fn rejection_counts(&self, platform: &str) -> Result<BTreeMap<String, u64>> {
        let rows = sqlx::query("SELECT COALESCE(code, '?'), COUNT(*) FROM push_ledger WHERE platform = ? AND status = ? GROUP BY code")
            .bind(platform)
            .bind(LedgerStatus::Rejected.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1) as u64))
            .collect())
    }

    pub(super) fn status_of(&self, s: &str) -> Result<LedgerStatus> {
        LedgerStatus::parse(s)
            .ok_or_else(|| self.unreadable(format!("unknown ledger status {s:?}")))
    }

    pub(super) fn op_of(&self, s: &str) -> Result<Op> {
        Op::parse(s).ok_or_else(|| self.unreadable(format!("unknown ledger operation {s:?}")))
    }
}

/// A batch's state in `push_batches`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchState {
    /// Recorded before it left; no final answer yet.
    Sent,
    /// A final receipt applied.
    Done,
    /// Refused as a whole.
    Failed,
    /// Its receipt contradicted it (another batch id, records never sent, more accepted
    /// than sent): nothing of it was acknowledged.
    ProtocolError,
    /// Its receipt did not account for every record: none was acknowledged.
    Unconfirmed,
}

impl BatchState {
    fn as_str(self) -> &'static str {
        match self {
            BatchState::Sent => "sent",
            BatchState::Done => "done",
            BatchState::Failed => "failed",
            BatchState::ProtocolError => "protocol_error",
            BatchState::Unconfirmed => "unconfirmed",
        }
    }
}

/// A final receipt, as the push hands it to the ledger.
#[derive(Debug, Clone)]
pub struct ClosedBatch<'a> {
    /// HTTP status of the answer that carried it.
    pub http_status: u16,
    /// The receipt's raw text.
    pub raw: &'a str,
    /// When the platform received the batch, as the receipt says.
    pub received_at: Option<&'a str>,
    /// The records it rejected.
    pub rejected: &'a [Rejection],
    /// Whether it accounts for every record of the batch (else none is acknowledged).
    pub confirmed: bool,
}
