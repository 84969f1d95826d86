//! The validate stage: a mapped record against its dataset's rules (required and
//! conditionally required fields, lengths, types, identifier checks, code lists), in
//! field order, so the reason a clerk sees does not depend on hash order. The built-in
//! simulator checks records with the same rules, as a platform would.

use crate::domain::ids;
use crate::domain::reasons::{IdKind, Reason};
use crate::domain::schema::{Dataset, FieldType};

/// A record that breaks the schema: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Position of the field.
    pub field: usize,
    /// Why.
    pub reason: Reason,
}

impl Dataset {
    /// Checks one record (values in field order, `""` for none); the first violation in
    /// field order, so the reason a clerk sees does not depend on hash order.
    pub fn validate<S: AsRef<str>>(&self, values: &[S]) -> Result<(), Violation> {
        for i in 0..self.fields.len() {
            if let Err(reason) = self.check_field(i, values) {
                return Err(Violation { field: i, reason });
            }
        }
        Ok(())
    }

    /// Checks one field of a record.
    pub fn check_field<S: AsRef<str>>(&self, i: usize, values: &[S]) -> Result<(), Reason> {
        let f = &self.fields[i];
        let v = values[i].as_ref();
        if v.is_empty() {
            return if self.required(i, values) {
                Err(Reason::MissingField)
            } else {
                Ok(())
            };
        }
        if let Some(max) = f.max_len {
            if v.len() > max && v.chars().count() > max {
                return Err(Reason::TooLong);
            }
        }
        if matches!(
            f.ty,
            FieldType::Uscc | FieldType::OrgCode | FieldType::Regno | FieldType::IdNumber
        ) && stored_as_number(v)
        {
            return Err(Reason::StoredAsNumber);
        }
        match f.ty {
            FieldType::Text => {}
            FieldType::Date => {
                let ok = crate::mapping::transforms::parse_iso_date(v).is_some();
                if !ok {
                    return Err(Reason::BadDate);
                }
            }
            FieldType::Amount => {
                let ok = v.split_once('.').is_none_or(|(a, b)| {
                    !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) && !a.is_empty()
                }) && v
                    .trim_start_matches('-')
                    .bytes()
                    .all(|c| c.is_ascii_digit() || c == b'.');
                if !ok {
                    return Err(Reason::BadAmount);
                }
            }
            FieldType::Uscc => match ids::check_uscc(v) {
                Ok(()) => {}
                Err(ids::IdError::Placeholder) => {
                    let regno_ok = self
                        .placeholder_needs(i)
                        .is_some_and(|j| ids::check_regno(values[j].as_ref()).is_ok());
                    if !regno_ok {
                        return Err(Reason::UsccPlaceholder);
                    }
                }
                Err(e) => return Err(Reason::id(IdKind::Uscc, e)),
            },
            FieldType::OrgCode => ids::check_org_code(v).map_err(|e| Reason::id(IdKind::Org, e))?,
            FieldType::Regno => ids::check_regno(v).map_err(|e| Reason::id(IdKind::Regno, e))?,
            FieldType::IdNumber => {
                // Only resident identity numbers carry a check digit; other document
                // types (passports, permits) are free text.
                if v.len() == 18 && v.as_bytes()[..17].iter().all(u8::is_ascii_digit) {
                    ids::check_ric(v).map_err(|e| Reason::id(IdKind::Ric, e))?
                }
            }
        }
        if let Some(list) = &f.code_list {
            let listed = |p: &str| list.iter().any(|x| x == p.trim());
            let ok = match &f.separator {
                // A one-character separator (`;`) is split on as a character: a search
                // for a string pattern costs a tenth of the validation.
                Some(sep) => {
                    let mut chars = sep.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => v.split(c).all(listed),
                        _ => v.split(sep.as_str()).all(listed),
                    }
                }
                None => list.iter().any(|x| x == v),
            };
            if !ok {
                return Err(Reason::BadValue);
            }
        }
        Ok(())
    }
}

