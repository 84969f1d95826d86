//! Pushing the snapshot upward. For each platform, the ledger says what it was sent
//! and what it acknowledged; the push sends exactly the difference between the current
//! snapshot and that ledger, in batches of at most 500 records and 2 MiB:
//!
//! 1. batches left `sent` by an earlier run (crash, timeout, unfinished 202) are resent
//!    byte for byte under their key, so the platform applies nothing twice;
//! 2. every snapshot record whose version the ledger lacks becomes `pending`;
//! 3. pending records are batched, each batch recorded as `sent` *before* it leaves,
//!    and closed with its receipt (`acked`, or `rejected` with the code).
//!
//! Deriving the work from snapshot versus ledger (rather than from "what this run
//! read") makes a crash anywhere harmless: the next run finds the same difference. A
//! rejected record is not resent until its content (version) changes.

pub mod client;

use crate::record::pack_id;
use crate::schema::Dataset;
use crate::snapshot::{self, SnapshotStore};
use crate::state::{PendingOp, Rejection, StateError, StateStore};
use arrow_array::Array;
use client::{PlatformClient, SendOutcome};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The contract's limits on one batch.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Body size kept under the contract's 2 MiB, with room for the envelope.
pub const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024 - 16 * 1024;

/// What one platform's push did in this run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PlatformReport {
    /// Platform name.
    pub platform: String,
    /// Title for people.
    pub title: String,
    /// Batches sent (including resent open batches).
    pub batches: u64,
    /// Records sent in those batches.
    pub pushed: u64,
    /// Records acknowledged.
    pub accepted: u64,
    /// Withdrawals sent (manual, holds, expired publication, records that left the source).
    pub withdrawn: u64,
    /// Records rejected, by code.
    pub rejected: BTreeMap<String, u64>,
    /// Records still pending or sent without a final answer after the run.
    pub pending: u64,
    /// What stopped the push of this platform early, if anything.
    pub error: Option<String>,
    /// What the wire did.
    pub wire: client::WireStats,
}

/// Errors that stop a platform's push.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Reading the snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] snapshot::SnapshotError),
    /// The platform left a batch unresolved or refused it.
    #[error("{0}")]
    Platform(String),
}

struct BatchBuilder {
    source_unit: String,
    records: Vec<Vec<u8>>,
    ids: Vec<String>,
    bytes: usize,
}

