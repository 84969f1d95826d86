//! The provincial schema as data: `pipeline/schema/<dataset>.toml` defines each dataset
//! field by field. Validation, the push payload and the built-in simulator all read the
//! same definitions, so the city and the simulated platforms agree on what is valid.

use crate::ids;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The built-in definitions, compiled in so the binary needs no files at run time.
const BUILT_IN: [(&str, &str); 6] = [
    ("frjc", include_str!("schema/frjc.toml")),
    ("xzxk", include_str!("schema/xzxk.toml")),
    ("xzcf", include_str!("schema/xzcf.toml")),
    ("redlist", include_str!("schema/redlist.toml")),
    ("blacklist", include_str!("schema/blacklist.toml")),
    ("xycn", include_str!("schema/xycn.toml")),
];

/// The type of a field's value once mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Free text.
    Text,
    /// `YYYY-MM-DD`.
    Date,
    /// A decimal in 万元.
    Amount,
    /// A unified social credit code.
    Uscc,
    /// An organization code.
    OrgCode,
    /// A 15-digit business registration number.
    Regno,
    /// A resident identity number.
    IdNumber,
}

/// A field required only when another field has certain values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The field whose value decides.
    pub field: String,
    /// Required when that field's value is one of these.
    #[serde(default, rename = "in")]
    pub one_of: Vec<String>,
    /// Required when that field's value contains this text (e.g. 处罚类别 contains 罚款).
    #[serde(default)]
    pub contains: Option<String>,
}

/// One field of a dataset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// Field code of the national standard, e.g. `CF_XDR_SHXYM`.
    pub code: String,
    /// Chinese name, e.g. 统一社会信用代码.
    pub name: String,
    /// Value type.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// Always required.
    #[serde(default)]
    pub required: bool,
    /// Required under a condition.
    #[serde(default)]
    pub required_when: Option<Condition>,
    /// Maximum length in characters.
    #[serde(default)]
    pub max_len: Option<usize>,
    /// Allowed values.
    #[serde(default)]
    pub code_list: Option<Vec<String>>,
    /// Separator when several code-list values may be joined (e.g. `;`).
    #[serde(default)]
    pub separator: Option<String>,
    /// Whether the value may be shown publicly (reports mask or drop it otherwise).
    #[serde(default = "yes")]
    pub public: bool,
    /// A natural person's name (masked in public output).
    #[serde(default)]
    pub personal_name: bool,
    /// The subject's name: masked in public output when the subject is a natural person.
    #[serde(default)]
    pub subject_name: bool,
    /// Field codes of the 2016-era standard that mean this field (a mapping may use them).
    #[serde(default)]
    pub legacy: Vec<String>,
    /// For a credit-code field: the placeholder `00000000000000000X` is accepted when
    /// this field (the registration number) holds a valid value.
    #[serde(default)]
    pub placeholder_needs: Option<String>,
    /// For a credit-code field: legacy-code fields (organization code, registration
    /// number) through which the legal-entity register can supply a missing code.
    #[serde(default)]
    pub resolve_from: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A dataset definition as written in its file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetFile {
    dataset: String,
    name: String,
    key: Vec<String>,
    #[serde(default)]
    decision_date: Option<String>,
    #[serde(default = "yes")]
    push: bool,
    #[serde(default)]
    publication_end: Option<String>,
    #[serde(default)]
    max_publication_years: Option<u32>,
    field: Vec<FieldDef>,
}

/// A dataset, with field positions resolved.
#[derive(Debug)]
pub struct Dataset {
    /// Code, e.g. `xzcf`.
    pub code: String,
    /// Chinese name, e.g. 行政处罚.
    pub name: String,
    /// Fields in order.
    pub fields: Vec<FieldDef>,
    /// Positions of the business-key fields (record_id is derived from them).
    pub key: Vec<usize>,
    /// Position of the decision date (for timeliness), where the dataset has one.
    pub decision_date: Option<usize>,
    /// Whether the dataset goes to the platforms (reference data such as the register does not).
    pub push: bool,
    /// The field holding the end of the publication period (公示截止期), if any.
    pub publication_end: Option<usize>,
    /// The longest publication, in years from the decision date (the 3-year maximum).
    pub max_publication_years: Option<u32>,
    index: HashMap<String, usize>,
    conditions: Vec<Option<(usize, Condition)>>,
    placeholder_needs: Vec<Option<usize>>,
    /// Per field: the legacy-code fields that can resolve it through the register.
    pub resolve_from: Vec<Vec<usize>>,
}

/// A record that breaks the schema: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Position of the field.
    pub field: usize,
    /// Reason code (`missing_field`, `uscc_check`, `bad_value`, …).
    pub reason: String,
}

