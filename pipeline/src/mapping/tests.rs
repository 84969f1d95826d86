//! Mapping files: errors name the file and line; rows map and fail in field order.

use super::*;
use crate::mapping::transforms::trim;
use connectors::{InputUnit, RawRow};
use std::path::PathBuf;

const GOOD: &str = r#"
feed = "t"
title = "测试"
department = "同江市市场监督管理局"
dataset = "xzcf"
source_unit = "11230881MB00123433"
updated_at = "更新时间"

[source]
type = "file_drop"
dir = "x"

[[field]]
to = "CF_XDR_MC"
from = "企业名称"
transforms = ["trim"]

[[field]]
to = "CF_XDR_LB"
value = "法人及非法人组织"

[[field]]
to = "CF_XDR_SHXYM"
from = "统一社会信用代码"
transforms = ["code"]

[[field]]
to = "CF_FRDB"
value = "王建国"

[[field]]
to = "CF_WSH"
from = "文号"

[[field]]
to = "CF_WFXW"
value = "x"

[[field]]
to = "CF_SY"
value = "x"

[[field]]
to = "CF_YJ"
value = "x"

[[field]]
to = "CF_CFLB"
value = "罚款"

[[field]]
to = "CF_NR"
value = "x"

[[field]]
to = "CF_NR_FK"
from = "罚款金额(元)"
transforms = ["yuan_to_wanyuan"]

[[field]]
to = "CF_JDRQ"
from = "处罚决定日期"
transforms = ["date"]

[[field]]
to = "CF_CFJG"
value = "同江市市场监督管理局"

[[field]]
to = "CF_CFJGDM"
value = "11230881MB00123433"

[[field]]
to = "CF_SJLY"
value = "同江市市场监督管理局"

[[field]]
to = "CF_SJLYDM"
value = "11230881MB00123433"
"#;

