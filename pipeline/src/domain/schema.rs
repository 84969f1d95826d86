//! The provincial schema as data: `pipeline/schema/<dataset>.toml` defines each dataset
//! field by field. Validation, the push payload and the built-in simulator all read the
//! same definitions, so the city and the simulated platforms agree on what is valid.

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
    #[serde(default)]
    exit_date: Option<String>,
    #[serde(default)]
    exit_reason: Option<String>,
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
    /// A list entry's exit date (移出日期): from that day it is withdrawn upstream.
    pub exit_date: Option<usize>,
    /// Why it left the list (移出原因), sent with the withdrawal.
    pub exit_reason: Option<usize>,
    index: HashMap<String, usize>,
    conditions: Vec<Option<(usize, Condition)>>,
    placeholder_needs: Vec<Option<usize>>,
    /// Per field: the legacy-code fields that can resolve it through the register.
    pub resolve_from: Vec<Vec<usize>>,
    /// Where a list export's representative's identity number goes, when the dataset
    /// has the fields (found once, not by name a row).
    pub representative: Option<RepresentativeFields>,
}

/// The fields between which an organisation's row moves its legal representative's
/// identity number: the subject category, the subject's own number and the
/// representative's, and the two document types when the dataset has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepresentativeFields {
    /// 主体类别 (ZTLB).
    pub category: usize,
    /// 证件号码 (ZJHM).
    pub own_number: usize,
    /// 法定代表人证件号码 (FDDBR_ZJHM).
    pub representative_number: usize,
    /// 证件类型 (ZJLX) and 法定代表人证件类型 (FDDBR_ZJLX).
    pub types: Option<(usize, usize)>,
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
        let exit_date = file.exit_date.as_deref().map(&pos).transpose()?;
        let exit_reason = file.exit_reason.as_deref().map(&pos).transpose()?;
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
        let at = |code: &str| index.get(code).copied();
        let representative = match (at("ZTLB"), at("ZJHM"), at("FDDBR_ZJHM")) {
            (Some(category), Some(own_number), Some(representative_number)) => {
                Some(RepresentativeFields {
                    category,
                    own_number,
                    representative_number,
                    types: at("ZJLX").zip(at("FDDBR_ZJLX")),
                })
            }
            _ => None,
        };
        Ok(Dataset {
            representative,
            code: file.dataset,
            name: file.name,
            fields: file.field,
            key,
            decision_date,
            push: file.push,
            publication_end,
            max_publication_years: file.max_publication_years,
            exit_date,
            exit_reason,
            index,
            conditions,
            placeholder_needs,
            resolve_from,
        })
    }

    /// Position of a field by code (today's code or a 2016-era one).
    /// The field holding the decision's document number (文书号): the key's text field.
    pub fn document_position(&self) -> Option<usize> {
        self.key
            .iter()
            .copied()
            .find(|&i| self.fields[i].ty == FieldType::Text)
    }

    /// The position of a field by its code.
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

    /// The field a credit-code placeholder needs beside it (the registration number).
    pub fn placeholder_needs(&self, i: usize) -> Option<usize> {
        self.placeholder_needs[i]
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

/// Uses a deployment's schema directory (`schema_dir` in the configuration) beside the
/// built-in definitions: the unverified rules of standards.md (required flags, lengths,
/// code lists) are defaults a province's interface document may change, and a province
/// may publish datasets this build does not know (say 行政强制 `xzqz`). Each
/// `<dataset>.toml` there replaces the built-in definition of that code or adds a new
/// dataset; the built-in ones it does not name stay.
pub fn install_dir(dir: &std::path::Path) -> Result<(), String> {
    let mut datasets: HashMap<String, Arc<Dataset>> = HashMap::new();
    for (code, text) in BUILT_IN {
        let ds = Dataset::parse(text).map_err(|e| format!("built-in {code}.toml: {e}"))?;
        datasets.insert(code.to_string(), Arc::new(ds));
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("schema_dir {}: cannot list it: {e}", dir.display()))?;
    let mut paths: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let ds = Dataset::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if ds.code != stem {
            return Err(format!(
                "{}: defines dataset {:?}; name the file {}.toml",
                path.display(),
                ds.code,
                ds.code
            ));
        }
        if !is_plain_code(&ds.code) {
            return Err(format!(
                "{}: dataset code {:?} must be lowercase letters, digits and _ (it names folders)",
                path.display(),
                ds.code
            ));
        }
        datasets.insert(ds.code.clone(), Arc::new(ds));
    }
    REGISTRY
        .set(Registry { datasets })
        .map_err(|_| "the schema was already in use when schema_dir was installed".to_string())
}

/// Whether a dataset code is safe in paths and batch ids.
fn is_plain_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 32
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Parses every built-in definition, reporting the first error with its file.
pub fn check_built_in() -> Result<(), String> {
    for (code, text) in BUILT_IN {
        Dataset::parse(text).map_err(|e| format!("pipeline/src/domain/schema/{code}.toml: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_schemas_parse() {
        check_built_in().unwrap();
        assert_eq!(
            registry().codes(),
            ["blacklist", "frjc", "redlist", "xycn", "xzcf", "xzxk"]
        );
    }
}