impl Dataset {
    /// Parses one definition file.
    pub fn parse(text: &str) -> Result<Dataset, String> {
        let file: DatasetFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut index: HashMap<String, usize> = HashMap::new();
        for (i, f) in file.field.iter().enumerate() {
            for code in std::iter::once(&f.code).chain(&f.legacy) {
                if index.insert(code.clone(), i).is_some() {
                    return Err(format!(
                        "dataset {}: field code {code} is defined twice",
                        file.dataset
                    ));
                }
            }
        }
        let pos = |code: &str| {
            index
                .get(code)
                .copied()
                .ok_or_else(|| format!("dataset {}: unknown field {code}", file.dataset))
        };
        let key = file
            .key
            .iter()
            .map(|k| pos(k))
            .collect::<Result<Vec<_>, _>>()?;
        let publication_end = match &file.publication_end {
            Some(f) => Some(pos(f)?),
            None => None,
        };
        let decision_date = match &file.decision_date {
            Some(d) => Some(pos(d)?),
            None => None,
        };
        let mut conditions = Vec::new();
        let mut placeholder_needs = Vec::new();
        let mut resolve_from = Vec::new();
        for f in &file.field {
            conditions.push(match &f.required_when {
                Some(c) => Some((pos(&c.field)?, c.clone())),
                None => None,
            });
            placeholder_needs.push(match &f.placeholder_needs {
                Some(p) => Some(pos(p)?),
                None => None,
            });
            resolve_from.push(
                f.resolve_from
                    .iter()
                    .map(|c| pos(c))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        Ok(Dataset {
            code: file.dataset,
            name: file.name,
            fields: file.field,
            key,
            decision_date,
            push: file.push,
            publication_end,
            max_publication_years: file.max_publication_years,
            index,
            conditions,
            placeholder_needs,
            resolve_from,
        })
    }

    /// Position of a field by code (today's code or a 2016-era one).
    pub fn position(&self, code: &str) -> Option<usize> {
        self.index.get(code).copied()
    }

    /// Whether field `i` is required for this record (always, or by its condition).
    pub fn required<S: AsRef<str>>(&self, i: usize, values: &[S]) -> bool {
        if self.fields[i].required {
            return true;
        }
        match &self.conditions[i] {
            Some((j, c)) => {
                let v = values[*j].as_ref();
                c.one_of.iter().any(|x| x == v)
                    || c.contains.as_ref().is_some_and(|s| v.contains(s.as_str()))
            }
            None => false,
        }
    }

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
    pub fn check_field<S: AsRef<str>>(&self, i: usize, values: &[S]) -> Result<(), String> {
        let f = &self.fields[i];
        let v = values[i].as_ref();
        if v.is_empty() {
            return if self.required(i, values) {
                Err("missing_field".into())
            } else {
                Ok(())
            };
        }
        if let Some(max) = f.max_len {
            if v.len() > max && v.chars().count() > max {
                return Err("too_long".into());
            }
        }
        match f.ty {
            FieldType::Text => {}
            FieldType::Date => {
                let ok = crate::transforms::parse_iso_date(v).is_some();
                if !ok {
                    return Err("bad_date".into());
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
                    return Err("bad_amount".into());
                }
            }
            FieldType::Uscc => match ids::check_uscc(v) {
                Ok(()) => {}
                Err(ids::IdError::Placeholder) => {
                    let regno_ok = self.placeholder_needs[i]
                        .is_some_and(|j| ids::check_regno(values[j].as_ref()).is_ok());
                    if !regno_ok {
                        return Err("uscc_placeholder".into());
                    }
                }
                Err(e) => return Err(format!("uscc_{}", e.code())),
            },
            FieldType::OrgCode => {
                ids::check_org_code(v).map_err(|e| format!("org_{}", e.code()))?
            }
            FieldType::Regno => ids::check_regno(v).map_err(|e| format!("regno_{}", e.code()))?,
            FieldType::IdNumber => {
                // Only resident identity numbers carry a check digit; other document
                // types (passports, permits) are free text.
                if v.len() == 18 && v.as_bytes()[..17].iter().all(u8::is_ascii_digit) {
                    ids::check_ric(v).map_err(|e| format!("ric_{}", e.code()))?
                }
            }
        }
        if let Some(list) = &f.code_list {
            let ok = match &f.separator {
                Some(sep) => v
                    .split(sep.as_str())
                    .all(|p| list.iter().any(|x| x == p.trim())),
                None => list.iter().any(|x| x == v),
            };
            if !ok {
                return Err("bad_value".into());
            }
        }
        Ok(())
    }

    /// The last day of publication of a record, when the dataset limits it: the
    /// 公示截止期 field if filled, else the decision date plus the maximum years.
    pub fn publication_ends(
        &self,
        values: &dyn Fn(usize) -> Option<String>,
    ) -> Option<chrono::NaiveDate> {
        let parse = |s: String| chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok();
        if let Some(end) = self.publication_end.and_then(values).and_then(parse) {
            return Some(end);
        }
        let years = self.max_publication_years?;
        let decided = self.decision_date.and_then(values).and_then(parse)?;
        decided.checked_add_months(chrono::Months::new(12 * years))
    }

    /// The upstream rejection code for a local reason code (upstream-api.md).
    pub fn upstream_code(reason: &str) -> &'static str {
        match reason {
            "missing_field" | "uscc_placeholder" => "missing_field",
            r if r.starts_with("uscc_") => "bad_uscc",
            r if r.starts_with("ric_") => "bad_id_number",
            "bad_date" => "bad_date",
            _ => "bad_value",
        }
    }
}

/// All datasets known to this build.
pub struct Registry {
    datasets: HashMap<String, Arc<Dataset>>,
}

impl Registry {
    /// Looks up a dataset by code.
    pub fn get(&self, code: &str) -> Option<Arc<Dataset>> {
        self.datasets.get(code).cloned()
    }

