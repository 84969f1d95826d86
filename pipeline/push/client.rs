//! The platforms' HTTP contract from the sender's side: signed requests, and a batch
//! POST that survives rate limits, 5xx, timeouts, dropped connections and 202s by
//! resending the same body under the same `Idempotency-Key` until a final answer or
//! the platform's time budget runs out.
//!
//! The retry classifier (which answers are worth another try) is kept apart from the
//! backoff (exponential with jitter, from `backon`), as in Vector's `RetryLogic`.

use crate::signing;
use backon::BackoffBuilder;
use serde::Deserialize;
use std::time::{Duration, Instant};

/// Settings of one platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// Short name used in the ledger and on the command line (`jiamusi`, `province`).
    pub name: String,
    /// Name for people (信用佳木斯).
    pub title: String,
    /// Base URL, e.g. `https://xyjms.example/`.
    pub base_url: String,
    /// The reporting unit's application id.
    pub app_id: String,
    /// The application secret, inline (demo only).
    #[serde(default)]
    pub secret: Option<String>,
    /// Environment variable holding the secret (production).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Per-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// How long one run may keep retrying this platform before leaving the rest pending.
    #[serde(default = "default_budget")]
    pub retry_budget_seconds: f64,
    /// Records per batch (the contract allows at most 500).
    #[serde(default = "default_batch_records")]
    pub batch_records: usize,
}

fn default_batch_records() -> usize {
    500
}

fn default_timeout() -> f64 {
    15.0
}

fn default_budget() -> f64 {
    120.0
}

impl PlatformConfig {
    /// The secret, from the environment or inline. Never logged.
    pub fn resolve_secret(&self) -> Result<String, String> {
        if let Some(var) = &self.secret_env {
            return std::env::var(var).map_err(|_| {
                format!(
                    "platform {}: environment variable {var} is not set",
                    self.name
                )
            });
        }
        self.secret.clone().ok_or_else(|| {
            format!(
                "platform {}: give `secret_env` (or `secret` for a demo)",
                self.name
            )
        })
    }
}

/// A per-record rejection in a receipt.
#[derive(Debug, Clone, Deserialize)]
pub struct RejectedRecord {
    /// Record id.
    pub record_id: String,
    /// Machine code.
    pub code: String,
    /// Human text.
    #[serde(default)]
    pub message: String,
}

/// A batch receipt.
#[derive(Debug, Clone, Deserialize)]
pub struct Receipt {
    /// Batch id.
    pub batch_id: String,
    /// `done` or `processing`.
    pub status: String,
    /// Records applied.
    #[serde(default)]
    pub accepted: u64,
    /// Records refused.
    #[serde(default)]
    pub rejected: Vec<RejectedRecord>,
}

/// How sending one batch ended.
#[derive(Debug)]
pub enum SendOutcome {
    /// A final receipt.
    Done {
        /// HTTP status of the answer that carried it.
        status: u16,
        /// The receipt.
        receipt: Receipt,
        /// Its raw text (kept in the state store).
        raw: String,
    },
    /// The platform refused the request itself (400, 401, 409, 413): resending won't help.
    Refused {
        /// HTTP status.
        status: u16,
        /// The answer's text (excerpt).
        answer: String,
    },
    /// No final answer within the budget: the outcome is unknown, the batch stays `sent`
    /// and is resent under the same key next run.
    Unresolved {
        /// The last thing that went wrong.
        last_error: String,
    },
}

/// Counters of what the wire did, for the summary and the fault tests.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct WireStats {
    /// HTTP requests made.
    pub requests: u64,
    /// Retries after 429.
    pub rate_limited: u64,
    /// Retries after 5xx.
    pub server_errors: u64,
    /// Retries after timeouts or lost connections.
    pub transport_errors: u64,
    /// Polls of 202 batches.
    pub polls: u64,
}

/// A signed HTTP client for one platform.
pub struct PlatformClient {
    /// The platform's settings.
    pub config: PlatformConfig,
    secret: String,
    http: reqwest::Client,
    /// What the wire did.
    pub stats: std::sync::Mutex<WireStats>,
}

enum Attempt {
    Final(SendOutcome),
    Processing,
    RetryAfter(Duration, String),
    Retry(String),
}

fn excerpt(s: &str) -> String {
    s.chars().take(300).collect()
}

