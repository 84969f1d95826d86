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
    // And `run` refuses before any data moves.
    let o = w.xinyong(&["run", "--no-push"]);
    assert_exit(&o, 2);
    assert!(!w.data().join("snapshot").exists());
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
        s.contains("nightly (30 1 * * * · Asia/Shanghai") && s.contains(" 01:30 CST"),
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
