//! Legacy-code resolution through the legal-entity register (法人基础信息, dataset
//! `frjc`): a record that carries only an organization code or a 15-digit registration
//! number gets its credit code from the register when the register knows it. The
//! organization code is positions 9–17 of the credit code, so every registered credit
//! code answers for its organization code even where the register's own column is empty.
//! The register's feed is read first in a run, so the others resolve with it at once.

use super::RowProblem;
use crate::domain::ids;
use crate::domain::reasons::Reason;
use crate::domain::schema::FieldType;
use crate::mapping::Feed;
use std::borrow::Cow;
use std::collections::HashMap;

/// The register's dataset code.
pub const REGISTER_DATASET: &str = "frjc";

/// Organization code / registration number → credit code.
#[derive(Debug, Default, Clone)]
pub struct Register {
    by_org: HashMap<String, String>,
    by_regno: HashMap<String, String>,
}

fn org_key(v: &str) -> String {
    ids::normalise_code(v).replace('-', "")
}

impl Register {
    /// Adds one registered entity.
    pub fn insert(&mut self, code: &str, org: Option<&str>, regno: Option<&str>) {
        if code.len() == 18 {
            self.by_org
                .insert(code[8..17].to_string(), code.to_string());
        }
        if let Some(o) = org.filter(|o| !o.is_empty()) {
            self.by_org.insert(org_key(o), code.to_string());
        }
        if let Some(n) = regno.filter(|n| !n.is_empty()) {
            self.by_regno.insert(n.to_string(), code.to_string());
        }
    }

    /// Adds every entity of another register (a run's register feed over the stored one).
    pub fn merge(&mut self, other: Register) {
        self.by_org.extend(other.by_org);
        self.by_regno.extend(other.by_regno);
    }

    /// The credit code for an organization code, if registered.
    pub fn by_org_code(&self, org: &str) -> Option<&str> {
        self.by_org.get(&org_key(org)).map(String::as_str)
    }

    /// The credit code for a registration number, if registered.
    pub fn by_regno(&self, regno: &str) -> Option<&str> {
        self.by_regno.get(regno.trim()).map(String::as_str)
    }

    /// Entities known.
    pub fn len(&self) -> usize {
        self.by_org.len().max(self.by_regno.len())
    }

    /// Whether the register is empty.
    pub fn is_empty(&self) -> bool {
        self.by_org.is_empty() && self.by_regno.is_empty()
    }
}

/// The resolve stage of the map: applied to a mapped row before validation.
impl Feed {
    /// Fills a missing credit code (or the 个体工商户 placeholder) from the register, by
    /// the record's organization code or registration number. A required code that the
    /// register does not know is `uscc_unresolved`; natural persons need none.
    pub fn resolve_legacy(
        &self,
        values: &mut [Cow<'_, str>],
        register: Option<&Register>,
    ) -> Option<RowProblem> {
        let ds = &self.dataset;
        if let Some(p) = self.resolve_by_shape(values, register) {
            return Some(p);
        }
        self.move_representative_id(values);
        for (i, from) in ds.resolve_from.iter().enumerate() {
            let cur = values[i].as_ref();
            if from.is_empty() || !(cur.is_empty() || cur == ids::USCC_PLACEHOLDER) {
                continue;
            }
            let keys: Vec<usize> = from
                .iter()
                .copied()
                .filter(|j| !values[*j].is_empty())
                .collect();
            if keys.is_empty() {
                continue;
            }
            let found = register.and_then(|r| {
                keys.iter().find_map(|j| match ds.fields[*j].ty {
                    FieldType::OrgCode => r.by_org_code(&values[*j]),
                    FieldType::Regno => r.by_regno(&values[*j]),
                    _ => None,
                })
            });
            match found {
                Some(code) => values[i] = Cow::Owned(code.to_string()),
                None if values[i].is_empty() && ds.required(i, values) => {
                    return Some(RowProblem {
                        reason: Reason::UsccUnresolved,
                        field: ds.fields[i].code.clone(),
                        value: keys
                            .iter()
                            .map(|j| values[*j].as_ref())
                            .collect::<Vec<_>>()
                            .join(" "),
                    })
                }
                None => {}
            }
        }
        None
    }
}

impl Feed {
    /// In a list export the 证件号码 of an organisation's row is its legal
    /// representative's (an organisation has no identity card): it moves to the
    /// dataset's 法定代表人证件 fields when the dataset has them and they are empty.
    fn move_representative_id(&self, values: &mut [Cow<'_, str>]) {
        let Some(fields) = self.dataset.representative else {
            return;
        };
        let (category, own_no, rep_no) = (
            fields.category,
            fields.own_number,
            fields.representative_number,
        );
        let organisation = !values[category].is_empty()
            && values[category] != crate::domain::masking::NATURAL_PERSON;
        if !organisation || values[own_no].is_empty() || !values[rep_no].is_empty() {
            return;
        }
        values[rep_no] = std::mem::take(&mut values[own_no]);
        if let Some((own_ty, rep_ty)) = fields.types {
            if values[rep_ty].is_empty() {
                values[rep_ty] = std::mem::take(&mut values[own_ty]);
            }
        }
    }
}

/// What a credit-code column holds, by its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeShape {
    /// 18 characters: a credit code (checked by validation).
    CreditCode,
    /// 15 digits: a 工商注册号.
    Regno,
    /// 9 characters (or 8, a hyphen and 1) with a valid check: an organization code.
    OrgCode,
    /// Something else (validation says what is wrong).
    Other,
}

/// The shape of a code cell.
pub fn code_shape(v: &str) -> CodeShape {
    // Most codes are printable ASCII already: normalising would only upper-case them,
    // which changes neither their length nor their digits (a string a row saved).
    let n: Cow<'_, str> = if v.bytes().all(|b| b.is_ascii_graphic()) {
        Cow::Borrowed(v)
    } else {
        Cow::Owned(ids::normalise_code(v))
    };
    if n.len() == 18 {
        CodeShape::CreditCode
    } else if n.len() == 15 && n.bytes().all(|b| b.is_ascii_digit()) {
        CodeShape::Regno
    } else if (n.len() == 9 || (n.len() == 10 && n.as_bytes()[8] == b'-'))
        && ids::check_org_code(&n.to_ascii_uppercase()).is_ok()
    {
        CodeShape::OrgCode
    } else {
        CodeShape::Other
    }
}

