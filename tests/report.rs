//! The leading-group office's report, end to end: a real run against two simulated
//! platforms (one rejecting some records), an objection hold and a reconciliation, then
//! `xinyong report`. The workbook read back with calamine shows the JSON's totals; no
//! full identity number or natural person's name appears in any format; the page
//! renders in headless Chromium.

use crate::util::*;
use calamine::{open_workbook, Data, Reader, Xlsx};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The files `xinyong report` printed, by their line labels.
struct Printed {
    html: PathBuf,
    xlsx: PathBuf,
    json: PathBuf,
    corrections: Vec<PathBuf>,
}

fn printed_files(out: &str) -> Printed {
    let path_after = |label: &str| -> PathBuf {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line in:\n{out}"));
        PathBuf::from(line.trim_start().trim_start_matches(label).trim())
    };
    let corrections = out
        .lines()
        .filter(|l| l.trim_end().ends_with(".xlsx") && l.contains("整改清单-"))
        .map(|l| PathBuf::from(l.trim()))
        .collect();
    Printed {
        html: path_after("网页 HTML:"),
        xlsx: path_after("表格 XLSX:"),
        json: path_after("数据 JSON:"),
        corrections,
    }
}

/// Every sheet of a workbook: name → rows of cell texts (numbers as integers when whole).
fn read_workbook(path: &Path) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut wb: Xlsx<_> = open_workbook(path).unwrap();
    let mut out = BTreeMap::new();
    for name in wb.sheet_names() {
        let range = wb.worksheet_range(&name).unwrap();
        let rows = range
            .rows()
            .map(|row| {
                row.iter()
                    .map(|c| match c {
                        Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
                        Data::Int(i) => i.to_string(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect();
        out.insert(name, rows);
    }
    out
}

/// A sheet's column, by header, summed (header row skipped).
fn column_sum(sheet: &[Vec<String>], header: &str) -> u64 {
    let c = sheet[0]
        .iter()
        .position(|h| h == header)
        .unwrap_or_else(|| panic!("no column {header} in {:?}", sheet[0]));
    sheet[1..]
        .iter()
        .map(|r| r[c].parse::<u64>().unwrap_or(0))
        .sum()
}

/// Data rows of a sheet (its header and a "none" note excluded).
fn data_rows(sheet: &[Vec<String>]) -> usize {
    sheet[1..]
        .iter()
        .filter(|r| !r[0].starts_with("本期"))
        .count()
}

/// Identity numbers and natural persons' names the pipeline saw: from the snapshot's
/// identity-number fields and subjects, and from the quarantine's raw rows.
fn personal_values(w: &Workdir) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut ids, mut names) = (BTreeSet::new(), BTreeSet::new());
    let store = pipeline::snapshot::SnapshotStore::new(&w.data());
    for (ds, id_cols, name_col, category, representative) in [
        (
            "xzcf",
            ["CF_XDR_ZJHM", "CF_FR_ZJHM"],
            "CF_XDR_MC",
            "CF_XDR_LB",
            "CF_FRDB",
        ),
        (
            "xzxk",
            ["XK_XDR_ZJHM", "XK_FR_ZJHM"],
            "XK_XDR_MC",
            "XK_XDR_LB",
            "XK_FRDB",
        ),
    ] {
        store
            .read_dataset(ds, None, |b| {
                let col = |n: &str| pipeline::snapshot::str_col(&b, n);
                for c in id_cols.iter().filter_map(|c| col(c)) {
                    ids.extend(c.iter().flatten().map(String::from));
                }
                let (name, cat) = (col(name_col).unwrap(), col(category).unwrap());
                for i in 0..b.num_rows() {
                    if cat.value(i) == "自然人" {
                        names.insert(name.value(i).to_string());
                    }
                }
                names.extend(
                    col(representative)
                        .unwrap()
                        .iter()
                        .flatten()
                        .map(String::from),
                );
                Ok(())
            })
            .unwrap();
    }
    for feed in std::fs::read_dir(w.data().join("quarantine")).unwrap() {
        for file in std::fs::read_dir(feed.unwrap().path()).unwrap() {
            pipeline::snapshot::read_batches(&file.unwrap().path(), None, |b| {
                let raw = pipeline::snapshot::str_col(&b, "raw").unwrap();
                for r in raw.iter().flatten() {
                    let v: serde_json::Value = serde_json::from_str(r).unwrap();
                    for (k, x) in v.as_object().unwrap() {
                        let x = x.as_str().unwrap_or("").trim();
                        if k.contains("证件号码") && x.len() >= 15 {
                            ids.insert(x.to_string());
                        }
                    }
                }
                Ok(())
            })
            .unwrap();
        }
    }
    ids.retain(|s| s.chars().count() == 18);
    (ids, names)
}

/// Every text the office sees: the page, the JSON, every cell of every workbook.
fn all_texts(files: &Printed) -> Vec<(String, String)> {
    let mut texts = vec![
        (
            "report.html".to_string(),
            std::fs::read_to_string(&files.html).unwrap(),
        ),
        (
            "report.json".to_string(),
            std::fs::read_to_string(&files.json).unwrap(),
        ),
    ];
    for book in std::iter::once(&files.xlsx).chain(&files.corrections) {
        for (sheet, rows) in read_workbook(book) {
            for cell in rows.into_iter().flatten() {
                texts.push((format!("{} / {sheet}", book.display()), cell));
            }
        }
    }
    texts
}

#[test]
fn office_report_agrees_across_formats_masks_identities_and_renders() {
    let w = Workdir::new();
    let jms = Simulator::start("jiamusi", &["--reject-prefix", "0"]);
    let prov = Simulator::start("province", &[]);
    w.configure(&[&jms, &prov], &PlatformOpts::default());
    assert_exit(&w.xinyong(&["run"]), 0);
    let run = w.latest_report();
    let run_id = run["run_id"].as_str().unwrap().to_string();

    // An objection on a record, registered by a named clerk, and a reconciliation.
    let held = w
        .snapshot_holdings()
        .into_iter()
        .find(|((ds, _), _)| ds == "xzcf")
        .and_then(|(_, set)| set.into_iter().next())
        .unwrap()
        .0;
    let hold = [
        "hold",
        "--dataset",
        "xzcf",
        "--record-id",
        &held,
        "--reason",
        "当事人提出异议",
        "--by",
        "张科长",
    ];
    assert_exit(&w.xinyong(&hold), 0);
    let _ = w.xinyong(&["reconcile"]);

    let o = w.xinyong(&["report", "--run", &run_id]);
    assert_exit(&o, 0);
    let files = printed_files(&stdout(&o));
    assert!(
        files
            .html
            .starts_with(w.data().join("reports").join(format!("run-{run_id}"))),
        "default directory: {}",
        files.html.display()
    );
    assert_eq!(files.corrections.len(), 2, "{}", stdout(&o));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files.json).unwrap()).unwrap();
    let totals = &json["totals"];
    let total = |k: &str| totals[k].as_u64().unwrap_or_else(|| panic!("totals.{k}"));

    // The JSON's intake is the run's own accounting.
    let read: u64 = run["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["counts"]["read"].as_u64().unwrap())
        .sum();
    assert_eq!(total("collected"), read);
    assert_eq!(
        total("collected"),
        total("kept") + total("quarantined") + total("superseded")
    );
    let rejected_in_run = run["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["rejected"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum::<u64>()
        })
        .sum::<u64>();
    assert!(rejected_in_run > 0);
    assert_eq!(total("rejected"), rejected_in_run);
    // Each quarantine problem once (rows of the same decision are one problem), and each
    // rejection.
    let o = w.xinyong(&["corrections", "--status", "open", "--json"]);
    let problems = serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap();
    let problems = problems.as_array().unwrap().len() as u64;
    assert!(problems > 0 && problems <= total("quarantined"));
    assert_eq!(total("corrections"), problems + total("rejected"));
    // The fixtures' decisions are from 2024–2025 and were pushed now: all late.
    assert_eq!(
        total("published"),
        total("on_time") + total("late") + total("not_computable")
    );
    assert!(total("late") > 300, "{totals}");
    let late = &json["late_records"][0];
    assert!(late["days_late"].as_i64().unwrap() > 100, "{late}");

    // (a) The workbook read back shows the same totals.
    let book = read_workbook(&files.xlsx);
    let summary: BTreeMap<&str, &str> = book["概况"][1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    for (label, key) in [
        ("读取记录", "collected"),
        ("保留入库", "kept"),
        ("隔离（未通过校验）", "quarantined"),
        ("被新版本替代", "superseded"),
        ("平台接收", "accepted"),
        ("平台退回", "rejected"),
        ("待推送", "pending"),
        ("双公示上报记录", "published"),
        ("按时（7个工作日内）", "on_time"),
        ("逾期", "late"),
        ("整改清单条数", "corrections"),
    ] {
        assert_eq!(summary[label], total(key).to_string(), "{label}");
    }
    assert_eq!(column_sum(&book["数据接收"], "读取"), total("collected"));
    assert_eq!(column_sum(&book["数据接收"], "隔离"), total("quarantined"));
    assert_eq!(column_sum(&book["上报平台"], "接收"), total("accepted"));
    assert_eq!(column_sum(&book["上报平台"], "退回"), total("rejected"));
    assert_eq!(column_sum(&book["双公示及时性"], "逾期"), total("late"));
    assert_eq!(data_rows(&book["逾期记录"]) as u64, total("late"));
    assert_eq!(data_rows(&book["整改明细"]) as u64, total("corrections"));
    let per_department: u64 = files
        .corrections
        .iter()
        .map(|f| data_rows(&read_workbook(f)["整改清单"]) as u64)
        .sum();
    assert_eq!(per_department, total("corrections"));
    // A rejected record's line names its source file and row and says why in Chinese.
    let rejected_line = book["整改明细"]
        .iter()
        .find(|r| r[2].starts_with("上级平台退回"))
        .expect("a rejected record in the correction lines");
    assert!(rejected_line[3].ends_with(".csv") || rejected_line[3].ends_with(".xlsx"));
    assert!(rejected_line[4].parse::<u64>().unwrap() >= 2);
    assert!(
        rejected_line[10].contains("上级平台退回："),
        "{rejected_line:?}"
    );

    // (b) No full identity number, no natural person's name, in any format.
    let (ids, names) = personal_values(&w);
    assert!(
        ids.len() > 10,
        "the fixtures carry identity numbers: {}",
        ids.len()
    );
    assert!(
        names.len() > 5,
        "the fixtures carry natural persons: {}",
        names.len()
    );
    let texts = all_texts(&files);
    for (place, text) in &texts {
        assert_eq!(
            pipeline::domain::masking::mask_ids_in_text(text),
            *text,
            "an identity number in {place}"
        );
        for id in &ids {
            assert!(!text.contains(id.as_str()), "{id} in {place}");
        }
        for name in &names {
            assert!(!text.contains(name.as_str()), "{name} in {place}");
        }
    }
    assert!(!texts.iter().any(|(_, t)| t.contains("张科长")));

    // The month's report sees the objection hold, with the clerk's name masked.
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive()
        .to_string();
    let o = w.xinyong(&["report", "--from", &today, "--to", &today]);
    assert_exit(&o, 0);
    let day: serde_json::Value =
        serde_json::from_slice(&std::fs::read(printed_files(&stdout(&o)).json).unwrap()).unwrap();
    let hold = &day["overrides"][0];
    assert_eq!(hold["record_id"], held.as_str(), "{day}");
    assert_eq!(hold["by_whom"], "张**");
    assert_eq!(day["totals"]["holds_in_force"], 1);
    assert_eq!(day["reconciliations"].as_array().unwrap().len(), 2);

    // (c) The page is self-contained and renders.
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.contains("<svg") && html.contains("双公示"));
    for forbidden in ["<script", "<link", "src=", "https://", "url("] {
        assert!(!html.contains(forbidden), "{forbidden} in the page");
    }
    assert!(!html
        .replace("http://www.w3.org/2000/svg", "")
        .contains("http://"));
    screenshot(&files.html, w.path());
}

