//! The one masking policy for every public or report output (standards.md §5):
//! resident identity numbers keep their first 6 and last 4 characters
//! (`230881********1234`), natural persons' names keep their surname's first character
//! (`张*`; a compound surname stays whole: `欧阳**`), and fields the schema marks as not
//! public are dropped. Snapshots and pushes to the sharing platforms keep full values.

use crate::domain::schema::{Dataset, FieldType};

/// Two-character surnames that stay whole when a name is masked.
const COMPOUND_SURNAMES: [&str; 20] = [
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "夏侯", "轩辕", "令狐", "端木", "独孤", "南宫", "呼延", "百里",
];

/// The category value that marks a natural person.
pub const NATURAL_PERSON: &str = "自然人";

/// Masks an identity number: first 6 and last 4 characters kept, the rest `*`.
/// Shorter values are masked whole but for their last character.
pub fn mask_id_number(v: &str) -> String {
    let chars: Vec<char> = v.chars().collect();
    let n = chars.len();
    if n == 0 {
        return String::new();
    }
    if n <= 10 {
        return "*".repeat(n - 1) + &chars[n - 1].to_string();
    }
    let mut out: String = chars[..6].iter().collect();
    out.push_str(&"*".repeat(n - 10));
    out.extend(&chars[n - 4..]);
    out
}

/// Masks a natural person's name: the surname kept (its first character, or a whole
/// compound surname), every other character `*`.
pub fn mask_name(v: &str) -> String {
    let chars: Vec<char> = v.trim().chars().collect();
    if chars.is_empty() {
        return String::new();
    }
    let keep = if chars.len() > 2 && COMPOUND_SURNAMES.iter().any(|s| v.trim().starts_with(s)) {
        2
    } else {
        1
    };
    let mut out: String = chars[..keep.min(chars.len())].iter().collect();
    out.push_str(&"*".repeat(chars.len().saturating_sub(keep)));
    out
}

/// A record's values for public display, in field order: non-public fields become
/// `None` (dropped), identity numbers and natural persons' names are masked.
pub fn public_values(ds: &Dataset, values: &[String]) -> Vec<Option<String>> {
    let natural_person = ds
        .fields
        .iter()
        .position(|f| f.code.ends_with("_LB") || f.code == "ZTLB" || f.code == "CN_ZTLB")
        .is_some_and(|i| values[i] == NATURAL_PERSON);
    ds.fields
        .iter()
        .zip(values)
        .map(|(f, v)| {
            if !f.public {
                None
            } else if v.is_empty() {
                Some(String::new())
            } else if f.ty == FieldType::IdNumber {
                Some(mask_id_number(v))
            } else if f.personal_name || (natural_person && f.subject_name) {
                Some(mask_name(v))
            } else {
                Some(v.clone())
            }
        })
        .collect()
}

/// An operator's name is masked like a person's; an account name (ASCII) is kept.
pub fn mask_operator(by_whom: &str) -> String {
    let is_cjk = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c);
    if !by_whom.is_empty() && by_whom.chars().all(is_cjk) {
        mask_name(by_whom)
    } else {
        by_whom.to_string()
    }
}

/// Masks any 18-character identity number inside free text (for messages and logs).
pub fn mask_ids_in_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let end = i + 18;
        if end <= chars.len()
            && chars[i..end - 1].iter().all(|c| c.is_ascii_digit())
            && (chars[end - 1].is_ascii_digit() || chars[end - 1] == 'X' || chars[end - 1] == 'x')
            && (i == 0 || !chars[i - 1].is_ascii_alphanumeric())
            && (end == chars.len() || !chars[end].is_ascii_alphanumeric())
            && crate::domain::ids::check_ric(
                &chars[i..end]
                    .iter()
                    .collect::<String>()
                    .to_ascii_uppercase(),
            )
            .is_ok()
        {
            out.push_str(&mask_id_number(&chars[i..end].iter().collect::<String>()));
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schema::registry;

    #[test]
    fn identity_numbers_keep_6_and_4() {
        assert_eq!(mask_id_number("230881198001011234"), "230881********1234");
        assert_eq!(mask_id_number("230881800101123"), "230881*****1123");
        assert_eq!(mask_id_number("G1234567"), "*******7");
    }

    #[test]
    fn names_keep_the_surname() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("王建国"), "王**");
        assert_eq!(mask_name("欧阳娜娜"), "欧阳**");
        assert_eq!(mask_name("欧阳"), "欧*");
    }

    #[test]
    fn public_values_follow_the_schema() {
        let ds = registry().get("xzcf").unwrap();
        let mut v = vec![String::new(); ds.fields.len()];
        let set =
            |v: &mut Vec<String>, k: &str, x: &str| v[ds.position(k).unwrap()] = x.to_string();
        set(&mut v, "CF_XDR_MC", "李秀兰");
        set(&mut v, "CF_XDR_LB", "自然人");
        set(&mut v, "CF_XDR_ZJHM", "34052419800101001X");
        set(&mut v, "CF_WSH", "同市监罚〔2024〕3号");
        let p = public_values(&ds, &v);
        assert_eq!(
            p[ds.position("CF_XDR_MC").unwrap()].as_deref(),
            Some("李**")
        );
        assert_eq!(
            p[ds.position("CF_XDR_ZJHM").unwrap()],
            None,
            "not public: dropped"
        );
        assert_eq!(
            p[ds.position("CF_WSH").unwrap()].as_deref(),
            Some("同市监罚〔2024〕3号")
        );
        // A company's name stays whole.
        set(&mut v, "CF_XDR_MC", "同江市江华商贸有限公司");
        set(&mut v, "CF_XDR_LB", "法人及非法人组织");
        set(&mut v, "CF_FRDB", "王建国");
        let p = public_values(&ds, &v);
        assert_eq!(
            p[ds.position("CF_XDR_MC").unwrap()].as_deref(),
            Some("同江市江华商贸有限公司")
        );
        assert_eq!(p[ds.position("CF_FRDB").unwrap()].as_deref(), Some("王**"));
    }

    #[test]
    fn identity_numbers_in_text() {
        assert_eq!(
            mask_ids_in_text("证件号码 34052419800101001X 有误"),
            "证件号码 340524********001X 有误"
        );
        assert_eq!(
            mask_ids_in_text("文号 91230881MA1B2C3D4E"),
            "文号 91230881MA1B2C3D4E"
        );
    }
}
