//! Backfills: a window re-read after the source changed produces exactly the upserts
//! and withdrawals of the change, leaves the nightly position alone, and a second
//! backfill of the same window changes nothing.

use crate::bench_semantics::{csv, row};
use crate::util::*;

fn export(rows: &[(&str, &str, &str, &str)]) -> Vec<u8> {
    // (文号, 内容, 决定日期, 更新时间)
    let code = pipeline::domain::ids::complete_uscc("91230881MA1BC3D4").unwrap();
    csv(&rows
        .iter()
        .map(|(w, c, d, u)| row("同江市江华商贸有限公司", &code, w, "罚款", c, "1,000", d, u))
        .collect::<Vec<_>>())
}

/// The backfill of January 2024, pushed.
const BACKFILL_JANUARY: [&str; 8] = [
    "backfill",
    "--feed",
    "penalties_full_load",
    "--from",
    "2024-01-01",
    "--to",
    "2024-01-31",
    "--push",
];

#[test]
fn a_backfill_applies_the_sources_changes_in_its_window_only() {
    let w = Workdir::new();
    let sim = Simulator::start("jiamusi", &[]);
    std::fs::create_dir_all(w.path().join("input")).unwrap();
    let t0 = "2024-03-01 09:00:00";
    std::fs::write(
        w.path().join("input/export.csv"),
        export(&[
            ("W1", "罚款1000元", "2024-01-05", t0),
            ("W2", "罚款1000元", "2024-01-08", t0),
            ("W3", "罚款1000元", "2024-01-09", t0),
            ("W6", "罚款1000元", "2024-02-05", t0),
            ("W7", "罚款1000元", "2024-02-06", t0),
        ]),
    )
    .unwrap();
    std::fs::write(
        w.config(),
        format!(
            "data_dir = \"data\"\nmappings = \"{ROOT}/fixtures/bench/mappings\"\nbase_dir = \".\"\n\n[[platform]]\nname = \"jiamusi\"\ntitle = \"jiamusi\"\nbase_url = \"{}\"\napp_id = \"tongjiang-city\"\nsecret = \"{}\"\n",
            sim.url, sim.secret
        ),
    )
    .unwrap();
    assert_exit(&w.xinyong(&["run"]), 0);
    assert!(stdout(&w.xinyong(&["status"])).contains("position: 1 files read"));

    // The bureau corrects W1, deletes W2 (revoked) and W6, and adds W9 — then re-exports.
    let t1 = "2024-04-01 09:00:00";
    std::fs::write(
        w.path().join("input/export.csv"),
        export(&[
            ("W1", "罚款1000元（更正）", "2024-01-05", t1),
            ("W3", "罚款1000元", "2024-01-09", t0),
            ("W9", "罚款1000元", "2024-01-20", t1),
            ("W7", "罚款1000元", "2024-02-06", t0),
        ]),
    )
    .unwrap();
    let dry = w.xinyong(&[
        "backfill",
        "--feed",
        "penalties_full_load",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-31",
        "--dry-run",
    ]);
    assert_exit(&dry, 0);
    assert!(
        stdout(&dry).contains("dry run") && stdout(&dry).contains("vanished 1"),
        "{}",
        stdout(&dry)
    );

    let o = w.xinyong(&BACKFILL_JANUARY);
    assert_exit(&o, 0);
    let r = w.latest_report();
    let c = &r["feeds"][0]["counts"];
    let n = |k: &str| c[k].as_u64().unwrap();
    assert_eq!(
        (
            n("read"),
            n("outside_window"),
            n("new"),
            n("changed"),
            n("unchanged"),
            n("vanished")
        ),
        (3, 1, 1, 1, 1, 1),
        "{c}"
    );
    assert_eq!(
        r["platforms"][0]["pushed"], 3,
        "W1's new version, W9, and the withdrawal of W2"
    );
    assert_eq!(r["platforms"][0]["withdrawn"], 1);

    let rid = |wsh: &str| {
        let code = pipeline::domain::ids::complete_uscc("91230881MA1BC3D4").unwrap();
        hex::encode(
            &sha2::Digest::finalize(sha2::Digest::chain_update(
                <sha2::Sha256 as sha2::Digest>::new(),
                format!("xzcf|{code}|{wsh}").as_bytes(),
            ))[..16],
        )
    };
    let groups = w.snapshot_holdings().keys().cloned().collect();
    let held: std::collections::BTreeMap<String, String> = sim
        .holdings(&groups)
        .into_values()
        .flatten()
        .map(|(id, _, s)| (id, s))
        .collect();
    assert_eq!(held[&rid("W2")], "withdrawn");
    assert_eq!(
        held[&rid("W6")],
        "active",
        "outside the window: untouched although the export lacks it"
    );
    assert_eq!(held[&rid("W9")], "active");
    assert_eq!(held[&rid("W1")], "active");
    // The nightly position did not move: the backfill recorded no file as read.
    assert!(stdout(&w.xinyong(&["status"])).contains("position: 1 files read"));

    // The same backfill again changes nothing.
    let o = w.xinyong(&BACKFILL_JANUARY);
    assert_exit(&o, 0);
    let r = w.latest_report();
    let c = &r["feeds"][0]["counts"];
    assert_eq!(
        (
            c["new"].as_u64(),
            c["changed"].as_u64(),
            c["vanished"].as_u64(),
            c["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(0), Some(3)),
        "{c}"
    );
    assert_eq!(r["platforms"][0]["pushed"], 0);
    assert_exit(&w.xinyong(&["reconcile"]), 0);
}

#[test]
fn a_full_export_feed_withdraws_what_a_new_export_no_longer_has() {
    let w = Workdir::new();
    let sim = Simulator::start("jiamusi", &[]);
    std::fs::create_dir_all(w.path().join("input")).unwrap();
    std::fs::create_dir_all(w.path().join("feeds")).unwrap();
    let mapping = std::fs::read_to_string(
        std::path::Path::new(ROOT).join("fixtures/bench/mappings/penalties_full_load.toml"),
    )
    .unwrap()
    .replace(
        "feed = \"penalties_full_load\"",
        "feed = \"nightly_full_export\"\nfull_export = true",
    );
    std::fs::write(w.path().join("feeds/nightly_full_export.toml"), mapping).unwrap();
    std::fs::write(
        w.config(),
        format!(
            "data_dir = \"data\"\nmappings = \"feeds\"\nbase_dir = \".\"\n\n[[platform]]\nname = \"jiamusi\"\ntitle = \"jiamusi\"\nbase_url = \"{}\"\napp_id = \"tongjiang-city\"\nsecret = \"{}\"\n",
            sim.url, sim.secret
        ),
    )
    .unwrap();
    let t = "2024-03-01 09:00:00";
    std::fs::write(
        w.path().join("input/2024-03-01.csv"),
        export(&[
            ("W1", "罚款1000元", "2024-01-05", t),
            ("W2", "罚款1000元", "2024-01-08", t),
            ("W3", "罚款1000元", "2024-02-09", t),
        ]),
    )
    .unwrap();
    assert_exit(&w.xinyong(&["run"]), 0);

    // The next night's export no longer lists W2 (revoked).
    std::fs::remove_file(w.path().join("input/2024-03-01.csv")).unwrap();
    std::fs::write(
        w.path().join("input/2024-03-02.csv"),
        export(&[
            ("W1", "罚款1000元", "2024-01-05", t),
            ("W3", "罚款1000元", "2024-02-09", t),
        ]),
    )
    .unwrap();
    assert_exit(&w.xinyong(&["run"]), 0);
    let r = w.latest_report();
    let c = &r["feeds"][0]["counts"];
    assert_eq!(
        (
            c["read"].as_u64(),
            c["unchanged"].as_u64(),
            c["vanished"].as_u64()
        ),
        (Some(2), Some(2), Some(1)),
        "{c}"
    );
    assert_eq!(r["platforms"][0]["withdrawn"], 1);
    let statuses: Vec<String> = sim
        .holdings(
            &[("xzcf".to_string(), "11230881MB00123433".to_string())]
                .into_iter()
                .collect(),
        )
        .into_values()
        .flatten()
        .map(|(_, _, s)| s)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| *s == "withdrawn").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.len(), 3);
    // A night without a new export withdraws nothing.
    assert_exit(&w.xinyong(&["run"]), 0);
    assert_eq!(w.latest_report()["feeds"][0]["counts"]["vanished"], 0);
}

