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

use crate::schema::Dataset;
use crate::snapshot::{self, SnapshotStore};
use crate::state::{Rejection, StateError, StateStore};
use arrow_array::Array;
use client::{PlatformClient, SendOutcome};
use std::collections::{BTreeMap, HashMap};
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
    let path = store.data_file(&ds.code);
    let ledger = state.ledger(name, &ds.code).await?;
    // Which snapshot records the platform lacks at their current version.
    let mut new_pending: Vec<(String, String, String)> = Vec::new();
    let mut to_send: HashMap<String, String> = HashMap::new();
    snapshot::read_batches(&path, Some(&["record_id", "version", "source_unit"]), |b| {
        let ids = snapshot::str_col(&b, "record_id").expect("record_id");
        let vers = snapshot::str_col(&b, "version").expect("version");
        let units = snapshot::str_col(&b, "source_unit").expect("source_unit");
        for i in 0..b.num_rows() {
            let (id, ver) = (ids.value(i), vers.value(i));
            match ledger.get(id) {
                Some(e) if e.version == ver && e.status != "pending" => {}
                Some(e) if e.version == ver => {
                    to_send.insert(id.to_string(), ver.to_string());
                }
                Some(e) if e.status == "sent" => {
                    // An older version is in flight without an answer; it is resolved first.
                }
                _ => {
                    new_pending.push((id.to_string(), units.value(i).to_string(), ver.to_string()));
                    to_send.insert(id.to_string(), ver.to_string());
                }
            }
        }
        Ok(())
    })?;
    if dry_run {
        report.pushed += to_send.len() as u64;
        return Ok(());
    }
    state.mark_pending(name, &ds.code, &new_pending).await?;
    if to_send.is_empty() {
        return Ok(());
    }
    // Second pass: the payloads of the records to send, batched per reporting unit.
    let mut builders: HashMap<String, BatchBuilder> = HashMap::new();
    let mut ready: Vec<BatchBuilder> = Vec::new();
    let mut pending_batches = Vec::new();
    snapshot::read_batches(&path, None, |b| {
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
            if to_send.get(id).map(String::as_str) != Some(vers.value(i)) {
                continue;
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
            let bytes = serde_json::to_vec(&rec).expect("a record serialises");
            let unit = units.value(i).to_string();
            let builder = builders
                .entry(unit.clone())
                .or_insert_with(|| BatchBuilder {
                    source_unit: unit.clone(),
                    records: Vec::new(),
                    ids: Vec::new(),
                    bytes: 0,
                });
            if builder.records.len() >= client.config.batch_records.clamp(1, MAX_BATCH_RECORDS)
                || builder.bytes + bytes.len() > MAX_BATCH_BYTES
            {
                let full = std::mem::replace(
                    builder,
                    BatchBuilder {
                        source_unit: unit.clone(),
                        records: Vec::new(),
                        ids: Vec::new(),
                        bytes: 0,
                    },
                );
                ready.push(full);
            }
            builder.bytes += bytes.len() + 1;
            builder.records.push(bytes);
            builder.ids.push(id.to_string());
        }
        pending_batches.append(&mut ready);
        Ok(())
    })?;
    let mut rest: Vec<BatchBuilder> = builders.into_values().collect();
    rest.sort_by(|a, b| a.source_unit.cmp(&b.source_unit));
    pending_batches.extend(rest);
    for b in pending_batches {
        if b.records.is_empty() {
            continue;
        }
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