impl PlatformClient {
    /// A client for a platform.
    pub fn new(config: PlatformConfig) -> Result<Self, String> {
        let secret = config.resolve_secret()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(config.timeout_seconds))
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(2)
            .build()
            .map_err(|e| format!("platform {}: {e}", config.name))?;
        Ok(PlatformClient {
            config,
            secret,
            http,
            stats: Default::default(),
        })
    }

    fn url(&self, path_q: &str) -> String {
        format!("{}{}", self.config.base_url.trim_end_matches('/'), path_q)
    }

    fn bump(&self, f: impl FnOnce(&mut WireStats)) {
        f(&mut self.stats.lock().expect("not poisoned"));
    }

    /// A signed request; `body` is sent as is.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path_q: &str,
        body: Option<&[u8]>,
        idempotency_key: Option<&str>,
    ) -> reqwest::Result<reqwest::Response> {
        let bytes = body.unwrap_or(b"");
        let mut req = self.http.request(method.clone(), self.url(path_q));
        for (k, v) in signing::auth_headers(
            &self.config.app_id,
            &self.secret,
            method.as_str(),
            path_q,
            bytes,
        ) {
            req = req.header(k, v);
        }
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_vec());
        }
        self.bump(|s| s.requests += 1);
        req.send().await
    }

    /// GET a JSON document (signed); errors are strings for the operator.
    pub async fn get_json(&self, path_q: &str) -> Result<serde_json::Value, String> {
        let resp = self
            .request(reqwest::Method::GET, path_q, None, None)
            .await
            .map_err(|e| format!("{}: GET {path_q}: {e}", self.config.name))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| format!("{}: GET {path_q}: {e}", self.config.name))?;
        if !status.is_success() {
            return Err(format!(
                "{}: GET {path_q}: {status}: {}",
                self.config.name,
                excerpt(&text)
            ));
        }
        serde_json::from_str(&text)
            .map_err(|e| format!("{}: GET {path_q}: not JSON: {e}", self.config.name))
    }

    async fn classify(&self, resp: reqwest::Result<reqwest::Response>) -> Attempt {
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                self.bump(|s| s.transport_errors += 1);
                return Attempt::Retry(format!("transport: {e}"));
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok());
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => {
                self.bump(|s| s.transport_errors += 1);
                return Attempt::Retry(format!(
                    "connection lost reading the answer ({status}): {e}"
                ));
            }
        };
        match status {
            200 => match serde_json::from_str::<Receipt>(&text) {
                Ok(r) if r.status == "done" => Attempt::Final(SendOutcome::Done {
                    status,
                    receipt: r,
                    raw: text,
                }),
                Ok(_) => Attempt::Processing,
                Err(e) => Attempt::Retry(format!("unreadable receipt: {e}")),
            },
            202 => Attempt::Processing,
            429 => {
                self.bump(|s| s.rate_limited += 1);
                Attempt::RetryAfter(
                    Duration::from_secs_f64(retry_after.unwrap_or(1.0).clamp(0.0, 300.0)),
                    "429 rate_limited".into(),
                )
            }
            500..=599 if status != 501 => {
                self.bump(|s| s.server_errors += 1);
                Attempt::Retry(format!("{status}: {}", excerpt(&text)))
            }
            _ => Attempt::Final(SendOutcome::Refused {
                status,
                answer: excerpt(&text),
            }),
        }
    }

    /// Sends one batch until a final answer or `deadline`. The same body and key are
    /// sent every time; each try is signed anew.
    pub async fn send_batch(&self, batch_id: &str, body: &[u8], deadline: Instant) -> SendOutcome {
        let mut backoff = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build();
        let mut processing = false;
        let mut last_error = String::from("no attempt made");
        loop {
            if Instant::now() >= deadline {
                return SendOutcome::Unresolved { last_error };
            }
            let attempt = if processing {
                self.bump(|s| s.polls += 1);
                let path = format!("/api/v1/batches/{batch_id}");
                let resp = self.request(reqwest::Method::GET, &path, None, None).await;
                match resp {
                    Ok(r) if r.status().as_u16() == 404 => {
                        // The platform does not know the batch after all: send it again.
                        processing = false;
                        Attempt::Retry("404 unknown_batch while polling".into())
                    }
                    other => self.classify(other).await,
                }
            } else {
                let resp = self
                    .request(
                        reqwest::Method::POST,
                        "/api/v1/batches",
                        Some(body),
                        Some(batch_id),
                    )
                    .await;
                self.classify(resp).await
            };
            let wait = match attempt {
                Attempt::Final(outcome) => return outcome,
                Attempt::Processing => {
                    processing = true;
                    last_error = "still processing (202)".into();
                    backoff.next().unwrap_or(Duration::from_secs(1))
                }
                Attempt::RetryAfter(d, why) => {
                    last_error = why;
                    d
                }
                Attempt::Retry(why) => {
                    last_error = why;
                    backoff.next().unwrap_or(Duration::from_secs(1))
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if wait >= left {
                tokio::time::sleep(left).await;
                return SendOutcome::Unresolved { last_error };
            }
            tokio::time::sleep(wait).await;
        }
    }
}
