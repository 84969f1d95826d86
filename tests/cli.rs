//! The command line as an operator meets it: `check`, `id check`, and clear errors.

use crate::util::*;
use std::process::Command;

#[test]
fn check_accepts_the_repository() {
    let o = Command::new(BIN)
        .arg("check")
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("scjgj_xzcf") && stdout(&o).contains("sws_xzxk"));
}

#[test]
fn check_names_file_and_line_of_a_broken_mapping() {
    let w = Workdir::new();
    w.configure(&[], &PlatformOpts::default());
    let path = w.path().join("mappings/scjgj_xzcf.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("transforms = [\"date\"]", "transforms = [\"datum\"]");
    std::fs::write(&path, &text).unwrap();
    let line = text.lines().position(|l| l.contains("datum")).unwrap() + 1;
    let o = w.xinyong(&["check"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains(&format!("scjgj_xzcf.toml:{line}:")),
        "{}",
        stderr(&o)
    );
    // And `run` fails that feed before any of its data moves; the other feeds run.
    let o = w.xinyong(&["run", "--no-push"]);
    assert_exit(&o, 2);
    assert!(!w.data().join("snapshot/dataset=xzcf").exists());
    assert!(w.data().join("snapshot/dataset=xzxk").exists());
}

#[test]
fn a_column_missing_from_the_file_stops_that_feed_only() {
    let w = Workdir::new();
    w.configure(&[], &PlatformOpts::default());
    let path = w.path().join("mappings/sws_xzxk.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("from = \"许可内容\"", "from = \"许可事项\"");
    std::fs::write(&path, text).unwrap();
    let o = w.xinyong(&["run", "--no-push"]);
    assert_exit(&o, 2);
    let s = stdout(&o);
    assert!(s.contains("许可事项") && s.contains("sws_xzxk.toml"), "{s}");
    assert!(
        w.data()
            .join("snapshot/dataset=xzcf/_manifest.json")
            .exists(),
        "the other feed went on"
    );
    assert!(
        !w.data().join("snapshot/dataset=xzxk").exists(),
        "no row of the broken feed moved"
    );
}

#[test]
fn id_check_prints_normalised_code_and_verdict() {
    let o = Command::new(BIN)
        .args([
            "id",
            "check",
            "９１１１００００８０２１００４３３ｂ",
            "91110000802100433C",
            "34052419800101001X",
            "520000000005018",
        ])
        .output()
        .unwrap();
    assert_exit(&o, 1);
    let s = stdout(&o);
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines[0].ends_with("91110000802100433B\tuscc\tvalid"), "{s}");
    assert!(lines[1].ends_with("uscc\tuscc_check"), "{s}");
    assert!(lines[2].ends_with("ric\tvalid"), "{s}");
    assert!(lines[3].ends_with("regno\tvalid"), "{s}");
}

#[test]
fn a_deployment_can_change_the_unverified_schema_rules() {
    let w = Workdir::new();
    // The province's interface document makes 处罚有效期 (CF_YXQ) required.
    let schema = w.path().join("schema");
    std::fs::create_dir_all(&schema).unwrap();
    let text = std::fs::read_to_string(
        std::path::Path::new(ROOT).join("pipeline/src/domain/schema/xzcf.toml"),
    )
    .unwrap();
    let text = text.replace(
        "code = \"CF_YXQ\"\nname = \"处罚有效期\"\ntype = \"date\"\n",
        "code = \"CF_YXQ\"\nname = \"处罚有效期\"\ntype = \"date\"\nrequired = true\n",
    );
    assert!(
        text.contains("required = true\n\n[[field]]\ncode = \"CF_GSJZQ\""),
        "the edit applied"
    );
    std::fs::write(schema.join("xzcf.toml"), text).unwrap();
    std::fs::write(
        w.config(),
        "data_dir = \"data\"\nmappings = \"mappings\"\nschema_dir = \"schema\"\n",
    )
    .unwrap();
    let o = w.xinyong(&["run", "--no-push"]);
    assert_exit(&o, 1); // every penalty quarantined: over the feed's threshold
    let r = w.latest_report();
    let xzcf = r["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["dataset"] == "xzcf")
        .unwrap()
        .clone();
    assert_eq!(xzcf["counts"]["kept"], 0, "{xzcf}");
    let xzxk = r["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["dataset"] == "xzxk")
        .unwrap()
        .clone();
    assert!(
        xzxk["counts"]["kept"].as_u64().unwrap() > 0,
        "other datasets keep the built-in rules"
    );
}

#[test]
fn status_reports_the_last_runs_and_fails_when_a_feed_failed() {
    let w = Workdir::new();
    w.configure(&[], &PlatformOpts::default());
    let o = w.xinyong(&["status"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("never run"), "{}", stdout(&o));
    assert_exit(&w.xinyong(&["run", "--no-push"]), 0);
    let o = w.xinyong(&["status"]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("scjgj_xzcf") && stdout(&o).contains(": ok ("),
        "{}",
        stdout(&o)
    );
    // A mapping that no longer fits its files: the feed fails, and status says so.
    let path = w.path().join("mappings/sws_xzxk.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("from = \"许可内容\"", "from = \"许可事项\"");
    std::fs::write(&path, text).unwrap();
    std::fs::copy(
        std::path::Path::new(ROOT)
            .join("fixtures/drop/sws_xzxk/国家税务总局同江市税务局行政许可信息_2024.xlsx"),
        w.path().join("fixtures/drop/sws_xzxk/再次导出.xlsx"),
    )
    .unwrap();
    let mut b = std::fs::read(w.path().join("fixtures/drop/sws_xzxk/再次导出.xlsx")).unwrap();
    b.push(0); // a different file (content hash), same sheet
    std::fs::write(w.path().join("fixtures/drop/sws_xzxk/再次导出.xlsx"), b).unwrap();
    assert_exit(&w.xinyong(&["run", "--no-push"]), 2);
    let o = w.xinyong(&["status"]);
    assert_exit(&o, 2);
    assert!(
        stdout(&o).contains("sws_xzxk · 税务局 行政许可: failed"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn schedule_next_lists_fire_times_in_local_time() {
    let o = Command::new(BIN)
        .args([
            "--config",
            "fixtures/demo/xinyong.toml",
            "schedule",
            "--next",
            "2",
        ])
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let s = stdout(&o);
    assert!(
        s.contains("nightly (30 1 * * * · Asia/Shanghai") && s.contains("T01:30:00+08:00"),
        "{s}"
    );
}

#[test]
fn a_feed_over_its_quarantine_threshold_ends_the_run_with_exit_code_1() {
    let w = Workdir::new();
    w.configure(&[], &PlatformOpts::default());
    let path = w.path().join("mappings/scjgj_xzcf.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("max_quarantine_ratio = 0.10", "max_quarantine_ratio = 0.01");
    std::fs::write(&path, text).unwrap();
    let o = w.xinyong(&["run", "--no-push"]);
    assert_exit(&o, 1);
    assert!(stdout(&o).contains("超过阈值"), "{}", stdout(&o));
    assert!(
        w.data()
            .join("snapshot/dataset=xzcf/_manifest.json")
            .exists(),
        "the run still finished"
    );
}

/// A dataset this build does not know (行政强制 `xzqz`), defined only by a TOML file in
/// `schema_dir`, is validated and snapshotted like a built-in one.
#[test]
fn a_dataset_defined_only_in_schema_dir_validates_and_snapshots() {
    let w = Workdir::new();
    let schema = w.path().join("schema");
    std::fs::create_dir_all(&schema).unwrap();
    std::fs::write(
        schema.join("xzqz.toml"),
        r#"
dataset = "xzqz"
name = "行政强制"
key = ["QZ_XDR_SHXYM", "QZ_WSH"]
decision_date = "QZ_JDRQ"

[[field]]
code = "QZ_XDR_MC"
name = "当事人名称"
type = "text"
required = true
max_len = 200
subject_name = true

[[field]]
code = "QZ_XDR_SHXYM"
name = "统一社会信用代码"
type = "uscc"
required = true

[[field]]
code = "QZ_WSH"
name = "强制决定书文号"
type = "text"
required = true
max_len = 64

[[field]]
code = "QZ_LB"
name = "强制类别"
type = "text"
required = true
code_list = ["查封场所设施财物", "扣押财物", "冻结存款汇款"]

[[field]]
code = "QZ_JDRQ"
name = "决定日期"
type = "date"
required = true

[[field]]
code = "QZ_JG"
name = "实施机关"
type = "text"
required = true
"#,
    )
    .unwrap();
    let mappings = w.path().join("xzqz_mappings");
    std::fs::create_dir_all(&mappings).unwrap();
    std::fs::write(
        mappings.join("cgj_xzqz.toml"),
        r#"
feed = "cgj_xzqz"
title = "城管局 行政强制"
department = "同江市城市管理综合执法局"
dataset = "xzqz"
source_unit = "11230881MB00123433"

[source]
type = "file_drop"
dir = "drop/xzqz"
pattern = "*.csv"

[[field]]
to = "QZ_XDR_MC"
from = "当事人名称"
transforms = ["trim"]

[[field]]
to = "QZ_XDR_SHXYM"
from = "统一社会信用代码"
transforms = ["code"]

[[field]]
to = "QZ_WSH"
from = "决定书文号"
transforms = ["trim"]

[[field]]
to = "QZ_LB"
from = "强制类别"
transforms = ["trim"]

[[field]]
to = "QZ_JDRQ"
from = "决定日期"
transforms = ["date"]

[[field]]
to = "QZ_JG"
from = "实施机关"
transforms = ["trim"]
"#,
    )
    .unwrap();
    let drop = w.path().join("drop/xzqz");
    std::fs::create_dir_all(&drop).unwrap();
    let other = pipeline::domain::ids::complete_uscc("91230881MA1BC3D4").unwrap();
    std::fs::write(
        drop.join("2026-11.csv"),
        format!(
            "当事人名称,统一社会信用代码,决定书文号,强制类别,决定日期,实施机关\n\
             同江市江华商贸有限公司,91110000802100433B,同城管强〔2026〕1号,扣押财物,2026-11-03,同江市城市管理综合执法局\n\
             同江市北方建材有限公司,{other},同城管强〔2026〕2号,查封场所设施财物,2026/11/05,同江市城市管理综合执法局\n\
             同江市某某商店,91110000802100433C,同城管强〔2026〕3号,扣押财物,2026-11-06,同江市城市管理综合执法局\n\
             同江市江华商贸有限公司,91110000802100433B,同城管强〔2026〕1号,扣押财物,2026-11-03,同江市城市管理综合执法局\n"
        ),
    )
    .unwrap();
    std::fs::write(
        w.config(),
        "data_dir = \"data\"\nmappings = \"xzqz_mappings\"\nschema_dir = \"schema\"\n",
    )
    .unwrap();
    let o = w.xinyong(&["check"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("cgj_xzqz → xzqz"), "{}", stdout(&o));
    let o = w.xinyong(&["run", "--no-push"]);
    assert_exit(&o, 0);
    let r = w.latest_report();
    let c = &r["feeds"][0]["counts"];
    assert_eq!(
        (&c["read"], &c["kept"], &c["quarantined"], &c["superseded"]),
        (
            &serde_json::json!(4),
            &serde_json::json!(2),
            &serde_json::json!(1),
            &serde_json::json!(1)
        ),
        "{r}"
    );
    assert_eq!(c["quarantined_by_reason"]["uscc_check"], 1, "{r}");
    let store = pipeline::snapshot::SnapshotStore::new(&w.data());
    let mut documents = Vec::new();
    store
        .read_dataset("xzqz", None, |b| {
            let col = pipeline::snapshot::str_col(&b, "QZ_WSH").unwrap();
            let dates = pipeline::snapshot::str_col(&b, "QZ_JDRQ").unwrap();
            for i in 0..b.num_rows() {
                documents.push((col.value(i).to_string(), dates.value(i).to_string()));
            }
            Ok(())
        })
        .unwrap();
    documents.sort();
    assert_eq!(
        documents,
        [
            ("同城管强〔2026〕1号".to_string(), "2026-11-03".to_string()),
            ("同城管强〔2026〕2号".to_string(), "2026-11-05".to_string())
        ]
    );
    assert!(w
        .data()
        .join("snapshot/dataset=xzqz/month=2026-11/data.parquet")
        .exists());
}

/// One department's typo (an unknown transform) fails that department's feed only: the
/// other feeds are in the snapshot, the run exits 2, and `status` names the mapping.
#[test]
fn a_broken_mapping_fails_its_feed_only() {
    let w = Workdir::new();
    let path = w.path().join("mappings/sws_xzxk.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"trim\"", "\"trimm\"", 1)).unwrap();
    std::fs::write(w.config(), "data_dir = \"data\"\nmappings = \"mappings\"\n").unwrap();
    let o = w.xinyong(&["run", "--no-push"]);
    assert_exit(&o, 2);
    let r = w.latest_report();
    let feeds = r["feeds"].as_array().unwrap();
    let broken = feeds.iter().find(|f| f["feed"] == "sws_xzxk").unwrap();
    assert!(
        broken["error"].as_str().unwrap().contains("sws_xzxk.toml"),
        "{broken}"
    );
    let penalties = feeds.iter().find(|f| f["feed"] == "scjgj_xzcf").unwrap();
    assert!(
        penalties["counts"]["kept"].as_u64().unwrap() > 0,
        "{penalties}"
    );
    assert!(w
        .data()
        .join("snapshot/dataset=xzcf/_manifest.json")
        .exists());
    let o = w.xinyong(&["status"]);
    assert_exit(&o, 2);
    assert!(stdout(&o).contains("broken mapping"), "{}", stdout(&o));
}

/// A feed name that would climb out of the data directory is refused by `check`.
#[test]
fn a_traversing_feed_name_is_refused() {
    let w = Workdir::new();
    let path = w.path().join("mappings/scjgj_xzcf.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("feed = \"scjgj_xzcf\"", "feed = \"x/../../victim\"", 1),
    )
    .unwrap();
    std::fs::write(w.config(), "data_dir = \"data\"\nmappings = \"mappings\"\n").unwrap();
    let o = w.xinyong(&["check"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("scjgj_xzcf.toml") && stderr(&o).contains("feed name"),
        "{}",
        stderr(&o)
    );
}

/// Damage inside the state store is found at open, with what to do.
#[test]
fn a_damaged_state_store_is_refused_with_what_to_do() {
    let w = Workdir::new();
    std::fs::write(w.config(), "data_dir = \"data\"\nmappings = \"mappings\"\n").unwrap();
    assert_exit(&w.xinyong(&["run", "--no-push"]), 0);
    let db = w.data().join("state.sqlite");
    // Fold the write-ahead log into the file, then overwrite pages in its middle.
    let o = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect({:?}); c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); c.close()",
            db.display().to_string()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let mut bytes = std::fs::read(&db).unwrap();
    let page = 4096;
    let pages = bytes.len() / page;
    assert!(pages > 4, "{pages} pages");
    for p in 2..pages - 1 {
        for b in &mut bytes[p * page + 8..p * page + 40] {
            *b = 0xA5;
        }
    }
    std::fs::write(&db, bytes).unwrap();
    let o = w.xinyong(&["status"]);
    assert_exit(&o, 2);
    let e = stderr(&o);
    assert!(
        e.contains("state.sqlite") && (e.contains("damaged") || e.contains("malformed")),
        "{e}"
    );
}

/// An empty file, a text file named `.xlsx` and the repro workbooks that made the XLSX
/// reader panic, beside the good exports: the good files are read, each bad one is set
/// aside with its reason (not tried again until it changes), every other feed runs.
#[test]
fn unreadable_files_are_set_aside_and_the_good_ones_read() {
    let w = Workdir::new();
    let drop = w.path().join("fixtures/drop/sws_xzxk");
    std::fs::write(drop.join("empty.xlsx"), b"").unwrap();
    std::fs::write(drop.join("not-a-workbook.xlsx"), "this is a text file").unwrap();
    for f in [
        "far-cell-XFD1048576.xlsx",
        "shared-string-index-out-of-range.xlsx",
        "no-shared-strings-part.xlsx",
        "cell-ref-overflow.xlsx",
    ] {
        let repro = std::path::Path::new(ROOT)
            .join("../shared/repro/xlsx")
            .join(f);
        if repro.exists() {
            std::fs::copy(&repro, drop.join(f)).unwrap();
        }
    }
    let penalties = w.path().join("fixtures/drop/scjgj_xzcf");
    std::fs::write(penalties.join("empty.csv"), b"").unwrap();
    std::fs::write(w.config(), "data_dir = \"data\"\nmappings = \"mappings\"\n").unwrap();
    let o = w.xinyong(&["run", "--no-push"]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(
        out.contains("not-a-workbook.xlsx") && out.contains("empty.csv"),
        "{out}"
    );
    let r = w.latest_report();
    for feed in ["sws_xzxk", "scjgj_xzcf"] {
        let f = r["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["feed"] == feed)
            .unwrap();
        assert!(f["error"].is_null(), "{f}");
        assert!(f["counts"]["kept"].as_u64().unwrap() > 0, "{f}");
        assert!(!f["set_aside"].as_array().unwrap().is_empty(), "{f}");
    }
    let o = w.xinyong(&["status"]);
    assert!(stdout(&o).contains("set aside"), "{}", stdout(&o));
    // The office report counts them and the department's correction list names them.
    let run_id = r["run_id"].as_str().unwrap().to_string();
    let o = w.xinyong(&["report", "--run", &run_id]);
    assert_exit(&o, 0);
    let json = stdout(&o)
        .split_whitespace()
        .find(|t| t.ends_with("report.json"))
        .map(std::path::PathBuf::from)
        .unwrap();
    let office: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert!(
        office["totals"]["files_set_aside"].as_u64().unwrap() >= 3,
        "{}",
        office["totals"]
    );
    let listed: Vec<&serde_json::Value> = office["corrections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["reason_code"] == "file_unreadable")
        .collect();
    assert!(
        listed
            .iter()
            .any(|c| c["source_file"] == "not-a-workbook.xlsx"
                && c["department"] == "国家税务总局同江市税务局"
                && !c["reason"].as_str().unwrap().contains("/tmp")),
        "{listed:?}"
    );
    // The next run does not try them again.
    let o = w.xinyong(&["run", "--no-push"]);
    assert_exit(&o, 0);
    assert!(!stdout(&o).contains("set aside:"), "{}", stdout(&o));
}

/// A UTF-8 export with one stray byte and a truncated last line: the file is read as
/// UTF-8, the damaged row is quarantined as `encoding_invalid` with its bytes in hex,
/// the cut line as `too_few_columns`, and no snapshot value holds U+FFFD.
#[test]
fn undecodable_bytes_and_cut_lines_have_reasons_of_their_own() {
    let w = Workdir::new();
    let drop = w.path().join("fixtures/drop/scjgj_xzcf");
    let source =
        std::fs::read(drop.join("同江市市场监督管理局行政处罚信息_2025年1月补报.csv")).unwrap();
    let text = String::from_utf8(source).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Header, a damaged row, good rows, and the last row cut in the middle.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(lines[0].as_bytes());
    bytes.extend_from_slice(b"\r\n");
    let damaged = lines[1].replacen("同江市", "同江\u{0}市", 1);
    let damaged = damaged
        .as_bytes()
        .iter()
        .map(|b| if *b == 0 { 0xB3 } else { *b });
    bytes.extend(damaged);
    bytes.extend_from_slice(b"\r\n");
    for l in &lines[2..10] {
        bytes.extend_from_slice(l.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    // A note under the table, merged across the sheet in the workbook it came from.
    bytes.extend_from_slice("注：以上信息由同江市市场监督管理局提供,,,,,\r\n".as_bytes());
    let cut = lines[10];
    let cut = &cut[..cut.char_indices().nth(30).unwrap().0];
    bytes.extend_from_slice(cut.as_bytes());
    for f in std::fs::read_dir(&drop).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    std::fs::write(drop.join("damaged.csv"), &bytes).unwrap();
    std::fs::write(w.config(), "data_dir = \"data\"\nmappings = \"mappings\"\n").unwrap();
    let _ = w.xinyong(&["run", "--no-push"]);
    let r = w.latest_report();
    let f = r["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feed"] == "scjgj_xzcf")
        .unwrap();
    let c = &f["counts"];
    assert!(f["error"].is_null(), "{f}");
    assert_eq!(c["quarantined_by_reason"]["encoding_invalid"], 1, "{f}");
    assert_eq!(c["quarantined_by_reason"]["too_few_columns"], 1, "{f}");
    // The note is not a row: 1 damaged + 8 good + 1 cut.
    assert_eq!(c["read"], 10, "{f}");
    assert_eq!(
        c["kept"].as_u64().unwrap() + c["superseded"].as_u64().unwrap(),
        8,
        "{f}"
    );
    let store = pipeline::snapshot::SnapshotStore::new(&w.data());
    let mut values = Vec::new();
    for e in walk(&store.quarantine_root()) {
        pipeline::snapshot::files::read_batches(&e, None, |b| {
            let reason = pipeline::snapshot::str_col(&b, "reason").unwrap();
            let value = pipeline::snapshot::str_col(&b, "value").unwrap();
            for i in 0..b.num_rows() {
                values.push((reason.value(i).to_string(), value.value(i).to_string()));
            }
            Ok(())
        })
        .unwrap();
    }
    let bad = values
        .iter()
        .find(|(r, _)| r == "encoding_invalid")
        .unwrap();
    assert!(
        bad.1.contains("B3") && !bad.1.contains('\u{FFFD}'),
        "{values:?}"
    );
    store
        .read_dataset("xzcf", None, |b| {
            for col in b.columns() {
                if let Some(s) = col.as_any().downcast_ref::<arrow_array::StringArray>() {
                    assert!(s.iter().flatten().all(|v| !v.contains('\u{FFFD}')));
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Every file under a directory.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out
}

/// A field added to a dataset through `schema_dir` after its partitions exist: the
/// partitions written before are read with the new field empty (a migration on read),
/// so the next run and the push work, and nothing panics.
#[test]
fn a_field_added_after_partitions_exist_reads_old_partitions_with_it_empty() {
    let w = Workdir::new();
    let sim = Simulator::start("jiamusi", &[]);
    w.configure(&[&sim], &PlatformOpts::default());
    let _ = w.xinyong(&["run", "--no-push"]);
    let schema = w.path().join("schema");
    std::fs::create_dir_all(&schema).unwrap();
    let builtin = std::fs::read_to_string(
        std::path::Path::new(ROOT).join("pipeline/src/domain/schema/xzcf.toml"),
    )
    .unwrap();
    std::fs::write(
        schema.join("xzcf.toml"),
        format!("{builtin}\n[[field]]\ncode = \"CF_BZ2\"\nname = \"补充备注\"\ntype = \"text\"\nrequired = false\nmax_len = 200\n"),
    )
    .unwrap();
    let config = std::fs::read_to_string(w.config()).unwrap();
    std::fs::write(
        w.config(),
        config.replacen(
            "mappings = \"mappings\"\n",
            "mappings = \"mappings\"\nschema_dir = \"schema\"\n",
            1,
        ),
    )
    .unwrap();
    let o = w.xinyong(&["push"]);
    assert_exit(&o, 0);
    // A new export of the same feed rewrites the old partitions under the new schema.
    let drop = w.path().join("fixtures/drop/scjgj_xzcf");
    let src = drop.join("同江市市场监督管理局行政处罚信息_2025年1月补报.csv");
    let text = std::fs::read_to_string(&src).unwrap();
    std::fs::write(drop.join("again.csv"), text.replacen("冯建国", "冯建华", 1)).unwrap();
    let o = w.xinyong(&["run"]);
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    let r = w.latest_report();
    let f = r["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feed"] == "scjgj_xzcf")
        .unwrap();
    assert!(f["error"].is_null(), "{f}");
    let o = w.xinyong(&["status"]);
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

/// The calendar at run time: with `calendar` pointing at a table that has 2027, a
/// deadline into 2027 answers from it; without, it is an estimate from weekends alone,
/// marked 估算, exit 0; `status` warns when the coverage ends within 60 days.
#[test]
fn the_calendar_goes_on_past_its_built_in_years() {
    let w = Workdir::new();
    std::fs::write(w.config(), "data_dir = \"data\"\nmappings = \"mappings\"\n").unwrap();
    let o = w.xinyong(&["calendar", "deadline", "2026-12-28", "--working-days", "7"]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).starts_with("2027-01-06") && stdout(&o).contains("估算"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("estimated"), "{}", stderr(&o));
    let o = w.xinyong_env(&["status"], &[("XINYONG_TODAY", "2026-12-01")]);
    assert!(
        stdout(&o).contains("节假日表覆盖至 2026-12-31"),
        "{}",
        stdout(&o)
    );

    // A table for 2027 (its dates here are a test's, not the State Council's).
    std::fs::write(
        w.path().join("holidays-2027.toml"),
        "[2027]\nyear = 2027\nnotice = \"test\"\nholidays = [\"2027-01-01\", \"2027-01-04\"]\nworkdays = [\"2027-01-09\"]\n",
    )
    .unwrap();
    std::fs::write(
        w.config(),
        "data_dir = \"data\"\nmappings = \"mappings\"\ncalendar = \"holidays-2027.toml\"\n",
    )
    .unwrap();
    let o = w.xinyong(&["calendar", "deadline", "2026-12-28", "--working-days", "7"]);
    assert_exit(&o, 0);
    // 12-29, 12-30, 12-31, (01-01 and 01-04 off) 01-05, 01-06, 01-07, 01-08.
    assert!(
        stdout(&o).starts_with("2027-01-08") && !stdout(&o).contains("估算"),
        "{}",
        stdout(&o)
    );
    let o = w.xinyong_env(&["status"], &[("XINYONG_TODAY", "2026-12-01")]);
    assert!(!stdout(&o).contains("节假日表覆盖至"), "{}", stdout(&o));
    // A broken table names the file.
    std::fs::write(w.path().join("holidays-2027.toml"), "[2027]\nyear = 2028\n").unwrap();
    let o = w.xinyong(&["check"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("holidays-2027.toml"), "{}", stderr(&o));
}

/// The correction loop (退回整改): a department corrects two refused rows and drops the
/// corrected file; `corrections --json` lists each problem still open once and the two
/// as resolved; a rerun and a backfill add no second copy.
#[test]
fn a_corrected_file_resolves_its_problems_and_nothing_is_listed_twice() {
    let w = Workdir::new();
    std::fs::write(w.config(), "data_dir = \"data\"\nmappings = \"mappings\"\n").unwrap();
    let _ = w.xinyong(&["run", "--no-push"]);
    let list = |status: &str| -> Vec<serde_json::Value> {
        let o = w.xinyong(&[
            "corrections",
            "--feed",
            "scjgj_xzcf",
            "--status",
            status,
            "--json",
        ]);
        assert_exit(&o, 0);
        serde_json::from_str::<serde_json::Value>(&stdout(&o))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let open = list("open");
    let dates: Vec<&serde_json::Value> = open
        .iter()
        .filter(|p| p["reason_code"] == "bad_date" && p["value"] == "2024-02-30")
        .take(2)
        .collect();
    assert_eq!(dates.len(), 2, "{open:?}");
    let file = dates[0]["file"].as_str().unwrap().to_string();
    let fixed_lines: Vec<u64> = dates.iter().map(|p| p["line"].as_u64().unwrap()).collect();
    // The corrected export: the same file with those two dates fixed (dates are ASCII in
    // any encoding).
    let drop = w.path().join("fixtures/drop/scjgj_xzcf");
    let original = std::fs::read(drop.join(&file)).unwrap();
    let mut corrected = Vec::new();
    for (i, line) in original.split_inclusive(|b| *b == b'\n').enumerate() {
        let no = i as u64 + 1;
        if fixed_lines.contains(&no) {
            let text = line.to_vec();
            let pos = text.windows(10).position(|w| w == b"2024-02-30").unwrap();
            let mut t = text.clone();
            t[pos..pos + 10].copy_from_slice(b"2024-02-28");
            corrected.extend(t);
        } else {
            corrected.extend_from_slice(line);
        }
    }
    std::fs::write(drop.join("更正后重新报送.csv"), corrected).unwrap();
    let _ = w.xinyong(&["run", "--no-push"]);
    let still = list("open");
    let resolved = list("resolved");
    assert_eq!(still.len(), open.len() - 2, "{still:?}");
    assert_eq!(resolved.len(), 2, "{resolved:?}");
    assert!(resolved.iter().all(|p| !p["resolved_at"].is_null()));
    // The office report lists the open ones once and the corrected in their own section.
    let o = w.xinyong(&["report"]);
    assert_exit(&o, 0);
    let json = stdout(&o)
        .split_whitespace()
        .find(|t| t.ends_with("report.json"))
        .map(std::path::PathBuf::from)
        .unwrap();
    let office: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    let of_feed = |key: &str| {
        office[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["department"] == "同江市市场监督管理局" && c["source"] == "本地校验未通过"
            })
            .count()
    };
    assert_eq!(
        of_feed("corrections"),
        still.len(),
        "{}",
        office["corrections"]
    );
    assert_eq!(of_feed("resolved_corrections"), 2);
    // A backfill re-reads every file: still each problem once, the resolved stay so.
    let _ = w.xinyong(&[
        "backfill",
        "--feed",
        "scjgj_xzcf",
        "--from",
        "2024-01-01",
        "--to",
        "2025-12-31",
    ]);
    assert_eq!(list("open").len(), still.len());
    assert_eq!(list("resolved").len(), 2);
}

/// `check` opens the sources: a misspelt column is named with a "did you mean", a drop
/// folder that is not there is an error, a required field left unmapped is warned about.
#[test]
fn check_opens_the_sources_before_a_run_would() {
    let w = Workdir::new();
    std::fs::write(w.config(), "data_dir = \"data\"\nmappings = \"mappings\"\n").unwrap();
    assert_exit(&w.xinyong(&["check"]), 0);
    let m = w.path().join("mappings/scjgj_xzcf.toml");
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(
        &m,
        text.replacen("from = \"行政相对人名称\"", "from = \"行政相对人名\"", 1),
    )
    .unwrap();
    let o = w.xinyong(&["check"]);
    assert_exit(&o, 2);
    assert!(
        stdout(&o).contains("did you mean \"行政相对人名称\""),
        "{}",
        stdout(&o)
    );
    std::fs::write(&m, &text).unwrap();
    std::fs::rename(
        w.path().join("fixtures/drop/sws_xzxk"),
        w.path().join("fixtures/drop/elsewhere"),
    )
    .unwrap();
    let o = w.xinyong(&["check"]);
    assert_exit(&o, 2);
    assert!(stdout(&o).contains("sws_xzxk"), "{}", stdout(&o));
    // A mapping without the subject's name: warned, not an error of check.
    std::fs::rename(
        w.path().join("fixtures/drop/elsewhere"),
        w.path().join("fixtures/drop/sws_xzxk"),
    )
    .unwrap();
    let cut = text.replacen(
        "[[field]]\nto = \"CF_XDR_MC\"\nfrom = \"行政相对人名称\"\ntransforms = [\"trim\"]\n",
        "",
        1,
    );
    assert_ne!(cut, text);
    std::fs::write(&m, cut).unwrap();
    let o = w.xinyong(&["check"]);
    assert!(
        stdout(&o).contains("CF_XDR_MC") && stdout(&o).contains("warning"),
        "{}",
        stdout(&o)
    );
}

/// Output a machine and a person can both read: `status --json` lists every feed,
/// `completions bash` prints a script, `man` a page, stderr piped to a file has no ANSI
/// escape, an unknown `--platform` and a fault rate outside 0–1 are refused.
#[test]
fn status_json_completions_plain_logs_and_argument_checks() {
    let w = Workdir::new();
    std::fs::write(w.config(), "data_dir = \"data\"\nmappings = \"mappings\"\n").unwrap();
    let o = w.xinyong(&["run", "--no-push"]);
    assert!(!stderr(&o).contains('\u{1b}'), "{}", stderr(&o));
    let o = w.xinyong(&["status", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(s["version"], 1);
    let names: Vec<&str> = s["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for f in ["scjgj_frjc", "scjgj_xzcf", "sws_xzxk"] {
        assert!(names.contains(&f), "{names:?}");
    }
    assert!(
        s["feeds"][0]["last_run"]["started_at"]
            .as_str()
            .unwrap()
            .ends_with("+08:00"),
        "{s}"
    );
    let o = w.xinyong(&["completions", "bash"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("_xinyong()"), "{}", stdout(&o));
    let o = w.xinyong(&["man"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains(".TH xinyong"));
    let o = w.xinyong(&["push", "--platform", "nosuch"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("unknown platform"), "{}", stderr(&o));
    let o = w.xinyong(&["demo", "--fault-rate", "2"]);
    assert_exit(&o, 2);
}

/// A failing feed posts an alert to a local webhook receiver (and to a WeCom-format one),
/// and an alert receiver that is down does not change the run's outcome.
#[test]
fn a_failing_feed_posts_an_alert() {
    use std::sync::{Arc, Mutex};
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on({
        let got = got.clone();
        async move {
            let app = axum::Router::new().fallback(move |body: String| {
                let got = got.clone();
                async move {
                    got.lock().unwrap().push(body);
                    "ok"
                }
            });
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", l.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(l, app).await });
            url
        }
    });
    let w = Workdir::new();
    std::fs::write(
        w.config(),
        format!(
            "data_dir = \"data\"\nmappings = \"mappings\"\n\n[[alert]]\nkind = \"webhook\"\nurl = \"{url}/hook\"\n\n[[alert]]\nkind = \"wecom\"\nurl = \"{url}/cgi-bin/webhook/send?key=k\"\non = [\"feed_failed\"]\n\n[[alert]]\nkind = \"dingtalk\"\nurl = \"http://127.0.0.1:1/down\"\n"
        ),
    )
    .unwrap();
    let m = w.path().join("mappings/sws_xzxk.toml");
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(
        &m,
        text.replacen("transforms = [\"trim\"]", "transforms = [\"trimm\"]", 1),
    )
    .unwrap();
    let o = w.xinyong(&["run", "--no-push"]);
    assert_exit(&o, 2);
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    let hook: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert!(
        hook["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "feed_failed" && e["subject"] == "sws_xzxk"),
        "{hook}"
    );
    let wecom: serde_json::Value = serde_json::from_str(&got[1]).unwrap();
    assert_eq!(wecom["msgtype"], "text");
    assert!(
        wecom["text"]["content"]
            .as_str()
            .unwrap()
            .contains("sws_xzxk"),
        "{wecom}"
    );
}

/// `backup` writes a consistent copy of the state store that opens and holds the runs.
#[test]
fn backup_copies_the_state_store() {
    let w = Workdir::new();
    std::fs::write(w.config(), "data_dir = \"data\"\nmappings = \"mappings\"\n").unwrap();
    let _ = w.xinyong(&["run", "--no-push"]);
    let dest = w.path().join("backups");
    std::fs::create_dir_all(&dest).unwrap();
    let o = w.xinyong(&["backup", dest.to_str().unwrap()]);
    assert_exit(&o, 0);
    // The copy (SQLite may leave its -wal/-shm files beside it after the check).
    let copy = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".sqlite"))
        .unwrap();
    // The copy serves as the state store: status reads the same runs from it.
    std::fs::write(
        w.config(),
        format!(
            "data_dir = \"data\"\nmappings = \"mappings\"\nstate = \"{}\"\n",
            copy.display()
        ),
    )
    .unwrap();
    let o = w.xinyong(&["status", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        s["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["last_run"].is_null()),
        "{s}"
    );
    // An existing file is not overwritten.
    let o = w.xinyong(&["backup", copy.to_str().unwrap()]);
    assert_exit(&o, 2);
}

/// `init DIR` writes a deployment that `check` accepts (its secrets set) and refuses to
/// overwrite one.
#[test]
fn init_writes_a_deployment_that_checks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("tongjiang");
    let o = std::process::Command::new(BIN)
        .args(["init", d.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    for f in [
        "xinyong.toml",
        "schedules/nightly.toml",
        "secrets/xinyong.env",
        "xinyong.service",
    ] {
        assert!(d.join(f).exists(), "{f}");
    }
    let unit = std::fs::read_to_string(d.join("xinyong.service")).unwrap();
    assert!(
        unit.contains("NoNewPrivileges=yes") && unit.contains("[Install]"),
        "{unit}"
    );
    let console = std::fs::read_to_string(d.join("xinyong-console.service")).unwrap();
    assert!(
        console.contains("serve --listen 127.0.0.1:8080")
            && console.contains("ProtectSystem=strict"),
        "{console}"
    );
    let o = std::process::Command::new(BIN)
        .args([
            "--config",
            d.join("xinyong.toml").to_str().unwrap(),
            "check",
        ])
        .env("XINYONG_JIAMUSI_SECRET", "s1")
        .env("XINYONG_PROVINCE_SECRET", "s2")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let o = std::process::Command::new(BIN)
        .args(["init", d.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&o, 2);
}

/// Runs `xinyong ARGS` in `w` with debug logs and nobody reading its output
/// (`output: true`, as `xinyong status | head -1` once the reader is gone) or its logs
/// (`output: false`, as `xinyong run 2>&1 | head -1`): the read end is closed before it
/// writes. Its exit code, and what the stream still read got.
fn with_nobody_reading(w: &Workdir, args: &[&str], output: bool) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(w.config())
        .args(args)
        .current_dir(w.path())
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if output {
        drop(child.stdout.take());
    } else {
        drop(child.stderr.take());
    }
    let o = child.wait_with_output().unwrap();
    let read = if output { &o.stderr } else { &o.stdout };
    (o.status.code(), String::from_utf8_lossy(read).to_string())
}

/// A command whose output nobody reads (`xinyong status | head -1`, the reader gone
/// before it writes) ends as it would have, without a panic; a run still does its work.
#[test]
fn output_to_a_closed_pipe_is_dropped() {
    let w = Workdir::new();
    w.configure(&[], &PlatformOpts::default());
    let unread = |args: &[&str]| {
        let (code, err) = with_nobody_reading(&w, args, true);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        code
    };
    assert_eq!(unread(&["run", "--no-push"]), Some(0));
    assert!(w
        .data()
        .join("snapshot/dataset=xzcf/_manifest.json")
        .exists());
    assert_eq!(unread(&["status"]), Some(0));
    assert_eq!(unread(&["holds"]), Some(0));
}

/// A run whose log reader went away (`xinyong run 2>&1 | head -1`, a log collector that
/// died) still does its work and ends well: a log line that cannot be written is dropped
/// (the subscriber used to report it with eprintln!, which panicked on the same broken
/// stderr).
#[test]
fn a_run_finishes_when_nobody_reads_its_logs() {
    let w = Workdir::new();
    w.configure(&[], &PlatformOpts::default());
    let (code, out) = with_nobody_reading(&w, &["run", "--no-push"], false);
    assert_eq!(code, Some(0), "{out}");
    assert!(w
        .data()
        .join("snapshot/dataset=xzcf/_manifest.json")
        .exists());
}
