//! Why a row is refused ([`Reason`], the quarantine's reason codes) and why a platform
//! refused a record ([`UpstreamCode`], the contract's rejection codes). Each reason is
//! defined here once: its stable code (in the quarantine files, counts and reports), its
//! short Chinese label (tables, charts), its instruction to the department (the
//! correction workbook, 退回整改清单), and the upstream code it corresponds to. A new
//! reason is a new variant: the compiler then asks for its texts.

use crate::domain::ids::IdError;

/// Which identifier an [`Reason::Id`] failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdKind {
    /// 统一社会信用代码.
    Uscc,
    /// 组织机构代码.
    Org,
    /// 工商注册号 (15 digits).
    Regno,
    /// 居民身份证号码.
    Ric,
}

impl IdKind {
    /// Every kind, in the order of the code table.
    pub const ALL: [IdKind; 4] = [IdKind::Uscc, IdKind::Org, IdKind::Regno, IdKind::Ric];

    /// The prefix of its reason codes (`uscc_check`).
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Uscc => "uscc",
            IdKind::Org => "org",
            IdKind::Regno => "regno",
            IdKind::Ric => "ric",
        }
    }

    /// Its name in Chinese.
    pub fn name_zh(self) -> &'static str {
        match self {
            IdKind::Uscc => "统一社会信用代码",
            IdKind::Org => "组织机构代码",
            IdKind::Regno => "工商注册号",
            IdKind::Ric => "身份证号码",
        }
    }

    fn expected_length_zh(self) -> &'static str {
        match self {
            IdKind::Uscc | IdKind::Ric => "18位",
            IdKind::Org => "9位（可带连字符）",
            IdKind::Regno => "15位",
        }
    }
}

/// Why a row cannot become a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// A required field is empty.
    MissingField,
    /// The credit code is the 个体工商户 placeholder and no valid registration number stands beside it.
    UsccPlaceholder,
    /// Only a legacy code, which the legal-entity register does not know.
    UsccUnresolved,
    /// A date that cannot be read or does not exist.
    BadDate,
    /// An amount that is not a number.
    BadAmount,
    /// A value outside its code list.
    BadValue,
    /// Longer than the field allows.
    TooLong,
    /// A row with no content.
    BlankRow,
    /// More cells than the header has.
    ColumnCount,
    /// Fewer cells than the mapped columns need (a truncated line).
    TooFewColumns,
    /// Bytes that are not text in the file's encoding.
    EncodingInvalid,
    /// A code Excel stored as a number (scientific notation): its digits are lost.
    StoredAsNumber,
    /// An update time that cannot be read.
    BadUpdatedAt,
    /// An identifier that fails its check.
    Id(IdKind, IdError),
}

/// `Reason::Id` codes, by [`IdKind::ALL`] × [`IdError::ALL`].
const ID_CODES: [[&str; 8]; 4] = [
    [
        "uscc_empty",
        "uscc_length",
        "uscc_charset",
        "uscc_division",
        "uscc_check",
        "uscc_org_check",
        "uscc_placeholder_code",
        "uscc_birth_date",
    ],
    [
        "org_empty",
        "org_length",
        "org_charset",
        "org_division",
        "org_check",
        "org_org_check",
        "org_placeholder",
        "org_birth_date",
    ],
    [
        "regno_empty",
        "regno_length",
        "regno_charset",
        "regno_division",
        "regno_check",
        "regno_org_check",
        "regno_placeholder",
        "regno_birth_date",
    ],
    [
        "ric_empty",
        "ric_length",
        "ric_charset",
        "ric_division",
        "ric_check",
        "ric_org_check",
        "ric_placeholder",
        "ric_birth_date",
    ],
];

impl Reason {
    /// The reasons that are not identifier checks.
    const PLAIN: [Reason; 13] = [
        Reason::MissingField,
        Reason::UsccPlaceholder,
        Reason::UsccUnresolved,
        Reason::BadDate,
        Reason::BadAmount,
        Reason::BadValue,
        Reason::TooLong,
        Reason::BlankRow,
        Reason::ColumnCount,
        Reason::TooFewColumns,
        Reason::EncodingInvalid,
        Reason::StoredAsNumber,
        Reason::BadUpdatedAt,
    ];

