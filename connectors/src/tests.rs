//! Contract tests of the file-drop source: title rows, encodings, skipping files already read.

use crate::sources::file_drop::{wildcard_match, FileDropConfig};
use crate::{ReadContext, Source, SourceConfig};
use std::collections::HashSet;

fn expected() -> Vec<String> {
    ["企业名称", "统一社会信用代码", "罚款金额(元)"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn drain(src: &mut dyn Source) -> Vec<(u64, Vec<String>)> {
    let mut out = Vec::new();
    while let Some(b) = src.next_batch().unwrap() {
        out.extend(b.rows.into_iter().map(|r| (r.line, r.values.to_vec())));
    }
    out
}

fn build(dir: &std::path::Path, already: HashSet<String>) -> Box<dyn Source> {
    let cfg = SourceConfig::FileDrop(FileDropConfig {
        dir: dir.to_path_buf(),
        pattern: "*.csv".into(),
        sheet: None,
    });
    cfg.build(&ReadContext {
        expected_columns: expected(),
        already_read: already,
        base_dir: std::path::PathBuf::from("/"),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn reads_gb18030_with_title_row_and_keeps_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let text = "同江市市场监督管理局行政处罚信息公示表,,\r\n企业名称,统一社会信用代码,罚款金额（元）\r\n同江市某某商贸有限公司,\u{3000}91230881MA1B2C3D4E ,\"1,500.00\"\r\n\"多行\r\n名称\",x,无\r\n";
    let (bytes, _, _) = encoding_rs::GB18030.encode(text);
    std::fs::write(dir.path().join("a.csv"), &bytes).unwrap();
    std::fs::write(dir.path().join("ignored.txt"), b"x").unwrap();
    let mut src = build(dir.path(), HashSet::new());
    let rows = drain(src.as_mut());
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, 3);
    assert_eq!(rows[0].1[1], "\u{3000}91230881MA1B2C3D4E ");
    assert_eq!(rows[0].1[2], "1,500.00");
    assert_eq!(rows[1].0, 4, "a quoted multi-line record starts on line 4");
    let done = src.completed();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].encoding, "GB18030");
    assert_eq!(done[0].header_line, 2);
    assert_eq!(done[0].headers[2], "罚款金额(元)");
}

#[test]
fn utf8_bom_and_skip_already_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\u{feff}企业名称,统一社会信用代码,罚款金额(元)\n甲公司,1,2\n";
    std::fs::write(dir.path().join("b.csv"), text).unwrap();
    let mut src = build(dir.path(), HashSet::new());
    let rows = drain(src.as_mut());
    assert_eq!(
        rows,
        vec![(2, vec!["甲公司".into(), "1".into(), "2".into()])]
    );
    let hash = src.completed()[0].sha256.clone();
    assert_eq!(src.completed()[0].encoding, "UTF-8");
    let mut again = build(dir.path(), HashSet::from([hash]));
    assert!(drain(again.as_mut()).is_empty());
    assert_eq!(again.skipped().len(), 1);
}

#[test]
fn a_file_without_its_header_is_set_aside_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.csv"), "a,b\n1,2\n").unwrap();
    let mut src = build(dir.path(), HashSet::new());
    assert!(src.next_batch().unwrap().is_none());
    let set_aside = src.set_aside();
    assert_eq!(set_aside.len(), 1);
    let err = &set_aside[0].reason;
    assert!(
        err.contains("c.csv") && err.contains("no header row"),
        "{err}"
    );
    assert!(src.completed().is_empty());
}

#[test]
fn wildcards() {
    assert!(wildcard_match("*.csv", "处罚2024.CSV"));
    assert!(wildcard_match("xk_??.xlsx", "xk_01.xlsx"));
    assert!(!wildcard_match("*.csv", "a.xlsx"));
}

#[test]
fn line_numbers_survive_crlf_blank_lines_and_multiline_cells() {
    let dir = tempfile::tempdir().unwrap();
    let text = "标题,,\r\n企业名称,统一社会信用代码,罚款金额(元)\r\n\r\n\r\n甲,1,2\r\n\"乙\r\n公司\",3,4\r\n丙,5,6\r\n";
    std::fs::write(dir.path().join("d.csv"), text).unwrap();
    let mut src = build(dir.path(), HashSet::new());
    let lines: Vec<u64> = drain(src.as_mut()).into_iter().map(|r| r.0).collect();
    assert_eq!(lines, vec![5, 6, 8]);
    assert_eq!(src.completed()[0].header_line, 2);
}

fn build_with_sizes(
    dir: &std::path::Path,
    already: HashSet<String>,
    sizes: HashSet<u64>,
) -> Box<dyn Source> {
    let cfg = SourceConfig::FileDrop(FileDropConfig {
        dir: dir.to_path_buf(),
        pattern: "*.csv".into(),
        sheet: None,
    });
    cfg.build(&ReadContext {
        expected_columns: expected(),
        already_read: already,
        already_read_sizes: Some(sizes),
        base_dir: std::path::PathBuf::from("/"),
        ..Default::default()
    })
    .unwrap()
}

/// A file of a size never read is hashed on the way: the completed unit carries the same
/// SHA-256 as hashing it first; a file whose size matches one read before is hashed first
/// and skipped when its content was read; two copies in one drop are read once.
#[test]
fn new_files_are_hashed_while_read_and_known_sizes_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("企业名称,统一社会信用代码,罚款金额(元)\r\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "同江市某某商贸有限公司{i},91230881MA1B2C3D4E,\"1,500.00\"\r\n"
        ));
    }
    let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
    let path = dir.path().join("e.csv");
    std::fs::write(&path, &bytes).unwrap();
    let up_front = crate::sources::file_drop::sha256_file(&path).unwrap();

    let mut src = build_with_sizes(dir.path(), HashSet::new(), HashSet::new());
    assert_eq!(drain(src.as_mut()).len(), 20_000);
    let done = src.completed();
    assert_eq!(done[0].sha256, up_front, "hashed on the way = hashed first");
    assert_eq!(done[0].bytes, Some(bytes.len() as u64));

    let size = HashSet::from([bytes.len() as u64]);
    let mut again = build_with_sizes(dir.path(), HashSet::from([up_front.clone()]), size);
    assert!(drain(again.as_mut()).is_empty());
    assert_eq!(again.skipped().len(), 1);

    std::fs::copy(&path, dir.path().join("f.csv")).unwrap();
    let mut copies = build_with_sizes(dir.path(), HashSet::new(), HashSet::new());
    assert_eq!(drain(copies.as_mut()).len(), 20_000);
    assert_eq!(copies.skipped().len(), 1, "the second copy is skipped");
    assert_eq!(copies.completed()[0].sha256, up_front);
}
