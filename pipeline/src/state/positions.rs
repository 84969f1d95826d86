//! Where each feed's source stopped (SQL: last watermark and key), saved only once the
//! run's records are safely in the snapshot.

use super::{now, Result, StateStore};
use sqlx::Row;

impl StateStore {
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
}