impl Feed {
    /// A credit-code field holding a legacy code (a mixed column such as
    /// `统一社会信用代码/注册号`): the register gives the credit code, the legacy code goes
    /// to the dataset's own organization-code or registration-number field when it has
    /// an empty one; a legacy code the register does not know is `uscc_unresolved`.
    fn resolve_by_shape(
        &self,
        values: &mut [Cow<'_, str>],
        register: Option<&Register>,
    ) -> Option<RowProblem> {
        let ds = &self.dataset;
        for i in 0..ds.fields.len() {
            if ds.fields[i].ty != FieldType::Uscc || values[i].is_empty() {
                continue;
            }
            let shape = code_shape(&values[i]);
            let (legacy_ty, found) = match shape {
                CodeShape::Regno => (
                    FieldType::Regno,
                    register.and_then(|r| r.by_regno(&ids::normalise_code(&values[i]))),
                ),
                CodeShape::OrgCode => (
                    FieldType::OrgCode,
                    register.and_then(|r| r.by_org_code(&values[i])),
                ),
                _ => continue,
            };
            let legacy = values[i].to_string();
            match found {
                Some(code) => {
                    values[i] = Cow::Owned(code.to_string());
                    if let Some(j) = (0..ds.fields.len())
                        .find(|&j| ds.fields[j].ty == legacy_ty && values[j].is_empty())
                    {
                        values[j] = Cow::Owned(legacy);
                    }
                }
                None => {
                    return Some(RowProblem {
                        reason: Reason::UsccUnresolved,
                        field: ds.fields[i].code.clone(),
                        value: legacy,
                    })
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_code_column_is_read_by_its_shape() {
        assert_eq!(code_shape("91110000802100433B"), CodeShape::CreditCode);
        assert_eq!(code_shape("110108000673293"), CodeShape::Regno);
        assert_eq!(code_shape("80210043-3"), CodeShape::OrgCode);
        assert_eq!(code_shape("802100433"), CodeShape::OrgCode);
        assert_eq!(code_shape("12345"), CodeShape::Other);
    }

    use super::*;

    #[test]
    fn resolves_by_embedded_org_code_and_regno() {
        let mut r = Register::default();
        r.insert("91110000802100433B", None, Some("110108000673293"));
        assert_eq!(r.by_org_code("80210043-3"), Some("91110000802100433B"));
        assert_eq!(r.by_org_code("802100433"), Some("91110000802100433B"));
        assert_eq!(r.by_regno("110108000673293"), Some("91110000802100433B"));
        assert_eq!(r.by_org_code("12345678-9"), None);
    }
}
