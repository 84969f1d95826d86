//! Plain-Chinese explanations of the pipeline's English reason codes, for the office
//! report and the departments' correction workbooks (退回整改清单): what is wrong and
//! what the department should do before resending the record.

/// A short label for a quarantine reason (tables and charts).
pub fn quarantine_label(code: &str) -> String {
    let label = match code {
        "missing_field" => "必填项为空",
        "uscc_placeholder" => "信用代码为占位码",
        "uscc_unresolved" => "信用代码无法补全",
        "bad_date" => "日期错误",
        "bad_amount" => "金额格式错误",
        "bad_value" => "取值不在代码表内",
        "too_long" => "内容超长",
        "blank_row" => "空行",
        "column_count" => "列数与表头不符",
        "bad_updated_at" => "更新时间错误",
        c if c.starts_with("uscc_") => "统一社会信用代码错误",
        c if c.starts_with("ric_") => "身份证号码错误",
        c if c.starts_with("org_") => "组织机构代码错误",
        c if c.starts_with("regno_") => "工商注册号错误",
        _ => "其他问题",
    };
    label.to_string()
}

/// What a quarantine reason means and what to do, in plain Chinese.
pub fn quarantine_text(code: &str) -> String {
    let fixed = match code {
        "missing_field" => "必填项为空，请补全该字段后重新报送",
        "uscc_placeholder" => {
            "统一社会信用代码为占位码（00000000000000000X），且没有有效的工商注册号，请填写统一社会信用代码或工商注册号"
        }
        "uscc_unresolved" => {
            "只有组织机构代码或工商注册号，法人库中查不到对应的统一社会信用代码，请填写统一社会信用代码"
        }
        "bad_date" => "日期无法识别或不存在（应为真实日期，如2024-09-30），请更正",
        "bad_amount" => "金额格式不正确（应为数字，不带单位和文字），请更正",
        "bad_value" => "取值不在国家标准的代码表内，请按标准选项填写",
        "too_long" => "内容超过该字段允许的最大长度，请精简",
        "blank_row" => "空行，没有任何内容，导出时请删除",
        "column_count" => "该行的列数多于表头，可能多了分隔符或逗号未加引号，请检查该行",
        "bad_updated_at" => "更新时间无法识别，请按“2024-09-30 08:00:00”的格式填写",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_string();
    }
    for (prefix, what) in [
        ("uscc_", "统一社会信用代码"),
        ("ric_", "身份证号码"),
        ("org_", "组织机构代码"),
        ("regno_", "工商注册号"),
    ] {
        if let Some(problem) = code.strip_prefix(prefix) {
            return identifier_text(what, problem);
        }
    }
    format!("未知原因（代码 {code}），请联系市信用办核实")
}

/// An identifier's check failure (`ids::IdError::code`) in plain Chinese.
fn identifier_text(what: &str, problem: &str) -> String {
    let expected_len = match what {
        "统一社会信用代码" | "身份证号码" => "18位",
        "组织机构代码" => "9位（可带连字符）",
        _ => "15位",
    };
    match problem {
        "empty" => format!("{what}为空，请填写"),
        "length" => format!("{what}位数不对（应为{expected_len}），请核对代码"),
        "charset" if what == "统一社会信用代码" => {
            format!("{what}含有不允许的字符（如字母I、O、S、V、Z或标点），请核对代码")
        }
        "charset" => format!("{what}含有不允许的字符，请核对代码"),
        "division" => format!("{what}第3至8位应为6位行政区划数字，请核对代码"),
        "check" => format!("{what}校验位错误，请核对代码"),
        "org_check" => format!("{what}中的组织机构代码部分校验位错误，请核对代码"),
        "placeholder" => format!("{what}为占位码，请填写真实代码"),
        "birth_date" => format!("{what}中的出生日期不存在，请核对号码"),
        _ => format!("{what}有误，请核对"),
    }
}

/// What an upstream platform's rejection code means, in plain Chinese.
pub fn rejection_text(code: &str) -> String {
    let what = match code {
        "missing_field" => "必填项为空，请补全后重新报送",
        "bad_uscc" => "统一社会信用代码不正确，请核对代码后重新报送",
        "bad_id_number" => "证件号码不正确，请核对后重新报送",
        "bad_date" => "日期不正确，请更正后重新报送",
        "bad_value" => "取值不符合平台要求，请按平台说明更正后重新报送",
        "unknown_record" => "平台上没有这条记录，撤回未执行；无需部门处理，由市信用办核实",
        _ => return format!("上级平台退回（代码 {code}），请联系市信用办核实"),
    };
    format!("上级平台退回：{what}")
}

/// A short label for a rejection code (tables).
pub fn rejection_label(code: &str) -> String {
    match code {
        "missing_field" => "必填项为空",
        "bad_uscc" => "信用代码错误",
        "bad_id_number" => "证件号码错误",
        "bad_date" => "日期错误",
        "bad_value" => "取值不符",
        "unknown_record" => "平台无此记录",
        _ => "其他",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
