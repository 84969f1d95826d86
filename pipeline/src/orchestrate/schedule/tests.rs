//! The scheduler with a fake clock: local fire times across a day boundary, missed-run
//! policies, and the lease that refuses overlap and takes over from a killed run.

use super::*;
use crate::state::{Lease, StateStore};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn job(cron: &str, missed: &str) -> Job {
    let text = format!("[[job]]\nname = \"nightly\"\ncron = \"{cron}\"\nmissed = \"{missed}\"\n");
    parse(Path::new("schedules/t.toml"), &text)
        .unwrap()
        .remove(0)
}

#[test]
fn fires_at_local_time_across_the_day_boundary() {
    let j = job("30 1 * * *", "run_once");
    assert_eq!(j.tz, chrono_tz::Asia::Shanghai);
    // 01:00 in Shanghai on the 28th is 17:00 UTC on the 27th: the fire is half an hour later.
    assert_eq!(
        j.next_after(t("2026-11-27T17:00:00Z")),
        Some(t("2026-11-27T17:30:00Z"))
    );
    assert_eq!(
        j.next_after(t("2026-11-27T17:30:00Z")),
        Some(t("2026-11-28T17:30:00Z"))
    );
    // Late evening UTC is already the next local day.
    let evening = job("0 23 * * *", "skip");
    assert_eq!(
        evening.next_after(t("2026-11-27T14:00:00Z")),
        Some(t("2026-11-27T15:00:00Z"))
    );
    assert_eq!(
        j.fires_between(t("2026-11-27T00:00:00Z"), t("2026-11-30T00:00:00Z")),
        vec![
            t("2026-11-27T17:30:00Z"),
            t("2026-11-28T17:30:00Z"),
            t("2026-11-29T17:30:00Z")
        ]
    );
}

#[test]
fn due_while_running_and_after_downtime() {
    let j = job("30 1 * * *", "run_once");
    let look = t("2026-11-27T17:29:00Z");
    assert_eq!(j.due(None, Some(look), t("2026-11-27T17:29:30Z")), None);
    assert_eq!(
        j.due(None, Some(look), t("2026-11-27T17:30:05Z")),
        Some(t("2026-11-27T17:30:00Z"))
    );
    // Down for three nights: run once, for the latest missed fire.
    let last = Some(t("2026-11-24T17:30:00Z"));
    assert_eq!(
        j.due(last, None, t("2026-11-27T20:00:00Z")),
        Some(t("2026-11-27T17:30:00Z"))
    );
    let skip = job("30 1 * * *", "skip");
    assert_eq!(skip.due(last, None, t("2026-11-27T20:00:00Z")), None);
    // Never ran: nothing is "missed"; the first fire comes in its time.
    assert_eq!(j.due(None, None, t("2026-11-27T20:00:00Z")), None);
}

#[test]
fn broken_schedules_name_file_and_line() {
    let e = parse(
        Path::new("schedules/x.toml"),
        "[[job]]\nname = \"a\"\ncron = \"61 * * * *\"\n",
    )
    .unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    let e = parse(
        Path::new("schedules/x.toml"),
        "[[job]]\nname = \"a\"\ncron = \"0 1 * * *\"\ntimezone = \"Mars/Olympus\"\n",
    )
    .unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    assert!(parse(
        Path::new("x"),
        "[[job]]\nname = \"a\"\ncron = \"0 1 * * *\"\nmissed = \"later\"\n"
    )
    .is_err());
}

#[test]
fn the_repository_schedules_parse() {
    let jobs = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../schedules")).unwrap();
    assert!(!jobs.is_empty());
}

#[tokio::test]
async fn the_lease_refuses_overlap_and_is_taken_over_when_stale() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateStore::open(&dir.path().join("state.sqlite"))
        .await
        .unwrap();
    let now = 1_800_000_000;
    assert_eq!(
        state.acquire_lease("nightly", "a", now, 120).await.unwrap(),
        Lease::Acquired
    );
    // A second scheduler (or the next fire) while the run heartbeats: refused.
    state.heartbeat("nightly", "a", now + 100).await.unwrap();
    assert_eq!(
        state
            .acquire_lease("nightly", "b", now + 150, 120)
            .await
            .unwrap(),
        Lease::Held {
            holder: "a".into(),
            last_heartbeat: now + 100
        }
    );
    // The run was killed: no heartbeat for longer than the stale limit.
    assert_eq!(
        state
            .acquire_lease("nightly", "b", now + 400, 120)
            .await
            .unwrap(),
        Lease::TakenOver {
            previous_holder: "a".into(),
            last_heartbeat: now + 100
        }
    );
    // The old holder cannot release what it lost.
    state.release_lease("nightly", "a").await.unwrap();
    assert!(matches!(
        state
            .acquire_lease("nightly", "c", now + 401, 120)
            .await
            .unwrap(),
        Lease::Held { .. }
    ));
    state.release_lease("nightly", "b").await.unwrap();
    assert_eq!(
        state
            .acquire_lease("nightly", "c", now + 402, 120)
            .await
            .unwrap(),
        Lease::Acquired
    );
}

/// A job over its timeout: the run is cancelled at its next batch and waited for, so
/// when the job (and its lease) ends, the run has stopped and written its report, with
/// the feed failed as cancelled and nothing published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_its_timeout_is_cancelled_and_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::create_dir_all(dir.path().join("mappings")).unwrap();
    std::fs::copy(
        root.join("mappings/scjgj_xzcf.toml"),
        dir.path().join("mappings/scjgj_xzcf.toml"),
    )
    .unwrap();
    let drop = dir.path().join("fixtures/drop/scjgj_xzcf");
    std::fs::create_dir_all(&drop).unwrap();
    let sample = std::fs::read_to_string(
        root.join("fixtures/drop/scjgj_xzcf/同江市市场监督管理局行政处罚信息_2025年1月补报.csv"),
    )
    .unwrap();
    let mut lines = sample.lines();
    let header = lines.next().unwrap();
    let row = lines.next().unwrap();
    let mut big = format!("{header}\n");
    for i in 0..150_000 {
        big.push_str(&row.replacen("〔2025〕1号", &format!("〔2025〕{i}号"), 1));
        big.push('\n');
    }
    std::fs::write(drop.join("big.csv"), big).unwrap();
    let cfg_path = dir.path().join("xinyong.toml");
    std::fs::write(&cfg_path, "data_dir = \"data\"\nmappings = \"mappings\"\n").unwrap();
    let config = crate::config::Config::load(&cfg_path).unwrap();
    let state = StateStore::open(&config.state).await.unwrap();
    let text = "[[job]]\nname = \"nightly\"\ncron = \"30 1 * * *\"\nfeeds = [\"scjgj_xzcf\"]\npush = []\ntimeout_seconds = 1\n";
    let job = parse(Path::new("schedules/t.toml"), text)
        .unwrap()
        .remove(0);
    run_job(&config, &state, &job, crate::clock::now(), "test").await;
    // The run ended before the job did: its report is written, the feed cancelled.
    let runs: Vec<_> = std::fs::read_dir(config.data_dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&runs[0]).unwrap()).unwrap();
    let error = report["feeds"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("cancelled"), "{report}");
    assert!(!crate::snapshot::SnapshotStore::new(&config.data_dir).exists("xzcf"));
    assert_eq!(
        state
            .acquire_lease("nightly", "next", crate::clock::now().timestamp(), 120)
            .await
            .unwrap(),
        Lease::Acquired
    );
}
