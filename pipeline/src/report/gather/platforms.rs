//! What each platform accepted, rejected, withdrew and still owes; red and black list
//! entries and exits; withdrawals by reason.

use super::*;
use crate::platform::contract::Op;
use crate::state::LedgerStatus;

/// The row of a platform, reporting unit and dataset, created empty when new.
pub(super) fn push_row<'a>(
    cx: &Context,
    rows: &'a mut PushRows,
    platform: &str,
    unit: &str,
    dataset: &str,
) -> &'a mut PushRow {
    let department = cx.department_of_unit(unit);
    rows.entry((platform.into(), department.clone(), dataset.into()))
        .or_insert_with(|| PushRow {
            platform: platform.into(),
            platform_title: cx.platform_title(platform),
            department,
            dataset: dataset.into(),
            dataset_name: OfficeReport::dataset_name(dataset),
            ..Default::default()
        })
}

pub(super) fn push_rows(
    cx: &Context,
    answered: &[LedgerCount],
    outstanding: &[OutstandingCount],
) -> Vec<PushRow> {
    let mut rows = PushRows::new();
    for l in answered {
        let r = push_row(cx, &mut rows, &l.platform, &l.source_unit, &l.dataset);
        match (l.status, l.op) {
            (LedgerStatus::Acked, Op::Withdraw) => r.withdrawn += l.records,
            (LedgerStatus::Acked, Op::Upsert) => r.accepted += l.records,
            _ => {
                r.rejected += l.records;
                let code = l.code.clone().unwrap_or_else(|| "?".into());
                *r.rejected_by_code.entry(code).or_default() += l.records;
            }
        }
    }
    for o in outstanding {
        push_row(cx, &mut rows, &o.platform, &o.source_unit, &o.dataset).pending += o.rows;
    }
    let mut out: Vec<PushRow> = rows.into_values().collect();
    out.sort_by_key(|r| {
        (
            cx.platform_order(&r.platform),
            r.platform.clone(),
            cx.department_order(&r.department),
            r.department.clone(),
            r.dataset.clone(),
        )
    });
    out
}

/// (dataset, unit, operation, distinct records) of the red and black lists.
type ListCount = (&'static str, String, Op, u64);

pub(super) fn list_change_rows(cx: &Context, counts: &[ListCount]) -> Vec<ListChangeRow> {
    let mut groups: BTreeMap<(usize, String, &str), ListChangeRow> = BTreeMap::new();
    for (dataset, unit, op, n) in counts {
        let department = cx.department_of_unit(unit);
        let key = (
            cx.department_order(&department),
            department.clone(),
            *dataset,
        );
        let row = groups.entry(key).or_insert_with(|| ListChangeRow {
            department,
            dataset: dataset.to_string(),
            dataset_name: OfficeReport::dataset_name(dataset),
            ..Default::default()
        });
        if *op == Op::Withdraw {
            row.exits += n;
        } else {
            row.entries += n;
        }
    }
    groups.into_values().collect()
}

pub(super) fn withdrawal_rows(cx: &Context, answered: &[LedgerCount]) -> Vec<WithdrawalRow> {
    // (platform order, platform, department order, department, dataset, reason)
    type Key = (usize, String, usize, String, String, String);
    let mut groups: BTreeMap<Key, WithdrawalRow> = BTreeMap::new();
    for l in answered
        .iter()
        .filter(|l| l.status == LedgerStatus::Acked && l.op == Op::Withdraw)
    {
        let department = cx.department_of_unit(&l.source_unit);
        let reason = l
            .reason
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            .map(mask_ids_in_text)
            .unwrap_or_else(|| "未注明".into());
        let key = (
            cx.platform_order(&l.platform),
            l.platform.clone(),
            cx.department_order(&department),
            department.clone(),
            l.dataset.clone(),
            reason.clone(),
        );
        let row = groups.entry(key).or_insert_with(|| WithdrawalRow {
            platform_title: cx.platform_title(&l.platform),
            department,
            dataset: l.dataset.clone(),
            reason,
            records: 0,
        });
        row.records += l.records;
    }
    groups.into_values().collect()
}

// ---- timeliness ----------------------------------------------------------------------
