"""The bench's polars peer: the penalties full load of
fixtures/bench/mappings/penalties_full_load.toml done the way a polars user would write
it, with the same semantics as xinyong's run — so `make bench` can time both in one run
and check their output row for row (devtools/benches/peers/compare.py).

The job: decode the GB18030 export; trim every cell (Rust's str::trim); map the credit
codes from full width to ASCII and upper-case them; parse the decision date (YYYY-MM-DD,
YYYY/M/D, YYYYMMDD, YYYY年M月D日, full-width digits allowed) and the fine in 元 → 万元
with six decimals (half away from zero); check each xzcf field in field order (required,
maximum length in characters, codes Excel stored as numbers, the credit code's length,
alphabet, division, check character and embedded organisation code, the 处罚类别 code
list) and quarantine a row with its first failure; key = first 32 hex of
SHA-256("xzcf|code|文号"); keep one row per key: the greatest 更新时间, on a tie the later
row. Writes <out>/snapshot.parquet and <out>/quarantine.parquet.

Usage: python polars_job.py EXPORT.csv OUT_DIR
"""

import sys
from pathlib import Path

import polars as pl
import polars_hash as plh

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]
PLACEHOLDER = "00000000000000000X"
CATEGORIES = [
    "警告", "通报批评", "罚款", "没收违法所得", "没收非法财物", "暂扣许可证件", "降低资质等级",
    "吊销许可证件", "限制开展生产经营活动", "责令停产停业", "责令关闭", "限制从业", "行政拘留", "其他",
]
FULL_WIDTH = [chr(c) for c in range(0xFF01, 0xFF5F)] + ["\u3000"]
HALF_WIDTH = [chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)] + [" "]
LOWER = [chr(c) for c in range(ord("a"), ord("z") + 1)]
UPPER = [c.upper() for c in LOWER]
AUTHORITY = "同江市市场监督管理局"
AUTHORITY_CODE = "11230881MB00123433"


def trim(e):
    return e.fill_null("").str.strip_chars()


def halfwidth(e):
    return e.str.replace_many(FULL_WIDTH, HALF_WIDTH)


def code(column):
    """trim → halfwidth → upper (ASCII), as the mapping's transforms."""
    return halfwidth(trim(pl.col(column))).str.replace_many(LOWER, UPPER)


def iso_date(e):
    """The date forms departments export → YYYY-MM-DD, or null when it names no real day.
    A time after the date (a space or T, then H:M[:S[.f]]) is passed over."""
    s = halfwidth(e).str.strip_chars()
    day = s.str.replace(r"[ T]\d{1,2}:\d{1,2}(:\d{1,2}(\.\d*)?)?$", "")
    shaped = day.str.contains(
        r"^\d{4}(?:年\d{1,2}月\d{1,2}日|-\d{1,2}-\d{1,2}|/\d{1,2}/\d{1,2}|\.\d{1,2}\.\d{1,2})$"
    )
    compact = day.str.contains(r"^\d{8}$")
    parsed = (
        pl.when(compact)
        .then(day.str.to_date("%Y%m%d", strict=False))
        .when(shaped)
        .then(
            day.str.replace_all(r"[年月/.]", "-")
            .str.strip_suffix("日")
            .str.to_date("%Y-%m-%d", strict=False)
        )
    )
    return parsed.dt.to_string("%Y-%m-%d")


