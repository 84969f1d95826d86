//! The scheduler's leases (one live run per job, stale ones taken over) and the record
//! of each job's fire times.

use super::{Result, StateStore};
use sqlx::Row;

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

impl StateStore {
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
}
