//! The benchmark job's semantics (issue 8) on a small hand-written export, against
//! hand-computed expectations: every quarantine reason and its order, every date form,
//! amount edge cases, the dedupe tie rule, line numbers after a multi-line cell.

use crate::util::*;
use arrow_array::Array;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const AUTH: &str = "11230881MB00123433";

#[allow(clippy::too_many_arguments)]
pub(crate) fn row(
    name: &str,
    code: &str,
    wsh: &str,
    category: &str,
    content: &str,
    amount: &str,
    date: &str,
    updated: &str,
) -> Vec<String> {
    [
        name,
        code,
        "王建国",
        wsh,
        "销售不合格产品",
        "经查，事实清楚",
        "《中华人民共和国产品质量法》第四十九条",
        category,
        content,
        amount,
        date,
        "同江市市场监督管理局",
        AUTH,
        updated,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub(crate) fn csv(rows: &[Vec<String>]) -> Vec<u8> {
    let mut text = String::from(devtools::loadgen::HEADER);
    text.push_str("\r\n");
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .map(|c| {
                if c.contains([',', '"', '\r', '\n']) {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c.clone()
                }
            })
            .collect();
        text.push_str(&cells.join(","));
        text.push_str("\r\n");
    }
    encoding_rs::GB18030.encode(&text).0.into_owned()
}

fn rid(code: &str, wsh: &str) -> String {
    hex::encode(&Sha256::digest(format!("xzcf|{code}|{wsh}").as_bytes())[..16])
}

#[test]
fn penalties_full_load_semantics() {
    let c1 = "91110000802100433B".to_string();
    let c2 = pipeline::domain::ids::complete_uscc("91230881MA1BC3D4").unwrap();
    let c3 = pipeline::domain::ids::complete_uscc("92230881MA7QK2X5").unwrap();
    let bad_check = format!("{}{}", &c1[..17], if c1.ends_with('B') { "C" } else { "B" });
    let t = "2024-03-06 10:00:00";
    let fullwidth_lower: String = c2
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                char::from_u32(c as u32 + 0xFEE0).unwrap()
            } else {
                c
            }
        })
        .collect();
    let rows = vec![
        row(
            "同江市江华商贸有限公司",
            &c1,
            "W1",
            "罚款",
            "罚款1500元",
            "1,500.00",
            "2024-03-05",
            t,
        ), // line 2
        row("", "bad", "W9", "罚款", "x", "1", "2024-02-30", t), // 3: empty name comes first
        row(
            "甲公司",
            &bad_check,
            "W9",
            "罚款",
            "x",
            "1",
            "2024-02-30",
            t,
        ), // 4: code before date
        row("甲公司", &c1[..17], "W9", "罚款", "x", "1", "2024-03-05", t), // 5: length
        row(
            "乙公司",
            &format!("\u{3000}{fullwidth_lower}\u{a0}"),
            "W2",
            "罚款",
            "x",
            "0.05",
            "2024/3/5",
            t,
        ), // 6
        row(
            "丙公司",
            &format!("\t{c3} "),
            "W3",
            "罚款",
            "x",
            "12,345,678.9",
            "20240305",
            t,
        ), // 7
        row("丁公司", &c1, "W4", "警告", "警告", "", "2024年3月5日", t), // 8
        row("戊公司", &c1, "W5", "罚款", "x", "1", "2024-02-30", t), // 9: bad date
        row(
            "己公司",
            &c1.replace('0', "I"),
            "W5",
            "罚款",
            "x",
            "1",
            "2024-03-05",
            t,
        ), // 10: alphabet
        row(
            "庚公司",
            &c2,
            "W6",
            "罚款",
            "第一版",
            "1",
            "2024-03-05",
            "2024-05-01 08:00:00",
        ), // 11: tie, loses
        row(
            "庚公司",
            &format!(" {} ", c2.to_lowercase()),
            "W6",
            "罚款",
            "第二版",
            "1",
            "2024-03-05",
            "2024-05-01 08:00:00",
        ), // 12: tie, later row wins
        row(
            "辛公司",
            &c3,
            "W7",
            "罚款",
            "新",
            "1",
            "2024-03-05",
            "2024-06-01 12:00:00",
        ), // 13: newer wins
        row(
            "辛公司",
            &c3,
            "W7",
            "罚款",
            "旧",
            "1",
            "2024-03-05",
            "2024-05-30 12:00:00",
        ), // 14: older, later in file
        row(
            "壬公司",
            &c3,
            "W8",
            "罚款",
            "第一行\r\n第二行",
            "1",
            "2024-03-05",
            t,
        ), // 15-16: two lines
        row("  ", &c1, "W10", "罚款", "x", "1", "2024-03-05", t), // 17: blank name
    ];
    let w = Workdir::new();
    std::fs::create_dir_all(w.path().join("input")).unwrap();
    std::fs::write(w.path().join("input/export.csv"), csv(&rows)).unwrap();
    std::fs::write(
        w.config(),
        format!("data_dir = \"data\"\nmappings = \"{ROOT}/fixtures/bench/mappings\"\nbase_dir = \".\"\n"),
    )
    .unwrap();
    let o = w.xinyong(&["run", "--no-push"]);
    assert_exit(&o, 0);
    let c = &w.latest_report()["feeds"][0]["counts"];
    assert_eq!(
        (
            c["read"].as_u64(),
            c["kept"].as_u64(),
            c["quarantined"].as_u64(),
            c["superseded"].as_u64()
        ),
        (Some(15), Some(7), Some(6), Some(2)),
        "{c}"
    );

    // The quarantine: first reason in order, the 1-based line, the row as decoded.
    let qdir = w.data().join("quarantine/feed=penalties_full_load");
    let qfile = std::fs::read_dir(&qdir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut q: BTreeMap<u64, (String, String, serde_json::Value)> = BTreeMap::new();
    pipeline::snapshot::read_batches(&qfile, None, |b| {
        let col = |n: &str| pipeline::snapshot::str_col(&b, n).unwrap();
        let lines = pipeline::snapshot::u64_col(&b, "source_line").unwrap();
        for i in 0..b.num_rows() {
            q.insert(
                lines.value(i),
                (
                    col("reason").value(i).into(),
                    col("field").value(i).into(),
                    serde_json::from_str(col("raw").value(i)).unwrap(),
                ),
            );
        }
        Ok(())
    })
    .unwrap();
    let reasons: Vec<(u64, &str)> = q.iter().map(|(l, (r, _, _))| (*l, r.as_str())).collect();
    assert_eq!(
        reasons,
        vec![
            (3, "missing_field"),
            (4, "uscc_check"),
            (5, "uscc_length"),
            (9, "bad_date"),
            (10, "uscc_charset"),
            (17, "missing_field")
        ]
    );
    assert_eq!(q[&3].1, "CF_XDR_MC");
    assert_eq!(q[&4].2["统一社会信用代码"], bad_check.as_str());
    assert_eq!(
        q[&17].2["企业名称"], "  ",
        "the row is kept exactly as decoded"
    );

    // The snapshot: identity, dates, amounts, the tie rule.
    let snap = pipeline::snapshot::SnapshotStore::new(&w.data());
    let mut got: BTreeMap<String, BTreeMap<String, Option<String>>> = BTreeMap::new();
    snap.read_dataset("xzcf", None, |b| {
        let cols = [
            "record_id",
            "CF_WSH",
            "CF_XDR_SHXYM",
            "CF_JDRQ",
            "CF_NR_FK",
            "CF_NR",
            "updated_at",
        ];
        for i in 0..b.num_rows() {
            let mut m = BTreeMap::new();
            for c in cols {
                let a = pipeline::snapshot::str_col(&b, c).unwrap();
                m.insert(c.to_string(), a.is_valid(i).then(|| a.value(i).to_string()));
            }
            got.insert(m["CF_WSH"].clone().unwrap(), m);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        ["W1", "W2", "W3", "W4", "W6", "W7", "W8"]
    );
    let v = |w: &str, c: &str| got[w][c].clone();
    assert_eq!(v("W1", "record_id"), Some(rid(&c1, "W1")));
    assert_eq!(
        v("W2", "CF_XDR_SHXYM"),
        Some(c2.clone()),
        "full width, lower case and padding normalised"
    );
    assert_eq!(v("W3", "CF_XDR_SHXYM"), Some(c3.clone()));
    for w in ["W1", "W2", "W3", "W4"] {
        assert_eq!(v(w, "CF_JDRQ").as_deref(), Some("2024-03-05"), "{w}");
    }
    assert_eq!(v("W1", "CF_NR_FK").as_deref(), Some("0.150000"));
    assert_eq!(v("W2", "CF_NR_FK").as_deref(), Some("0.000005"));
    assert_eq!(v("W3", "CF_NR_FK").as_deref(), Some("1234.567890"));
    assert_eq!(v("W4", "CF_NR_FK"), None, "empty stays empty");
    assert_eq!(
        v("W6", "CF_NR").as_deref(),
        Some("第二版"),
        "on a tie the later row wins"
    );
    assert_eq!(v("W6", "record_id"), Some(rid(&c2, "W6")));
    assert_eq!(
        v("W7", "CF_NR").as_deref(),
        Some("新"),
        "the greatest 更新时间 wins"
    );
    assert_eq!(
        v("W7", "updated_at").as_deref(),
        Some("2024-06-01 12:00:00")
    );
    assert_eq!(v("W8", "CF_NR").as_deref(), Some("第一行\r\n第二行"));
}

/// The dedupe index spilled to scratch (`[memory] dedupe_mib = 1`: about 26,000 entries
/// in memory, the rest in sorted runs and id-range shards) decides exactly as in memory:
/// the same counts and the same snapshot, on a full load and on the night after it.
#[test]
fn a_dedupe_index_on_scratch_decides_as_in_memory() {
    let inputs = tempfile::tempdir().unwrap();
    let (full, night) = (
        inputs.path().join("full.csv"),
        inputs.path().join("night.csv"),
    );
    devtools::loadgen::write_export(&full, 70_000, 11, None).unwrap();
    devtools::loadgen::write_export(&night, 40_000, 11, Some(70_000)).unwrap();
    let mappings = std::path::Path::new(ROOT).join("fixtures/bench/mappings");
    let run = |memory: &str| {
        let w = Workdir::new();
        std::fs::write(
            w.config(),
            format!(
                "data_dir = \"data\"\nmappings = \"{}\"\n{memory}",
                mappings.display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all(w.path().join("input")).unwrap();
        let mut seen = Vec::new();
        for (name, file) in [("export.csv", &full), ("export-next.csv", &night)] {
            std::fs::copy(file, w.path().join("input").join(name)).unwrap();
            let o = w.xinyong(&["run", "--no-push"]);
            assert!(o.status.code().unwrap_or(2) < 2, "{}", stderr(&o));
            let counts = w.latest_report()["feeds"][0]["counts"].clone();
            seen.push((counts, w.snapshot_holdings()));
        }
        seen
    };
    let in_memory = run("");
    let spilled = run("[memory]\ndedupe_mib = 1\n");
    assert!(in_memory[0].0["read"].as_u64().unwrap() >= 70_000);
    assert!(
        in_memory[1].0["changed"].as_u64().unwrap() > 0,
        "{}",
        in_memory[1].0
    );
    assert_eq!(in_memory, spilled);
}

/// A night that corrects and adds records in every month patches the month partitions
/// (unchanged row groups and columns copied as encoded) and leaves exactly what
/// rewriting them whole leaves (`[snapshot] patch_row_groups = 0`): every record's
/// version, winning line, update time and fields, and the manifest's counts — over two
/// nights, the second patching partitions the first already patched.
#[test]
fn a_patched_night_leaves_what_a_rewrite_leaves() {
    let inputs = tempfile::tempdir().unwrap();
    let files = [
        inputs.path().join("full.csv"),
        inputs.path().join("night1.csv"),
        inputs.path().join("night2.csv"),
    ];
    let spread = devtools::loadgen::ExportOrder {
        unsorted: true,
        spread: true,
    };
    devtools::loadgen::write_export_as(&files[0], 60_000, 5, None, Default::default()).unwrap();
    devtools::loadgen::write_export_as(&files[1], 3_000, 5, Some(60_000), spread).unwrap();
    devtools::loadgen::write_export_as(&files[2], 3_000, 6, Some(63_000), spread).unwrap();
    let mappings = std::path::Path::new(ROOT).join("fixtures/bench/mappings");
    let columns = [
        "record_id",
        "version",
        "source_line",
        "updated_at",
        "feed",
        "CF_NR",
        "CF_JDRQ",
        "CF_XDR_MC",
    ];
    let run = |snapshot: &str| {
        let w = Workdir::new();
        std::fs::write(
            w.config(),
            format!(
                "data_dir = \"data\"\nmappings = \"{}\"\n{snapshot}",
                mappings.display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all(w.path().join("input")).unwrap();
        let mut seen = Vec::new();
        for (i, file) in files.iter().enumerate() {
            std::fs::copy(file, w.path().join("input").join(format!("export-{i}.csv"))).unwrap();
            let o = w.xinyong(&["run", "--no-push"]);
            assert!(o.status.code().unwrap_or(2) < 2, "{}", stderr(&o));
            let counts = w.latest_report()["feeds"][0]["counts"].clone();
            let mut records = BTreeMap::new();
            let store = pipeline::snapshot::SnapshotStore::new(&w.data());
            store
                .read_dataset("xzcf", Some(&columns), |b| {
                    let lines = pipeline::snapshot::u64_col(&b, "source_line").unwrap();
                    for r in 0..b.num_rows() {
                        let text: Vec<Option<String>> = columns
                            .iter()
                            .filter(|c| **c != "source_line")
                            .map(|c| {
                                let a = pipeline::snapshot::str_col(&b, c).unwrap();
                                a.is_valid(r).then(|| a.value(r).to_string())
                            })
                            .collect();
                        let before =
                            records.insert(text[0].clone().unwrap(), (lines.value(r), text));
                        assert!(before.is_none(), "a record twice in the snapshot");
                    }
                    Ok(())
                })
                .unwrap();
            let manifest: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(w.data().join("snapshot/dataset=xzcf/_manifest.json"))
                    .unwrap(),
            )
            .unwrap();
            let partitions: Vec<_> = manifest["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["month"].clone(),
                        p["rows"].clone(),
                        p["rows_by_feed"].clone(),
                    )
                })
                .collect();
            seen.push((counts, records, partitions));
        }
        let groups: Vec<usize> = std::fs::read_dir(w.data().join("snapshot/dataset=xzcf"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| {
                let f = std::fs::File::open(e.path().join("data.parquet")).unwrap();
                let reader =
                    parquet::file::serialized_reader::SerializedFileReader::new(f).unwrap();
                let meta = parquet::file::reader::FileReader::metadata(&reader);
                // Every row group keeps its ids' Bloom filter, the copied ones too.
                for g in meta.row_groups() {
                    let ids = g
                        .columns()
                        .iter()
                        .find(|c| c.column_path().string() == "record_id");
                    assert!(
                        ids.is_some_and(|c| c.bloom_filter_offset().is_some()),
                        "{}: a row group without its ids' Bloom filter",
                        e.path().display()
                    );
                }
                meta.num_row_groups()
            })
            .collect();
        (seen, groups)
    };
    let (patched, groups) = run("");
    let (rewritten, whole) = run("[snapshot]\npatch_row_groups = 0\n");
    assert!(
        patched[1].0["changed"].as_u64().unwrap() > 100,
        "{}",
        patched[1].0
    );
    assert!(
        groups.iter().any(|g| *g > 1),
        "nights patched partitions (a row group of their own for new records): {groups:?}"
    );
    assert!(whole.iter().all(|g| *g == 1), "{whole:?}");
    for night in 0..3 {
        assert_eq!(
            patched[night].0, rewritten[night].0,
            "counts of run {night}"
        );
        assert_eq!(
            patched[night].2, rewritten[night].2,
            "manifest of run {night}"
        );
        assert!(
            patched[night].1 == rewritten[night].1,
            "records of run {night} differ"
        );
    }
}
