//! Deterministic generator of the demo fixtures (`xinyong gen-fixtures`): departmental
//! exports as departments really produce them, with the faults they really have —
//! title rows, mixed date forms, thousands separators, full-width digits and stray
//! spaces in codes, null markers, bad check characters, codes stored as numbers in
//! Excel, and re-exports that differ only in 更新时间. The files are committed; the
//! generator is kept so they can be rebuilt and enlarged.

use crate::ids;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

/// 同江市市场监督管理局's credit code (generated; no real code is known, standards.md §9).
pub const SCJGJ_CODE: &str = "11230881MB00123433";
/// 国家税务总局同江市税务局's credit code (generated).
pub const SWJ_CODE: &str = "11230881MB00234562";

/// Shared with the benchmark's generator.
pub(crate) const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "于", "董", "尤", "欧阳", "宋", "唐", "韩", "冯", "曲", "姜", "潘",
];
/// Shared with the benchmark's generator.
pub(crate) const GIVEN: &[&str] = &[
    "建国", "秀兰", "志强", "海燕", "国庆", "丽娟", "宝山", "淑芬", "春生", "玉梅", "德胜", "桂芝",
    "立新", "晓东", "红霞", "长江", "明", "伟", "静", "磊", "洋", "敏", "军", "娜", "福林", "金凤",
];
/// Shared with the benchmark's generator.
pub(crate) const BRANDS: &[&str] = &[
    "江华",
    "鑫源",
    "恒达",
    "北疆",
    "三江",
    "赫哲",
    "富民",
    "兴隆",
    "宏远",
    "佳禾",
    "黑土地",
    "界江",
    "龙江",
    "金穗",
    "同盛",
    "鸿运",
    "丰泽",
    "昌隆",
    "瑞祥",
    "东极",
    "沃野",
    "松花",
    "乌苏里",
    "祥和",
];
const TRADES: &[&str] = &[
    "商贸有限公司",
    "农业科技有限公司",
    "建筑工程有限公司",
    "餐饮管理有限公司",
    "物流有限公司",
    "水产养殖专业合作社",
    "粮食购销有限公司",
    "汽车修理有限公司",
    "大药房有限公司",
    "超市有限公司",
    "米业有限公司",
    "石油经销有限公司",
    "木业有限公司",
    "农机专业合作社",
    "宾馆有限公司",
    "电器销售有限公司",
];
const SHOPS: &[&str] = &[
    "烧烤店",
    "便利店",
    "水果店",
    "小吃部",
    "日杂店",
    "理发店",
    "五金店",
    "鱼馆",
    "粮油店",
    "诊所",
];
const FOODS: &[&str] = &[
    "方便面",
    "火腿肠",
    "饼干",
    "酸奶",
    "豆腐干",
    "鱼罐头",
    "挂面",
    "糕点",
];
const PRODUCTS: &[&str] = &[
    "电热水壶",
    "儿童服装",
    "电线电缆",
    "安全帽",
    "化肥",
    "灭火器",
];

struct Violation {
    kind: &'static str,
    basis: &'static str,
    category: &'static str,
    fine: (u32, u32),
}

const VIOLATIONS: &[Violation] = &[
    Violation {
        kind: "销售超过保质期的食品",
        basis: "《中华人民共和国食品安全法》第一百二十四条第一款第（二）项",
        category: "没收违法所得;罚款",
        fine: (5_000, 50_000),
    },
    Violation {
        kind: "未取得食品经营许可从事食品经营活动",
        basis: "《中华人民共和国食品安全法》第一百二十二条第一款",
        category: "没收违法所得;罚款",
        fine: (10_000, 50_000),
    },
    Violation {
        kind: "未按规定公示年度报告",
        basis: "《中华人民共和国市场主体登记管理条例》第四十七条",
        category: "罚款",
        fine: (1_000, 10_000),
    },
    Violation {
        kind: "销售不合格产品",
        basis: "《中华人民共和国产品质量法》第四十九条",
        category: "没收违法所得;罚款",
        fine: (2_000, 80_000),
    },
    Violation {
        kind: "使用未经检定的计量器具",
        basis: "《中华人民共和国计量法实施细则》第四十三条",
        category: "警告;罚款",
        fine: (500, 1_000),
    },
    Violation {
        kind: "发布虚假广告",
        basis: "《中华人民共和国广告法》第五十五条第一款",
        category: "罚款",
        fine: (20_000, 200_000),
    },
    Violation {
        kind: "不明码标价",
        basis: "《明码标价和禁止价格欺诈规定》第二十一条",
        category: "警告",
        fine: (0, 0),
    },
    Violation {
        kind: "特种设备未经定期检验继续使用",
        basis: "《中华人民共和国特种设备安全法》第八十四条第（一）项",
        category: "责令停产停业;罚款",
        fine: (30_000, 300_000),
    },
];

