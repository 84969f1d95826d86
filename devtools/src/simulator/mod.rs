//! `xinyong simulate`: the platforms' contract (upstream-api.md) served on loopback,
//! with fault injection, so the demo and the tests run end to end with no outside
//! network. It validates records with the same schema files as the pipeline, and
//! speaks through the same contract types ([`pipeline::platform::contract`]) as the
//! product's client, so the two cannot drift.
//!
//! Faults (`--fault-rate`, `--faults`) hit `POST /api/v1/batches`: 429 with
//! Retry-After, 5xx before or after applying, answers slower than the client's
//! timeout, connections dropped before or after applying, and 202 (applied later).
//! `GET /sim/stats` (unsigned) reports how often a batch key was replayed and whether
//! anything was applied twice, for the fault tests.

// Handlers answer errors as ready-made responses; boxing them would only add noise.
#![allow(clippy::result_large_err)]

mod routes;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pipeline::domain::reasons::UpstreamCode;
use pipeline::domain::schema::{self, Dataset};
use pipeline::platform::contract::{
    self, signing, valid_id, BatchStatus, ErrorBody, Receipt, RejectedRecord,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// 429 with `Retry-After: 1`, nothing applied.
    RateLimit,
    /// 503 before applying.
    ErrorBefore,
    /// Applied, then 500.
    ErrorAfter,
    /// Applied, answered after `--slow-ms` (beyond a client's timeout).
    Slow,
    /// Connection dropped before applying.
    DropBefore,
    /// Applied, then the connection dropped before the answer.
    DropAfter,
    /// Applied asynchronously: 202, done after `--processing-ms`.
    Accepted,
}