/// Pushes every dataset's snapshot to one platform.
pub async fn push_platform(
    client: &PlatformClient,
    state: &StateStore,
    store: &SnapshotStore,
    datasets: &[Arc<Dataset>],
    run_id: &str,
    dry_run: bool,
) -> PlatformReport {
    let name = client.config.name.clone();
    let mut report = PlatformReport {
        platform: name.clone(),
        title: client.config.title.clone(),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs_f64(client.config.retry_budget_seconds);
    let result = async {
        if !dry_run {
            for open in state.open_batches(&name).await? {
                tracing::info!(platform = %name, batch_id = %open.batch_id, "resending a batch left without a final answer");
                let n = serde_json::from_slice::<serde_json::Value>(&open.body)
                    .ok()
                    .and_then(|v| v["records"].as_array().map(|a| a.len() as u64))
                    .unwrap_or(0);
                send(client, state, &open.batch_id, &open.body, n, deadline, &mut report).await?;
            }
        }
        let mut seq = 0usize;
        for ds in datasets {
            if store.exists(&ds.code) {
                push_dataset(client, state, store, ds, run_id, &mut seq, deadline, dry_run, &mut report).await?;
            }
        }
        Ok::<(), PushError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(platform = %name, error = %e, "push stopped; the rest stays pending for the next run");
        report.error = Some(e.to_string());
    }
    if let Ok(counts) = state.status_counts(&name).await {
        report.pending =
            counts.get("pending").copied().unwrap_or(0) + counts.get("sent").copied().unwrap_or(0);
    }
    report.wire = client.stats.lock().expect("not poisoned").clone();
    report
}

/// Why a record is withdrawn when its publication period ended.
pub const REASON_EXPIRED: &str = "公示期满 (publication period ended)";

/// Today in China (UTC+8); `XINYONG_TODAY=YYYY-MM-DD` replaces it for tests and replays.
pub fn today() -> chrono::NaiveDate {
    if let Some(d) = std::env::var("XINYONG_TODAY")
        .ok()
        .and_then(|s| chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
    {
        return d;
    }
    let cst = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    chrono::Utc::now().with_timezone(&cst).date_naive()
}

/// Why a record is withdrawn when it left the source.
pub const REASON_LEFT_SOURCE: &str = "数据源已撤销 (record left the source)";

/// The state a record should have upstream: its version, or its withdrawal.
fn desired(version: &str, override_reason: Option<&String>) -> (&'static str, String) {
    match override_reason {
        Some(_) => ("withdraw", format!("w-{version}")),
        None => ("upsert", version.to_string()),
    }
}

/// Batches of record JSON per reporting unit, cut at the contract's limits.
struct Batcher {
    limit: usize,
    open: HashMap<String, BatchBuilder>,
    full: Vec<BatchBuilder>,
}

impl Batcher {
    fn add(&mut self, unit: &str, id: &str, bytes: Vec<u8>) {
        let builder = self
            .open
            .entry(unit.to_string())
            .or_insert_with(|| BatchBuilder {
                source_unit: unit.to_string(),
                records: Vec::new(),
                ids: Vec::new(),
                bytes: 0,
            });
        if builder.records.len() >= self.limit || builder.bytes + bytes.len() > MAX_BATCH_BYTES {
            let fresh = BatchBuilder {
                source_unit: unit.to_string(),
                records: Vec::new(),
                ids: Vec::new(),
                bytes: 0,
            };
            self.full.push(std::mem::replace(builder, fresh));
        }
        builder.bytes += bytes.len() + 1;
        builder.records.push(bytes);
        builder.ids.push(id.to_string());
    }

    fn finish(mut self) -> Vec<BatchBuilder> {
        let mut rest: Vec<BatchBuilder> = self.open.into_values().collect();
        rest.sort_by(|a, b| a.source_unit.cmp(&b.source_unit));
        self.full.extend(rest);
        self.full.retain(|b| !b.records.is_empty());
        self.full
    }
}

#[allow(clippy::too_many_arguments)]
async fn push_dataset(
    client: &PlatformClient,
    state: &StateStore,
    store: &SnapshotStore,
    ds: &Arc<Dataset>,
    run_id: &str,
    seq: &mut usize,
    deadline: Instant,
    dry_run: bool,
    report: &mut PlatformReport,
) -> Result<(), PushError> {
    let name = &client.config.name;
    let ledger = state.ledger(name, &ds.code).await?;
    let overrides: HashMap<String, String> = state
        .overrides(Some(&ds.code))
        .await?
        .into_iter()
        .map(|o| {
            let why = if o.kind == "hold" {
                format!("异议处理中 (objection): {}", o.reason)
            } else {
                o.reason
            };
            (o.record_id, why)
        })
        .collect();
    // What the platform lacks: records at a version (or a withdrawal) it has not acknowledged.
    let mut new_pending: Vec<PendingOp> = Vec::new();
    let mut seen: HashSet<[u8; 16]> = HashSet::new();
    let today = today();
    let expired_reason = REASON_EXPIRED.to_string();
    let mut columns = vec!["record_id", "version", "source_unit"];
    for i in [ds.publication_end, ds.decision_date].into_iter().flatten() {
        columns.push(ds.fields[i].code.as_str());
    }
    store.read_dataset(&ds.code, Some(&columns), |b| {
        let ids = snapshot::str_col(&b, "record_id").expect("record_id");
        let vers = snapshot::str_col(&b, "version").expect("version");
        let units = snapshot::str_col(&b, "source_unit").expect("source_unit");
        for i in 0..b.num_rows() {
            let id = ids.value(i);
            seen.insert(pack_id(id));
            let field = |f: usize| {
                let col = snapshot::str_col(&b, &ds.fields[f].code)?;
                col.is_valid(i).then(|| col.value(i).to_string())
            };
            let expired = ds.publication_ends(&field).is_some_and(|end| today > end);
            let reason = overrides
                .get(id)
                .or(if expired { Some(&expired_reason) } else { None });
            let (op, want) = desired(vers.value(i), reason);
            let needed = match ledger.get(id) {
                Some(e) if e.version == want => false, // acked, rejected, or already pending
                Some(e) if e.status == "sent" => false, // in flight; resolved first
                None => op == "upsert",                // never sent: nothing to withdraw
                Some(e) => {
                    op == "upsert"
                        || (e.op == "upsert" && e.status == "acked")
                        || e.op == "withdraw"
                }
            };
            if needed {
                new_pending.push(PendingOp {
                    record_id: id.to_string(),
                    source_unit: units.value(i).to_string(),
                    version: want,
                    op: op.to_string(),
                    reason: reason.cloned(),
                });
            }
        }
        Ok(())
    })?;
    // Records the platform holds that left the snapshot are withdrawn.
    for (id, e) in &ledger {
        if e.op == "upsert" && e.status == "acked" && !seen.contains(&pack_id(id)) {
            new_pending.push(PendingOp {
                record_id: id.clone(),
                source_unit: e.source_unit.clone(),
                version: format!("w-{}", e.version),
                op: "withdraw".into(),
                reason: Some(REASON_LEFT_SOURCE.into()),
            });
        }
    }
    if dry_run {
        let already = ledger.values().filter(|e| e.status == "pending").count();
        report.pushed += (new_pending.len() + already) as u64;
        return Ok(());
    }
    state.mark_pending(name, &ds.code, &new_pending).await?;
    let pending: HashMap<String, PendingOp> = state
        .pending(name, &ds.code)
        .await?
        .into_iter()
        .map(|p| (p.record_id.clone(), p))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let mut batcher = Batcher {
        limit: client.config.batch_records.clamp(1, MAX_BATCH_RECORDS),
        open: HashMap::new(),
        full: Vec::new(),
    };
    // Withdrawals need no payload.
    let mut withdrawals: Vec<&PendingOp> =
        pending.values().filter(|p| p.op == "withdraw").collect();
    withdrawals.sort_by(|a, b| a.record_id.cmp(&b.record_id));
    report.withdrawn += withdrawals.len() as u64;
    for p in withdrawals {
        let rec = serde_json::json!({"record_id": p.record_id, "op": "withdraw", "version": p.version, "reason": p.reason.clone().unwrap_or_default()});
        batcher.add(
            &p.source_unit,
            &p.record_id,
            serde_json::to_vec(&rec).expect("a record serialises"),
        );
    }
    // Upserts carry the snapshot's values.
    let mut ready: Vec<BatchBuilder> = Vec::new();
    store.read_dataset(&ds.code, None, |b| {
        let ids = snapshot::str_col(&b, "record_id").expect("record_id");
        let vers = snapshot::str_col(&b, "version").expect("version");
        let units = snapshot::str_col(&b, "source_unit").expect("source_unit");
        let fields: Vec<_> = ds
            .fields
            .iter()
            .map(|f| snapshot::str_col(&b, &f.code).expect("dataset field"))
            .collect();
        for i in 0..b.num_rows() {
            let id = ids.value(i);
            match pending.get(id) {
                Some(p) if p.op == "upsert" && p.version == vers.value(i) => {}
                _ => continue,
            }
            let mut data = serde_json::Map::new();
            for (f, col) in ds.fields.iter().zip(&fields) {
                let v = if col.is_valid(i) {
                    serde_json::Value::String(col.value(i).to_string())
                } else {
                    serde_json::Value::Null
                };
                data.insert(f.code.clone(), v);
            }
            let rec = serde_json::json!({"record_id": id, "op": "upsert", "version": vers.value(i), "data": data});
            batcher.add(
                units.value(i),
                id,
                serde_json::to_vec(&rec).expect("a record serialises"),
            );
        }
        ready.append(&mut batcher.full);
        Ok(())
    })?;
    ready.extend(batcher.finish());
    for b in ready {
        *seq += 1;
        let batch_id = format!("{run_id}-{name}-{}-{:05}", ds.code, seq);
        let mut body = Vec::with_capacity(b.bytes + 256);
        body.extend_from_slice(
            serde_json::json!({"batch_id": batch_id, "dataset": ds.code, "source_unit": b.source_unit})
                .to_string()
                .trim_end_matches('}')
                .as_bytes(),
        );
        body.extend_from_slice(b",\"records\":[");
        for (i, r) in b.records.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(r);
        }
        body.extend_from_slice(b"]}");
        state
            .open_batch(name, &batch_id, &ds.code, &b.source_unit, &body, &b.ids)
            .await?;
        crate::crashpoint::hit("push.batch_opened");
        send(
            client,
            state,
            &batch_id,
            &body,
            b.ids.len() as u64,
            deadline,
            report,
        )
        .await?;
    }
    Ok(())
}

async fn send(
    client: &PlatformClient,
    state: &StateStore,
    batch_id: &str,
    body: &[u8],
    records: u64,
    deadline: Instant,
    report: &mut PlatformReport,
) -> Result<(), PushError> {
    let name = &client.config.name;
    report.batches += 1;
    report.pushed += records;
    let outcome = client.send_batch(batch_id, body, deadline).await;
    crate::crashpoint::hit("push.batch_answered");
    match outcome {
        SendOutcome::Done { status, receipt, raw } => {
            let rejected: Vec<Rejection> = receipt
                .rejected
                .iter()
                .map(|r| Rejection {
                    record_id: r.record_id.clone(),
                    code: r.code.clone(),
                    message: r.message.clone(),
                })
                .collect();
            for r in &rejected {
                *report.rejected.entry(r.code.clone()).or_default() += 1;
            }
            report.accepted += receipt.accepted;
            state.close_batch(name, batch_id, status, &raw, &rejected).await?;
            crate::crashpoint::hit("push.batch_closed");
            tracing::debug!(platform = %name, %batch_id, accepted = receipt.accepted, rejected = rejected.len(), "batch done");
            Ok(())
        }
        SendOutcome::Refused { status, answer } => {
            state.fail_batch(name, batch_id, status, &answer).await?;
            Err(PushError::Platform(format!("batch {batch_id} refused with {status}: {answer}")))
        }
        SendOutcome::Unresolved { last_error } => Err(PushError::Platform(format!(
            "batch {batch_id} has no final answer within the retry budget ({last_error}); it will be resent under the same key"
        ))),
    }
}
