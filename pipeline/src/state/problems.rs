//! The quarantine's problems and their life (退回整改): each refused decision is one
//! problem per feed — known by its document number (文书号) within the feed, or, for a
//! row without one, by its raw content — open from the run that first refused it until
//! a later run of the same feed brings a valid record of the same decision, then
//! resolved with the date. Reruns and backfills refusing the same row again add no
//! second copy; they update where and when it was last seen.

use super::{now, Result, StateError, StateStore};
use sqlx::Row;

/// One problem as the state store keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Problem {
    /// Feed.
    pub feed: String,
    /// `wsh:<document number>` or `raw:<digest of the row>`.
    pub identity: String,
    /// Dataset.
    pub dataset: String,
    /// Reporting unit of the feed.
    pub source_unit: String,
    /// File (name as read) the row was last seen in.
    pub file: String,
    /// Line or sheet row.
    pub line: u64,
    /// Field (or source column) concerned.
    pub field: String,
    /// Reason code.
    pub reason: String,
    /// The value as it was in the source cell.
    pub value: String,
    /// The row's cells, as JSON (header → text).
    pub raw: String,
    /// `open` or `resolved`.
    pub status: String,
    /// When it was first refused (RFC 3339), and by which run.
    pub first_seen: String,
    /// The first run.
    pub first_run: String,
    /// When it was last refused.
    pub last_seen: String,
    /// The last run.
    pub last_run: String,
    /// When a later run brought the decision valid.
    pub resolved_at: Option<String>,
    /// That run.
    pub resolved_run: Option<String>,
}

/// A row refused in a run, as the runner hands it over.
#[derive(Debug, Clone)]
pub struct Refused {
    /// Identity (see [`Problem::identity`]).
    pub identity: String,
    /// File name.
    pub file: String,
    /// Line.
    pub line: u64,
    /// Field.
    pub field: String,
    /// Reason code.
    pub reason: String,
    /// Value.
    pub value: String,
    /// Raw row JSON.
    pub raw: String,
}

/// Refused rows in one INSERT (15 parameters each).
const ROWS_PER_INSERT: usize = 500;

