//! The state store's schema, built by numbered migrations. The store's version is
//! SQLite's `user_version` (0 for a new store, and for every store made before versions
//! were kept); [`bring_up`] applies each migration above it in order, each in one
//! transaction with the version it reaches. Each migration also holds for a store made
//! before versions were kept (tables are created if missing, columns added if missing),
//! so such a store is brought up like any other. A store of a newer version than this
//! build's is refused: this build would not know what it holds.

use super::{Result, StateStore};
use sqlx::Row;

/// One step of a migration.
enum Step {
    /// Statements run as they are (separated by `;`, none inside a literal).
    Sql(&'static str),
    /// A column added to a table unless it has it already.
    AddColumn {
        table: &'static str,
        column: &'static str,
        declaration: &'static str,
    },
}

/// A numbered migration.
struct Migration {
    version: i64,
    what: &'static str,
    steps: &'static [Step],
}

/// Every migration, in order. Append; never change one that has shipped.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        what: "runs, files read, push ledger and batches, overrides, leases, jobs, positions, reconciliations",
        steps: &[Step::Sql(
            r#"
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
"#,
        )],
    },
    Migration {
        version: 2,
        what: "files_read keeps each file's size (a file of an unknown size is hashed while read)",
        steps: &[Step::AddColumn {
            table: "files_read",
            column: "bytes",
            declaration: "INTEGER",
        }],
    },
    Migration {
        version: 3,
        what: "push_batches keeps the receipt's received_at, read by the platform's dialect",
        steps: &[
            Step::AddColumn {
                table: "push_batches",
                column: "received_at",
                declaration: "TEXT",
            },
            Step::Sql(
                "UPDATE push_batches SET received_at = json_extract(receipt, '$.received_at')
                 WHERE received_at IS NULL AND receipt IS NOT NULL AND json_valid(receipt)",
            ),
        ],
    },
    Migration {
        version: 4,
        what: "platform_problems: a platform's configuration error, shown until a push succeeds",
        steps: &[Step::Sql(
            "CREATE TABLE IF NOT EXISTS platform_problems (
                platform TEXT PRIMARY KEY,
                message TEXT NOT NULL,
                since TEXT NOT NULL
            )",
        )],
    },
    Migration {
        version: 5,
        what: "files_read keeps files set aside (unreadable), with their reason, so they are not tried again until they change",
        steps: &[Step::AddColumn {
            table: "files_read",
            column: "set_aside",
            declaration: "TEXT",
        }],
    },
    Migration {
        version: 6,
        what: "problems: each quarantined decision once, open until a later run brings it valid (退回整改)",
        steps: &[Step::Sql(
            "CREATE TABLE IF NOT EXISTS problems (
                feed TEXT NOT NULL,
                identity TEXT NOT NULL,
                dataset TEXT NOT NULL,
                source_unit TEXT NOT NULL,
                file TEXT NOT NULL,
                line INTEGER NOT NULL,
                field TEXT NOT NULL,
                reason TEXT NOT NULL,
                value TEXT NOT NULL,
                raw TEXT NOT NULL,
                status TEXT NOT NULL,
                first_seen TEXT NOT NULL,
                first_run TEXT NOT NULL,
                last_seen TEXT NOT NULL,
                last_run TEXT NOT NULL,
                resolved_at TEXT,
                resolved_run TEXT,
                PRIMARY KEY (feed, identity)
            )",
        )],
    },
    Migration {
        version: 7,
        what: "problems: the open ones of a feed found from an index alone (a night read every problem's raw row to find them)",
        steps: &[Step::Sql(
            "CREATE INDEX IF NOT EXISTS problems_open ON problems (feed, status, identity, last_run)",
        )],
    },
];

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The store's schema version.
pub async fn version(store: &StateStore) -> Result<i64> {
    let row = sqlx::query("PRAGMA user_version")
        .fetch_one(&store.pool)
        .await
        .map_err(store.err())?;
    Ok(row.get::<i64, _>(0))
}