/// A backfill of a few days of a large month patches the month's partition: the record
/// the source no longer has leaves it (found by the withdrawal scan, not by the dedupe's),
/// the corrected one is corrected in place, and the partition holds exactly what
/// rewriting it whole holds (`[snapshot] patch_row_groups = 0`).
#[test]
fn a_backfill_of_a_few_days_patches_the_month_as_a_rewrite_would() {
    let t0 = "2024-03-01 09:00:00";
    let t1 = "2024-04-01 09:00:00";
    let wsh: Vec<String> = (0..120).map(|i| format!("P{i:03}")).collect();
    let day = |i: usize| format!("2024-01-{:02}", 1 + i % 28);
    let first: Vec<(String, String, String, String)> = wsh
        .iter()
        .enumerate()
        .map(|(i, w)| (w.clone(), format!("罚款{i}元"), day(i), t0.to_string()))
        .collect();
    // In the window (1–3 January, 15 records): P000 corrected, P028 gone, P900 new.
    let mut second: Vec<(String, String, String, String)> = first
        .iter()
        .filter(|r| r.0 != "P028")
        .map(|r| match r.0.as_str() {
            "P000" => (
                r.0.clone(),
                "罚款0元（更正）".into(),
                r.2.clone(),
                t1.into(),
            ),
            _ => r.clone(),
        })
        .collect();
    second.push(("P900".into(), "罚款900元".into(), day(1), t1.into()));
    let as_rows = |rows: &[(String, String, String, String)]| {
        export(
            &rows
                .iter()
                .map(|(w, c, d, u)| (w.as_str(), c.as_str(), d.as_str(), u.as_str()))
                .collect::<Vec<_>>(),
        )
    };
    let run = |snapshot: &str| {
        let w = Workdir::new();
        std::fs::create_dir_all(w.path().join("input")).unwrap();
        std::fs::write(w.path().join("input/export.csv"), as_rows(&first)).unwrap();
        std::fs::write(
            w.config(),
            format!(
                "data_dir = \"data\"\nmappings = \"{ROOT}/fixtures/bench/mappings\"\nbase_dir = \".\"\n{snapshot}"
            ),
        )
        .unwrap();
        assert_exit(&w.xinyong(&["run", "--no-push"]), 0);
        std::fs::write(w.path().join("input/export.csv"), as_rows(&second)).unwrap();
        let o = w.xinyong(&[
            "backfill",
            "--feed",
            "penalties_full_load",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-03",
        ]);
        assert_exit(&o, 0);
        let c = w.latest_report()["feeds"][0]["counts"].clone();
        let mut held = std::collections::BTreeMap::new();
        pipeline::snapshot::SnapshotStore::new(&w.data())
            .read_dataset("xzcf", Some(&["CF_WSH", "CF_NR", "version"]), |b| {
                let cols = ["CF_WSH", "CF_NR", "version"]
                    .map(|c| pipeline::snapshot::str_col(&b, c).unwrap());
                for i in 0..b.num_rows() {
                    let before = held.insert(
                        cols[0].value(i).to_string(),
                        (cols[1].value(i).to_string(), cols[2].value(i).to_string()),
                    );
                    assert!(before.is_none(), "a record twice in the snapshot");
                }
                Ok(())
            })
            .unwrap();
        let file = w
            .data()
            .join("snapshot/dataset=xzcf/month=2024-01/data.parquet");
        let reader = parquet::file::serialized_reader::SerializedFileReader::new(
            std::fs::File::open(file).unwrap(),
        )
        .unwrap();
        let groups = parquet::file::reader::FileReader::metadata(&reader).num_row_groups();
        (c, held, groups)
    };
    let (patched, held, groups) = run("");
    let (whole, rewritten, _) = run("[snapshot]\npatch_row_groups = 0\n");
    let n = |c: &serde_json::Value, k: &str| c[k].as_u64().unwrap();
    assert_eq!(
        (
            n(&patched, "changed"),
            n(&patched, "vanished"),
            n(&patched, "new"),
            n(&patched, "unchanged")
        ),
        (1, 1, 1, 13),
        "{patched}"
    );
    assert_eq!(patched, whole);
    assert_eq!(held.len(), 120);
    assert!(!held.contains_key("P028") && held.contains_key("P900"));
    assert_eq!(held["P000"].0, "罚款0元（更正）");
    assert_eq!(held, rewritten);
    assert_eq!(
        groups, 2,
        "patched: the new record in a row group of its own"
    );
}