    /// Every reason.
    pub fn all() -> impl Iterator<Item = Reason> {
        Self::PLAIN.into_iter().chain(
            IdKind::ALL
                .into_iter()
                .flat_map(|k| IdError::ALL.into_iter().map(move |e| Reason::Id(k, e))),
        )
    }

    /// The reason for an identifier's check failure (the credit code's placeholder has
    /// a reason of its own).
    pub fn id(kind: IdKind, e: IdError) -> Reason {
        match (kind, e) {
            (IdKind::Uscc, IdError::Placeholder) => Reason::UsccPlaceholder,
            _ => Reason::Id(kind, e),
        }
    }

    /// The stable code (`missing_field`, `uscc_check`, …).
    pub fn code(self) -> &'static str {
        match self {
            Reason::MissingField => "missing_field",
            Reason::UsccPlaceholder => "uscc_placeholder",
            Reason::UsccUnresolved => "uscc_unresolved",
            Reason::BadDate => "bad_date",
            Reason::BadAmount => "bad_amount",
            Reason::BadValue => "bad_value",
            Reason::TooLong => "too_long",
            Reason::BlankRow => "blank_row",
            Reason::ColumnCount => "column_count",
            Reason::TooFewColumns => "too_few_columns",
            Reason::EncodingInvalid => "encoding_invalid",
            Reason::StoredAsNumber => "code_stored_as_number",
            Reason::BadUpdatedAt => "bad_updated_at",
            Reason::Id(k, e) => ID_CODES[k as usize][e as usize],
        }
    }

    /// The reason of a stable code, as a quarantine file or a run report keeps it.
    pub fn parse(code: &str) -> Option<Reason> {
        Reason::all().find(|r| r.code() == code)
    }

    /// A short label (tables and charts).
    pub fn label_zh(self) -> &'static str {
        match self {
            Reason::MissingField => "必填项为空",
            Reason::UsccPlaceholder => "信用代码为占位码",
            Reason::UsccUnresolved => "信用代码无法补全",
            Reason::BadDate => "日期错误",
            Reason::BadAmount => "金额格式错误",
            Reason::BadValue => "取值不在代码表内",
            Reason::TooLong => "内容超长",
            Reason::BlankRow => "空行",
            Reason::ColumnCount => "列数多于表头",
            Reason::TooFewColumns => "列数少于表头",
            Reason::EncodingInvalid => "含无法识别的字符",
            Reason::StoredAsNumber => "代码被存成了数字",
            Reason::BadUpdatedAt => "更新时间错误",
            Reason::Id(IdKind::Uscc, _) => "统一社会信用代码错误",
            Reason::Id(IdKind::Ric, _) => "身份证号码错误",
            Reason::Id(IdKind::Org, _) => "组织机构代码错误",
            Reason::Id(IdKind::Regno, _) => "工商注册号错误",
        }
    }

    /// What is wrong and what the department should do, in plain Chinese.
    pub fn instruction_zh(self) -> String {
        let fixed = match self {
            Reason::MissingField => "必填项为空，请补全该字段后重新报送",
            Reason::UsccPlaceholder => {
                "统一社会信用代码为占位码（00000000000000000X），且没有有效的工商注册号，请填写统一社会信用代码或工商注册号"
            }
            Reason::UsccUnresolved => {
                "只有组织机构代码或工商注册号，法人库中查不到对应的统一社会信用代码，请填写统一社会信用代码"
            }
            Reason::BadDate => "日期无法识别或不存在（应为真实日期，如2024-09-30），请更正",
            Reason::BadAmount => "金额格式不正确（应为数字，不带单位和文字），请更正",
            Reason::BadValue => "取值不在国家标准的代码表内，请按标准选项填写",
            Reason::TooLong => "内容超过该字段允许的最大长度，请精简",
            Reason::BlankRow => "空行，没有任何内容，导出时请删除",
            Reason::ColumnCount => {
                "该行的列数多于表头，可能多了分隔符或逗号未加引号，请检查该行"
            }
            Reason::TooFewColumns => {
                "该行的列数少于表头（行不完整，可能文件被截断或换行符位置错误），请检查该行并重新导出"
            }
            Reason::EncodingInvalid => {
                "该单元格含有无法识别的字节（文件编码与其余内容不一致，\\x后为字节的十六进制），请以UTF-8或GBK编码重新导出，或更正该单元格"
            }
            Reason::StoredAsNumber => {
                "该代码被Excel存成了数字（如9.12308811234567E+17），后几位已丢失：请把该列设置为“文本”格式、重新录入代码后再导出报送"
            }
            Reason::BadUpdatedAt => "更新时间无法识别，请按“2024-09-30 08:00:00”的格式填写",
            Reason::Id(kind, e) => return identifier_instruction(kind, e),
        };
        fixed.to_string()
    }

    /// The code a platform answers for the same problem (upstream-api.md).
    pub fn upstream(self) -> UpstreamCode {
        match self {
            Reason::MissingField | Reason::UsccPlaceholder => UpstreamCode::MissingField,
            Reason::UsccUnresolved | Reason::Id(IdKind::Uscc, _) => UpstreamCode::BadUscc,
            Reason::Id(IdKind::Ric, _) => UpstreamCode::BadIdNumber,
            Reason::BadDate => UpstreamCode::BadDate,
            _ => UpstreamCode::BadValue,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// An identifier's check failure in plain Chinese.
fn identifier_instruction(kind: IdKind, e: IdError) -> String {
    let what = kind.name_zh();
    match e {
        IdError::Empty => format!("{what}为空，请填写"),
        IdError::Length => format!(
            "{what}位数不对（应为{}），请核对代码",
            kind.expected_length_zh()
        ),
        IdError::Charset if kind == IdKind::Uscc => {
            format!("{what}含有不允许的字符（如字母I、O、S、V、Z或标点），请核对代码")
        }
        IdError::Charset => format!("{what}含有不允许的字符，请核对代码"),
        IdError::Division => format!("{what}第3至8位应为6位行政区划数字，请核对代码"),
        IdError::Check => format!("{what}校验位错误，请核对代码"),
        IdError::OrgCheck => format!("{what}中的组织机构代码部分校验位错误，请核对代码"),
        IdError::Placeholder => format!("{what}为占位码，请填写真实代码"),
        IdError::BirthDate => format!("{what}中的出生日期不存在，请核对号码"),
    }
}

/// A short label for a quarantine reason code as stored (`其他问题` for a code this
/// build does not know, e.g. from a newer version's files).
pub fn quarantine_label(code: &str) -> String {
    Reason::parse(code)
        .map_or("其他问题", Reason::label_zh)
        .to_string()
}

/// The instruction for a quarantine reason code as stored.
pub fn quarantine_text(code: &str) -> String {
    match Reason::parse(code) {
        Some(r) => r.instruction_zh(),
        None => format!("未知原因（代码 {code}），请联系市信用办核实"),
    }
}

/// Why a platform refused one record (upstream-api.md, POST /api/v1/batches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpstreamCode {
    /// A required field empty.
    MissingField,
    /// A credit code that fails its check character.
    BadUscc,
    /// An identity number that fails its check digit.
    BadIdNumber,
    /// A date that is not one.
    BadDate,
    /// A value outside its code list.
    BadValue,
    /// A withdrawal of a record the platform never held.
    UnknownRecord,
}

impl UpstreamCode {
    /// Every code.
    pub const ALL: [UpstreamCode; 6] = [
        UpstreamCode::MissingField,
        UpstreamCode::BadUscc,
        UpstreamCode::BadIdNumber,
        UpstreamCode::BadDate,
        UpstreamCode::BadValue,
        UpstreamCode::UnknownRecord,
    ];

    /// The code on the wire.
    pub fn code(self) -> &'static str {
        match self {
            UpstreamCode::MissingField => "missing_field",
            UpstreamCode::BadUscc => "bad_uscc",
            UpstreamCode::BadIdNumber => "bad_id_number",
            UpstreamCode::BadDate => "bad_date",
            UpstreamCode::BadValue => "bad_value",
            UpstreamCode::UnknownRecord => "unknown_record",
        }
    }

    /// The code of a wire string.
    pub fn parse(code: &str) -> Option<UpstreamCode> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// A short label (tables).
    pub fn label_zh(self) -> &'static str {
        match self {
            UpstreamCode::MissingField => "必填项为空",
            UpstreamCode::BadUscc => "信用代码错误",
            UpstreamCode::BadIdNumber => "证件号码错误",
            UpstreamCode::BadDate => "日期错误",
            UpstreamCode::BadValue => "取值不符",
            UpstreamCode::UnknownRecord => "平台无此记录",
        }
    }

    /// What it means and what to do, in plain Chinese.
    pub fn instruction_zh(self) -> &'static str {
        match self {
            UpstreamCode::MissingField => "必填项为空，请补全后重新报送",
            UpstreamCode::BadUscc => "统一社会信用代码不正确，请核对代码后重新报送",
            UpstreamCode::BadIdNumber => "证件号码不正确，请核对后重新报送",
            UpstreamCode::BadDate => "日期不正确，请更正后重新报送",
            UpstreamCode::BadValue => "取值不符合平台要求，请按平台说明更正后重新报送",
            UpstreamCode::UnknownRecord => {
                "平台上没有这条记录，撤回未执行；无需部门处理，由市信用办核实"
            }
        }
    }
}