/// A registered legal entity (for the 法人基础信息 register).
struct Entity {
    code: String,
    name: String,
    rep: String,
    regno: Option<String>,
}

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

fn person(rng: &mut StdRng) -> String {
    format!("{}{}", pick(rng, SURNAMES), pick(rng, GIVEN))
}

/// A valid credit code of a 同江市 market subject (`91230881MA…`, `92230881…`, `93230881…`).
fn company_code(rng: &mut StdRng, prefix: &str) -> String {
    let cs: Vec<char> = ids::USCC_CHARSET.chars().collect();
    loop {
        let body: String = (0..6).map(|_| cs[rng.random_range(0..cs.len())]).collect();
        if let Some(c) = ids::complete_uscc(&format!("{prefix}MA{body}")) {
            return c;
        }
    }
}

/// A valid all-digit credit code (Excel turns these into floats and ruins them).
fn digit_code(rng: &mut StdRng) -> String {
    loop {
        let body: String = (0..8)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        if let Some(c) = ids::complete_uscc(&format!("91230881{body}")) {
            if c.bytes().all(|b| b.is_ascii_digit()) {
                return c;
            }
        }
    }
}

/// A valid 15-digit registration number issued in 同江市.
fn regno(rng: &mut StdRng) -> String {
    let body: String = format!("230881{:08}", rng.random_range(0..100_000_000u32));
    let check = ids::regno_check_digit(body.as_bytes()).expect("digits");
    format!("{body}{check}")
}

/// A valid resident identity number of someone born in 同江市.
fn id_number(rng: &mut StdRng) -> String {
    let date = chrono::NaiveDate::from_ymd_opt(1960, 1, 1).expect("a date")
        + chrono::Days::new(rng.random_range(0..14_000));
    let body = format!(
        "230881{}{:03}",
        date.format("%Y%m%d"),
        rng.random_range(0..1000)
    );
    let check = ids::ric_check_char(body.as_bytes()).expect("digits");
    format!("{body}{check}")
}

fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Types a code the way clerks do: sometimes full-width, lower case or padded.
fn messy_code(rng: &mut StdRng, code: &str) -> String {
    if code.len() < 10 || !code.is_ascii() {
        return code.to_string();
    }
    match rng.random_range(0..100) {
        0..=5 => fullwidth(code),
        6..=9 => code.to_lowercase(),
        10..=13 => format!("\u{3000}{code}"),
        14..=17 => format!(" {} {}", &code[..8], &code[8..]),
        18..=19 => format!("{code}\u{a0}"),
        _ => code.to_string(),
    }
}

/// Breaks a code the ways real exports are broken.
fn corrupt_code(rng: &mut StdRng, code: &str) -> String {
    let mut c: Vec<char> = code.chars().collect();
    match rng.random_range(0..4) {
        0 => {
            c.pop();
        }
        1 => c[10] = 'O',
        _ => {
            let last = c[17];
            let cs: Vec<char> = ids::USCC_CHARSET.chars().collect();
            c[17] = *cs.iter().find(|x| **x != last).expect("another character");
        }
    }
    c.into_iter().collect()
}

