//! Runs, the feeds' outcomes in them, and the files each feed has read (known by
//! content hash, so a file is read once).

use super::{now, Result, RunKind, StateStore};
use crate::domain::accounting::{FeedCounts, FileRead};
use sqlx::Row;
use std::collections::HashSet;

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
    /// Counts.
    pub counts: FeedCounts,
    /// The error, when failed.
    pub error: Option<String>,
    /// When the feed finished (RFC 3339).
    pub finished_at: String,
    /// What started the run.
    pub kind: RunKind,
}

impl StateStore {
    /// Records the start of a run.
    pub async fn begin_run(&self, run_id: &str, kind: &RunKind) -> Result<()> {
        sqlx::query("INSERT INTO runs (run_id, kind, started_at) VALUES (?, ?, ?)")
            .bind(run_id)
            .bind(kind.to_string())
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

    /// Records files set aside (unreadable) by a feed, with their reason — like files
    /// read, so a later run does not try them again until their content changes.
    pub async fn record_set_aside(
        &self,
        run_id: &str,
        feed: &str,
        files: &[connectors::SetAside],
    ) -> Result<()> {
        let at = now();
        for f in files {
            sqlx::query(
                "INSERT OR IGNORE INTO files_read (feed, sha256, path, rows, encoding, run_id, read_at, bytes, set_aside) VALUES (?, ?, ?, 0, '', ?, ?, ?, ?)",
            )
            .bind(feed)
            .bind(&f.sha256)
            .bind(f.path.display().to_string())
            .bind(run_id)
            .bind(&at)
            .bind(f.bytes as i64)
            .bind(&f.reason)
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        }
        Ok(())
    }

    /// The files a feed set aside: (path, reason, when).
    pub async fn set_aside_files(&self, feed: &str) -> Result<Vec<(String, String, String)>> {
        let rows = sqlx::query("SELECT path, set_aside, read_at FROM files_read WHERE feed = ? AND set_aside IS NOT NULL ORDER BY read_at, path")
            .bind(feed)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
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
                counts: serde_json::from_str(&r.get::<String, _>(4)).unwrap_or_default(),
                error: r.get(5),
                finished_at: r.get(6),
                kind: RunKind::parse(&r.get::<String, _>(7)),
            })
            .collect())
    }

    /// Files a feed has read, and the newest of them.
    pub async fn feed_position(&self, feed: &str) -> Result<(u64, Option<String>)> {
        let row = sqlx::query(
            "SELECT COUNT(*), MAX(read_at) FROM files_read WHERE feed = ? AND set_aside IS NULL",
        )
        .bind(feed)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err())?;
        Ok((row.get::<i64, _>(0) as u64, row.get(1)))
    }
}
