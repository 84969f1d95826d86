//! The snapshot's copies of the records a report names: their department, subject,
//! document number and category, masked as they are read.

use super::*;

/// The field telling a natural person from an organisation (…_LB, ZTLB, CN_ZTLB).
pub(super) fn category_position(ds: &Dataset) -> Option<usize> {
    ds.fields
        .iter()
        .position(|f| f.code.ends_with("_LB") || f.code == "ZTLB" || f.code == "CN_ZTLB")
}

pub(super) fn subject_position(ds: &Dataset) -> Option<usize> {
    ds.fields.iter().position(|f| f.subject_name)
}

/// `Some(true)` for a natural person, `Some(false)` for an organisation, `None` unknown.
pub(super) fn natural_person(category: &str) -> Option<bool> {
    (!category.trim().is_empty()).then(|| category.trim() == NATURAL_PERSON)
}

/// A field's value for the report: identity numbers and natural persons' names masked
/// (a subject's name also when it is unknown whether the subject is a person).
pub(super) fn mask_field(ds: &Dataset, i: usize, value: &str, natural: Option<bool>) -> String {
    let f = &ds.fields[i];
    if value.is_empty() {
        String::new()
    } else if f.ty == FieldType::IdNumber {
        mask_id_number(value)
    } else if f.personal_name || (f.subject_name && natural != Some(false)) {
        mask_name(value)
    } else {
        mask_ids_in_text(value)
    }
}

/// A record's subject (masked) and document number.
pub(super) fn describe_record(
    ds: &Dataset,
    value_of: impl Fn(usize) -> String,
) -> (String, String) {
    let natural = category_position(ds).and_then(|i| natural_person(&value_of(i)));
    let subject = subject_position(ds)
        .map(|i| mask_field(ds, i, &value_of(i), natural))
        .unwrap_or_default();
    let document = ds
        .document_position()
        .map(|i| mask_ids_in_text(&value_of(i)))
        .unwrap_or_default();
    (subject, document)
}

// ---- snapshot ------------------------------------------------------------------------

pub(super) fn wanted_records(
    publications: &[Publication],
    rejections: &[LedgerRow],
    overrides: &[&OverrideHistory],
) -> BTreeMap<String, HashSet<String>> {
    let mut wanted: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    let mut want = |ds: &str, id: &str| {
        wanted
            .entry(ds.to_string())
            .or_default()
            .insert(id.to_string());
    };
    for p in publications {
        want(&p.dataset, &p.record_id);
    }
    for r in rejections {
        want(&r.dataset, &r.record_id);
    }
    for o in overrides {
        want(&o.entry.dataset, &o.entry.record_id);
    }
    wanted
}

/// Reads the wanted records' snapshot rows (memory follows the period, not the dataset).
pub(super) fn snapshot_rows(
    cx: &Context,
    wanted: BTreeMap<String, HashSet<String>>,
) -> anyhow::Result<SnapshotRows> {
    let mut out = SnapshotRows::new();
    for (code, ids) in wanted {
        let Some(ds) = registry().get(&code) else {
            continue;
        };
        cx.store.read_dataset(&code, None, |b| {
            let col = |n: &str| snapshot::str_col(&b, n);
            let Some(record_ids) = col("record_id") else {
                return Ok(());
            };
            let lines = snapshot::u64_col(&b, "source_line");
            let fields: Vec<Option<&StringArray>> =
                ds.fields.iter().map(|f| col(&f.code)).collect();
            for i in 0..b.num_rows() {
                if !ids.contains(record_ids.value(i)) {
                    continue;
                }
                let text = |a: Option<&StringArray>| {
                    a.filter(|a| !a.is_null(i))
                        .map(|a| a.value(i).to_string())
                        .unwrap_or_default()
                };
                let row = SnapRow {
                    feed: text(col("feed")),
                    source_unit: text(col("source_unit")),
                    source_file: text(col("source_file")),
                    source_line: lines.map(|l| l.value(i)).unwrap_or(0),
                    values: fields.iter().map(|a| text(*a)).collect(),
                };
                out.insert((code.clone(), record_ids.value(i).to_string()), row);
            }
            Ok(())
        })?;
    }
    Ok(out)
}

// ---- intake and quarantine -----------------------------------------------------------