fn date_text(rng: &mut StdRng, d: chrono::NaiveDate) -> String {
    match rng.random_range(0..4) {
        0 => d.format("%Y-%m-%d").to_string(),
        1 => format!("{}/{}/{}", d.format("%Y"), d.format("%-m"), d.format("%-d")),
        2 => d.format("%Y%m%d").to_string(),
        _ => format!(
            "{}年{}月{}日",
            d.format("%Y"),
            d.format("%-m"),
            d.format("%-d")
        ),
    }
}

fn amount_text(rng: &mut StdRng, yuan: u32) -> String {
    let with_commas = {
        let s = yuan.to_string();
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        out
    };
    match rng.random_range(0..5) {
        0 => format!("{with_commas}.00"),
        1 => yuan.to_string(),
        2 => fullwidth(&yuan.to_string()),
        3 => format!(" {with_commas} 元"),
        _ => with_commas,
    }
}

fn decision_date(rng: &mut StdRng, year: i32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(year, 1, 2).expect("a date")
        + chrono::Days::new(rng.random_range(0..360))
}

fn timestamp(d: chrono::NaiveDate, days: u64, secs: u32) -> String {
    let t = (d + chrono::Days::new(days))
        .and_hms_opt(8, 0, 0)
        .expect("a time")
        + chrono::Duration::seconds(secs as i64);
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Penalty rows of 同江市市场监督管理局 (header first).
fn penalty_rows(
    rng: &mut StdRng,
    n: usize,
    year: i32,
    first_no: usize,
    register: &mut Vec<Entity>,
) -> Vec<Vec<String>> {
    let header = "序号,行政相对人名称,行政相对人类别,统一社会信用代码,法定代表人,证件类型,证件号码,行政处罚决定书文号,违法行为类型,违法事实,处罚依据,处罚类别,处罚内容,罚款金额（元）,没收违法所得金额（元）,处罚决定日期,处罚机关,处罚机关统一社会信用代码,更新时间,备注,组织机构代码";
    let mut rows = vec![header.split(',').map(String::from).collect::<Vec<_>>()];
    let mut base: Vec<Vec<String>> = Vec::new();
    for i in 0..n {
        let v = pick(rng, VIOLATIONS);
        let who = rng.random_range(0..100);
        let (name, lb, code, rep, zjlx, zjhm): (String, &str, String, String, String, String) =
            if who < 82 {
                let prefix = if rng.random_bool(0.1) {
                    "93230881"
                } else {
                    "91230881"
                };
                let name = format!("同江市{}{}", pick(rng, BRANDS), pick(rng, TRADES));
                (
                    name,
                    "法人及非法人组织",
                    company_code(rng, prefix),
                    person(rng),
                    "/".to_string(),
                    "/".to_string(),
                )
            } else if who < 94 {
                let owner = person(rng);
                let name = format!(
                    "同江市{}记{}",
                    owner.chars().next().expect("a name"),
                    pick(rng, SHOPS)
                );
                (
                    name,
                    "个体工商户",
                    company_code(rng, "92230881"),
                    owner,
                    "无".into(),
                    "无".into(),
                )
            } else {
                (
                    person(rng),
                    "自然人",
                    String::new(),
                    String::new(),
                    "身份证".into(),
                    id_number(rng),
                )
            };
        let d = decision_date(rng, year);
        let fine = if v.fine.1 == 0 {
            0
        } else {
            rng.random_range(v.fine.0 / 100..=v.fine.1 / 100) * 100
        };
        let confiscated = if v.category.contains("没收") {
            rng.random_range(1..200) * 10
        } else {
            0
        };
        let fact = match v.kind {
            "销售超过保质期的食品" => format!(
                "经查，当事人于{}在其经营场所销售已超过保质期的{}{}袋，货值金额{}元。",
                d.format("%Y年%-m月%-d日"),
                pick(rng, FOODS),
                rng.random_range(3..60),
                rng.random_range(20..900)
            ),
            "销售不合格产品" => format!(
                "经监督抽检，当事人销售的{}经检验不合格，违法所得{}元。",
                pick(rng, PRODUCTS),
                confiscated
            ),
            "发布虚假广告" => {
                "当事人在微信公众号发布含有虚假内容的广告，欺骗、误导消费者。".to_string()
            }
            "未按规定公示年度报告" => format!(
                "当事人未按规定期限公示{}年度报告，经责令限期改正后仍未改正。",
                year - 1
            ),
            "特种设备未经定期检验继续使用" => format!(
                "当事人使用的{}台电梯超过检验有效期仍继续使用。",
                rng.random_range(1..5)
            ),
            _ => format!("经查，当事人存在{}的违法行为，事实清楚，证据确凿。", v.kind),
        };
        let content = match (fine, confiscated) {
            (0, _) => "警告".to_string(),
            (f, 0) => format!("罚款{f}元"),
            (f, c) => format!("没收违法所得{c}元，罚款{f}元"),
        };
        let wsh = format!("同市监处罚〔{year}〕{}号", first_no + i);
        let mut row = vec![
            String::new(),
            name,
            lb.to_string(),
            code,
            rep,
            zjlx,
            zjhm,
            wsh,
            v.kind.to_string(),
            fact,
            v.basis.to_string(),
            v.category.to_string(),
            content,
            if fine == 0 {
                pick(rng, &["", "/", "无"]).to_string()
            } else {
                fine.to_string()
            },
            if confiscated == 0 {
                pick(rng, &["", "/", "—"]).to_string()
            } else {
                confiscated.to_string()
            },
            d.to_string(),
            "同江市市场监督管理局".to_string(),
            SCJGJ_CODE.to_string(),
            timestamp(d, rng.random_range(0..6), rng.random_range(0..36_000)),
            pick(rng, &["", "", "无", "/", "已履行", "—"]).to_string(),
            String::new(),
        ];
        if lb != "自然人" {
            let code = row[3].clone();
            let legacy = rng.random_range(0..100) < 4;
            // A legacy row: only the organization code; most are in the register, some not.
            if legacy {
                row[20] = format!("{}-{}", &code[8..16], &code[16..17]);
                row[3] = String::new();
            }
            if !legacy || rng.random_range(0..4) > 0 {
                register.push(Entity {
                    code,
                    name: row[1].clone(),
                    rep: row[4].clone(),
                    regno: None,
                });
            }
        }
        // Realistic faults.
        match rng.random_range(0..1000) {
            0..=29 if !row[3].is_empty() => row[3] = corrupt_code(rng, &row[3]),
            30..=41 => {
                row[15] = pick(
                    rng,
                    &["2024-02-30", "2024/13/5", "2024年6月31日", "20241301"],
                )
                .to_string()
            }
            42..=51 => row[9] = String::new(),
            52..=57 => row[11] = "批评教育".to_string(),
            58..=62 if lb == "自然人" => row[6] = String::new(),
            _ => {}
        }
        base.push(row);
    }
    // Format the fields as the export does, then add re-exports (same record, another 更新时间)
    // and corrections (changed content, later 更新时间).
    let mut out: Vec<Vec<String>> = Vec::new();
    for row in base {
        let mut r = row.clone();
        r[3] = messy_code(rng, &r[3]);
        if let Ok(d) = chrono::NaiveDate::parse_from_str(&r[15], "%Y-%m-%d") {
            r[15] = date_text(rng, d);
        }
        if let Ok(y) = r[13].parse::<u32>() {
            r[13] = amount_text(rng, y);
        }
        out.push(r.clone());
        if rng.random_range(0..100) < 5 {
            let mut dup = r.clone();
            let t = chrono::NaiveDateTime::parse_from_str(&dup[18], "%Y-%m-%d %H:%M:%S")
                .expect("our timestamp");
            let shift = if rng.random_bool(0.6) {
                86_400 * rng.random_range(1..20)
            } else {
                -3_600 * rng.random_range(1..48)
            };
            dup[18] = (t + chrono::Duration::seconds(shift))
                .format("%Y-%m-%d %H:%M:%S")
                .to_string();
            out.push(dup);
        } else if rng.random_range(0..100) < 2 {
            let mut fix = r.clone();
            let t = chrono::NaiveDateTime::parse_from_str(&fix[18], "%Y-%m-%d %H:%M:%S")
                .expect("our timestamp");
            fix[18] = (t + chrono::Duration::days(3))
                .format("%Y-%m-%d %H:%M:%S")
                .to_string();
            fix[19] = "更正：处罚内容表述".to_string();
            out.push(fix);
        }
    }
    for (i, r) in out.iter_mut().enumerate() {
        r[0] = (i + 1).to_string();
    }
    rows.extend(out);
    rows
}

fn csv_line(cells: &[String]) -> String {
    cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn write_csv(
    path: &Path,
    title: Option<&str>,
    rows: &[Vec<String>],
    gb18030: bool,
    bom: bool,
) -> std::io::Result<()> {
    let mut text = String::new();
    if let Some(t) = title {
        text.push_str(t);
        text.push_str(&",".repeat(rows[0].len() - 1));
        text.push_str("\r\n");
    }
    for r in rows {
        text.push_str(&csv_line(r));
        text.push_str("\r\n");
    }
    let bytes = if gb18030 {
        encoding_rs::GB18030.encode(&text).0.into_owned()
    } else {
        let mut b = if bom {
            vec![0xEF, 0xBB, 0xBF]
        } else {
            Vec::new()
        };
        b.extend_from_slice(text.as_bytes());
        b
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes)
}

const LICENCES: &[(&str, &str, &str)] = &[
    (
        "增值税防伪税控系统最高开票限额审批",
        "核准",
        "准予增值税专用发票最高开票限额为十万元，每月最高领用数量25份",
    ),
    (
        "增值税防伪税控系统最高开票限额审批",
        "核准",
        "准予增值税专用发票最高开票限额为一百万元，每月最高领用数量10份",
    ),
    (
        "对纳税人延期缴纳税款的核准",
        "核准",
        "准予延期缴纳税款，延期期限三个月",
    ),
    (
        "对纳税人延期申报的核准",
        "核准",
        "准予延期申报，延期至次月十五日",
    ),
    (
        "对纳税人变更纳税定额的核准",
        "核准",
        "准予变更定额，月定额调整为8000元",
    ),
    (
        "对采取实际利润额预缴以外的其他企业所得税预缴方式的核定",
        "其他",
        "准予按照上一纳税年度应纳税所得额的平均额预缴",
    ),
];

/// Licence rows of 国家税务总局同江市税务局, as cells: text, a number, or a date serial
/// with or without a date format.
#[derive(Clone)]
enum Cell {
    Text(String),
    Number(f64),
    DateFormatted(f64),
}

fn serial(d: chrono::NaiveDate) -> f64 {
    (d - chrono::NaiveDate::from_ymd_opt(1899, 12, 30).expect("a date")).num_days() as f64
}

fn date_cell(rng: &mut StdRng, d: chrono::NaiveDate) -> Cell {
    match rng.random_range(0..10) {
        0..=5 => Cell::Number(serial(d)),
        6..=8 => Cell::DateFormatted(serial(d)),
        _ => Cell::Text(format!(
            "{}/{}/{}",
            d.format("%Y"),
            d.format("%-m"),
            d.format("%-d")
        )),
    }
}

fn licence_rows(
    rng: &mut StdRng,
    n: usize,
    year: i32,
    register: &mut Vec<Entity>,
) -> (Vec<String>, Vec<Vec<Cell>>) {
    let header: Vec<String> = "序号,行政相对人名称,行政相对人类别,统一社会信用代码,工商注册号,法定代表人,行政许可决定文书名称,行政许可决定文书号,许可类别,许可证书名称,许可编号,许可内容,许可决定日期,有效期自,有效期至,许可机关,许可机关统一社会信用代码,当前状态,数据来源单位,数据来源单位统一社会信用代码,更新时间"
        .split(',')
        .map(String::from)
        .collect();
    let t = |s: &str| Cell::Text(s.to_string());
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    for i in 0..n {
        let (title, kind, content) = *pick(rng, LICENCES);
        let d = decision_date(rng, year);
        let individual = rng.random_range(0..100) < 15;
        let (name, lb, code_cell, reg_cell, rep) = if individual {
            let owner = person(rng);
            let name = format!(
                "同江市{}记{}",
                owner.chars().next().expect("a name"),
                pick(rng, SHOPS)
            );
            let reg = regno(rng);
            let code = company_code(rng, "92230881");
            if rng.random_range(0..100) < 60 {
                register.push(Entity {
                    code: code.clone(),
                    name: name.clone(),
                    rep: owner.clone(),
                    regno: Some(reg.clone()),
                });
            }
            if rng.random_range(0..100) < 20 {
                // No credit code: the placeholder, with the registration number.
                (
                    name,
                    "个体工商户",
                    t(ids::USCC_PLACEHOLDER),
                    Cell::Number(reg.parse().expect("digits")),
                    owner,
                )
            } else {
                (
                    name,
                    "个体工商户",
                    t(&company_code(rng, "92230881")),
                    Cell::Text(reg),
                    owner,
                )
            }
        } else {
            let name = format!("同江市{}{}", pick(rng, BRANDS), pick(rng, TRADES));
            let good = company_code(rng, "91230881");
            let rep = person(rng);
            register.push(Entity {
                code: good.clone(),
                name: name.clone(),
                rep: rep.clone(),
                regno: None,
            });
            let code_cell = match rng.random_range(0..100) {
                0..=1 => Cell::Number(digit_code(rng).parse::<f64>().expect("digits")),
                2..=4 => {
                    let good = company_code(rng, "91230881");
                    t(&corrupt_code(rng, &good))
                }
                _ => {
                    let good = company_code(rng, "91230881");
                    t(&messy_code(rng, &good))
                }
            };
            let reg = if rng.random_bool(0.4) {
                Cell::Number(regno(rng).parse().expect("digits"))
            } else {
                t("")
            };
            (name, "法人及非法人组织", code_cell, reg, person(rng))
        };
        let until = if rng.random_bool(0.5) {
            chrono::NaiveDate::from_ymd_opt(2099, 12, 31).expect("a date")
        } else {
            d + chrono::Days::new(365)
        };
        let mut row = vec![
            Cell::Number((i + 1) as f64),
            t(&name),
            t(lb),
            code_cell,
            reg_cell,
            t(&rep),
            t(&format!("税务行政许可决定书（{title}）")),
            t(&format!("同税许〔{year}〕{}号", 1000 + i)),
            t(kind),
            t(""),
            t(""),
            t(content),
            date_cell(rng, d),
            date_cell(rng, d),
            date_cell(rng, until),
            t("国家税务总局同江市税务局"),
            t(SWJ_CODE),
            Cell::Number(1.0),
            t("国家税务总局同江市税务局"),
            t(SWJ_CODE),
            t(&timestamp(
                d,
                rng.random_range(0..4),
                rng.random_range(0..30_000),
            )),
        ];
        if individual
            && matches!(&row[3], Cell::Text(s) if s == ids::USCC_PLACEHOLDER)
            && rng.random_range(0..4) == 0
        {
            row[4] = t("");
        }
        if rng.random_range(0..100) < 2 {
            row[5] = t("");
        }
        rows.push(row.clone());
        if rng.random_range(0..100) < 4 {
            let mut dup = row;
            if let Cell::Text(ts) = &dup[20] {
                let t0 = chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S")
                    .expect("our timestamp");
                dup[20] = Cell::Text(
                    (t0 + chrono::Duration::hours(rng.random_range(1..300)))
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string(),
                );
            }
            rows.push(dup);
        }
    }
    for (i, r) in rows.iter_mut().enumerate() {
        r[0] = Cell::Number((i + 1) as f64);
    }
    (header, rows)
}

fn write_xlsx(
    path: &Path,
    title: &str,
    header: &[String],
    rows: &[Vec<Cell>],
) -> anyhow::Result<()> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("行政许可")?;
    let date_fmt = Format::new().set_num_format("yyyy-mm-dd");
    ws.write_string(0, 0, title)?;
    for (c, h) in header.iter().enumerate() {
        ws.write_string(1, c as u16, h)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = r as u32 + 2;
        for (c, cell) in row.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Text(s) if s.is_empty() => {}
                Cell::Text(s) => {
                    ws.write_string(r, c, s)?;
                }
                Cell::Number(n) => {
                    ws.write_number(r, c, *n)?;
                }
                Cell::DateFormatted(n) => {
                    ws.write_number_with_format(r, c, *n, &date_fmt)?;
                }
            }
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    wb.save(path)?;
    Ok(())
}

/// Writes the demo's departmental exports under `out` (normally `fixtures/`).
pub fn generate_demo(out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut rng = StdRng::seed_from_u64(20_241_127);
    let mut written = Vec::new();
    let drop = out.join("drop");

    let mut register: Vec<Entity> = Vec::new();
    let rows = penalty_rows(&mut rng, 400, 2024, 1, &mut register);
    let p = drop
        .join("scjgj_xzcf")
        .join("同江市市场监督管理局行政处罚信息_2024.csv");
    write_csv(
        &p,
        Some("同江市市场监督管理局行政处罚信息公示表"),
        &rows,
        true,
        false,
    )?;
    written.push(p);
    // A later supplementary export, UTF-8 with BOM (another clerk, another machine).
    let rows = penalty_rows(&mut rng, 40, 2025, 1, &mut register);
    let p = drop
        .join("scjgj_xzcf")
        .join("同江市市场监督管理局行政处罚信息_2025年1月补报.csv");
    write_csv(&p, None, &rows, false, true)?;
    written.push(p);

    let (header, rows) = licence_rows(&mut rng, 320, 2024, &mut register);
    let p = drop
        .join("sws_xzxk")
        .join("国家税务总局同江市税务局行政许可信息_2024.xlsx");
    write_xlsx(
        &p,
        "国家税务总局同江市税务局行政许可信息公示",
        &header,
        &rows,
    )?;
    written.push(p);

    // The legal-entity register as the market-regulation bureau exports it.
    let mut reg_rows = vec![
        "统一社会信用代码,企业名称,组织机构代码,注册号,法定代表人,登记机关,更新时间"
            .split(',')
            .map(String::from)
            .collect::<Vec<_>>(),
    ];
    for e in &register {
        let org = if rng.random_bool(0.5) {
            format!("{}-{}", &e.code[8..16], &e.code[16..17])
        } else {
            String::new()
        };
        reg_rows.push(vec![
            e.code.clone(),
            e.name.clone(),
            org,
            e.regno.clone().unwrap_or_default(),
            e.rep.clone(),
            "同江市市场监督管理局".to_string(),
            "2024-12-31 18:00:00".to_string(),
        ]);
    }
    let p = drop
        .join("scjgj_frjc")
        .join("同江市法人基础信息_2024年末.csv");
    write_csv(&p, None, &reg_rows, true, false)?;
    written.push(p);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_valid() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            assert_eq!(ids::check_uscc(&company_code(&mut rng, "91230881")), Ok(()));
            assert_eq!(ids::check_regno(&regno(&mut rng)), Ok(()));
            assert_eq!(ids::check_ric(&id_number(&mut rng)), Ok(()));
        }
        assert_eq!(ids::check_uscc(&digit_code(&mut rng)), Ok(()));
        assert_eq!(ids::check_uscc(SCJGJ_CODE), Ok(()));
        assert_eq!(ids::check_uscc(SWJ_CODE), Ok(()));
        let code = company_code(&mut rng, "91230881");
        assert!(ids::check_uscc(&corrupt_code(&mut rng, &code)).is_err());
    }
}