    /// Dataset codes, sorted.
    pub fn codes(&self) -> Vec<String> {
        let mut v: Vec<String> = self.datasets.keys().cloned().collect();
        v.sort();
        v
    }
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// The registry: the built-in definitions, or a deployment's own set installed with
/// [`install_dir`] before first use.
pub fn registry() -> &'static Registry {
    REGISTRY.get_or_init(|| Registry {
        datasets: BUILT_IN
            .iter()
            .map(|(code, text)| {
                let ds = Dataset::parse(text)
                    .unwrap_or_else(|e| panic!("built-in schema {code}.toml is broken: {e}"));
                (code.to_string(), Arc::new(ds))
            })
            .collect(),
    })
}

/// Uses a deployment's schema directory (`schema_dir` in the configuration) instead of
/// the built-in definitions: the unverified rules of standards.md (required flags,
/// lengths, code lists) are defaults a province's interface document may change. Each
/// `<dataset>.toml` there replaces the built-in one; the others stay built in.
pub fn install_dir(dir: &std::path::Path) -> Result<(), String> {
    let mut datasets: HashMap<String, Arc<Dataset>> = HashMap::new();
    for (code, text) in BUILT_IN {
        let path = dir.join(format!("{code}.toml"));
        let ds = match std::fs::read_to_string(&path) {
            Ok(own) => Dataset::parse(&own).map_err(|e| format!("{}: {e}", path.display()))?,
            Err(_) => Dataset::parse(text).map_err(|e| format!("built-in {code}.toml: {e}"))?,
        };
        if ds.code != code {
            return Err(format!("{}: defines dataset {:?}", path.display(), ds.code));
        }
        datasets.insert(code.to_string(), Arc::new(ds));
    }
    REGISTRY
        .set(Registry { datasets })
        .map_err(|_| "the schema was already in use when schema_dir was installed".to_string())
}

/// Parses every built-in definition, reporting the first error with its file.
pub fn check_built_in() -> Result<(), String> {
    for (code, text) in BUILT_IN {
        Dataset::parse(text).map_err(|e| format!("pipeline/schema/{code}.toml: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn built_in_schemas_parse() {
        check_built_in().unwrap();
        assert_eq!(
            registry().codes(),
            ["blacklist", "frjc", "redlist", "xycn", "xzcf", "xzxk"]
        );
    }

    #[test]
    fn conditional_and_code_lists() {
        let ds = registry().get("xzcf").unwrap();
        let mut r = good_xzcf(&ds);
        assert_eq!(ds.validate(&r), Ok(()));
        r[ds.position("CF_NR_FK").unwrap()].clear();
        assert_eq!(ds.validate(&r).unwrap_err().reason, "missing_field");
        r[ds.position("CF_CFLB").unwrap()] = "警告".into();
        assert_eq!(ds.validate(&r), Ok(()));
        r[ds.position("CF_CFLB").unwrap()] = "批评教育".into();
        assert_eq!(ds.validate(&r).unwrap_err().reason, "bad_value");
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
            (ds.fields[v.field].code.as_str(), v.reason.as_str()),
            ("CF_XDR_ZJLX", "missing_field")
        );
        r[ds.position("CF_XDR_ZJLX").unwrap()] = "身份证".into();
        r[ds.position("CF_XDR_ZJHM").unwrap()] = "34052419800101001X".into();
        assert_eq!(ds.validate(&r), Ok(()));
        r[ds.position("CF_XDR_ZJHM").unwrap()] = "340524198001010011".into();
        assert_eq!(ds.validate(&r).unwrap_err().reason, "ric_check");
    }

    #[test]
    fn placeholder_needs_registration_number() {
        let ds = registry().get("xzcf").unwrap();
        let mut r = good_xzcf(&ds);
        r[ds.position("CF_XDR_LB").unwrap()] = "个体工商户".into();
        r[ds.position("CF_XDR_SHXYM").unwrap()] = ids::USCC_PLACEHOLDER.into();
        assert_eq!(ds.validate(&r).unwrap_err().reason, "uscc_placeholder");
        r[ds.position("CF_XDR_GSZC").unwrap()] = "520000000005018".into();
        assert_eq!(ds.validate(&r), Ok(()));
    }
}
