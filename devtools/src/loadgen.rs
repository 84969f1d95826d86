//! The benchmark's input: a 市场监管局 penalties export as departments write it
//! (GB18030, CRLF, RFC 4180 quoting, one header line, ~500 bytes a row), with the
//! faults the benchmark's semantics must handle — ~2% bad check characters, some
//! wrong-length codes, lower-case, full-width and padded codes (space, tab, U+3000,
//! U+00A0), ~0.5% empty names, ~0.3% bad dates, ~5% repeats of earlier records written
//! differently with a later, earlier or equal 更新时间.
//!
//! Every row derives from (seed, index) alone, so any row — and the incremental
//! export's corrections of earlier rows — can be regenerated without the file.

use crate::fixtures::{BRANDS, GIVEN, SURNAMES};
use pipeline::domain::ids;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::Path;

/// The header of the export.
pub const HEADER: &str = "企业名称,统一社会信用代码,法定代表人,处罚决定书文号,违法行为类型,违法事实,处罚依据,处罚类别,处罚内容,罚款金额(元),处罚决定日期,处罚机关,处罚机关统一社会信用代码,更新时间";
/// The issuing authority's code.
pub const AUTHORITY_CODE: &str = "11230881MB00123433";

const TRADES: &[&str] = &[
    "商贸有限公司",
    "农业科技有限公司",
    "建筑工程有限公司",
    "餐饮管理有限公司",
    "物流有限公司",
    "粮食购销有限公司",
    "汽车修理有限公司",
    "大药房有限公司",
    "超市有限公司",
    "米业有限公司",
    "石油经销有限公司",
    "木业有限公司",
    "宾馆有限公司",
    "电器销售有限公司",
    "食品有限公司",
];
const PLACES: &[&str] = &["同江市", "佳木斯市", "富锦市", "抚远市", "桦南县", "汤原县"];
const KINDS: &[(&str, &str, &str)] = &[
    (
        "销售超过保质期的食品",
        "《中华人民共和国食品安全法》第一百二十四条第一款第（二）项",
        "没收违法所得;罚款",
    ),
    (
        "未取得食品经营许可从事食品经营活动",
        "《中华人民共和国食品安全法》第一百二十二条第一款",
        "没收违法所得;罚款",
    ),
    (
        "未按规定公示年度报告",
        "《中华人民共和国市场主体登记管理条例》第四十七条",
        "罚款",
    ),
    (
        "销售不合格产品",
        "《中华人民共和国产品质量法》第四十九条",
        "没收违法所得;罚款",
    ),
    (
        "使用未经检定的计量器具",
        "《中华人民共和国计量法实施细则》第四十三条",
        "警告;罚款",
    ),
    (
        "发布虚假广告",
        "《中华人民共和国广告法》第五十五条第一款",
        "罚款",
    ),
    (
        "不明码标价",
        "《明码标价和禁止价格欺诈规定》第二十一条",
        "警告",
    ),
    (
        "特种设备未经定期检验继续使用",
        "《中华人民共和国特种设备安全法》第八十四条第（一）项",
        "责令停产停业;罚款",
    ),
];
const FACTS: &[&str] = &[
    "经查，当事人在其经营场所内销售的商品已超过标注的保质期限，现场查获涉案商品若干，货值金额经核算属实，",
    "执法人员依法对当事人经营场所进行现场检查，发现当事人未能提供相关许可证明文件，且已持续经营一段时间，",
    "当事人对上述违法事实供认不讳，并提供了进货票据、销售记录等证据材料，经调查核实，证据确凿，事实清楚，",
    "经监督抽检，当事人销售的产品经具有资质的检验机构检验，检验结论为不合格，当事人未能提供合法来源证明，",
    "当事人在“某某”微信公众号发布的广告中含有虚假或者引人误解的内容，欺骗、误导消费者，违法所得已核实，",
    "当事人使用的电子计价秤未按照规定申请周期检定，已超过检定有效期，仍在经营活动中使用，影响计量准确，",
];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn rng_for(seed: u64, index: u64, salt: u64) -> SmallRng {
    SmallRng::seed_from_u64(splitmix(
        seed ^ splitmix(index.wrapping_mul(31).wrapping_add(salt)),
    ))
}

fn pick<'a, T>(rng: &mut SmallRng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

