//! Manual withdrawals and objection holds (异议), in force or ended.

use super::{now, OverrideKind, Result, StateStore};
use sqlx::Row;

/// A manual withdrawal or an objection hold in force.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Override {
    /// Dataset.
    pub dataset: String,
    /// Record id.
    pub record_id: String,
    /// Withdrawal or hold.
    pub kind: OverrideKind,
    /// Why.
    pub reason: String,
    /// Who.
    pub by_whom: String,
    /// Since when (RFC 3339).
    pub at: String,
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

impl StateStore {
    /// Records a manual withdrawal or an objection hold.
    pub async fn add_override(
        &self,
        dataset: &str,
        record_id: &str,
        kind: OverrideKind,
        reason: &str,
        by_whom: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO record_overrides (dataset, record_id, kind, reason, by_whom, at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(dataset)
            .bind(record_id)
            .bind(kind.as_str())
            .bind(reason)
            .bind(by_whom)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Whether the ledger has ever held the record for some platform.
    pub async fn ledger_knows(&self, dataset: &str, record_id: &str) -> Result<bool> {
        let row =
            sqlx::query("SELECT COUNT(*) FROM push_ledger WHERE dataset = ? AND record_id = ?")
                .bind(dataset)
                .bind(record_id)
                .fetch_one(&self.pool)
                .await
                .map_err(self.err())?;
        Ok(row.get::<i64, _>(0) > 0)
    }

    /// Ends the holds in force on a record, with their outcome; returns how many ended.
    pub async fn release_hold(&self, dataset: &str, record_id: &str, outcome: &str) -> Result<u64> {
        let r = sqlx::query("UPDATE record_overrides SET released_at = ?, outcome = ? WHERE dataset = ? AND record_id = ? AND kind = ? AND released_at IS NULL")
            .bind(now())
            .bind(outcome)
            .bind(dataset)
            .bind(record_id)
            .bind(OverrideKind::Hold.as_str())
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
        rows.iter()
            .map(|r| {
                Ok(Override {
                    dataset: r.get(0),
                    record_id: r.get(1),
                    kind: self.override_kind_of(&r.get::<String, _>(2))?,
                    reason: r.get(3),
                    by_whom: r.get(4),
                    at: r.get(5),
                })
            })
            .collect()
    }

    /// Every withdrawal and hold ever recorded (in force or ended), oldest first.
    pub async fn override_history(&self) -> Result<Vec<OverrideHistory>> {
        let rows = sqlx::query(
            "SELECT dataset, record_id, kind, reason, by_whom, at, released_at, outcome FROM record_overrides ORDER BY at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        rows.iter()
            .map(|r| {
                Ok(OverrideHistory {
                    entry: Override {
                        dataset: r.get(0),
                        record_id: r.get(1),
                        kind: self.override_kind_of(&r.get::<String, _>(2))?,
                        reason: r.get(3),
                        by_whom: r.get(4),
                        at: r.get(5),
                    },
                    released_at: r.get(6),
                    outcome: r.get(7),
                })
            })
            .collect()
    }

    fn override_kind_of(&self, s: &str) -> Result<OverrideKind> {
        OverrideKind::parse(s)
            .ok_or_else(|| self.unreadable(format!("unknown override kind {s:?}")))
    }
}

impl StateStore {
    /// What each platform's ledger says of one record: (platform, version, op, status,
    /// code of a rejection).
    pub async fn ledger_of_record(
        &self,
        dataset: &str,
        record_id: &str,
    ) -> Result<Vec<(String, String, String, String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT platform, version, op, status, code FROM push_ledger WHERE dataset = ? AND record_id = ? ORDER BY platform",
        )
        .bind(dataset)
        .bind(record_id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect())
    }
}