/// What an upstream rejection code means, in plain Chinese (a code this build does not
/// know is named, for the office to check).
pub fn rejection_text(code: &str) -> String {
    match UpstreamCode::parse(code) {
        Some(c) => format!("上级平台退回：{}", c.instruction_zh()),
        None => format!("上级平台退回（代码 {code}），请联系市信用办核实"),
    }
}

/// A short label for an upstream rejection code.
pub fn rejection_label(code: &str) -> String {
    UpstreamCode::parse(code)
        .map_or("其他", UpstreamCode::label_zh)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let all: Vec<Reason> = Reason::all().collect();
        let codes: std::collections::HashSet<&str> = all.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), all.len());
        for r in all {
            assert_eq!(Reason::parse(r.code()), Some(r));
        }
        for c in UpstreamCode::ALL {
            assert_eq!(UpstreamCode::parse(c.code()), Some(c));
        }
    }

    #[test]
    fn every_quarantine_reason_reads_as_plain_chinese() {
        let codes = [
            "missing_field",
            "uscc_check",
            "uscc_length",
            "uscc_charset",
            "uscc_division",
            "uscc_org_check",
            "uscc_placeholder",
            "uscc_unresolved",
            "bad_date",
            "bad_amount",
            "bad_value",
            "too_long",
            "blank_row",
            "column_count",
            "bad_updated_at",
            "ric_check",
            "ric_length",
            "ric_birth_date",
            "org_check",
            "org_charset",
            "regno_check",
            "regno_length",
        ];
        for c in codes {
            let t = quarantine_text(c);
            assert!(!t.contains("未知原因"), "{c}: {t}");
            assert!(!t.is_ascii(), "{c}: {t}");
            assert!(!t.contains('_'), "no English code in the text: {c}: {t}");
            assert_ne!(quarantine_label(c), "其他问题", "{c}");
        }
        for r in Reason::all() {
            assert!(!r.instruction_zh().contains('_'), "{r}");
        }
        assert_eq!(
            quarantine_text("uscc_check"),
            "统一社会信用代码校验位错误，请核对代码"
        );
        assert_eq!(
            quarantine_text("ric_length"),
            "身份证号码位数不对（应为18位），请核对代码"
        );
        assert!(quarantine_text("regno_length").contains("15位"));
        assert!(quarantine_text("something_new").contains("something_new"));
    }

    #[test]
    fn every_rejection_code_reads_as_plain_chinese() {
        for c in [
            "missing_field",
            "bad_uscc",
            "bad_id_number",
            "bad_date",
            "bad_value",
            "unknown_record",
        ] {
            let t = rejection_text(c);
            assert!(t.starts_with("上级平台退回："), "{c}: {t}");
            assert!(!t.contains('_'), "{c}: {t}");
            assert_ne!(rejection_label(c), "其他", "{c}");
        }
        assert!(rejection_text("bad_uscc").contains("统一社会信用代码"));
        assert!(rejection_text("teapot").contains("teapot"));
    }
}