/// One record of the export, before it is written.
#[derive(Debug, Clone)]
pub struct PenaltyRow {
    /// 企业名称.
    pub name: String,
    /// 统一社会信用代码 as written.
    pub code: String,
    /// 法定代表人.
    pub rep: String,
    /// 处罚决定书文号.
    pub wsh: String,
    /// 违法行为类型.
    pub kind: &'static str,
    /// 违法事实.
    pub fact: String,
    /// 处罚依据.
    pub basis: &'static str,
    /// 处罚类别.
    pub category: &'static str,
    /// 处罚内容.
    pub content: String,
    /// 罚款金额(元) as written.
    pub amount: String,
    /// 处罚决定日期 as written.
    pub date: String,
    /// 更新时间 (seconds since the epoch of 2020-01-01).
    pub updated: i64,
}

fn valid_code(rng: &mut SmallRng) -> String {
    let cs: Vec<char> = ids::USCC_CHARSET.chars().collect();
    let division = pick(
        rng,
        &["230881", "230881", "230881", "230800", "230882", "230883"],
    );
    let prefix = pick(rng, &["91", "91", "91", "92", "93", "12"]);
    loop {
        let body: String = (0..6).map(|_| cs[rng.random_range(0..cs.len())]).collect();
        if let Some(c) = ids::complete_uscc(&format!("{prefix}{division}MA{body}")) {
            return c;
        }
    }
}

fn date_text(rng: &mut SmallRng, d: chrono::NaiveDate) -> String {
    match rng.random_range(0..4) {
        0 => d.format("%Y-%m-%d").to_string(),
        1 => d.format("%Y/%-m/%-d").to_string(),
        2 => d.format("%Y%m%d").to_string(),
        _ => d.format("%Y年%-m月%-d日").to_string(),
    }
}

fn amount_text(yuan: u64, cents: u64, style: u32) -> String {
    let s = yuan.to_string();
    let grouped = crate::fixtures::thousands(yuan);
    match style {
        0 => format!("{grouped}.{cents:02}"),
        1 => s,
        _ => grouped,
    }
}

/// Writes a code the ways clerks do: lower case, full width, padded.
fn messy(rng: &mut SmallRng, code: &str) -> String {
    match rng.random_range(0..6) {
        0 => code.to_lowercase(),
        1 => code
            .chars()
            .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c))
            .collect(),
        2 => format!(" {code} "),
        3 => format!("\t{code}"),
        4 => format!("\u{3000}{code}"),
        _ => format!("{code}\u{a0}"),
    }
}

const EPOCH: i64 = 1_577_836_800; // 2020-01-01T00:00:00Z

/// The base record of an index (decisions from 2021 on, in index order, or `recent`:
/// early 2025).
pub fn base_row(seed: u64, index: u64, recent: bool) -> PenaltyRow {
    let mut rng = rng_for(seed, index, 1);
    let (kind, basis, category) = *pick(&mut rng, KINDS);
    let name = format!(
        "{}{}{}",
        pick(&mut rng, PLACES),
        pick(&mut rng, BRANDS),
        pick(&mut rng, TRADES)
    );
    let code = valid_code(&mut rng);
    let rep = format!("{}{}", pick(&mut rng, SURNAMES), pick(&mut rng, GIVEN));
    let start = if recent {
        chrono::NaiveDate::from_ymd_opt(2025, 1, 2)
    } else {
        chrono::NaiveDate::from_ymd_opt(2021, 1, 4)
    }
    .expect("a date");
    // Exports are chronological: about 690 decisions a day, four years per million
    // rows; the incremental export's new records fall in early 2025.
    let day = if recent {
        rng.random_range(0..58)
    } else {
        (index / 690) % 1450
    };
    let d = start + chrono::Days::new(day);
    let year = d.format("%Y");
    let wsh = format!("同市监处罚〔{year}〕{}号", index + 1);
    let mut fact = String::new();
    for _ in 0..2 {
        let piece: &&str = pick(&mut rng, FACTS);
        fact.push_str(piece);
    }
    fact.push_str(&format!("涉案金额{}元。", rng.random_range(100..90_000)));
    let fined = category.contains("罚款");
    let (yuan, cents) = (
        rng.random_range(5..3_000u64) * 100,
        if rng.random_bool(0.1) {
            rng.random_range(1..100u64)
        } else {
            0
        },
    );
    let content = if fined {
        format!("罚款人民币{yuan}元，并责令改正违法行为")
    } else {
        "警告，并责令改正违法行为".to_string()
    };
    let amount = if fined {
        amount_text(yuan, cents, rng.random_range(0..3))
    } else {
        String::new()
    };
    let date = date_text(&mut rng, d);
    let decided = d
        .and_hms_opt(9, 0, 0)
        .expect("a time")
        .and_utc()
        .timestamp();
    let updated = decided - EPOCH + rng.random_range(0..10 * 86_400);
    PenaltyRow {
        name,
        code,
        rep,
        wsh,
        kind,
        fact,
        basis,
        category,
        content,
        amount,
        date,
        updated,
    }
}

