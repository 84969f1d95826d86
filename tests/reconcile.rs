//! Reconciliation against a platform that lost records, holds one it never got from the
//! city and an old version of another; manual withdrawals and objection holds.

use crate::util::*;

fn first_xzcf_ids(w: &Workdir, n: usize) -> Vec<String> {
    let mut ids: Vec<String> = w
        .snapshot_holdings()
        .into_iter()
        .filter(|((ds, _), _)| ds == "xzcf")
        .flat_map(|(_, set)| set.into_iter().map(|(id, _, _)| id))
        .collect();
    ids.sort();
    ids.truncate(n);
    ids
}

#[test]
fn repair_converges_after_loss_extras_and_old_versions() {
    let w = Workdir::new();
    let state_file = w.path().join("platform.json");
    let sim_args = ["--state-file", state_file.to_str().unwrap()];
    let sim = Simulator::start("jiamusi", &sim_args);
    w.configure(&[&sim], &PlatformOpts::default());
    assert_exit(&w.xinyong(&["run"]), 0);
    assert_exit(&w.xinyong(&["reconcile"]), 0);
    drop(sim);

    // The platform loses two records, gains one the city never sent, and rolls one back.
    let ids = first_xzcf_ids(&w, 3);
    let mut store: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    let records = store["records"].as_object_mut().unwrap();
    let group = records
        .keys()
        .find(|k| k.starts_with("xzcf|"))
        .unwrap()
        .clone();
    let held = records[&group].as_object_mut().unwrap();
    held.remove(&ids[0]);
    held.remove(&ids[1]);
    held[&ids[2]]["version"] = "an-old-version".into();
    let mut extra = held.values().next().unwrap().clone();
    extra["version"] = "v-extra".into();
    held.insert("zzzz-not-from-this-city".into(), extra);
    std::fs::write(&state_file, serde_json::to_vec(&store).unwrap()).unwrap();

    let sim = Simulator::start("jiamusi", &sim_args);
    w.configure(&[&sim], &PlatformOpts::default());
    let o = w.xinyong(&["reconcile"]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(
        out.contains("missing_upstream: 2")
            && out.contains("unknown_upstream: 1")
            && out.contains("version_differs: 1"),
        "{out}"
    );
    let json_line = out.lines().find(|l| l.starts_with("结果 result:")).unwrap();
    let json_path = json_line
        .trim_start_matches("结果 result: ")
        .split(" · ")
        .next()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json_path).unwrap()).unwrap();
    let kinds: Vec<String> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| {
            g["differences"].as_array().unwrap().iter().map(|d| {
                format!(
                    "{}:{}",
                    d["record_id"].as_str().unwrap(),
                    d["kind"].as_str().unwrap()
                )
            })
        })
        .collect();
    assert!(
        kinds.contains(&format!("{}:missing_upstream", ids[0])),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&format!("{}:version_differs", ids[2])),
        "{kinds:?}"
    );
    assert!(std::path::Path::new(&json_path.replace(".json", ".csv")).exists());

    let o = w.xinyong(&["reconcile", "--repair"]);
    assert_exit(&o, 0);
    assert_exit(&w.xinyong(&["reconcile"]), 0);
    let snapshot = w.snapshot_holdings();
    let mut holdings = sim.holdings(&snapshot.keys().cloned().collect());
    for set in holdings.values_mut() {
        set.retain(|(id, _, status)| !(id == "zzzz-not-from-this-city" && status == "withdrawn"));
    }
    assert_eq!(
        holdings, snapshot,
        "the platform holds the snapshot again; the extra record is withdrawn"
    );
}

