//! Withdrawals and objection holds in the period, and the latest reconciliation per
//! platform, dataset and unit.

use super::*;
use crate::state::OverrideKind;

pub(super) fn overrides_in_period<'a>(
    history: &'a [OverrideHistory],
    from: &str,
    to: &str,
) -> Vec<&'a OverrideHistory> {
    history
        .iter()
        .filter(|h| {
            let at = h.entry.at.as_str();
            let created_in = at >= from && at < to;
            let hold_in_force = h.entry.kind == OverrideKind::Hold
                && at < to
                && h.released_at.as_deref().is_none_or(|r| r >= to);
            created_in || hold_in_force
        })
        .collect()
}

pub(super) fn override_rows(
    cx: &Context,
    overrides: &[&OverrideHistory],
    snapshot: &SnapshotRows,
    period: &PeriodInfo,
) -> Vec<OverrideRow> {
    overrides
        .iter()
        .map(|h| {
            let e = &h.entry;
            let since = china_date(&e.at);
            let released = h
                .released_at
                .as_deref()
                .filter(|r| *r < period.to.as_str())
                .and_then(china_date);
            let until = released.unwrap_or(period.as_of);
            let working_days = since.map(|s| cx.cal.working_days_between_estimated(s, until).value);
            let overdue = e.kind == OverrideKind::Hold
                && released.is_none()
                && working_days.is_some_and(|d| d > OBJECTION_DAYS as i64);
            let department = snapshot
                .get(&(e.dataset.clone(), e.record_id.clone()))
                .map(|s| cx.department_of_feed(&s.feed, &s.source_unit))
                .unwrap_or_else(|| "未知部门".into());
            OverrideRow {
                kind: e.kind.as_str().to_string(),
                kind_label: if e.kind == OverrideKind::Hold {
                    "异议暂停公示"
                } else {
                    "撤回"
                }
                .into(),
                department,
                dataset: e.dataset.clone(),
                record_id: e.record_id.clone(),
                reason: mask_ids_in_text(&e.reason),
                by_whom: mask_operator(&e.by_whom),
                since,
                working_days,
                released,
                outcome: h.outcome.clone().filter(|_| released.is_some()),
                overdue,
            }
        })
        .collect()
}

pub(super) fn reconciliation_summaries(
    cx: &Context,
    rows: &[ReconciliationRow],
) -> Vec<ReconciliationSummary> {
    let mut by_platform: BTreeMap<(usize, String), ReconciliationSummary> = BTreeMap::new();
    for r in rows {
        let s = by_platform
            .entry((cx.platform_order(&r.platform), r.platform.clone()))
            .or_insert_with(|| ReconciliationSummary {
                platform: r.platform.clone(),
                platform_title: cx.platform_title(&r.platform),
                at: String::new(),
                groups: 0,
                clean_groups: 0,
                differences: 0,
                by_kind: BTreeMap::new(),
                details: Vec::new(),
            });
        let result: serde_json::Value = serde_json::from_str(&r.result).unwrap_or_default();
        if r.at > s.at {
            s.at = r.at.clone();
        }
        s.groups += 1;
        s.clean_groups += (r.differences == 0) as u64;
        s.differences += r.differences;
        for d in result["differences"].as_array().into_iter().flatten() {
            let kind = d["kind"].as_str().unwrap_or("?").to_string();
            *s.by_kind.entry(kind).or_default() += 1;
        }
        s.details.push(ReconciliationGroup {
            dataset: r.dataset.clone(),
            department: cx.department_of_unit(&r.source_unit),
            at: r.at.clone(),
            platform_active: result["platform_active"].as_u64().unwrap_or(0),
            differences: r.differences,
        });
    }
    by_platform.into_values().collect()
}