fn timestamp(updated: i64) -> String {
    chrono::DateTime::from_timestamp(updated + EPOCH, 0)
        .expect("a time")
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The row written at `index` of a full export: a base record with its faults, or a
/// repeat of an earlier record written differently.
pub fn export_row(seed: u64, index: u64) -> PenaltyRow {
    let mut rng = rng_for(seed, index, 2);
    let roll = rng.random_range(0..10_000u32);
    if index > 0 && roll < 500 {
        // ~5%: an earlier record again, code written differently, 更新时间 later, earlier or equal.
        let back = rng.random_range(1..=index.min(50_000));
        let mut r = base_row(seed, index - back, false);
        r.code = messy(&mut rng, &r.code);
        r.updated += match rng.random_range(0..3) {
            0 => rng.random_range(1..86_400 * 30),
            1 => -rng.random_range(1..86_400 * 5),
            _ => 0,
        };
        return r;
    }
    let mut r = base_row(seed, index, false);
    match roll {
        500..=549 => r.name.clear(),
        550..=749 => {
            // A wrong check character.
            let mut c: Vec<char> = r.code.chars().collect();
            let cs: Vec<char> = ids::USCC_CHARSET.chars().collect();
            let at = cs
                .iter()
                .position(|x| *x == c[17])
                .expect("a code character");
            c[17] = cs[(at + 1 + rng.random_range(0..29)) % 31];
            r.code = c.into_iter().collect();
        }
        750..=779 => {
            if rng.random_bool(0.5) {
                r.code.pop();
            } else {
                r.code.push('1');
            }
        }
        780..=809 => {
            r.date = pick(
                &mut rng,
                &[
                    "2023-02-29",
                    "2024/13/1",
                    "20241340",
                    "2024年6月31日",
                    "2024-00-10",
                    "二〇二四年三月",
                ],
            )
            .to_string()
        }
        810..=1_809 => r.code = messy(&mut rng, &r.code),
        _ => {}
    }
    r
}

/// A row of the incremental export: a new record (index beyond the history) or a
/// correction of a recent one (new content, later 更新时间).
pub fn incremental_row(seed: u64, history: u64, index: u64) -> PenaltyRow {
    incremental_row_in(seed, history, index, false)
}

/// [`incremental_row`], or with `spread` a night whose corrections reach anywhere in the
/// history and whose new records are dated across all its months.
pub fn incremental_row_in(seed: u64, history: u64, index: u64, spread: bool) -> PenaltyRow {
    let mut rng = rng_for(seed, index, 3);
    if spread {
        if rng.random_range(0..10) < 3 && history > 0 {
            let mut r = base_row(seed, rng.random_range(0..history), false);
            r.content = format!("{}（更正）", r.content);
            r.updated += 86_400 * 40;
            return r;
        }
        let mut r = base_row(seed, history + index, true);
        let day = chrono::NaiveDate::from_ymd_opt(2021, 1, 4).expect("a date")
            + chrono::Days::new(rng.random_range(0..1450));
        r.date = day.format("%Y-%m-%d").to_string();
        return r;
    }
    if rng.random_range(0..10) < 3 && history > 0 {
        let of = history - 1 - rng.random_range(0..history.min(50_000));
        let mut r = base_row(seed, of, false);
        r.content = format!("{}（更正）", r.content);
        r.updated += 86_400 * 40;
        r
    } else {
        base_row(seed, history + index, true)
    }
}

fn push_field(line: &mut String, v: &str) {
    if v.contains([',', '"', '\r', '\n']) {
        line.push('"');
        line.push_str(&v.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(v);
    }
}

/// Appends one CSV line (with CRLF).
pub fn write_line(line: &mut String, r: &PenaltyRow) {
    let updated = timestamp(r.updated);
    let fields: [&str; 14] = [
        &r.name,
        &r.code,
        &r.rep,
        &r.wsh,
        r.kind,
        &r.fact,
        r.basis,
        r.category,
        &r.content,
        &r.amount,
        &r.date,
        "同江市市场监督管理局",
        AUTHORITY_CODE,
        &updated,
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        push_field(line, f);
    }
    line.push_str("\r\n");
}

/// GB18030 encoding through a per-character table: encoding_rs encodes CJK to GB18030
/// by searching its index, far slower than generating the text; the export uses a few
/// hundred distinct characters, each looked up once.
struct Gb18030Table {
    bmp: Vec<([u8; 4], u8)>,
}

impl Gb18030Table {
    fn new() -> Self {
        Gb18030Table {
            bmp: vec![([0; 4], 0); 0x10000],
        }
    }

    fn encode_into(&mut self, text: &str, out: &mut Vec<u8>) {
        for c in text.chars() {
            if c.is_ascii() {
                out.push(c as u8);
                continue;
            }
            let slot = (c as u32) < 0x10000;
            if slot {
                let (bytes, n) = self.bmp[c as usize];
                if n > 0 {
                    out.extend_from_slice(&bytes[..n as usize]);
                    continue;
                }
            }
            let mut buf = [0u8; 4];
            let (enc, _, _) = encoding_rs::GB18030.encode(c.encode_utf8(&mut buf));
            if slot {
                let mut bytes = [0u8; 4];
                bytes[..enc.len()].copy_from_slice(&enc);
                self.bmp[c as usize] = (bytes, enc.len() as u8);
            }
            out.extend_from_slice(&enc);
        }
    }
}

/// Writes an export of `rows` rows to `path` in GB18030. With `incremental_of`, the
/// rows are the incremental export following a history of that many rows.
pub fn write_export(
    path: &Path,
    rows: u64,
    seed: u64,
    incremental_of: Option<u64>,
) -> std::io::Result<()> {
    write_export_as(path, rows, seed, incremental_of, ExportOrder::default())
}

/// How an export's rows are laid out beyond their content.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOrder {
    /// Rows in a scrambled order, not by decision date (as real departmental exports
    /// come): row `i` of the file is row `p(i)` of the sorted export, `p` a fixed
    /// permutation.
    pub unsorted: bool,
    /// An incremental export spread over the whole history (see [`incremental_row_in`]).
    pub spread: bool,
}

/// A permutation of `0..n`: `i → (a·i + c) mod n` with `a` coprime to `n`.
fn scramble(n: u64) -> impl Fn(u64) -> u64 {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let mut a = (n / 2 + 0x9E37_79B9) % n.max(1);
    while n > 1 && (a == 0 || gcd(a, n) != 1) {
        a = (a + 1) % n;
    }
    let c = n / 3;
    move |i| ((a as u128 * i as u128 + c as u128) % n.max(1) as u128) as u64
}

/// [`write_export`] with a layout.
pub fn write_export_as(
    path: &Path,
    rows: u64,
    seed: u64,
    incremental_of: Option<u64>,
    order: ExportOrder,
) -> std::io::Result<()> {
    let place = scramble(rows);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("csv.partial");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    let mut table = Gb18030Table::new();
    let mut text = String::with_capacity(1 << 20);
    let mut bytes = Vec::with_capacity(1 << 20);
    text.push_str(HEADER);
    text.push_str("\r\n");
    for i in 0..rows {
        let i = if order.unsorted { place(i) } else { i };
        let r = match incremental_of {
            Some(h) => incremental_row_in(seed, h, i, order.spread),
            None => export_row(seed, i),
        };
        write_line(&mut text, &r);
        if text.len() > 512 * 1024 {
            table.encode_into(&text, &mut bytes);
            out.write_all(&bytes)?;
            text.clear();
            bytes.clear();
        }
    }
    table.encode_into(&text, &mut bytes);
    out.write_all(&bytes)?;
    out.flush()?;
    drop(out);
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_scramble_is_a_permutation() {
        for n in [0u64, 1, 2, 3, 10, 97, 1000, 4096] {
            let p = scramble(n);
            let mut seen: Vec<u64> = (0..n).map(&p).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}");
        }
        let p = scramble(1000);
        assert!((0..1000).filter(|i| p(*i) == *i).count() < 10, "scrambled");
    }

    use super::*;

    #[test]
    fn rows_are_deterministic_and_about_500_bytes() {
        let a = export_row(7, 12_345);
        let b = export_row(7, 12_345);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let mut line = String::new();
        let mut total = 0;
        for i in 0..2000 {
            line.clear();
            write_line(&mut line, &export_row(7, i));
            total += encoding_rs::GB18030.encode(&line).0.len();
        }
        let avg = total / 2000;
        assert!((380..=650).contains(&avg), "{avg} bytes a row");
    }

    #[test]
    fn the_table_encodes_like_encoding_rs() {
        let text = "企业名称,“某某”微信公众号；欧阳娜娜 ２０２４年\u{3000}\u{a0}𠀀\r\n";
        let mut out = Vec::new();
        let mut t = Gb18030Table::new();
        t.encode_into(text, &mut out);
        t.encode_into(text, &mut out);
        let once = encoding_rs::GB18030.encode(text).0.into_owned();
        assert_eq!(out, [once.clone(), once].concat());
    }

    #[test]
    fn base_codes_are_valid() {
        for i in 0..500 {
            assert_eq!(ids::check_uscc(&base_row(3, i, false).code), Ok(()));
        }
    }
}