impl StateStore {
    /// Records a run's refused rows as open problems (or updates them), in one
    /// transaction — received in chunks, so memory stays a chunk deep however many a feed
    /// refuses. A backfill (`reopen = false`) does not reopen a problem already resolved.
    /// The runner does it while the feed's snapshot is still being made; the
    /// resolution follows the snapshot ([`Self::resolve_problems`]).
    pub async fn record_refused_rows(
        &self,
        feed: &str,
        dataset: &str,
        source_unit: &str,
        run_id: &str,
        refused: &mut tokio::sync::mpsc::Receiver<Vec<Refused>>,
        reopen: bool,
    ) -> Result<()> {
        let at = now();
        let mut tx = self.pool.begin().await.map_err(self.err())?;
        let on_conflict = if reopen {
            " ON CONFLICT (feed, identity) DO UPDATE SET file = excluded.file, line = excluded.line,
               field = excluded.field, reason = excluded.reason, value = excluded.value, raw = excluded.raw,
               last_seen = excluded.last_seen, last_run = excluded.last_run, status = 'open',
               resolved_at = NULL, resolved_run = NULL"
        } else {
            " ON CONFLICT (feed, identity) DO UPDATE SET last_seen = excluded.last_seen,
               last_run = excluded.last_run WHERE status = 'open'"
        };
        while let Some(chunk) = refused.recv().await {
            // Many rows a statement (SQLite takes up to 32,766 parameters).
            for rows in chunk.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                    "INSERT INTO problems (feed, identity, dataset, source_unit, file, line, field, reason, value, raw, status, first_seen, first_run, last_seen, last_run) ",
                );
                q.push_values(rows, |mut b, r| {
                    b.push_bind(feed)
                        .push_bind(&r.identity)
                        .push_bind(dataset)
                        .push_bind(source_unit)
                        .push_bind(&r.file)
                        .push_bind(r.line as i64)
                        .push_bind(&r.field)
                        .push_bind(&r.reason)
                        .push_bind(&r.value)
                        .push_bind(&r.raw)
                        .push_bind("open")
                        .push_bind(&at)
                        .push_bind(run_id)
                        .push_bind(&at)
                        .push_bind(run_id);
                });
                q.push(on_conflict);
                q.build().execute(&mut *tx).await.map_err(self.err())?;
            }
        }
        tx.commit().await.map_err(self.err())?;
        Ok(())
    }

    /// Resolves, in one transaction, the feed's open problems whose decision the run
    /// brought valid (`valid_documents`) and that it did not refuse again (their last
    /// run is an earlier one). Called once the run's refused rows are recorded.
    pub async fn resolve_problems(
        &self,
        feed: &str,
        run_id: &str,
        valid_documents: &std::collections::HashSet<String>,
    ) -> Result<()> {
        let at = now();
        let mut tx = self.pool.begin().await.map_err(self.err())?;
        // One statement a document the run saw valid (a few, as a rule), not a look at
        // every open problem of the feed.
        for document in valid_documents {
            sqlx::query(
                "UPDATE problems SET status = 'resolved', resolved_at = ?, resolved_run = ? WHERE feed = ? AND identity = ? AND status = 'open' AND last_run <> ?",
            )
            .bind(&at)
            .bind(run_id)
            .bind(feed)
            .bind(format!("wsh:{document}"))
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        }
        tx.commit().await.map_err(self.err())?;
        Ok(())
    }

    /// The document numbers (文书号) of a feed's open problems: the only ones a run needs
    /// to notice among its valid rows (memory bounded by the problems, not the input).
    pub async fn open_documents(&self, feed: &str) -> Result<std::collections::HashSet<String>> {
        // One row holding them all, as a JSON array: a full load leaves tens of thousands
        // of problems, and a row apiece cost a night 30 ms.
        let all: Option<String> = sqlx::query_scalar(
            "SELECT json_group_array(substr(identity, 5)) FROM problems
             WHERE feed = ? AND status = 'open' AND identity LIKE 'wsh:%'",
        )
        .bind(feed)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err())?;
        let documents: Vec<String> =
            serde_json::from_str(all.as_deref().unwrap_or("[]")).map_err(|e| {
                StateError::Unreadable {
                    path: self.path.clone(),
                    message: format!("the open problems' documents: {e}"),
                }
            })?;
        Ok(documents.into_iter().collect())
    }

    /// The problems, optionally of one feed and one status, in feed and first-seen order.
    pub async fn problems(&self, feed: Option<&str>, status: Option<&str>) -> Result<Vec<Problem>> {
        let rows = sqlx::query(
            "SELECT feed, identity, dataset, source_unit, file, line, field, reason, value, raw, status,
                    first_seen, first_run, last_seen, last_run, resolved_at, resolved_run
             FROM problems WHERE (?1 IS NULL OR feed = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY feed, first_seen, file, line",
        )
        .bind(feed)
        .bind(status)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| Problem {
                feed: r.get(0),
                identity: r.get(1),
                dataset: r.get(2),
                source_unit: r.get(3),
                file: r.get(4),
                line: r.get::<i64, _>(5).max(0) as u64,
                field: r.get(6),
                reason: r.get(7),
                value: r.get(8),
                raw: r.get(9),
                status: r.get(10),
                first_seen: r.get(11),
                first_run: r.get(12),
                last_seen: r.get(13),
                last_run: r.get(14),
                resolved_at: r.get(15),
                resolved_run: r.get(16),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(identity: &str) -> Refused {
        Refused {
            identity: identity.to_string(),
            file: "export.csv".into(),
            line: 2,
            field: "CF_XDR_SHXYM".into(),
            reason: "uscc_check".into(),
            value: "x".into(),
            raw: "{}".into(),
        }
    }

    async fn record(store: &StateStore, run: &str, rows: &[&str], reopen: bool) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        tx.send(rows.iter().map(|r| refused(r)).collect())
            .await
            .unwrap();
        drop(tx);
        store
            .record_refused_rows("f", "xzcf", "u", run, &mut rx, reopen)
            .await
            .unwrap();
    }

    async fn status_of(store: &StateStore) -> Vec<(String, String, Option<String>)> {
        let mut all: Vec<_> = store
            .problems(Some("f"), None)
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.identity, p.status, p.resolved_run))
            .collect();
        all.sort();
        all
    }

    #[tokio::test]
    async fn a_problem_resolves_when_its_decision_comes_valid_and_not_refused_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(&dir.path().join("state.sqlite"))
            .await
            .unwrap();
        record(&store, "r1", &["wsh:A", "wsh:B", "wsh:C"], true).await;
        store
            .resolve_problems("f", "r1", &Default::default())
            .await
            .unwrap();
        assert_eq!(store.open_documents("f").await.unwrap().len(), 3);
        // Run 2 refuses B again and sees A and B valid (two rows of B): A resolves, B
        // (refused again) and C (not seen valid) stay open.
        record(&store, "r2", &["wsh:B"], true).await;
        let valid = ["A", "B"].iter().map(|s| s.to_string()).collect();
        store.resolve_problems("f", "r2", &valid).await.unwrap();
        assert_eq!(
            status_of(&store).await,
            vec![
                ("wsh:A".into(), "resolved".into(), Some("r2".into())),
                ("wsh:B".into(), "open".into(), None),
                ("wsh:C".into(), "open".into(), None),
            ]
        );
        // A backfill refusing A again leaves it resolved; a nightly run reopens it.
        record(&store, "r3", &["wsh:A"], false).await;
        assert_eq!(status_of(&store).await[0].1, "resolved");
        record(&store, "r4", &["wsh:A"], true).await;
        assert_eq!(status_of(&store).await[0].1, "open");
        // Resolving with nothing seen valid changes nothing.
        store
            .resolve_problems("f", "r5", &Default::default())
            .await
            .unwrap();
        assert_eq!(store.open_documents("f").await.unwrap().len(), 3);
    }
}
