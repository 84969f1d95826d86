//! What a platform is owed: the difference between the snapshot and the platform's
//! ledger. Every snapshot record whose version (or withdrawal) the ledger lacks becomes
//! a pending operation; so does the withdrawal of every record the platform holds that
//! left the snapshot. Deriving the work from snapshot versus ledger (rather than from
//! "what this run read") makes a crash anywhere harmless: the next run finds the same
//! difference. A rejected record is not owed again until its content (version) changes.

use crate::domain::identity::pack_id;
use crate::domain::schema::Dataset;
use crate::platform::contract::Op;
use crate::snapshot::{self, SnapshotError, SnapshotStore};
use crate::state::{LedgerEntry, LedgerStatus, Override, OverrideKind, PendingOp};
use arrow_array::Array;
use std::collections::HashMap;

/// Why a record is withdrawn when its publication period ended.
pub const REASON_EXPIRED: &str = "公示期满 (publication period ended)";
/// Why a list entry past its 移出日期 is withdrawn.
pub const REASON_EXIT: &str = "移出名单";

/// Why a record is withdrawn when it left the source.
pub const REASON_LEFT_SOURCE: &str = "数据源已撤销 (record left the source)";

/// The version a withdrawal of a record version is sent under.
pub fn withdrawal_version(version: &str) -> String {
    format!("w-{version}")
}

/// Why each overridden record of a dataset is withdrawn (record id → reason).
pub fn override_reasons(overrides: Vec<Override>) -> HashMap<String, String> {
    overrides
        .into_iter()
        .map(|o| {
            let why = match o.kind {
                OverrideKind::Hold => format!("异议处理中 (objection): {}", o.reason),
                OverrideKind::Withdraw => o.reason,
            };
            (o.record_id, why)
        })
        .collect()
}

/// The state a record should have upstream: its version, or its withdrawal.
fn desired(version: &str, withdraw_reason: Option<&String>) -> (Op, String) {
    match withdraw_reason {
        Some(_) => (Op::Withdraw, withdrawal_version(version)),
        None => (Op::Upsert, version.to_string()),
    }
}

/// Whether a record whose desired state is (`op`, `want`) must be sent, given what the
/// ledger says of it.
fn needed(op: Op, want: &str, entry: Option<&LedgerEntry>) -> bool {
    match entry {
        Some(e) if e.version == want => false, // acked, rejected, or already pending
        Some(e) if e.status == LedgerStatus::Sent => false, // in flight; resolved first
        None => op == Op::Upsert,              // never sent: nothing to withdraw
        Some(e) => {
            op == Op::Upsert
                || (e.op == Op::Upsert && e.status == LedgerStatus::Acked)
                || e.op == Op::Withdraw
        }
    }
}

/// Why a list entry whose 移出日期 is today or earlier is withdrawn: 移出名单, with its
/// 移出原因 when given.
pub fn exit_reason(
    ds: &Dataset,
    field: &dyn Fn(usize) -> Option<String>,
    today: chrono::NaiveDate,
) -> Option<String> {
    let date = ds.exit_date.and_then(field)?;
    let left = crate::mapping::transforms::parse_iso_date(date.trim())?;
    (left <= today).then(|| {
        match ds
            .exit_reason
            .and_then(field)
            .filter(|r| !r.trim().is_empty())
        {
            Some(why) => format!("{REASON_EXIT}：{}", why.trim()),
            None => REASON_EXIT.to_string(),
        }
    })
}

/// The operations one dataset's snapshot owes one platform, given its ledger, the
/// overrides in force (record id → reason) and today's date (for expired publication).
pub fn owed(
    store: &SnapshotStore,
    ds: &Dataset,
    ledger: &HashMap<String, LedgerEntry>,
    overrides: &HashMap<String, String>,
    today: chrono::NaiveDate,
) -> Result<Vec<PendingOp>, SnapshotError> {
    let mut owed: Vec<PendingOp> = Vec::new();
    let mut seen = crate::domain::identity::IdSet::default();
    let expired_reason = REASON_EXPIRED.to_string();
    let mut columns = vec!["record_id", "version", "source_unit"];
    for i in [
        ds.publication_end,
        ds.decision_date,
        ds.exit_date,
        ds.exit_reason,
    ]
    .into_iter()
    .flatten()
    {
        columns.push(ds.fields[i].code.as_str());
    }
    store.read_dataset(&ds.code, Some(&columns), |b| {
        let ids = snapshot::required_str_col(&b, "record_id")?;
        let vers = snapshot::required_str_col(&b, "version")?;
        let units = snapshot::required_str_col(&b, "source_unit")?;
        for i in 0..b.num_rows() {
            let id = ids.value(i);
            seen.insert(pack_id(id));
            let field = |f: usize| {
                let col = snapshot::str_col(&b, &ds.fields[f].code)?;
                col.is_valid(i).then(|| col.value(i).to_string())
            };
            let expired = ds.publication_ends(&field).is_some_and(|end| today > end);
            let exit = exit_reason(ds, &field, today);
            let reason = overrides.get(id).or(exit.as_ref()).or(if expired {
                Some(&expired_reason)
            } else {
                None
            });
            let (op, want) = desired(vers.value(i), reason);
            if needed(op, &want, ledger.get(id)) {
                owed.push(PendingOp {
                    record_id: id.to_string(),
                    source_unit: units.value(i).to_string(),
                    version: want,
                    op,
                    reason: reason.cloned(),
                });
            }
        }
        Ok(())
    })?;
    // Records the platform holds that left the snapshot are withdrawn.
    for (id, e) in ledger {
        if e.op == Op::Upsert && e.status == LedgerStatus::Acked && !seen.contains(&pack_id(id)) {
            owed.push(PendingOp {
                record_id: id.clone(),
                source_unit: e.source_unit.clone(),
                version: withdrawal_version(&e.version),
                op: Op::Withdraw,
                reason: Some(REASON_LEFT_SOURCE.into()),
            });
        }
    }
    Ok(owed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_entry_past_its_exit_date_is_withdrawn_with_its_reason() {
        let ds = crate::domain::schema::registry().get("blacklist").unwrap();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let (date, why) = (ds.exit_date.unwrap(), ds.exit_reason.unwrap());
        let entry = |left: &str, reason: &str| {
            let (left, reason) = (left.to_string(), reason.to_string());
            move |i: usize| {
                if i == date {
                    Some(left.clone())
                } else if i == why {
                    Some(reason.clone())
                } else {
                    None
                }
            }
        };
        assert_eq!(
            exit_reason(&ds, &entry("2026-11-30", "已履行"), today),
            Some("移出名单：已履行".to_string())
        );
        assert_eq!(
            exit_reason(&ds, &entry("2026-12-01", ""), today),
            Some("移出名单".to_string())
        );
        assert_eq!(exit_reason(&ds, &entry("2026-12-02", "x"), today), None);
        assert_eq!(exit_reason(&ds, &entry("", ""), today), None);
    }
}
