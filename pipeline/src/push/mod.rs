//! Pushing the snapshot upward. For each platform, the ledger says what it was sent
//! and what it acknowledged; the push sends exactly what it is owed ([`plan`]), in
//! batches within the platform's limits ([`batcher`]):
//!
//! 1. batches left `sent` by an earlier run (crash, timeout, unfinished 202) are resent
//!    byte for byte under their key, so the platform applies nothing twice;
//! 2. every owed operation becomes `pending`;
//! 3. pending records are batched, each batch recorded as `sent` *before* it leaves,
//!    delivered ([`crate::platform::delivery`]) and closed with its receipt (`acked`, or
//!    `rejected` with the code).

pub mod batcher;
pub mod plan;
pub mod receipt;

use crate::domain::schema::Dataset;
use crate::platform::contract::Op;
use crate::platform::contract::{OutgoingBatch, RecordOp};
use crate::platform::{delivery, Platform, SendOutcome, WireStats};
use crate::snapshot::{self, SnapshotStore};
use crate::state::{ClosedBatch, LedgerStatus, PendingOp, Rejection, StateError, StateStore};
use arrow_array::Array;
use batcher::{BatchBuilder, Batcher};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// What stopped the push of this platform early, or what it could not trust (a
    /// receipt that contradicts its batch or leaves records unconfirmed), if anything.
    pub error: Option<String>,
    /// Receipts that contradicted their batch or left records unconfirmed.
    #[serde(default)]
    pub untrusted_receipts: u64,
    /// The platform refused the requests themselves (密钥或配置错误: a wrong secret, a
    /// redirect, a protocol 4xx): the run exits 2.
    #[serde(default)]
    pub configuration_error: Option<String>,
    /// What the wire did.
    pub wire: WireStats,
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
    /// The platform left a batch unresolved.
    #[error("{0}")]
    Platform(String),
    /// The platform refused a request itself: a configuration or protocol error.
    #[error("{0}")]
    Configuration(String),
}

/// What every batch of one platform's push shares.
struct PushContext<'a> {
    platform: &'a dyn Platform,
    state: &'a StateStore,
    deadline: Instant,
}

/// Pushes every dataset's snapshot to one platform.
pub async fn push_platform(
    platform: &dyn Platform,
    state: &StateStore,
    store: &SnapshotStore,
    datasets: &[Arc<Dataset>],
    run_id: &str,
    dry_run: bool,
) -> PlatformReport {
    let config = platform.config();
    let name = config.name.clone();
    let mut report = PlatformReport {
        platform: name.clone(),
        title: config.title.clone(),
        ..Default::default()
    };
    let cx = PushContext {
        platform,
        state,
        deadline: Instant::now() + Duration::from_secs_f64(config.retry_budget_seconds),
    };
    let result = async {
        if !dry_run {
            for open in state.open_batches(&name).await? {
                tracing::info!(platform = %name, batch_id = %open.batch_id, "resending a batch left without a final answer");
                let ids = batch_record_ids(&open.body);
                send(&cx, &open.batch_id, &open.body, &ids, &mut report).await?;
            }
        }
        let mut seq = 0usize;
        for ds in datasets {
            if store.exists(&ds.code) {
                push_dataset(&cx, store, ds, run_id, &mut seq, dry_run, &mut report).await?;
            }
        }
        Ok::<(), PushError>(())
    }
    .await;
    match result {
        Err(PushError::Configuration(e)) => {
            tracing::error!(platform = %name, error = %e, "密钥或配置错误: the platform refuses our requests; fix the configuration");
            if !dry_run {
                if let Err(e) = state.set_platform_problem(&name, &e).await {
                    tracing::error!(platform = %name, error = %e, "cannot record the configuration error");
                }
            }
            report.configuration_error = Some(e.clone());
            note_error(&mut report, e);
        }
        Err(e) => {
            tracing::warn!(platform = %name, error = %e, "push stopped; the rest stays pending for the next run");
            note_error(&mut report, e.to_string());
        }
        Ok(()) if report.error.is_none() && !dry_run => {
            if let Err(e) = state.clear_platform_problem(&name).await {
                tracing::warn!(platform = %name, error = %e, "cannot clear the configuration error");
            }
        }
        Ok(()) => {}
    }
    if let Ok(owed) = state.owed(&name).await {
        report.pending = owed;
    }
    report.wire = platform.wire_stats();
    report
}