#[test]
fn manual_withdrawal_and_objection_hold() {
    let w = Workdir::new();
    let sim = Simulator::start("jiamusi", &[]);
    w.configure(&[&sim], &PlatformOpts::default());
    assert_exit(&w.xinyong(&["run"]), 0);
    let ids = first_xzcf_ids(&w, 2);
    let groups = w.snapshot_holdings().keys().cloned().collect();
    let status_of = |id: &str| -> String {
        sim.holdings(&groups)
            .values()
            .flatten()
            .find(|(i, _, _)| i == id)
            .map(|(_, _, s)| s.clone())
            .unwrap()
    };

    assert_exit(
        &w.xinyong(&[
            "withdraw",
            "--dataset",
            "xzcf",
            "--record-id",
            &ids[0],
            "--reason",
            "信用修复",
            "--by",
            "张科长",
        ]),
        0,
    );
    assert_exit(
        &w.xinyong(&[
            "hold",
            "--dataset",
            "xzcf",
            "--record-id",
            &ids[1],
            "--reason",
            "当事人提出异议",
        ]),
        0,
    );
    let o = w.xinyong(&["push"]);
    assert_exit(&o, 0);
    assert_eq!(status_of(&ids[0]), "withdrawn");
    assert_eq!(status_of(&ids[1]), "withdrawn");
    let holds = w.xinyong(&["holds"]);
    assert!(
        stdout(&holds).contains("张科长") && stdout(&holds).contains("当事人提出异议"),
        "{}",
        stdout(&holds)
    );

    // A nightly run does not re-publish them.
    assert_exit(&w.xinyong(&["run"]), 0);
    assert_eq!(w.latest_report()["platforms"][0]["pushed"], 0);
    assert_eq!(status_of(&ids[1]), "withdrawn");

    // The objection is settled: the record stands and is published again.
    assert_exit(
        &w.xinyong(&[
            "release",
            "--dataset",
            "xzcf",
            "--record-id",
            &ids[1],
            "--outcome",
            "confirmed",
        ]),
        0,
    );
    assert_exit(&w.xinyong(&["push"]), 0);
    assert_eq!(status_of(&ids[1]), "active");
    assert_eq!(status_of(&ids[0]), "withdrawn");
    assert_exit(&w.xinyong(&["reconcile"]), 0);
    assert_eq!(sim.stats()["same_version_upserts"], 0);
}

#[test]
fn penalties_are_withdrawn_when_their_publication_period_ends() {
    let w = Workdir::new();
    let sim = Simulator::start("jiamusi", &[]);
    w.configure(&[&sim], &PlatformOpts::default());
    assert_exit(&w.xinyong(&["run"]), 0);
    // Penalties decided in 2024 reach the 3-year maximum before 2028.
    let snap = pipeline::snapshot::SnapshotStore::new(&w.data());
    let mut old = std::collections::BTreeSet::new();
    snap.read_dataset("xzcf", Some(&["record_id", "CF_JDRQ"]), |b| {
        let ids = pipeline::snapshot::str_col(&b, "record_id").unwrap();
        let dates = pipeline::snapshot::str_col(&b, "CF_JDRQ").unwrap();
        for i in 0..b.num_rows() {
            if dates.value(i) < "2025-01-01" {
                old.insert(ids.value(i).to_string());
            }
        }
        Ok(())
    })
    .unwrap();
    assert!(!old.is_empty());
    let o = w.xinyong_env(&["push"], &[("XINYONG_TODAY", "2028-01-01")]);
    assert_exit(&o, 0);
    assert_eq!(
        w.latest_report()["platforms"][0]["withdrawn"],
        old.len() as u64
    );
    let holdings = sim.holdings(&w.snapshot_holdings().keys().cloned().collect());
    for ((ds, _), set) in holdings {
        for (id, _, status) in set {
            let expect = if ds == "xzcf" && old.contains(&id) {
                "withdrawn"
            } else {
                "active"
            };
            assert_eq!(status, expect, "{ds} {id}");
        }
    }
    assert_exit(
        &w.xinyong_env(&["reconcile"], &[("XINYONG_TODAY", "2028-01-01")]),
        0,
    );
}
