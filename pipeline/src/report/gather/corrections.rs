//! Intake per department and dataset, and the correction rows (退回整改): quarantined rows
//! and records the platforms rejected.

use super::*;

pub(super) fn intake_rows(cx: &Context, feed_runs: &[FeedRunRow]) -> Vec<IntakeRow> {
    let mut rows: BTreeMap<(usize, String, String), IntakeRow> = BTreeMap::new();
    for fr in feed_runs {
        let department = cx
            .feed(&fr.feed)
            .map(|f| f.department.clone())
            .unwrap_or_else(|| format!("未登记数据源 {}", fr.feed));
        let key = (
            cx.department_order(&department),
            department.clone(),
            fr.dataset.clone(),
        );
        let row = rows.entry(key).or_insert_with(|| IntakeRow {
            department,
            dataset: fr.dataset.clone(),
            dataset_name: OfficeReport::dataset_name(&fr.dataset),
            ..Default::default()
        });
        let c = &fr.counts;
        row.feed_runs += 1;
        row.failures += fr.error.is_some() as u64;
        row.collected += c.read;
        row.kept += c.kept;
        row.new += c.new;
        row.changed += c.changed;
        row.unchanged += c.unchanged;
        row.quarantined += c.quarantined;
        row.superseded += c.superseded;
        row.files_set_aside += fr.set_aside.len() as u64;
        for (reason, n) in &c.quarantined_by_reason {
            *row.quarantined_by_reason.entry(reason.clone()).or_default() += n;
        }
    }
    rows.into_values().collect()
}

/// The value of field `i` in a quarantined row's raw cells, through the feed's mapping
/// (the source column, trimmed, with the mapping's value lookup).
pub(super) fn raw_value(feed: Option<&Feed>, raw: &serde_json::Value, i: usize) -> String {
    let Some(rule) = feed.and_then(|f| f.rules.iter().find(|r| r.target == i)) else {
        return String::new();
    };
    let cell = match &rule.source {
        FieldSource::Column(c) => raw.get(c).and_then(|v| v.as_str()).unwrap_or(""),
        FieldSource::Value(v) => v.as_str(),
    }
    .trim()
    .to_string();
    rule.map.get(&cell).cloned().unwrap_or(cell)
}

/// One quarantined row as the quarantine file keeps it.
pub(super) struct Quarantined<'a> {
    run_id: &'a str,
    source_unit: &'a str,
    source_file: &'a str,
    source_line: u64,
    reason: &'a str,
    field: &'a str,
    value: &'a str,
    raw: serde_json::Value,
}

pub(super) fn quarantine_line(cx: &Context, fr: &FeedRunRow, q: Quarantined<'_>) -> CorrectionRow {
    let feed = cx.feed(&fr.feed);
    let ds = registry().get(&fr.dataset);
    let position = ds.as_ref().and_then(|d| d.position(q.field));
    let (subject, document, value, field_name) = match (&ds, position) {
        (Some(ds), pos) => {
            let value_of = |i: usize| raw_value(feed, &q.raw, i);
            let natural = category_position(ds).and_then(|i| natural_person(&value_of(i)));
            let (subject, document) = describe_record(ds, value_of);
            let value = match pos {
                Some(i) => mask_field(ds, i, q.value, natural),
                None => mask_ids_in_text(q.value),
            };
            let name = pos.map(|i| ds.fields[i].name.clone());
            (subject, document, value, name)
        }
        (None, _) => (
            String::new(),
            String::new(),
            mask_ids_in_text(q.value),
            None,
        ),
    };
    CorrectionRow {
        department: cx.department_of_feed(&fr.feed, q.source_unit),
        dataset: fr.dataset.clone(),
        dataset_name: OfficeReport::dataset_name(&fr.dataset),
        source: "本地校验未通过".into(),
        run_id: q.run_id.to_string(),
        source_file: q.source_file.to_string(),
        source_line: q.source_line,
        field: q.field.to_string(),
        field_name: field_name.unwrap_or_else(|| q.field.to_string()),
        value,
        subject,
        document_number: document,
        record_id: String::new(),
        reason_code: q.reason.to_string(),
        reason: crate::domain::reasons::quarantine_text(q.reason),
        platform_message: String::new(),
        first_seen: String::new(),
        working_days_open: None,
        resolved_at: String::new(),
    }
}

/// The files the period's runs set aside, one problem of the whole file each.
pub(super) fn set_aside_corrections(cx: &Context, feed_runs: &[FeedRunRow]) -> Vec<CorrectionRow> {
    let mut out = Vec::new();
    for fr in feed_runs {
        // A file that could not be read at all is one problem of the whole file.
        for (file, why) in &fr.set_aside {
            let name = std::path::Path::new(file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| file.clone());
            out.push(CorrectionRow {
                department: cx.department_of_feed(&fr.feed, ""),
                dataset: fr.dataset.clone(),
                dataset_name: OfficeReport::dataset_name(&fr.dataset),
                source: "文件无法读取".into(),
                run_id: fr.run_id.clone(),
                source_file: name.clone(),
                source_line: 0,
                field: String::new(),
                field_name: "（整个文件）".into(),
                value: String::new(),
                subject: String::new(),
                document_number: String::new(),
                record_id: String::new(),
                reason_code: "file_unreadable".into(),
                reason: format!(
                    "文件无法读取，本文件的数据均未入库（{}）。请检查文件（是否为空、是否为真正的Excel/CSV文件、是否有表头）后重新报送",
                    mask_ids_in_text(&why.replace(file.as_str(), &name))
                ),
                platform_message: String::new(),
                first_seen: String::new(),
                working_days_open: None,
                resolved_at: String::new(),
            });
        }
    }
    out
}

