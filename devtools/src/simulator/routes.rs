//! The simulator's HTTP handlers: one per route of the contract, plus `/sim/stats`.

use super::{dropped, error, now_ms, ok_json, FaultKind, Held, Sim};
use axum::body::Bytes;
use axum::extract::{Path as AxPath, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use pipeline::platform::contract::{self, digest, HeldRecord, RecordPage, Summary};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub(super) async fn post_batch(
    State(sim): State<Arc<Sim>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.authenticate(&Method::POST, &uri, &headers, &body) {
        return r;
    }
    let key = headers
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let fault = sim.roll_fault();
    if fault.is_some() {
        sim.store.lock().expect("not poisoned").stats.faults += 1;
    }
    match fault {
        Some(FaultKind::RateLimit) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("Retry-After", "1"), ("Content-Type", "application/json")],
                json!({"error": {"code": "rate_limited", "message": "slow down"}}).to_string(),
            )
                .into_response();
        }
        Some(FaultKind::ErrorBefore) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "injected failure before applying",
            )
        }
        Some(FaultKind::DropBefore) => return dropped(),
        _ => {}
    }
    let ready_at = if fault == Some(FaultKind::Accepted) {
        now_ms() + sim.cfg.processing_ms as i64
    } else {
        0
    };
    let stored = match sim.apply(&key, &body, ready_at) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match fault {
        Some(FaultKind::ErrorAfter) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "injected failure after applying",
        ),
        Some(FaultKind::DropAfter) => dropped(),
        Some(FaultKind::Slow) => {
            tokio::time::sleep(std::time::Duration::from_millis(sim.cfg.slow_ms)).await;
            Sim::receipt_response(&stored)
        }
        _ => Sim::receipt_response(&stored),
    }
}

pub(super) async fn get_batch(
    State(sim): State<Arc<Sim>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    AxPath(id): AxPath<String>,
) -> Response {
    if let Err(r) = sim.authenticate(&Method::GET, &uri, &headers, b"") {
        return r;
    }
    if let Some(r) = sim.roll_read_fault() {
        return r;
    }
    let store = sim.store.lock().expect("not poisoned");
    match store.batches.get(&id) {
        Some(b) => {
            let mut r = Sim::receipt_response(b);
            if r.status() == StatusCode::ACCEPTED {
                *r.status_mut() = StatusCode::OK;
            }
            r
        }
        None => error(StatusCode::NOT_FOUND, "unknown_batch", "never received"),
    }
}

fn query_map(uri: &axum::http::Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The key of one reporting unit's holdings of one dataset, from the query string.
fn holding_group(q: &HashMap<String, String>) -> String {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    format!("{}|{}", get("dataset"), get("source_unit"))
}

pub(super) async fn get_records(
    State(sim): State<Arc<Sim>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim.authenticate(&Method::GET, &uri, &headers, b"") {
        return r;
    }
    if let Some(r) = sim.roll_read_fault() {
        return r;
    }
    let q = query_map(&uri);
    let group = holding_group(&q);
    let size: usize = q
        .get("page_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
        .clamp(1, 5000);
    let after = q.get("page_token").cloned().unwrap_or_default();
    let store = sim.store.lock().expect("not poisoned");
    let empty = BTreeMap::new();
    let held = store.records.get(&group).unwrap_or(&empty);
    let page: Vec<(&String, &Held)> = held
        .range::<String, _>((
            std::ops::Bound::Excluded(&after),
            std::ops::Bound::Unbounded,
        ))
        .take(size + 1)
        .collect();
    let more = page.len() > size;
    let records: Vec<HeldRecord> = page
        .iter()
        .take(size)
        .map(|(id, h)| HeldRecord {
            record_id: (*id).clone(),
            version: h.version.clone(),
            status: h.status.clone(),
            received_at: Some(h.received_at.clone()),
        })
        .collect();
    let next_page_token = if more {
        page.get(size - 1).map(|(id, _)| (*id).clone())
    } else {
        None
    };
    ok_json(
        StatusCode::OK,
        &RecordPage {
            records,
            next_page_token,
        },
    )
}

pub(super) async fn get_summary(
    State(sim): State<Arc<Sim>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim.authenticate(&Method::GET, &uri, &headers, b"") {
        return r;
    }
    if let Some(r) = sim.roll_read_fault() {
        return r;
    }
    let q = query_map(&uri);
    let group = holding_group(&q);
    let store = sim.store.lock().expect("not poisoned");
    let empty = BTreeMap::new();
    let held = store.records.get(&group).unwrap_or(&empty);
    let active = held
        .values()
        .filter(|h| h.status == contract::ACTIVE)
        .count() as u64;
    let d = digest(
        held.iter()
            .map(|(id, h)| (id.as_str(), h.version.as_str(), h.status.as_str())),
    );
    ok_json(
        StatusCode::OK,
        &Summary {
            active,
            withdrawn: held.len() as u64 - active,
            digest: d,
        },
    )
}

pub(super) async fn sim_stats(State(sim): State<Arc<Sim>>) -> Response {
    let store = sim.store.lock().expect("not poisoned");
    let held: usize = store.records.values().map(|m| m.len()).sum();
    let mut v = serde_json::to_value(&store.stats).expect("stats serialise");
    v["records_held"] = json!(held);
    v["platform"] = json!(sim.cfg.name);
    ok_json(StatusCode::OK, &v)
}
