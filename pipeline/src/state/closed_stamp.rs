//! The stamp a clean close leaves beside the store: the identity, size and change times
//! of the database file and its write-ahead log as the last connection left them. An
//! open that finds both files exactly as stamped knows nothing has touched them since
//! SQLite closed them whole, and skips the integrity check (`PRAGMA quick_check` reads
//! every page: 28 ms at a full load's 31,000 problems, growing with the store, paid by
//! every run and every command). Anything else — no stamp, a crash (no close, so no new
//! stamp), a write by this or another program, a copy or restore (a new inode), a
//! truncation — changes a field, and the store is checked as before. The change time
//! (ctime) cannot be set back by a program, so a stamp cannot be made to match by hand.
//! Where the system does not tell a file's inode and change time (not Unix), no stamp
//! is taken and every open checks.

use crate::snapshot::FileStamp;
use std::path::{Path, PathBuf};

/// The stamp's file, beside the store.
fn stamp_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".closed");
    PathBuf::from(name)
}

/// The store's write-ahead log (SQLite names it so).
fn wal_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// The stamp of the store's files as they are now (`None`: the store is missing, or
/// the system does not tell its inode and change time).
fn current(store: &Path) -> Option<String> {
    let db = FileStamp::at(store).filter(FileStamp::is_strong)?;
    let wal = FileStamp::at(&wal_path(store)).map_or_else(|| "none".into(), |w| w.to_string());
    Some(format!("xinyong closed stamp 1\ndb {db}\nwal {wal}\n"))
}

/// Whether the store's files are exactly as a clean close left them.
pub(super) fn unchanged_since_closed(store: &Path) -> bool {
    let Ok(stamp) = std::fs::read_to_string(stamp_path(store)) else {
        return false;
    };
    current(store).is_some_and(|now| now == stamp)
}

/// Forgets the stamp: the store is about to be written (a crash from here must not find
/// a stamp that matches). A failure to remove it is harmless — the write changes the
/// files, and the stamp no longer matches them.
pub(super) fn forget(store: &Path) {
    let _ = std::fs::remove_file(stamp_path(store));
}

/// Leaves the stamp of the store's files, once the last connection has closed them.
/// Written beside its name and renamed, so a torn stamp does not read as a match; not
/// fsynced (not `write_atomic`): a stamp lost to a crash only means one more check.
pub(super) fn leave(store: &Path) {
    let Some(stamp) = current(store) else {
        return;
    };
    let dest = stamp_path(store);
    let mut tmp = dest.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    if std::fs::write(&tmp, stamp).is_ok() && std::fs::rename(&tmp, &dest).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_matches_only_the_files_it_was_taken_of() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.sqlite");
        assert!(!unchanged_since_closed(&db), "no store, no stamp");
        std::fs::write(&db, b"pages").unwrap();
        assert!(!unchanged_since_closed(&db), "no stamp yet");
        leave(&db);
        assert!(unchanged_since_closed(&db));
        // A log appearing, a write of the same length, a copy put in its place: each
        // breaks the match.
        std::fs::write(wal_path(&db), b"frames").unwrap();
        assert!(!unchanged_since_closed(&db));
        leave(&db);
        assert!(unchanged_since_closed(&db));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&db, b"PAGES").unwrap();
        assert!(!unchanged_since_closed(&db));
        leave(&db);
        let copy = dir.path().join("copy");
        std::fs::copy(&db, &copy).unwrap();
        std::fs::rename(&copy, &db).unwrap();
        assert!(!unchanged_since_closed(&db), "another inode");
        leave(&db);
        forget(&db);
        assert!(!unchanged_since_closed(&db));
        std::fs::write(stamp_path(&db), b"xinyong closed stamp 1\ndb 1").unwrap();
        assert!(!unchanged_since_closed(&db), "a torn stamp");
    }

    #[tokio::test]
    async fn a_clean_close_stamps_the_store_and_an_open_forgets_the_stamp() {
        use crate::state::{RunKind, StateStore};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.sqlite");
        let store = StateStore::open(&db).await.unwrap();
        store.begin_run("r1", &RunKind::Run).await.unwrap();
        store.close().await;
        assert!(unchanged_since_closed(&db), "closed cleanly");
        let store = StateStore::open(&db).await.unwrap();
        assert!(!stamp_path(&db).exists(), "an open forgets the stamp");
        store.begin_run("r2", &RunKind::Run).await.unwrap();
        // A crash: the pool is never closed, no stamp is left.
        drop(store);
        assert!(!unchanged_since_closed(&db));
        let store = StateStore::open(&db).await.unwrap();
        store.close().await;
        assert!(unchanged_since_closed(&db));
    }
}
