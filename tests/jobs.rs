//! Whole runs over the fixtures: accounting, idempotency, what the platforms hold, and
//! what other tools (pyarrow, DuckDB) see in the snapshot.

use crate::util::*;
use arrow_array::Array;

#[test]
fn run_accounts_for_every_row_pushes_the_snapshot_and_a_rerun_changes_nothing() {
    let w = Workdir::new();
    let jms = Simulator::start("jiamusi", &[]);
    let prov = Simulator::start("province", &[]);
    w.configure(&[&jms, &prov], &PlatformOpts::default());

    let out = w.xinyong(&["run"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("平衡 balanced"), "{}", stdout(&out));
    let report = w.latest_report();
    for f in report["feeds"].as_array().unwrap() {
        let c = &f["counts"];
        let n = |k: &str| c[k].as_u64().unwrap();
        assert!(n("read") > 300, "{f}");
        assert_eq!(
            n("read"),
            n("kept") + n("quarantined") + n("superseded"),
            "{f}"
        );
        assert_eq!(n("kept"), n("new"), "first run: every kept record is new");
        assert!(
            f["dataset"] == "frjc" || n("quarantined") > 0 && n("superseded") > 0,
            "the fixtures carry bad rows and duplicates: {f}"
        );
        let by_reason: u64 = c["quarantined_by_reason"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(by_reason, n("quarantined"));
    }

    // Each platform holds exactly the kept records, at their versions (the legal-entity
    // register is reference data and is not pushed).
    let snapshot = w.snapshot_holdings();
    let kept: u64 = report["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["dataset"] != "frjc")
        .map(|f| f["counts"]["kept"].as_u64().unwrap())
        .sum();
    assert_eq!(snapshot.values().map(|s| s.len() as u64).sum::<u64>(), kept);
    let groups = snapshot.keys().cloned().collect();
    assert_eq!(jms.holdings(&groups), snapshot);
    assert_eq!(prov.holdings(&groups), snapshot);

    // The second run reads no file again and pushes nothing.
    let out = w.xinyong(&["run"]);
    assert_exit(&out, 0);
    let again = w.latest_report();
    for f in again["feeds"].as_array().unwrap() {
        assert_eq!(f["counts"]["read"], 0, "{f}");
        assert!(!f["skipped_files"].as_array().unwrap().is_empty());
    }
    for p in again["platforms"].as_array().unwrap() {
        assert_eq!(p["pushed"], 0, "{p}");
        assert_eq!(p["batches"], 0, "{p}");
    }
    assert_eq!(jms.holdings(&groups), snapshot);
}

#[test]
fn a_new_export_with_corrections_changes_only_what_changed() {
    let w = Workdir::new();
    let jms = Simulator::start("jiamusi", &[]);
    w.configure(&[&jms], &PlatformOpts::default());
    assert_exit(&w.xinyong(&["run"]), 0);
    let before = w.snapshot_holdings();

    // The bureau re-exports two of its records: one corrected, one unchanged, both with a later 更新时间.
    let header = "行政相对人名称,行政相对人类别,统一社会信用代码,法定代表人,行政处罚决定书文号,违法行为类型,违法事实,处罚依据,处罚类别,处罚内容,罚款金额（元）,处罚决定日期,处罚机关,处罚机关统一社会信用代码,更新时间";
    let snap = pipeline::snapshot::SnapshotStore::new(&w.data());
    let mut rows = Vec::new();
    snap.read_dataset("xzcf", None, |b| {
        let col = |n: &str| pipeline::snapshot::str_col(&b, n).unwrap();
        for i in 0..b.num_rows() {
            if rows.len() == 2 {
                break;
            }
            if col("CF_XDR_LB").value(i) != "法人及非法人组织" || col("CF_NR_FK").is_null(i) {
                continue;
            }
            let yuan = |c: &str| {
                let a = col(c);
                if a.is_null(i) { String::new() } else { ((a.value(i).parse::<f64>().unwrap() * 10000.0).round() as u64).to_string() }
            };
            let fine_yuan = yuan("CF_NR_FK");
            let confiscated = yuan("CF_NR_WFFF");
            let remark = if col("BZ").is_null(i) { String::new() } else { col("BZ").value(i).to_string() };
            let content = if rows.is_empty() { format!("{}（更正）", col("CF_NR").value(i)) } else { col("CF_NR").value(i).to_string() };
            rows.push(format!(
                "{},法人及非法人组织,{},{},{},{},{},{},{},{},{},{},{},{},2030-01-01 00:00:00,{confiscated},,,{remark}",
                col("CF_XDR_MC").value(i), col("CF_XDR_SHXYM").value(i), col("CF_FRDB").value(i), col("CF_WSH").value(i),
                col("CF_WFXW").value(i), col("CF_SY").value(i), col("CF_YJ").value(i), col("CF_CFLB").value(i), content,
                fine_yuan, col("CF_JDRQ").value(i), col("CF_CFJG").value(i), col("CF_CFJGDM").value(i)
            ));
        }
        Ok(())
    })
    .unwrap();
    // Add 没收违法所得金额 and 证件 columns the mapping reads, empty.
    let header = format!("{header},没收违法所得金额（元）,证件类型,证件号码,备注");
    let body = rows;
    std::fs::write(
        w.path().join("fixtures/drop/scjgj_xzcf/更正补报.csv"),
        format!("\u{feff}{header}\r\n{}\r\n", body.join("\r\n")),
    )
    .unwrap();

    let out = w.xinyong(&["run"]);
    assert_exit(&out, 0);
    let r = w.latest_report();
    let feed = r["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feed"] == "scjgj_xzcf")
        .unwrap();
    let c = &feed["counts"];
    assert_eq!(
        (
            c["read"].as_u64(),
            c["changed"].as_u64(),
            c["unchanged"].as_u64(),
            c["new"].as_u64()
        ),
        (Some(2), Some(1), Some(1), Some(0)),
        "{feed}"
    );
    let p = &r["platforms"][0];
    assert_eq!(p["pushed"], 1, "only the corrected record is pushed: {p}");
    let after = w.snapshot_holdings();
    assert_eq!(
        after.values().map(|s| s.len()).sum::<usize>(),
        before.values().map(|s| s.len()).sum::<usize>()
    );
    assert_eq!(jms.holdings(&after.keys().cloned().collect()), after);
}

#[test]
fn dry_run_changes_nothing() {
    let w = Workdir::new();
    let jms = Simulator::start("jiamusi", &[]);
    w.configure(&[&jms], &PlatformOpts::default());
    let out = w.xinyong(&["run", "--dry-run"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("dry run"));
    assert!(!w.data().join("snapshot").exists());
    assert!(!w.data().join("quarantine").exists());
    assert_eq!(jms.stats()["records_held"], 0);
}

fn python_with(module: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn snapshot_and_quarantine_open_in_pyarrow_and_duckdb() {
    for module in ["pyarrow", "duckdb"] {
        if !python_with(module) {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "python3 with {module} is required under CI=true (.ci/run installs it)"
            );
            eprintln!("skipping: python3 cannot import {module} (pip install {module})");
            return;
        }
    }
    let w = Workdir::new();
    w.configure(&[], &PlatformOpts::default());
    let out = w.xinyong(&["run", "--no-push"]);
    assert_exit(&out, 0);
    let script = r#"
import sys, pyarrow.parquet as pq, pyarrow.dataset as pads, duckdb
data = sys.argv[1]
xzcf = pq.read_table(data + "/snapshot/dataset=xzcf")
assert {"CF_XDR_SHXYM", "CF_WSH", "CF_NR_FK", "CF_JDRQ", "record_id", "version"} <= set(xzcf.column_names), xzcf.column_names
assert xzcf.num_rows > 300
xzxk = pads.dataset(data + "/snapshot/dataset=xzxk", format="parquet").to_table()
assert {"XK_XDR_SHXYM", "XK_WSH", "XK_JDRQ"} <= set(xzxk.column_names), xzxk.column_names
assert all(d is None or len(d) == 10 for d in xzxk.column("XK_JDRQ").to_pylist())
snap = xzcf
q = pads.dataset(data + "/quarantine", format="parquet", partitioning="hive").to_table()
assert q.num_rows > 0
assert all(r for r in q.column("reason").to_pylist()), "every quarantined row has a reason"
assert all(l > 1 for l in q.column("source_line").to_pylist())
n = duckdb.sql(f"select count(*) from read_parquet('{data}/snapshot/*/*/*.parquet', hive_partitioning=true) where dataset='xzcf'").fetchall()[0][0]
assert n == xzcf.num_rows, (n, xzcf.num_rows)
print("ok", snap.num_rows, q.num_rows)
"#;
    let o = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(w.data())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn quarantine_rows_name_file_line_field_and_raw_row() {
    let w = Workdir::new();
    w.configure(&[], &PlatformOpts::default());
    assert_exit(&w.xinyong(&["run", "--no-push"]), 0);
    let root = w.data().join("quarantine/feed=scjgj_xzcf");
    let file = std::fs::read_dir(&root)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut seen = 0;
    pipeline::snapshot::read_batches(&file, None, |b| {
        let col = |n: &str| pipeline::snapshot::str_col(&b, n).unwrap();
        let lines = pipeline::snapshot::u64_col(&b, "source_line").unwrap();
        for i in 0..b.num_rows() {
            seen += 1;
            assert!(col("source_file").value(i).ends_with(".csv"));
            assert!(lines.value(i) >= 2);
            assert!(!col("reason").value(i).is_empty());
            let raw: serde_json::Value = serde_json::from_str(col("raw").value(i)).unwrap();
            assert!(
                raw.get("统一社会信用代码").is_some(),
                "the raw row is kept whole: {raw}"
            );
            if col("reason").value(i) == "uscc_check" {
                assert_eq!(col("field").value(i), "CF_XDR_SHXYM");
                assert_eq!(
                    raw["统一社会信用代码"].as_str().unwrap(),
                    col("value").value(i)
                );
            }
        }
        Ok(())
    })
    .unwrap();
    assert!(seen > 10);
}

#[test]
fn legacy_rows_get_their_credit_code_from_the_register() {
    let w = Workdir::new();
    w.configure(&[], &PlatformOpts::default());
    assert_exit(&w.xinyong(&["run", "--no-push"]), 0);
    let r = w.latest_report();
    let feeds = r["feeds"].as_array().unwrap();
    assert_eq!(feeds[0]["dataset"], "frjc", "the register runs first");
    let xzcf = feeds.iter().find(|f| f["dataset"] == "xzcf").unwrap();
    assert!(
        xzcf["counts"]["quarantined_by_reason"]["uscc_unresolved"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Kept records that came with only an organization code now carry the credit code
    // whose positions 9–17 are that organization code.
    let snap = pipeline::snapshot::SnapshotStore::new(&w.data());
    let mut resolved = 0;
    snap.read_dataset("xzcf", None, |b| {
        let org = pipeline::snapshot::str_col(&b, "CF_XDR_ZZJG").unwrap();
        let code = pipeline::snapshot::str_col(&b, "CF_XDR_SHXYM").unwrap();
        for i in 0..b.num_rows() {
            if !org.is_null(i) {
                let o = org.value(i).replace('-', "");
                assert_eq!(&code.value(i)[8..17], o);
                assert_eq!(pipeline::domain::ids::check_uscc(code.value(i)), Ok(()));
                resolved += 1;
            }
        }
        Ok(())
    })
    .unwrap();
    assert!(resolved > 3, "{resolved}");
}

#[test]
fn the_demo_reads_the_courts_api_and_pushes_the_blacklist() {
    // `xinyong demo` in a copy of the repository's layout: the court API it starts is read
    // page by page into the blacklist dataset and pushed; the next demo asks only for
    // what changed since (the one record at the stored time comes again, unchanged).
    let dir = tempfile::tempdir().unwrap();
    for sub in ["mappings", "fixtures"] {
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(std::path::Path::new(ROOT).join(sub))
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let run = || {
        std::process::Command::new(BIN)
            .args(["--config", "fixtures/demo/xinyong.toml", "demo"])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    // The demo's summary, and its line of counts for the court feed.
    let run_and_court_line = || {
        let o = run();
        assert_exit(&o, 0);
        let s = stdout(&o);
        let court = s
            .lines()
            .skip_while(|l| !l.contains("fy_sxbzxr"))
            .nth(1)
            .unwrap_or_default()
            .to_string();
        (s, court)
    };
    let (s, court) = run_and_court_line();
    assert!(court.contains("读取 read 36 = 保留 kept 36"), "{s}");
    let (s, court) = run_and_court_line();
    assert!(court.contains("读取 read 1 = 保留 kept 1"), "{s}");
    assert!(s.contains("推送 pushed 0"), "{s}");

    // The clerk finds a record the demo pushed by its document number, and the tools
    // refuse ids nobody knows and are idempotent.
    let cli = |args: &[&str]| {
        std::process::Command::new(BIN)
            .args(["--config", "fixtures/demo/xinyong.toml"])
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let o = cli(&["find", "--wsh", "同市监处罚〔2025〕1号", "--json"]);
    assert_exit(&o, 0);
    let hits: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let hit = &hits.as_array().unwrap()[0];
    assert_eq!(hit["dataset"], "xzcf", "{hits}");
    assert!(
        hit["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["status"] == "acked"),
        "{hits}"
    );
    let id = hit["record_id"].as_str().unwrap().to_string();
    let o = cli(&[
        "withdraw",
        "--dataset",
        "xzcf",
        "--record-id",
        "deadbeef",
        "--reason",
        "x",
    ]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("xinyong find"), "{}", stderr(&o));
    for _ in 0..2 {
        let o = cli(&[
            "hold",
            "--dataset",
            "xzcf",
            "--record-id",
            &id,
            "--reason",
            "当事人提出异议",
        ]);
        assert_exit(&o, 0);
    }
    let o = cli(&["holds"]);
    let held = stdout(&o);
    assert_eq!(held.matches(&id).count(), 1, "{held}");
    assert!(
        held.contains("异议暂停") && held.starts_with("类型"),
        "{held}"
    );
}