/// Brings the store up to [`LATEST`].
pub async fn bring_up(store: &StateStore) -> Result<()> {
    let current = version(store).await?;
    if current > LATEST {
        return Err(store.unreadable(format!(
            "schema version {current} is newer than this build's ({LATEST}): use the xinyong that wrote it, or a newer one"
        )));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let mut tx = store.pool.begin().await.map_err(store.err())?;
        for step in m.steps {
            match step {
                Step::Sql(sql) => {
                    for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
                        sqlx::query(statement)
                            .execute(&mut *tx)
                            .await
                            .map_err(store.err())?;
                    }
                }
                Step::AddColumn {
                    table,
                    column,
                    declaration,
                } => {
                    let columns = sqlx::query("SELECT name FROM pragma_table_info(?)")
                        .bind(table)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(store.err())?;
                    if !columns.iter().any(|r| r.get::<String, _>(0) == *column) {
                        let alter =
                            format!("ALTER TABLE {table} ADD COLUMN {column} {declaration}");
                        sqlx::query(&alter)
                            .execute(&mut *tx)
                            .await
                            .map_err(store.err())?;
                    }
                }
            }
        }
        // PRAGMA takes no bound parameters; the version is one of ours.
        let set_version = format!("PRAGMA user_version = {}", m.version);
        sqlx::query(&set_version)
            .execute(&mut *tx)
            .await
            .map_err(store.err())?;
        tx.commit().await.map_err(store.err())?;
        tracing::debug!(version = m.version, what = m.what, "state store migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_from_before_versions_is_brought_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        // The first store's layout: no versions, files_read without sizes, receipts
        // holding received_at only in their JSON.
        {
            use sqlx::ConnectOptions;
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .connect()
                .await
                .unwrap();
            sqlx::raw_sql(
                "CREATE TABLE files_read (feed TEXT NOT NULL, sha256 TEXT NOT NULL, path TEXT NOT NULL,
                     rows INTEGER NOT NULL, encoding TEXT NOT NULL, run_id TEXT NOT NULL, read_at TEXT NOT NULL,
                     PRIMARY KEY (feed, sha256));
                 CREATE TABLE push_batches (platform TEXT NOT NULL, batch_id TEXT NOT NULL, dataset TEXT NOT NULL,
                     source_unit TEXT NOT NULL, records INTEGER NOT NULL, body BLOB NOT NULL, status TEXT NOT NULL,
                     http_status INTEGER, receipt TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                     PRIMARY KEY (platform, batch_id));
                 INSERT INTO push_batches VALUES ('p', 'b1', 'xzcf', 'u', 1, x'7b7d', 'done', 200,
                     '{\"batch_id\":\"b1\",\"status\":\"done\",\"received_at\":\"2026-01-05T08:00:00Z\"}', 't', 't');",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            sqlx::Connection::close(conn).await.unwrap();
        }
        let store = StateStore::open(&path).await.unwrap();
        assert_eq!(version(&store).await.unwrap(), LATEST);
        let (hashes, sizes) = store.files_read("f").await.unwrap();
        assert!(hashes.is_empty() && sizes == Some(Default::default()));
        let row = sqlx::query("SELECT received_at FROM push_batches WHERE batch_id = 'b1'")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(
            row.get::<Option<String>, _>(0).as_deref(),
            Some("2026-01-05T08:00:00Z")
        );
        store.close().await;
        // Opening again changes nothing.
        let store = StateStore::open(&path).await.unwrap();
        assert_eq!(version(&store).await.unwrap(), LATEST);
        store.close().await;
    }

    #[tokio::test]
    async fn a_store_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        let store = StateStore::open(&path).await.unwrap();
        sqlx::raw_sql(&format!("PRAGMA user_version = {}", LATEST + 1))
            .execute(&store.pool)
            .await
            .unwrap();
        store.close().await;
        let err = StateStore::open(&path).await.err().expect("refused");
        assert!(err.to_string().contains("newer than this build"), "{err}");
    }
}
