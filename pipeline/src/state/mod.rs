//! The state store: an embedded SQLite database (sqlx). One [`StateStore`] handle, its
//! methods in one file per concern:
//!
//! - [`runs`]: runs, the feeds' outcomes, the files each feed has read;
//! - [`positions`]: where each source stopped;
//! - [`ledger`]: the push ledger and the batches with their bodies and receipts;
//! - [`overrides`]: manual withdrawals and objection holds;
//! - [`jobs`]: the scheduler's leases and fire times;
//! - [`reconciliations`]: stored reconciliation results;
//! - [`report_queries`]: what the office report reads.
//!
//! The schema is built by numbered [`migrations`]; the store's version is SQLite's
//! `user_version`, and an older store is brought up to this build's at open. Every change
//! that must be all-or-nothing (a feed's files and counts; a batch and its records'
//! states) is one transaction, so a crash leaves the store at one side of it.

mod closed_stamp;
pub mod jobs;
pub mod kinds;
pub mod ledger;
pub mod migrations;
pub mod overrides;
pub mod positions;
pub mod problems;
pub mod reconciliations;
pub mod report_queries;
pub mod runs;

pub use jobs::Lease;
pub use kinds::{LedgerStatus, OverrideKind, RunKind};
pub use ledger::{ClosedBatch, LedgerEntry, OpenBatch, PendingOp, Rejection};
pub use overrides::{Override, OverrideHistory};
pub use reconciliations::ReconciliationRow;
pub use report_queries::{
    FeedRunRow, LedgerCount, LedgerRow, OutstandingCount, Publication, RunRow,
};
pub use runs::LastFeedRun;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A state-store failure (the run stops: without its state it cannot be trusted).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database failed.
    #[error("state store {path}: {source}")]
    Database {
        /// The store.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: sqlx::Error,
    },
    /// The store holds something this build cannot read (a value outside its kinds, a
    /// schema version newer than this build's).
    #[error("state store {path}: {message}")]
    Unreadable {
        /// The store.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

type Result<T> = std::result::Result<T, StateError>;

/// The embedded state store.
#[derive(Clone)]
pub struct StateStore {
    pool: SqlitePool,
    path: PathBuf,
}

/// Now, as the store keeps times: RFC 3339 UTC with milliseconds (compared as text).
fn now() -> String {
    crate::clock::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The memory map the integrity check reads the store through (up to 1 GiB of it).
const CHECK_MMAP: &str = "PRAGMA mmap_size = 1073741824";

/// The last connection to close leaves the write-ahead log as it is (SQLite's
/// `SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`) instead of folding it into the database file and
/// fsyncing that file on the way out — a second fsync of what the log already holds
/// durably (`synchronous = FULL`), and of the whole file when it was just copied (a
/// restored or moved store): 8 % of a small night. SQLite folds the log in as it grows
/// (its automatic checkpoints) and the next open reads it.
async fn keep_wal_on_close(
    conn: &mut sqlx::SqliteConnection,
) -> std::result::Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is the open connection sqlx holds locked for this call; the option
    // takes an int (1: on) and an optional int pointer to report back into (none).
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db,
            libsqlite3_sys::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            1 as std::os::raw::c_int,
            std::ptr::null_mut::<std::os::raw::c_int>(),
        )
    };
    if rc != libsqlite3_sys::SQLITE_OK {
        tracing::debug!(code = rc, "the state store folds its log in when it closes");
    }
    Ok(())
}

