//! Stored reconciliation results, per platform, dataset and reporting unit.

use super::{now, Result, StateStore};
use sqlx::Row;

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

impl StateStore {
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
