//! The housing bureau's SQL feed end to end: `xinyong run --no-push` reads its SQLite
//! database into the snapshot, every row once; a second run reads nothing new; rows
//! added at the stored watermark's own timestamp, or updated, are read by the next run.

use crate::util::*;
use std::collections::BTreeSet;

const UNIT: &str = "11230881MB0017654C";

fn feed_counts(w: &Workdir) -> serde_json::Value {
    let report = w.latest_report();
    let feeds = report["feeds"].as_array().unwrap();
    assert_eq!(feeds.len(), 1, "{report}");
    assert_eq!(feeds[0]["feed"], "zjj_xzcf");
    assert!(feeds[0]["error"].is_null(), "{}", feeds[0]);
    feeds[0]["counts"].clone()
}

fn n(c: &serde_json::Value, k: &str) -> u64 {
    c[k].as_u64().unwrap()
}

fn holdings(w: &Workdir) -> BTreeSet<(String, String, String)> {
    w.snapshot_holdings()
        .remove(&("xzcf".to_string(), UNIT.to_string()))
        .unwrap_or_default()
}

fn sqlite(db: &std::path::Path, sql: &str) {
    use sqlx::{ConnectOptions, Executor};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .connect()
            .await
            .unwrap();
        c.execute(sqlx::raw_sql(sql)).await.unwrap();
    });
}

#[test]
fn a_sql_feed_reads_every_row_once_and_resumes_after_its_position() {
    let w = Workdir::new();
    w.configure(&[], &PlatformOpts::default());
    let db = w.add_sql_feed();
    let run = || w.xinyong(&["run", "--no-push", "--feed", "zjj_xzcf"]);

    let out = run();
    assert_exit(&out, 0);
    let c = feed_counts(&w);
    // The fixture has 12 decisions, in batches of 5 with a tie of three across a boundary.
    assert_eq!(n(&c, "read"), 12, "{c}");
    assert_eq!(
        n(&c, "read"),
        n(&c, "kept") + n(&c, "quarantined") + n(&c, "superseded")
    );
    assert_eq!(n(&c, "quarantined"), 0, "{c}");
    assert_eq!(n(&c, "new"), 12, "{c}");
    let first = holdings(&w);
    assert_eq!(first.len(), 12, "every row once in the snapshot");

    // Nothing new: nothing read, the snapshot unchanged.
    let out = run();
    assert_exit(&out, 0);
    let c = feed_counts(&w);
    assert_eq!(n(&c, "read"), 0, "{c}");
    assert_eq!(holdings(&w), first);

    // A decision added at the last update time (greater case number) and one corrected.
    sqlite(
        &db,
        "INSERT INTO xzcf_ajxx SELECT 1013, xdr_mc, xdr_lb, tyshxydm, fddbr, '同建罚决字〔2025〕第013号', wfxwlx, wfss, cfyj, cflb, cfnr, fkje, mswfsdje, '2025-01-08', gxsj, bz FROM xzcf_ajxx WHERE ajid = 1012;
         UPDATE xzcf_ajxx SET fkje = '45000.00', cfnr = '罚款45000元', gxsj = '2025-02-01 09:00:00' WHERE ajid = 1001;",
    );
    let out = run();
    assert_exit(&out, 0);
    let c = feed_counts(&w);
    assert_eq!(n(&c, "read"), 2, "{c}");
    assert_eq!((n(&c, "new"), n(&c, "changed")), (1, 1), "{c}");
    let third = holdings(&w);
    assert_eq!(third.len(), 13);
    assert_eq!(
        third.difference(&first).count(),
        2,
        "one new, one new version"
    );
}

/// Killed (SIGKILL) in the middle of the read, or after the snapshot is published but
/// before the position is recorded: the rerun reads from the last recorded position and
/// the snapshot ends with every row once.
#[test]
fn a_sql_feed_killed_mid_read_or_before_its_position_is_recorded_converges() {
    use std::os::unix::process::ExitStatusExt;
    for point in ["ingest.batch:2", "snapshot.published:1", "feed.recorded:1"] {
        let w = Workdir::new();
        w.configure(&[], &PlatformOpts::default());
        w.add_sql_feed();
        let args = ["run", "--no-push", "--feed", "zjj_xzcf"];
        let killed = w.xinyong_env(&args, &[("XINYONG_CRASH_AT", point)]);
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{point}: {}",
            stderr(&killed)
        );
        let out = w.xinyong(&args);
        assert_exit(&out, 0);
        let c = feed_counts(&w);
        assert_eq!(
            n(&c, "read"),
            n(&c, "kept") + n(&c, "quarantined") + n(&c, "superseded"),
            "{point}: {c}"
        );
        if point == "feed.recorded:1" {
            // The position was recorded with the feed: nothing is read again.
            assert_eq!(n(&c, "read"), 0, "{point}: {c}");
        } else {
            // Nothing was recorded: the rerun reads every row again, and rows already
            // in the snapshot come out unchanged.
            assert_eq!(n(&c, "read"), 12, "{point}: {c}");
        }
        assert_eq!(holdings(&w).len(), 12, "{point}: every row once");
        let out = w.xinyong(&args);
        assert_exit(&out, 0);
        assert_eq!(
            n(&feed_counts(&w), "read"),
            0,
            "{point}: nothing left to read"
        );
    }
}