fn unit() -> InputUnit {
    InputUnit {
        path: PathBuf::from("a.csv"),
        bytes: None,
        sha256: "h".into(),
        headers: [
            "企业名称",
            "统一社会信用代码",
            "文号",
            "罚款金额(元)",
            "处罚决定日期",
            "更新时间",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        header_line: 2,
        encoding: "UTF-8",
    }
}

fn row(cells: &[&str]) -> RawRow {
    RawRow::new(3, cells.iter().map(|s| s.to_string()).collect())
}

#[test]
fn unknown_transform_names_file_and_line() {
    let text = GOOD.replace(r#"transforms = ["date"]"#, r#"transforms = ["dates"]"#);
    let e = Feed::parse(Path::new("mappings/t.toml"), &text).unwrap_err();
    let line = text.lines().position(|l| l.contains("\"dates\"")).unwrap() + 1;
    assert_eq!(e.line, line, "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("mappings/t.toml:{line}:")),
        "{e}"
    );
    assert!(e.message.contains("dates"), "{e}");
}

#[test]
fn unknown_field_and_dataset_name_the_line() {
    let text = GOOD.replace("to = \"CF_WFXW\"", "to = \"CF_WFXX\"");
    let e = Feed::parse(Path::new("m.toml"), &text).unwrap_err();
    assert_eq!(
        e.line,
        text.lines().position(|l| l.contains("CF_WFXX")).unwrap() + 1
    );
    let text = GOOD.replace("dataset = \"xzcf\"", "dataset = \"xzcff\"");
    let e = Feed::parse(Path::new("m.toml"), &text).unwrap_err();
    assert_eq!(e.line, 5, "{e}");
}

#[test]
fn unknown_column_is_found_before_rows_move() {
    let text = GOOD.replace("from = \"文号\"", "from = \"决定书文号\"");
    let feed = Feed::parse(Path::new("m.toml"), &text).unwrap();
    let e = feed.bind(&unit()).unwrap_err();
    assert!(
        e.message.contains("决定书文号") && e.message.contains("a.csv"),
        "{e}"
    );
    assert_eq!(
        e.line,
        text.lines().position(|l| l.contains("决定书文号")).unwrap() + 1
    );
}

#[test]
fn maps_and_reports_the_first_problem_in_field_order() {
    let feed = Feed::parse(Path::new("m.toml"), GOOD).unwrap();
    let b = feed.bind(&unit()).unwrap();
    let first = row(&[
        " 同江市江华商贸有限公司 ",
        "\u{3000}９１１１００００８０２１００４３３ｂ",
        "同市监罚〔2024〕1号",
        "1,500.00",
        "2024年3月5日",
        "2024-03-06 10:00:00",
    ]);
    let m = feed.map_row(&b, &first, None).unwrap();
    let ds = &feed.dataset;
    assert_eq!(
        m.values[ds.position("CF_XDR_SHXYM").unwrap()],
        "91110000802100433B"
    );
    assert_eq!(m.values[ds.position("CF_NR_FK").unwrap()], "0.150000");
    assert_eq!(m.values[ds.position("CF_JDRQ").unwrap()], "2024-03-05");
    assert_eq!(m.updated_at.unwrap().to_string(), "2024-03-06 10:00:00");

    // Empty name, bad code and bad date: the name is reported (it comes first).
    let p = feed
        .map_row(
            &b,
            &row(&["", "91110000802100433C", "w", "1", "2024-02-30", ""]),
            None,
        )
        .unwrap_err();
    assert_eq!(
        (p.reason.code(), p.field.as_str()),
        ("missing_field", "CF_XDR_MC")
    );
    let p = feed
        .map_row(
            &b,
            &row(&["甲", "91110000802100433C", "w", "1", "2024-02-30", ""]),
            None,
        )
        .unwrap_err();
    assert_eq!(
        (p.reason.code(), p.value.as_str()),
        ("uscc_check", "91110000802100433C")
    );
    let p = feed
        .map_row(
            &b,
            &row(&["甲", "91110000802100433B", "w", "1", "2024-02-30", ""]),
            None,
        )
        .unwrap_err();
    assert_eq!(
        (p.reason.code(), p.field.as_str(), p.value.as_str()),
        ("bad_date", "CF_JDRQ", "2024-02-30")
    );
    let p = feed
        .map_row(
            &b,
            &row(&["甲", "91110000802100433B", "w", "约五千", "2024-02-03", ""]),
            None,
        )
        .unwrap_err();
    assert_eq!(p.reason.code(), "bad_amount");
    let p = feed
        .map_row(&b, &row(&["", "", "", "", "", ""]), None)
        .unwrap_err();
    assert_eq!(p.reason.code(), "blank_row");
    // Null markers count as empty: a fine is required because 处罚类别 is 罚款.
    let p = feed
        .map_row(
            &b,
            &row(&["甲", "91110000802100433B", "w", "无", "2024-02-03", ""]),
            None,
        )
        .unwrap_err();
    assert_eq!(
        (p.reason.code(), p.field.as_str()),
        ("missing_field", "CF_NR_FK")
    );
}

proptest::proptest! {
    /// The fast trim answers exactly as `str::trim` on cells mixing ASCII, CJK, CJK
    /// punctuation and every kind of white space departments leave in exports.
    #[test]
    fn fast_trim_is_str_trim(parts in proptest::collection::vec(
        proptest::sample::select(vec![
            "a", "9", " ", "\t", "\r\n", "\u{3000}", "\u{00A0}", "\u{2003}", "\u{0085}",
            "同", "〔", "）", "Ａ", "\u{feff}", "😀", "-", "",
        ]),
        0..6,
    )) {
        let s: String = parts.concat();
        proptest::prop_assert_eq!(trim(&s), s.trim());
    }
}

#[test]
fn a_date_is_followed_by_nothing_or_a_time() {
    use crate::mapping::transforms::parse_date;
    for ok in [
        "2024-03-05",
        "2024-03-05 10:30",
        "2024-03-05 10:30:00.000",
        "2024-03-05T10:30:00+08:00",
        "2024-03-05T02:30:00Z",
        "2024年3月5日",
    ] {
        assert!(parse_date(ok, false).is_some(), "{ok}");
    }
    for bad in ["2024-03-05 下午", "2024-03-05 10点", "2024-03-05 xx:yy"] {
        assert_eq!(parse_date(bad, false), None, "{bad}");
    }
}

#[test]
fn map_sees_the_cell_before_the_transforms() {
    // 长期 in the decision-date column: the map turns it into a date before `date` runs.
    let text = GOOD.replace(
        "transforms = [\"date\"]",
        "transforms = [\"date\"]\nmap = { \"长期\" = \"2099-12-31\" }",
    );
    let feed = Feed::parse(Path::new("m.toml"), &text).unwrap();
    let b = feed.bind(&unit()).unwrap();
    let r = row(&[
        "同江市江华商贸有限公司",
        "91110000802100433B",
        "同市监罚〔2024〕1号",
        "1,500.00",
        "长期",
        "2024-03-06 10:00:00",
    ]);
    let m = feed.map_row(&b, &r, None).unwrap();
    assert_eq!(
        m.values[feed.dataset.position("CF_JDRQ").unwrap()],
        "2099-12-31"
    );
    // Without the map entry the same cell is a bad date.
    let plain = Feed::parse(Path::new("m.toml"), GOOD).unwrap();
    let b = plain.bind(&unit()).unwrap();
    assert_eq!(
        plain.map_row(&b, &r, None).unwrap_err().reason,
        crate::domain::reasons::Reason::BadDate
    );
}

#[test]
fn an_organisations_id_number_in_a_list_is_its_legal_representatives() {
    let text = r#"
feed = "rsj_hmd"
title = "测试"
department = "同江市人力资源和社会保障局"
dataset = "blacklist"
source_unit = "11230881MB00123433"

[source]
type = "file_drop"
dir = "x"

[[field]]
to = "ZTMC"
from = "名称"
[[field]]
to = "ZTLB"
from = "类别"
[[field]]
to = "ZJLX"
from = "证件类型"
[[field]]
to = "ZJHM"
from = "证件号码"
[[field]]
to = "ZTMC_SHXYM"
from = "代码"
[[field]]
to = "RDWH"
from = "文号"
"#;
    let feed = Feed::parse(Path::new("m.toml"), text).unwrap();
    let unit = InputUnit {
        path: PathBuf::from("x.csv"),
        sha256: String::new(),
        bytes: None,
        headers: ["名称", "类别", "证件类型", "证件号码", "代码", "文号"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        header_line: 1,
        encoding: "UTF-8",
    };
    let b = feed.bind(&unit).unwrap();
    let mut values: Vec<std::borrow::Cow<'_, str>> =
        vec![std::borrow::Cow::Borrowed(""); feed.dataset.fields.len()];
    let ds = &feed.dataset;
    values[ds.position("ZTLB").unwrap()] = "法人及非法人组织".into();
    values[ds.position("ZJLX").unwrap()] = "身份证".into();
    values[ds.position("ZJHM").unwrap()] = "230881198307099457".into();
    let _ = feed.resolve_legacy(&mut values, None);
    assert_eq!(values[ds.position("ZJHM").unwrap()], "");
    assert_eq!(
        values[ds.position("FDDBR_ZJHM").unwrap()],
        "230881198307099457"
    );
    assert_eq!(values[ds.position("FDDBR_ZJLX").unwrap()], "身份证");
    // A natural person's number stays their own.
    values[ds.position("ZTLB").unwrap()] = "自然人".into();
    values[ds.position("ZJHM").unwrap()] = "230881198307099457".into();
    values[ds.position("FDDBR_ZJHM").unwrap()] = "".into();
    let _ = feed.resolve_legacy(&mut values, None);
    assert_eq!(values[ds.position("ZJHM").unwrap()], "230881198307099457");
    drop(b);
}