def wanyuan(e):
    """元 → 万元 with exactly six decimals, rounding half away from zero; null if not a number."""
    s = halfwidth(e).str.replace_all(r"[\s,]", "").str.replace(r"(万元|元)$", "")
    m = s.str.extract_groups(r"^(-?)(\d*)(?:\.(\d*))?$")
    neg, whole, frac = (
        m.struct.field("1"),
        m.struct.field("2"),
        m.struct.field("3").fill_null(""),
    )
    ok = (
        s.str.contains(r"^-?\d*(\.\d*)?$")
        & ~((whole == "") & (frac == ""))
        & (whole.str.len_chars() <= 24)
        & (frac.str.len_chars() <= 12)
    )
    # value × 10^6 / 10^4, exact: the fraction padded to 12 digits, then rounded
    # half away from zero at six decimals.
    mantissa = pl.concat_str([whole, frac.str.pad_end(12, "0")]).cast(pl.Int128, strict=False)
    scaled = (mantissa.fill_null(0) + 5 * 10**9) // 10**10
    units = (scaled // 1_000_000).cast(pl.String)
    decimals = (scaled % 1_000_000).cast(pl.String).str.zfill(6)
    sign = pl.when((neg == "-") & (scaled != 0)).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.when(ok).then(pl.concat_str([sign, units, pl.lit("."), decimals]))


def stored_as_number(v):
    return v.str.contains(r"^\d[\d.]*[eE]\+?\d+$") | (
        v.str.contains(r"^\d+\.0$") & (v.str.len_bytes() > 2)
    )


def uscc_failure(v):
    """The first thing wrong with a non-empty credit code, or null."""
    chars = [v.str.slice(i, 1) for i in range(18)]
    values = [c.replace_strict(list(CHARSET), list(range(31)), default=None, return_dtype=pl.Int32) for c in chars]
    total = pl.sum_horizontal([values[i] * USCC_WEIGHTS[i] for i in range(17)])
    check = ((31 - total % 31) % 31).replace_strict(
        list(range(31)), list(CHARSET), default=None, return_dtype=pl.String
    )
    org_alphabet = [str(d) for d in range(10)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    org = [
        chars[8 + i].replace_strict(org_alphabet, list(range(36)), default=None, return_dtype=pl.Int32)
        for i in range(8)
    ]
    org_total = pl.sum_horizontal([org[i] * ORG_WEIGHTS[i] for i in range(8)])
    org_digit = 11 - org_total % 11
    org_check = (
        pl.when(org_digit == 10)
        .then(pl.lit("X"))
        .when(org_digit == 11)
        .then(pl.lit("0"))
        .otherwise(org_digit.cast(pl.String))
    )
    return (
        pl.when(v == PLACEHOLDER).then(pl.lit("uscc_placeholder"))
        .when(stored_as_number(v)).then(pl.lit("code_stored_as_number"))
        .when(v.str.len_chars() != 18).then(pl.lit("uscc_length"))
        .when(~v.str.contains(f"^[{CHARSET}]{{18}}$")).then(pl.lit("uscc_charset"))
        .when(~v.str.slice(2, 6).str.contains(r"^\d{6}$")).then(pl.lit("uscc_division"))
        .when(chars[17] != check).then(pl.lit("uscc_check"))
        .when(org_total.is_null() | (chars[16] != org_check)).then(pl.lit("uscc_org_check"))
    )


def main(export: str, out: str) -> None:
    text = Path(export).read_bytes().decode("gb18030")
    raw = pl.read_csv(text.encode("utf-8"), infer_schema=False, quote_char='"')
    raw = raw.with_row_index("source_line", offset=2)
    df = raw.select(
        "source_line",
        CF_XDR_MC=trim(pl.col("企业名称")),
        CF_XDR_LB=pl.lit("法人及非法人组织"),
        CF_XDR_SHXYM=code("统一社会信用代码"),
        CF_FRDB=trim(pl.col("法定代表人")),
        CF_WSH=trim(pl.col("处罚决定书文号")),
        CF_WFXW=trim(pl.col("违法行为类型")),
        CF_SY=trim(pl.col("违法事实")),
        CF_YJ=trim(pl.col("处罚依据")),
        CF_CFLB=trim(pl.col("处罚类别")),
        CF_NR=trim(pl.col("处罚内容")),
        _fk=trim(pl.col("罚款金额(元)")),
        _jdrq=trim(pl.col("处罚决定日期")),
        CF_CFJG=trim(pl.col("处罚机关")),
        CF_CFJGDM=code("处罚机关统一社会信用代码"),
        CF_SJLY=pl.lit(AUTHORITY),
        CF_SJLYDM=pl.lit(AUTHORITY_CODE),
        updated_at=trim(pl.col("更新时间")),
    ).with_columns(
        CF_NR_FK=wanyuan(pl.col("_fk")).fill_null(""),
        CF_JDRQ=iso_date(pl.col("_jdrq")).fill_null(""),
    )

    def required(f):
        return pl.when(pl.col(f) == "").then(pl.lit("missing_field"))

    def text(f, max_len):
        return required(f).when(pl.col(f).str.len_chars() > max_len).then(pl.lit("too_long"))

    def uscc(f):
        return required(f).otherwise(uscc_failure(pl.col(f)))

    category_ok = pl.col("CF_CFLB").str.split(";").list.eval(
        pl.element().str.strip_chars().is_in(CATEGORIES)
    ).list.all()
    checks = [
        ("CF_XDR_MC", text("CF_XDR_MC", 200)),
        ("CF_XDR_SHXYM", uscc("CF_XDR_SHXYM")),
        ("CF_FRDB", text("CF_FRDB", 50)),
        ("CF_WSH", text("CF_WSH", 128)),
        ("CF_WFXW", text("CF_WFXW", 2000)),
        ("CF_SY", text("CF_SY", 4000)),
        ("CF_YJ", text("CF_YJ", 2000)),
        ("CF_CFLB", required("CF_CFLB").when(~category_ok).then(pl.lit("bad_value"))),
        ("CF_NR", text("CF_NR", 4000)),
        (
            "CF_NR_FK",
            pl.when((pl.col("_fk") != "") & (pl.col("CF_NR_FK") == "")).then(pl.lit("bad_amount"))
            .when((pl.col("CF_NR_FK") == "") & pl.col("CF_CFLB").str.contains("罚款", literal=True))
            .then(pl.lit("missing_field")),
        ),
        (
            "CF_JDRQ",
            pl.when(pl.col("_jdrq") == "").then(pl.lit("missing_field"))
            .when(pl.col("CF_JDRQ") == "").then(pl.lit("bad_date")),
        ),
        ("CF_CFJG", text("CF_CFJG", 200)),
        ("CF_CFJGDM", uscc("CF_CFJGDM")),
    ]
    reason = pl.coalesce([c for _, c in checks])
    field = pl.coalesce([pl.when(c.is_not_null()).then(pl.lit(f)) for f, c in checks])
    updated = pl.col("updated_at").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False)
    df = df.with_columns(
        reason=reason,
        field=field,
        _updated=updated,
    ).with_columns(
        reason=pl.coalesce(
            pl.col("reason"),
            pl.when((pl.col("updated_at") != "") & pl.col("_updated").is_null()).then(
                pl.lit("bad_updated_at")
            ),
        )
    )
    refused = df.filter(pl.col("reason").is_not_null()).select("source_line", "reason", "field")
    kept = df.filter(pl.col("reason").is_null())
    key = pl.concat_str([pl.lit("xzcf"), pl.col("CF_XDR_SHXYM"), pl.col("CF_WSH")], separator="|")
    kept = kept.with_columns(_key=key).with_columns(
        record_id=plh.col("_key").chash.sha2_256().str.slice(0, 32)
    )
    # One row per key: the greatest 更新时间, on a tie the later row.
    winners = kept.sort(["_updated", "source_line"], nulls_last=False).unique(
        "record_id", keep="last", maintain_order=False
    )
    columns = ["record_id", "source_line", "updated_at"] + [
        c for c in winners.columns if c.startswith("CF_")
    ]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    winners.select(columns).write_parquet(out_dir / "snapshot.parquet")
    refused.write_parquet(out_dir / "quarantine.parquet")
    print(
        f"polars: read {raw.height}, kept {winners.height}, quarantined {refused.height}, "
        f"superseded {kept.height - winners.height}"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