/// All fault kinds.
pub const ALL_FAULTS: [FaultKind; 7] = [
    FaultKind::RateLimit,
    FaultKind::ErrorBefore,
    FaultKind::ErrorAfter,
    FaultKind::Slow,
    FaultKind::DropBefore,
    FaultKind::DropAfter,
    FaultKind::Accepted,
];

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Platform name (for logs).
    pub name: String,
    /// Application ids and their secrets.
    pub apps: HashMap<String, String>,
    /// Share of batch POSTs that meet a fault (0 to 1).
    pub fault_rate: f64,
    /// Which faults may be injected.
    pub faults: Vec<FaultKind>,
    /// Delay of a slow answer.
    pub slow_ms: u64,
    /// How long a 202 batch stays `processing`.
    pub processing_ms: u64,
    /// Seed of the fault dice (reproducible tests).
    pub seed: u64,
    /// Where holdings persist between restarts (JSON); in memory only when `None`.
    pub state_file: Option<PathBuf>,
    /// Records whose id starts with this prefix are rejected with `bad_value`, standing
    /// in for a provincial rule the city does not know (tests of per-record rejection).
    pub reject_prefix: Option<String>,
    /// Share of reads (summary, listing, batch polls) that meet a fault: 429, 503 or a
    /// dropped connection (0: none).
    pub read_fault_rate: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredBatch {
    body: Value,
    receipt: Receipt,
    ready_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Held {
    version: String,
    status: String,
    received_at: String,
    data: Value,
}

/// Counters the fault tests read from `/sim/stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SimStats {
    /// Batches applied (each at most once).
    pub batches_applied: u64,
    /// Record operations applied.
    pub records_applied: u64,
    /// Requests answered from a stored receipt (same key, same body).
    pub replays: u64,
    /// Upserts of a record already held at the same version from a *different* batch.
    pub same_version_upserts: u64,
    /// Faults injected.
    pub faults: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Store {
    batches: HashMap<String, StoredBatch>,
    /// `dataset|source_unit` → record id → holding.
    records: BTreeMap<String, BTreeMap<String, Held>>,
    stats: SimStats,
}

struct Sim {
    cfg: SimConfig,
    store: Mutex<Store>,
    nonces: Mutex<HashMap<String, i64>>,
    rng: Mutex<StdRng>,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    ok_json(status, &ErrorBody::new(code, message))
}

fn ok_json(status: StatusCode, v: &impl Serialize) -> Response {
    (
        status,
        [("Content-Type", "application/json")],
        serde_json::to_string(v).unwrap_or_default(),
    )
        .into_response()
}

/// A response whose body fails at once: the client sees the connection close.
fn dropped() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped by the simulator"))
    });
    Response::new(Body::from_stream(stream))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Sim {
    fn authenticate(
        &self,
        method: &Method,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Response> {
        let h = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (app, ts, nonce, sig) = (
            h("X-App-Id"),
            h("X-Timestamp"),
            h("X-Nonce"),
            h("X-Signature"),
        );
        let Some(secret) = self.cfg.apps.get(&app) else {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "unknown_app",
                "unknown application id",
            ));
        };
        let now = chrono::Utc::now().timestamp();
        match ts.parse::<i64>() {
            Ok(t) if (t - now).abs() <= 300 => {}
            _ => {
                return Err(error(
                    StatusCode::UNAUTHORIZED,
                    "stale_timestamp",
                    "timestamp too far from the server clock",
                ))
            }
        }
        if !signing::nonce_ok(&nonce) {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "bad_nonce",
                "nonce must be 16-64 characters of [A-Za-z0-9-]",
            ));
        }
        let path_q = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or(uri.path());
        if !signing::verify(secret, method.as_str(), path_q, &ts, &nonce, body, &sig) {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                "signature does not match",
            ));
        }
        let mut nonces = self.nonces.lock().expect("not poisoned");
        if nonces.len() > 10_000 {
            nonces.retain(|_, t| now - *t <= 600);
        }
        if nonces.get(&nonce).is_some_and(|t| now - *t <= 600) {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "replayed_nonce",
                "nonce already used",
            ));
        }
        nonces.insert(nonce, now);
        Ok(())
    }

    fn roll_fault(&self) -> Option<FaultKind> {
        if self.cfg.faults.is_empty() || self.cfg.fault_rate <= 0.0 {
            return None;
        }
        let mut rng = self.rng.lock().expect("not poisoned");
        if rng.random::<f64>() < self.cfg.fault_rate {
            let k = self.cfg.faults[rng.random_range(0..self.cfg.faults.len())];
            Some(k)
        } else {
            None
        }
    }

    /// The fault a read meets, if any: 429, 503 before answering, or a dropped
    /// connection.
    fn roll_read_fault(&self) -> Option<Response> {
        if self.cfg.read_fault_rate <= 0.0 {
            return None;
        }
        let mut rng = self.rng.lock().expect("not poisoned");
        if rng.random::<f64>() >= self.cfg.read_fault_rate {
            return None;
        }
        let kind = rng.random_range(0..3);
        drop(rng);
        self.store.lock().expect("not poisoned").stats.faults += 1;
        Some(match kind {
            0 => (
                StatusCode::TOO_MANY_REQUESTS,
                [("Retry-After", "0.2"), ("Content-Type", "application/json")],
                serde_json::to_string(&ErrorBody::new("rate_limited", "slow down"))
                    .unwrap_or_default(),
            )
                .into_response(),
            1 => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "injected failure of a read",
            ),
            _ => dropped(),
        })
    }

    fn persist(&self, store: &Store) {
        if let Some(path) = &self.cfg.state_file {
            let bytes = serde_json::to_vec(store).expect("the store serialises");
            if let Err(e) = pipeline::snapshot::write_atomic(path, &bytes) {
                tracing::error!(platform = %self.cfg.name, error = %e, "simulator cannot persist its holdings");
            }
        }
    }

    fn receipt_response(b: &StoredBatch) -> Response {
        if now_ms() >= b.ready_at_ms {
            ok_json(StatusCode::OK, &b.receipt)
        } else {
            ok_json(
                StatusCode::ACCEPTED,
                &json!({"batch_id": b.receipt.batch_id, "status": "processing"}),
            )
        }
    }

    /// Checks and applies a batch; returns the stored batch (or an error response).
    fn apply(&self, key: &str, body: &[u8], ready_at_ms: i64) -> Result<StoredBatch, Response> {
        let bad = |m: &str| error(StatusCode::BAD_REQUEST, "bad_request", m);
        if body.len() > contract::MAX_BODY_BYTES {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
                "body over 2 MiB",
            ));
        }
        let v: Value = serde_json::from_slice(body).map_err(|_| bad("body is not JSON"))?;
        if !valid_id(key, 64) {
            return Err(bad(
                "Idempotency-Key must be 1-64 characters of [A-Za-z0-9._-]",
            ));
        }
        let mut store = self.store.lock().expect("not poisoned");
        if let Some(prev) = store.batches.get(key).cloned() {
            if prev.body == v {
                store.stats.replays += 1;
                return Ok(prev);
            }
            return Err(error(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "this key was used with a different body",
            ));
        }
        let (Some(batch_id), Some(dataset), Some(unit), Some(records)) = (
            v["batch_id"].as_str(),
            v["dataset"].as_str(),
            v["source_unit"].as_str(),
            v["records"].as_array(),
        ) else {
            return Err(bad(
                "batch_id, dataset, source_unit and records are required",
            ));
        };
        if batch_id != key {
            return Err(bad("batch_id differs from the Idempotency-Key header"));
        }
        let Some(ds) = schema::registry().get(dataset) else {
            return Err(error(StatusCode::BAD_REQUEST, "unknown_dataset", dataset));
        };
        if pipeline::domain::ids::check_uscc(unit).is_err() {
            return Err(error(StatusCode::BAD_REQUEST, "bad_source_unit", unit));
        }
        if records.is_empty() || records.len() > contract::MAX_BATCH_RECORDS {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
                "1 to 500 records",
            ));
        }
        if !records.iter().all(record_has_contract_shape) {
            return Err(bad("a record is not {record_id, op, version, data}"));
        }
        let received_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let group = format!("{dataset}|{unit}");
        let mut accepted = 0u64;
        let mut rejected = Vec::new();
        let mut stats = std::mem::take(&mut store.stats);
        let held = store.records.entry(group).or_default();
        for r in records {
            let id = r["record_id"].as_str().expect("checked").to_string();
            let version = r["version"].as_str().expect("checked").to_string();
            if r["op"] == "withdraw" {
                match held.get_mut(&id) {
                    Some(h) => {
                        h.status = contract::WITHDRAWN.into();
                        h.version = version;
                        accepted += 1;
                    }
                    None => rejected.push(RejectedRecord {
                        record_id: id,
                        code: UpstreamCode::UnknownRecord.code().into(),
                        message: "withdraw of a record never held".into(),
                    }),
                }
                continue;
            }
            if self
                .cfg
                .reject_prefix
                .as_deref()
                .is_some_and(|p| id.starts_with(p))
            {
                rejected.push(RejectedRecord {
                    record_id: id,
                    code: UpstreamCode::BadValue.code().into(),
                    message: "simulated provincial rule".into(),
                });
                continue;
            }
            if let Err((code, message)) = check_record(&ds, &r["data"]) {
                rejected.push(RejectedRecord {
                    record_id: id,
                    code,
                    message,
                });
                continue;
            }
            accepted += 1;
            stats.records_applied += 1;
            match held.get_mut(&id) {
                Some(h) if h.version == version && h.status == contract::ACTIVE => {
                    stats.same_version_upserts += 1
                }
                Some(h) => {
                    h.version = version;
                    h.status = contract::ACTIVE.into();
                    h.data = r["data"].clone();
                }
                None => {
                    held.insert(
                        id,
                        Held {
                            version,
                            status: contract::ACTIVE.into(),
                            received_at: received_at.clone(),
                            data: r["data"].clone(),
                        },
                    );
                }
            }
        }
        stats.batches_applied += 1;
        store.stats = stats;
        let stored = StoredBatch {
            receipt: Receipt {
                batch_id: key.to_string(),
                status: BatchStatus::Done,
                accepted,
                rejected,
                received_at: Some(received_at),
            },
            body: v,
            ready_at_ms,
        };
        store.batches.insert(key.to_string(), stored.clone());
        self.persist(&store);
        Ok(stored)
    }
}

