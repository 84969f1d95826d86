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