/// Renders the page in headless Chromium and checks the screenshot (skipped when
/// Chromium is absent, except under CI=true).
fn screenshot(page: &Path, scratch: &Path) {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let png = scratch.join("report.png");
    let Some(bytes) = chromium_screenshot(&url, scratch, &png, (1240, 1754)) else {
        return;
    };
    assert!(
        bytes.len() > 50_000,
        "a blank page compresses to a few KB; this one is {} bytes",
        bytes.len()
    );
}

#[test]
fn the_demo_leaves_a_report_for_its_run() {
    let w = Workdir::new();
    let (_, o) = w.demo();
    assert_exit(&o, 0);
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("办公室报告 office:"))
        .unwrap_or_else(|| panic!("the summary says where the report is:\n{out}"));
    let html = PathBuf::from(line.trim_start_matches("办公室报告 office:").trim());
    let html = if html.is_absolute() {
        html
    } else {
        w.path().join(html)
    };
    assert!(html.ends_with("report.html"), "{}", html.display());
    let dir = html.parent().unwrap();
    assert!(
        dir.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("run-"),
        "{}",
        dir.display()
    );
    assert!(dir.starts_with(w.path().join("out/demo/reports")));
    for f in ["report.html", "report.xlsx", "report.json"] {
        assert!(dir.join(f).exists(), "{f}");
    }
    let workbooks = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let e = e.as_ref().unwrap();
            e.file_name().to_string_lossy().starts_with("整改清单-")
        })
        .count();
    assert_eq!(workbooks, 2, "one correction workbook per department");
}