async fn push_dataset(
    cx: &PushContext<'_>,
    store: &SnapshotStore,
    ds: &Arc<Dataset>,
    run_id: &str,
    seq: &mut usize,
    dry_run: bool,
    report: &mut PlatformReport,
) -> Result<(), PushError> {
    let name = &cx.platform.config().name;
    let ledger = cx.state.ledger(name, &ds.code).await?;
    let overrides = plan::override_reasons(cx.state.overrides(Some(&ds.code)).await?);
    let owed = plan::owed(store, ds, &ledger, &overrides, crate::clock::today())?;
    if dry_run {
        let already = ledger
            .values()
            .filter(|e| e.status == LedgerStatus::Pending)
            .count();
        report.pushed += (owed.len() + already) as u64;
        return Ok(());
    }
    cx.state.mark_pending(name, &ds.code, &owed).await?;
    let pending: HashMap<String, PendingOp> = cx
        .state
        .pending(name, &ds.code)
        .await?
        .into_iter()
        .map(|p| (p.record_id.clone(), p))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let (max_records, max_bytes) = cx.platform.batch_limits();
    let mut batcher = Batcher::new(
        cx.platform.config().batch_records.clamp(1, max_records),
        max_bytes,
    );
    // Withdrawals need no payload.
    let mut withdrawals: Vec<&PendingOp> =
        pending.values().filter(|p| p.op == Op::Withdraw).collect();
    withdrawals.sort_by(|a, b| a.record_id.cmp(&b.record_id));
    report.withdrawn += withdrawals.len() as u64;
    for p in withdrawals {
        let rec = cx.platform.encode_record(&RecordOp {
            record_id: &p.record_id,
            op: Op::Withdraw,
            version: &p.version,
            data: None,
            reason: Some(p.reason.as_deref().unwrap_or_default()),
        });
        batcher.add(&p.source_unit, &p.record_id, rec);
    }
    // Upserts carry the snapshot's values.
    let mut ready: Vec<BatchBuilder> = Vec::new();
    // Partitions written before a field was added (`schema_dir`) read with it empty.
    let layout = snapshot::arrow_schema(ds);
    store.read_dataset(&ds.code, None, |b| {
        let b = snapshot::conform(&b, &layout)?;
        let ids = snapshot::required_str_col(&b, "record_id")?;
        let vers = snapshot::required_str_col(&b, "version")?;
        let units = snapshot::required_str_col(&b, "source_unit")?;
        let fields = ds
            .fields
            .iter()
            .map(|f| snapshot::required_str_col(&b, &f.code))
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..b.num_rows() {
            let id = ids.value(i);
            match pending.get(id) {
                Some(p) if p.op == Op::Upsert && p.version == vers.value(i) => {}
                _ => continue,
            }
            let data = ds
                .fields
                .iter()
                .zip(&fields)
                .map(|(f, col)| (f.code.as_str(), col.is_valid(i).then(|| col.value(i))))
                .collect();
            let rec = cx.platform.encode_record(&RecordOp {
                record_id: id,
                op: Op::Upsert,
                version: vers.value(i),
                data: Some(data),
                reason: None,
            });
            batcher.add(units.value(i), id, rec);
        }
        ready.append(&mut batcher.take_full());
        Ok(())
    })?;
    ready.extend(batcher.finish());
    // Several batches in flight (`max_in_flight`): each record is in one batch only
    // (the batcher takes each pending record once, and records still `sent` are not
    // owed again), so their order does not matter. Once one fails for good, no new
    // batch starts; those in flight finish.
    let stop = AtomicBool::new(false);
    let jobs: Vec<(String, BatchBuilder)> = ready
        .into_iter()
        .map(|b| {
            *seq += 1;
            (format!("{run_id}-{name}-{}-{:05}", ds.code, seq), b)
        })
        .collect();
    let stop = &stop;
    let mut results = futures_util::stream::iter(jobs)
        .map(|(batch_id, b)| async move {
            let mut tally = PlatformReport::default();
            if stop.load(Ordering::SeqCst) {
                return (tally, Ok(()));
            }
            let body = cx.platform.seal_batch(&OutgoingBatch {
                batch_id: &batch_id,
                dataset: &ds.code,
                source_unit: &b.source_unit,
                records: &b.records,
            });
            let sent = async {
                cx.state
                    .open_batch(name, &batch_id, &ds.code, &b.source_unit, &body, &b.ids)
                    .await?;
                crate::crashpoint::hit("push.batch_opened");
                send(cx, &batch_id, &body, &b.ids, &mut tally).await
            }
            .await;
            if sent.is_err() {
                stop.store(true, Ordering::SeqCst);
            }
            (tally, sent)
        })
        .buffer_unordered(cx.platform.config().max_in_flight.max(1));
    let mut first_error = None;
    while let Some((tally, sent)) = results.next().await {
        merge(report, tally);
        if let Err(e) = sent {
            first_error.get_or_insert(e);
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(())
}

/// Adds one batch's tally to the platform's report.
fn merge(report: &mut PlatformReport, tally: PlatformReport) {
    report.batches += tally.batches;
    report.pushed += tally.pushed;
    report.accepted += tally.accepted;
    report.untrusted_receipts += tally.untrusted_receipts;
    for (code, n) in tally.rejected {
        *report.rejected.entry(code).or_default() += n;
    }
    if let Some(e) = tally.error {
        tracing::warn!(platform = %report.platform, error = %e, "a batch not acknowledged");
        note_error(report, e);
    }
}

/// The record ids of a stored batch body (a batch left open by an earlier run).
fn batch_record_ids(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<crate::platform::contract::IncomingBatch>(body)
        .map(|b| {
            b.records
                .iter()
                .filter_map(|r| r["record_id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Notes something of this platform that is not right, for the run's report (exit 1).
fn note_error(report: &mut PlatformReport, e: String) {
    report.error = Some(match report.error.take() {
        Some(before) => format!("{before}; {e}"),
        None => e,
    });
}

/// Delivers one recorded batch, checks its receipt, and applies it to the ledger.
async fn send(
    cx: &PushContext<'_>,
    batch_id: &str,
    body: &[u8],
    ids: &[String],
    report: &mut PlatformReport,
) -> Result<(), PushError> {
    let name = &cx.platform.config().name;
    report.batches += 1;
    report.pushed += ids.len() as u64;
    let outcome = delivery::deliver(cx.platform, batch_id, body, cx.deadline).await;
    crate::crashpoint::hit("push.batch_answered");
    match outcome {
        SendOutcome::Done {
            status,
            receipt,
            raw,
        } => {
            let verdict = receipt::check(batch_id, ids, &receipt);
            if let receipt::ReceiptCheck::Contradicts(why) = &verdict {
                report.untrusted_receipts += 1;
                let excerpt: String = raw.chars().take(300).collect();
                cx.state
                    .fail_batch(name, batch_id, status, &raw, true)
                    .await?;
                note_error(
                    report,
                    format!("{name}: batch {batch_id}: protocol error: {why}; nothing of it is acknowledged, its records go again (receipt: {excerpt})"),
                );
                return Ok(());
            }
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
            let confirmed = verdict == receipt::ReceiptCheck::Confirmed;
            if let receipt::ReceiptCheck::Unconfirmed { accounted, sent } = verdict {
                report.untrusted_receipts += 1;
                note_error(
                    report,
                    format!("{name}: batch {batch_id}: the receipt accounts for {accounted} of {sent} records; the {} it does not confirm are not acknowledged and go again", sent - accounted),
                );
            } else {
                report.accepted += receipt.accepted;
            }
            let closed = ClosedBatch {
                http_status: status,
                raw: &raw,
                received_at: receipt.received_at.as_deref(),
                rejected: &rejected,
                confirmed,
            };
            cx.state.close_batch(name, batch_id, &closed).await?;
            crate::crashpoint::hit("push.batch_closed");
            tracing::debug!(platform = %name, %batch_id, accepted = receipt.accepted, rejected = rejected.len(), confirmed, "batch done");
            Ok(())
        }
        SendOutcome::Refused { status, answer } => {
            cx.state
                .fail_batch(name, batch_id, status, &answer, false)
                .await?;
            Err(PushError::Configuration(format!(
                "{name}: batch {batch_id} refused with {status}: {answer}"
            )))
        }
        SendOutcome::Unresolved { last_error } => Err(PushError::Platform(format!(
            "batch {batch_id} has no final answer within the retry budget ({last_error}); it will be resent under the same key"
        ))),
    }
}