/// The quarantine's problems for a period ending at `to`: the open ones first seen
/// before it (each once, with when it was first seen and how many working days it
/// has been open) and the ones corrected within `[from, to)`.
pub(super) fn problem_corrections(
    cx: &Context,
    problems: &[crate::state::problems::Problem],
    from: &str,
    to: &str,
) -> (Vec<CorrectionRow>, Vec<CorrectionRow>) {
    let (mut open, mut resolved) = (Vec::new(), Vec::new());
    let end = crate::clock::china_date_of(to).unwrap_or_else(crate::clock::today);
    let end = end.min(crate::clock::today());
    for p in problems {
        if p.first_seen.as_str() >= to {
            continue;
        }
        let corrected_in_period = p
            .resolved_at
            .as_deref()
            .is_some_and(|r| r >= from && r < to);
        let still_open = p.status == "open" || p.resolved_at.as_deref().is_some_and(|r| r >= to);
        if !still_open && !corrected_in_period {
            continue;
        }
        let fr = FeedRunRow {
            run_id: p.last_run.clone(),
            feed: p.feed.clone(),
            dataset: p.dataset.clone(),
            error: None,
            counts: Default::default(),
            set_aside: Vec::new(),
        };
        let q = Quarantined {
            run_id: &p.last_run,
            source_unit: &p.source_unit,
            source_file: &p.file,
            source_line: p.line,
            reason: &p.reason,
            field: &p.field,
            value: &p.value,
            raw: serde_json::from_str(&p.raw).unwrap_or_default(),
        };
        let mut row = quarantine_line(cx, &fr, q);
        let first = crate::clock::china_date_of(&p.first_seen);
        row.first_seen = first.map(|d| d.to_string()).unwrap_or_default();
        let until = match (&p.resolved_at, still_open) {
            (Some(r), false) => crate::clock::china_date_of(r).unwrap_or(end),
            _ => end,
        };
        row.working_days_open =
            first.map(|f| cx.cal.working_days_between_estimated(f, until).value.max(0));
        if still_open {
            open.push(row);
        } else {
            row.resolved_at = p
                .resolved_at
                .as_deref()
                .and_then(crate::clock::china_date_of)
                .map(|d| d.to_string())
                .unwrap_or_default();
            resolved.push(row);
        }
    }
    (open, resolved)
}

/// Rejected records: where they came from (the snapshot) and the platform's reason.
pub(super) fn rejection_corrections(
    cx: &Context,
    rejections: &[LedgerRow],
    snapshot: &SnapshotRows,
) -> Vec<CorrectionRow> {
    rejections
        .iter()
        .map(|r| {
            let ds = registry().get(&r.dataset);
            let snap = snapshot.get(&(r.dataset.clone(), r.record_id.clone()));
            let message = r.message.clone().unwrap_or_default();
            let code = r.code.clone().unwrap_or_default();
            // The platform names the field first ("CF_XDR_SHXYM 统一社会信用代码: …").
            let position = ds.as_ref().and_then(|d| {
                let token = message.split_whitespace().next()?;
                d.position(token.trim_end_matches(':'))
            });
            let value_of = |i: usize| {
                snap.and_then(|s| s.values.get(i).cloned())
                    .unwrap_or_default()
            };
            let (subject, document) = ds
                .as_ref()
                .map(|d| describe_record(d, value_of))
                .unwrap_or_default();
            let (field, field_name, value) = match (&ds, position) {
                (Some(d), Some(i)) => {
                    let natural = category_position(d).and_then(|c| natural_person(&value_of(c)));
                    (
                        d.fields[i].code.clone(),
                        d.fields[i].name.clone(),
                        mask_field(d, i, &value_of(i), natural),
                    )
                }
                _ => (String::new(), String::new(), String::new()),
            };
            CorrectionRow {
                department: match snap {
                    Some(s) => cx.department_of_feed(&s.feed, &s.source_unit),
                    None => cx.department_of_unit(&r.source_unit),
                },
                dataset: r.dataset.clone(),
                dataset_name: OfficeReport::dataset_name(&r.dataset),
                source: format!("上级平台退回（{}）", cx.platform_title(&r.platform)),
                run_id: String::new(),
                source_file: snap
                    .map(|s| {
                        std::path::Path::new(&s.source_file)
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_else(|| s.source_file.clone())
                    })
                    .unwrap_or_default(),
                source_line: snap.map(|s| s.source_line).unwrap_or(0),
                field,
                field_name,
                value,
                subject,
                document_number: document,
                record_id: r.record_id.clone(),
                reason: crate::domain::reasons::rejection_text(&code),
                reason_code: code,
                platform_message: mask_ids_in_text(&message),
                first_seen: String::new(),
                working_days_open: None,
                resolved_at: String::new(),
            }
        })
        .collect()
}

// ---- platforms -----------------------------------------------------------------------

pub(super) type PushRows = HashMap<(String, String, String), PushRow>;