/// Whether a record of a batch has the contract's shape: `{record_id, op, version,
/// data}` with every data value a string or null (a withdrawal needs no data).
fn record_has_contract_shape(r: &Value) -> bool {
    r["record_id"].as_str().is_some_and(|s| valid_id(s, 64))
        && r["version"]
            .as_str()
            .is_some_and(|s| !s.is_empty() && s.len() <= 128)
        && matches!(r["op"].as_str(), Some("upsert") | Some("withdraw"))
        && (r["op"] == "withdraw"
            || r["data"]
                .as_object()
                .is_some_and(|d| d.values().all(|x| x.is_string() || x.is_null())))
}

/// The platform's own check of one record: the code of the first problem.
fn check_record(ds: &Dataset, data: &Value) -> Result<(), (String, String)> {
    let values: Vec<String> = ds
        .fields
        .iter()
        .map(|f| data[&f.code].as_str().unwrap_or("").to_string())
        .collect();
    ds.validate(&values).map_err(|v| {
        let f = &ds.fields[v.field];
        (
            v.reason.upstream().code().to_string(),
            format!("{} {}: {}", f.code, f.name, v.reason),
        )
    })
}

/// The simulator's routes.
pub fn router(cfg: SimConfig) -> Router {
    let store = cfg
        .state_file
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice::<Store>(&b).ok())
        .unwrap_or_default();
    let sim = Arc::new(Sim {
        rng: Mutex::new(StdRng::seed_from_u64(cfg.seed)),
        cfg,
        store: Mutex::new(store),
        nonces: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route(contract::BATCHES_PATH, post(routes::post_batch))
        .route(
            &format!("{}/{{id}}", contract::BATCHES_PATH),
            get(routes::get_batch),
        )
        .route(contract::RECORDS_PATH, get(routes::get_records))
        .route(contract::SUMMARY_PATH, get(routes::get_summary))
        .route("/sim/stats", get(routes::sim_stats))
        .with_state(sim)
}

/// A running simulator.
pub struct Running {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it and waits for it to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts a simulator on `addr` (port 0 picks a free port).
pub async fn start(cfg: SimConfig, addr: &str) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(cfg);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(Running { addr, stop, task })
}