impl StateStore {
    /// Opens (creating if needed) the store at `path`, bringing its schema up to this
    /// build's version.
    pub async fn open(path: &Path) -> Result<StateStore> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Checked unless its files are as a clean close left them (see `closed_stamp`);
        // the stamp goes before anything can write, so a crash leaves none behind.
        let check = !closed_stamp::unchanged_since_closed(path);
        closed_stamp::forget(path);
        let err = |source| StateError::Database {
            path: path.to_path_buf(),
            source,
        };
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // 16 MiB of page cache a connection (SQLite's default is 2 MiB): a full
            // load's tens of thousands of refused rows go into two random-order indexes,
            // and with 2 MiB their pages were spilled to the WAL and read back over and
            // over (160 MB of WAL for 31,000 rows).
            .pragma("cache_size", "-16384")
            // The write-ahead log is kept between runs (see `keep_wal_on_close`); once a
            // checkpoint has folded it in, it is cut back to 4 MiB rather than left at
            // the size a full load's problems grew it to.
            .pragma("journal_size_limit", "4194304")
            // A many-row upsert (the refused rows, 500 a statement) keeps a statement
            // journal of the pages it changes, so that a failing row undoes only its
            // statement. SQLite keeps it in memory up to 64 KiB and in a temporary file
            // past that: a full load's problems went through 30 MB of such writes. In
            // memory it is a statement's pages (a few hundred KiB) at most.
            .pragma("temp_store", "memory")
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .after_connect(|conn, _| Box::pin(keep_wal_on_close(conn)))
            .connect_with(opts)
            .await
            .map_err(err)?;
        let store = StateStore {
            pool,
            path: path.to_path_buf(),
        };
        if check {
            store.check_integrity().await?;
        } else {
            tracing::debug!(store = %path.display(), "unchanged since it was closed cleanly: integrity check skipped");
        }
        migrations::bring_up(&store).await?;
        Ok(store)
    }

    /// SQLite's `quick_check`: damage inside the file is found before anything trusts
    /// it, with what to do.
    async fn check_integrity(&self) -> Result<()> {
        // The check reads every page: through a memory map for its length (half the
        // time: no copy of each page out of the OS's cache), read() again after it.
        let mut conn = self.pool.acquire().await.map_err(self.err())?;
        sqlx::query(CHECK_MMAP)
            .execute(&mut *conn)
            .await
            .map_err(self.err())?;
        let rows = sqlx::query("PRAGMA quick_check")
            .fetch_all(&mut *conn)
            .await
            .map_err(self.err());
        let unmapped = sqlx::query("PRAGMA mmap_size = 0")
            .execute(&mut *conn)
            .await
            .map_err(self.err());
        let rows = rows?;
        unmapped?;
        let found: Vec<String> = rows
            .iter()
            .map(|r| sqlx::Row::get::<String, _>(r, 0))
            .collect();
        if found.len() == 1 && found[0] == "ok" {
            return Ok(());
        }
        Err(self.unreadable(format!(
            "the file is damaged (PRAGMA quick_check: {}). Stop the scheduler, then restore the file from a backup; or move it aside to start a new store — the feeds' files are then read again (dedupe absorbs them) and `xinyong reconcile --repair` brings the platforms' ledger back in line",
            found.into_iter().take(3).collect::<Vec<_>>().join("; ")
        )))
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(sqlx::Error) -> StateError + '_ {
        |source| StateError::Database {
            path: self.path.clone(),
            source,
        }
    }

    fn unreadable(&self, message: String) -> StateError {
        StateError::Unreadable {
            path: self.path.clone(),
            message,
        }
    }

    /// Closes the pool (the write-ahead log stays beside the file: see
    /// `keep_wal_on_close`) and stamps the files as closed cleanly, so that the next open
    /// that finds them untouched skips the integrity check (see `closed_stamp`).
    pub async fn close(&self) {
        self.pool.close().await;
        closed_stamp::leave(&self.path);
    }

    /// A consistent copy of the store at `dest` (SQLite `VACUUM INTO`: one read
    /// transaction, so runs may go on meanwhile). `dest` must not exist.
    pub async fn backup_to(&self, dest: &Path) -> Result<()> {
        if dest.exists() {
            return Err(self.unreadable(format!(
                "the backup {} exists already; name a new file",
                dest.display()
            )));
        }
        sqlx::query("VACUUM INTO ?")
            .bind(dest.display().to_string())
            .execute(&self.pool)
            .await
            .map_err(self.err())?;
        Ok(())
    }
}
