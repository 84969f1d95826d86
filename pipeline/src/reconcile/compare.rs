//! Comparing one platform's holdings with the ledger, and queuing the repairs.

use super::{Difference, GroupResult, REASON_UNKNOWN};
use crate::platform::contract::{self, digest, Op};
use crate::platform::Platform;
use crate::push::plan::withdrawal_version;
use crate::state::{LedgerStatus, PendingOp, StateStore};
use std::collections::{BTreeMap, BTreeSet};

/// Reconciles one platform for the given datasets.
pub async fn reconcile_platform(
    platform: &dyn Platform,
    state: &StateStore,
    datasets: &[String],
) -> anyhow::Result<Vec<GroupResult>> {
    let name = &platform.config().name;
    let mut out = Vec::new();
    for ds in datasets {
        let ledger = state.ledger(name, ds).await?;
        let units: BTreeSet<String> = ledger.values().map(|e| e.source_unit.clone()).collect();
        for unit in units {
            // What the ledger says the platform holds: acknowledged rows.
            let mut expected: BTreeMap<&str, (String, &'static str)> = BTreeMap::new();
            let mut in_flight: BTreeSet<&str> = BTreeSet::new();
            for (id, e) in ledger.iter().filter(|(_, e)| e.source_unit == unit) {
                match e.status {
                    LedgerStatus::Acked => {
                        let status = match e.op {
                            Op::Withdraw => contract::WITHDRAWN,
                            Op::Upsert => contract::ACTIVE,
                        };
                        expected.insert(id.as_str(), (e.version.clone(), status));
                    }
                    LedgerStatus::Pending | LedgerStatus::Sent => {
                        in_flight.insert(id.as_str());
                    }
                    LedgerStatus::Rejected => {}
                }
            }
            let ledger_digest = digest(expected.iter().map(|(id, (v, s))| (*id, v.as_str(), *s)));
            let summary = platform.summary(ds, &unit).await?;
            let platform_digest = summary.digest.clone();
            let mut result = GroupResult {
                platform: name.clone(),
                dataset: ds.clone(),
                source_unit: unit.clone(),
                platform_digest: platform_digest.clone(),
                ledger_digest: ledger_digest.clone(),
                platform_active: summary.active,
                platform_withdrawn: summary.withdrawn,
                in_flight: in_flight.len() as u64,
                differences: Vec::new(),
            };
            if platform_digest != ledger_digest || !in_flight.is_empty() {
                let mut held: BTreeMap<String, (String, String)> = BTreeMap::new();
                let mut token = String::new();
                // A listing whose page token comes back again would never end.
                let mut tokens_seen: BTreeSet<String> = BTreeSet::new();
                loop {
                    let page = platform.list_records(ds, &unit, &token).await?;
                    for r in page.records {
                        held.insert(r.record_id, (r.version, r.status));
                    }
                    match page.next_page_token {
                        Some(t) if !t.is_empty() => {
                            if !tokens_seen.insert(t.clone()) {
                                anyhow::bail!(
                                    "{name}: the record listing of {ds} / {unit} returned page token {:?} twice; it would never end",
                                    t.chars().take(80).collect::<String>()
                                );
                            }
                            token = t;
                        }
                        _ => break,
                    }
                }
                let ids: BTreeSet<&str> = expected
                    .keys()
                    .copied()
                    .chain(held.keys().map(String::as_str))
                    .collect();
                for id in ids {
                    if in_flight.contains(id) {
                        continue;
                    }
                    let e = expected.get(id);
                    let p = held.get(id);
                    let kind = match (e, p) {
                        (Some(_), None) => "missing_upstream",
                        (None, Some(_)) => "unknown_upstream",
                        (Some((_, es)), Some((_, ps))) if *es != ps.as_str() => {
                            "withdrawn_one_side"
                        }
                        (Some((ev, _)), Some((pv, _))) if ev != pv => "version_differs",
                        _ => continue,
                    };
                    result.differences.push(Difference {
                        record_id: id.to_string(),
                        kind: kind.into(),
                        ledger_version: e.map(|x| x.0.clone()),
                        platform_version: p.map(|x| x.0.clone()),
                        ledger_status: e.map(|x| x.1.to_string()),
                        platform_status: p.map(|x| x.1.clone()),
                    });
                }
            }
            let json = serde_json::to_value(&result)?;
            state
                .record_reconciliation(name, ds, &unit, result.differences.len(), &json)
                .await?;
            out.push(result);
        }
    }
    Ok(out)
}

/// Queues repairs for the differences found: records the platform lost or holds at
/// another version or status are sent again (as the ledger has them); records it holds
/// but the city never sent are withdrawn.
pub async fn queue_repairs(state: &StateStore, groups: &[GroupResult]) -> anyhow::Result<usize> {
    let mut n = 0;
    for g in groups {
        let resend: Vec<String> = g
            .differences
            .iter()
            .filter(|d| d.kind != "unknown_upstream")
            .map(|d| d.record_id.clone())
            .collect();
        state.requeue(&g.platform, &g.dataset, &resend).await?;
        let withdraw: Vec<PendingOp> = g
            .differences
            .iter()
            .filter(|d| {
                d.kind == "unknown_upstream"
                    && d.platform_status.as_deref() == Some(contract::ACTIVE)
            })
            .map(|d| PendingOp {
                record_id: d.record_id.clone(),
                source_unit: g.source_unit.clone(),
                version: withdrawal_version(d.platform_version.as_deref().unwrap_or_default()),
                op: Op::Withdraw,
                reason: Some(REASON_UNKNOWN.into()),
            })
            .collect();
        state
            .mark_pending(&g.platform, &g.dataset, &withdraw)
            .await?;
        n += resend.len() + withdraw.len();
    }
    Ok(n)
}