/// A code that Excel stored as a number and wrote in scientific notation
/// (`9.12308811234567E+17`) or with a decimal tail (`230881198001011000.0`): its last
/// digits are lost, so no check can say more than "store the cell as text".
fn stored_as_number(v: &str) -> bool {
    let b = v.as_bytes();
    let Some(e) = b.iter().position(|c| *c == b'E' || *c == b'e') else {
        return v.len() > 2 && v.ends_with(".0") && b[..b.len() - 2].iter().all(u8::is_ascii_digit);
    };
    let (mantissa, exponent) = (&b[..e], &b[e + 1..]);
    let exponent = exponent.strip_prefix(b"+").unwrap_or(exponent);
    !mantissa.is_empty()
        && mantissa.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        && mantissa[0].is_ascii_digit()
        && !exponent.is_empty()
        && exponent.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schema::registry;

    #[test]
    fn codes_that_excel_stored_as_numbers_have_their_own_reason() {
        assert!(stored_as_number("9.12308811234567E+17"));
        assert!(stored_as_number("2.30881198001011e17"));
        assert!(stored_as_number("230881198001011000.0"));
        assert!(!stored_as_number("91230881MA1B2C3D4E"));
        assert!(!stored_as_number("230881198001011234"));
        assert!(!stored_as_number("E+17"));
        let ds = registry().get("xzcf").unwrap();
        let i = ds.position("CF_XDR_SHXYM").unwrap();
        let v = record(&ds, &[("CF_XDR_SHXYM", "9.12308811234567E+17")]);
        assert_eq!(ds.check_field(i, &v), Err(Reason::StoredAsNumber));
        assert!(Reason::StoredAsNumber.instruction_zh().contains("文本"));
    }

    fn record(ds: &Dataset, pairs: &[(&str, &str)]) -> Vec<String> {
        let mut v = vec![String::new(); ds.fields.len()];
        for (k, val) in pairs {
            v[ds.position(k).unwrap()] = val.to_string();
        }
        v
    }

    fn good_xzcf(ds: &Dataset) -> Vec<String> {
        record(
            ds,
            &[
                ("CF_XDR_MC", "同江市江华商贸有限公司"),
                ("CF_XDR_LB", "法人及非法人组织"),
                ("CF_XDR_SHXYM", "91110000802100433B"),
                ("CF_FRDB", "王建国"),
                ("CF_WSH", "同市监罚〔2024〕12号"),
                ("CF_WFXW", "销售过期食品"),
                ("CF_SY", "经查"),
                ("CF_YJ", "《食品安全法》第一百二十四条"),
                ("CF_CFLB", "警告;罚款"),
                ("CF_NR", "罚款2000元"),
                ("CF_NR_FK", "0.200000"),
                ("CF_JDRQ", "2024-03-05"),
                ("CF_CFJG", "同江市市场监督管理局"),
                ("CF_CFJGDM", "91110000802100433B"),
                ("CF_SJLY", "同江市市场监督管理局"),
                ("CF_SJLYDM", "91110000802100433B"),
            ],
        )
    }

    #[test]
    fn conditional_and_code_lists() {
        let ds = registry().get("xzcf").unwrap();
        let mut r = good_xzcf(&ds);
        assert_eq!(ds.validate(&r), Ok(()));
        r[ds.position("CF_NR_FK").unwrap()].clear();
        assert_eq!(ds.validate(&r).unwrap_err().reason.code(), "missing_field");
        r[ds.position("CF_CFLB").unwrap()] = "警告".into();
        assert_eq!(ds.validate(&r), Ok(()));
        r[ds.position("CF_CFLB").unwrap()] = "批评教育".into();
        assert_eq!(ds.validate(&r).unwrap_err().reason.code(), "bad_value");
    }

    #[test]
    fn natural_person_needs_id_number_not_credit_code() {
        let ds = registry().get("xzcf").unwrap();
        let mut r = good_xzcf(&ds);
        r[ds.position("CF_XDR_LB").unwrap()] = "自然人".into();
        r[ds.position("CF_XDR_SHXYM").unwrap()].clear();
        r[ds.position("CF_FRDB").unwrap()].clear();
        let v = ds.validate(&r).unwrap_err();
        assert_eq!(
            (ds.fields[v.field].code.as_str(), v.reason.code()),
            ("CF_XDR_ZJLX", "missing_field")
        );
        r[ds.position("CF_XDR_ZJLX").unwrap()] = "身份证".into();
        r[ds.position("CF_XDR_ZJHM").unwrap()] = "34052419800101001X".into();
        assert_eq!(ds.validate(&r), Ok(()));
        r[ds.position("CF_XDR_ZJHM").unwrap()] = "340524198001010011".into();
        assert_eq!(ds.validate(&r).unwrap_err().reason.code(), "ric_check");
    }

    #[test]
    fn placeholder_needs_registration_number() {
        let ds = registry().get("xzcf").unwrap();
        let mut r = good_xzcf(&ds);
        r[ds.position("CF_XDR_LB").unwrap()] = "个体工商户".into();
        r[ds.position("CF_XDR_SHXYM").unwrap()] = ids::USCC_PLACEHOLDER.into();
        assert_eq!(
            ds.validate(&r).unwrap_err().reason.code(),
            "uscc_placeholder"
        );
        r[ds.position("CF_XDR_GSZC").unwrap()] = "520000000005018".into();
        assert_eq!(ds.validate(&r), Ok(()));
    }
}
