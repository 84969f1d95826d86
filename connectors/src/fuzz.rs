//! Fuzzing on stable Rust (proptest): the readers never panic, whatever the bytes. Each
//! target is a `fuzz_` test; `make test` runs a smoke of proptest's default 256 cases,
//! `make fuzz` runs `PROPTEST_CASES=100000`. Inputs are arbitrary bytes and mutations
//! (bytes overwritten, inserted, the file cut) of real exports.

use crate::sources::csv_file::CsvReader;
use crate::sources::file_drop::{FileDropConfig, RowReader};
use crate::{ReadContext, SourceConfig};
use proptest::prelude::*;
use std::sync::Arc;

/// A real export mutated: some bytes overwritten, some inserted, maybe cut short.
pub(crate) fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len().max(1);
    (
        proptest::collection::vec((0..len, any::<u8>()), 0..8),
        proptest::collection::vec((0..len, any::<u8>()), 0..4),
        proptest::option::of(0..len),
    )
        .prop_map(move |(overwrite, insert, cut)| {
            let mut b = base.clone();
            for (i, v) in overwrite {
                if i < b.len() {
                    b[i] = v;
                }
            }
            for (i, v) in insert {
                b.insert(i.min(b.len()), v);
            }
            if let Some(c) = cut {
                b.truncate(c);
            }
            b
        })
}

fn sample_csv() -> Vec<u8> {
    let text = "同江市市场监督管理局行政处罚信息公示表,,\r\n企业名称,统一社会信用代码,罚款金额（元）\r\n同江市某某商贸有限公司,91230881MA1B2C3D4E,\"1,500.00\"\r\n\"多行\r\n名称\",x,无\r\n";
    let mut out = text.as_bytes().to_vec();
    out.extend_from_slice(&encoding_rs::GB18030.encode(text).0);
    out
}

fn expected() -> Vec<String> {
    ["企业名称", "统一社会信用代码", "罚款金额（元）"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Opens and reads a CSV file to its end; errors are fine, panics are not.
fn read_csv(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.csv");
    std::fs::write(&path, bytes).unwrap();
    let progress = Arc::new(crate::ByteProgress::default());
    if let Ok((unit, mut reader)) = CsvReader::open(&path, None, &expected(), progress) {
        while let Ok(rows) = reader.next_rows(64) {
            if rows.is_empty() {
                break;
            }
            for r in rows {
                assert!(r.values.len() <= 1 + bytes.len());
                assert!(
                    !r.values.iter().any(|v| v.contains('\u{FFFD}'))
                        || unit.encoding.starts_with("UTF-16")
                );
            }
        }
    }
}

/// Reads a drop folder holding one workbook through the file-drop source (whose
/// per-file containment is part of what is tested): no panic gets out.
fn read_workbook(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.xlsx"), bytes).unwrap();
    let cfg = SourceConfig::FileDrop(FileDropConfig {
        dir: dir.path().to_path_buf(),
        pattern: "*.xlsx".into(),
        sheet: None,
    });
    let mut src = cfg
        .build(&ReadContext {
            expected_columns: vec!["企业名称".into()],
            base_dir: std::path::PathBuf::from("/"),
            ..Default::default()
        })
        .unwrap();
    while let Ok(Some(_)) = src.next_batch() {}
}

fn fixture_workbook() -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/drop/sws_xzxk");
    std::fs::read_dir(root)
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| std::fs::read(e.ok()?.path()).ok())
        .unwrap_or_default()
}

proptest! {
    #[test]
    fn fuzz_csv_reader_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        read_csv(&bytes);
    }

    #[test]
    fn fuzz_csv_reader_mutated_exports(bytes in mutated(sample_csv())) {
        read_csv(&bytes);
    }

    #[test]
    fn fuzz_xlsx_reader_mutated_workbooks(bytes in mutated(fixture_workbook())) {
        read_workbook(&bytes);
    }

    #[test]
    fn fuzz_http_pages(body in proptest::collection::vec(any::<u8>(), 0..512), charset in "[a-zA-Z0-9=; -]{0,30}") {
        crate::sources::http::fuzz_page(&format!("application/json; {charset}"), &body);
    }

    #[test]
    fn fuzz_http_pages_mutated(body in mutated(br#"{"data":{"list":[{"name":"a","n":1,"x":null},{"name":"b","n":[1,2],"x":{"y":true}}],"next":"c2"}}"#.to_vec())) {
        crate::sources::http::fuzz_page("application/json; charset=utf-8", &body);
    }
}
