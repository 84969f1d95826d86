//! The seam where data leaves the city: one trait, [`Platform`], through which the push
//! and reconcile talk to an upstream platform — send a batch, poll it, read the summary,
//! list the records held. Each dialect of the platforms' interface is one file
//! implementing it ([`http_v1`]: shared/upstream-api.md) and one [`Dialect`] variant;
//! [`contract`] holds the v1 wire types that the dialect and the built-in simulator
//! share; [`delivery`] owns the retries and backoff around one batch, apart from the
//! dialect's decision of what an answer means.

pub mod contract;
pub mod delivery;
pub mod http_v1;

use contract::{OutgoingBatch, RecordOp, RecordPage, Summary};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::time::Duration;

/// Which interface a platform speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// shared/upstream-api.md, v1 ([`http_v1`]).
    #[default]
    V1,
}

/// Settings of one platform (`[[platform]]` in the configuration).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// Short name used in the ledger and on the command line (`jiamusi`, `province`).
    pub name: String,
    /// Name for people (信用佳木斯).
    pub title: String,
    /// The interface it speaks (default `v1`).
    #[serde(default)]
    pub dialect: Dialect,
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
    /// Batches in flight at once (sent, their answer awaited), 1 to 32.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

fn default_max_in_flight() -> usize {
    4
}

fn default_batch_records() -> usize {
    contract::MAX_BATCH_RECORDS
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

    /// Checks the limits a configuration sets: a negative, NaN or absurd value is an
    /// error naming the platform and the key, before anything uses it.
    pub fn check_limits(&self) -> Result<(), String> {
        let seconds = |key: &str, v: f64, max: f64| {
            if v.is_finite() && v > 0.0 && v <= max {
                Ok(())
            } else {
                Err(format!(
                    "platform {}: {key} = {v} is not a number of seconds above 0 and at most {max}",
                    self.name
                ))
            }
        };
        seconds("timeout_seconds", self.timeout_seconds, 3600.0)?;
        seconds("retry_budget_seconds", self.retry_budget_seconds, 86_400.0)?;
        if !(1..=contract::MAX_BATCH_RECORDS).contains(&self.batch_records) {
            return Err(format!(
                "platform {}: batch_records = {} is not from 1 to {}",
                self.name,
                self.batch_records,
                contract::MAX_BATCH_RECORDS
            ));
        }
        if !(1..=32).contains(&self.max_in_flight) {
            return Err(format!(
                "platform {}: max_in_flight = {} is not from 1 to 32",
                self.name, self.max_in_flight
            ));
        }
        Ok(())
    }

    /// A client of this platform in its dialect.
    pub fn connect(&self) -> Result<Box<dyn Platform>, String> {
        self.check_limits()?;
        match self.dialect {
            Dialect::V1 => Ok(Box::new(http_v1::HttpV1::new(self.clone())?)),
        }
    }
}

/// How sending one batch ended.
#[derive(Debug)]
pub enum SendOutcome {
    /// A final receipt.
    Done {
        /// HTTP status of the answer that carried it.
        status: u16,
        /// The receipt.
        receipt: contract::Receipt,
        /// Its raw text (kept in the state store).
        raw: String,
    },
    /// The platform refused the request itself — a redirect, 400, 401, 403, 404, 409,
    /// 413, 501: resending won't help. A configuration or protocol error, loud: the run
    /// exits 2 and `status` shows it until a push to the platform succeeds.
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

/// What one exchange with a platform (a POST of a batch, or a poll) came to, as the
/// dialect reads the answer; [`delivery`] decides what to do next.
#[derive(Debug)]
pub enum Exchange {
    /// A final answer.
    Final(SendOutcome),
    /// Taken, still being applied: poll.
    Processing,
    /// The platform does not know the batch (a poll's 404): send it again.
    UnknownBatch,
    /// Come back after this long (429).
    RetryAfter(Duration, String),
    /// A fault worth another try after the backoff (5xx, timeout, lost connection).
    Retry(String),
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

/// A read from a platform that failed (reconcile's summary and listing).
#[derive(Debug, thiserror::Error)]
#[error("{platform}: {request}: {message}")]
pub struct PlatformError {
    /// The platform.
    pub platform: String,
    /// What was asked (`GET /api/v1/summary?…`).
    pub request: String,
    /// What went wrong.
    pub message: String,
}

/// One upstream platform, in whatever dialect it speaks. The required methods are one
/// exchange each; retries around a batch are [`delivery::deliver`]'s. The batch body's
/// encoding has default bodies for the v1 envelope, which a dialect may replace.
#[async_trait::async_trait]
pub trait Platform: Send + Sync {
    /// Its settings.
    fn config(&self) -> &PlatformConfig;

    /// Encodes one record operation as it stands in a batch body (its size counts
    /// against the body limit).
    fn encode_record(&self, op: &RecordOp<'_>) -> Box<RawValue> {
        contract::encode_record(op)
    }

    /// The exact body of a batch, stored before it leaves and resent byte for byte.
    fn seal_batch(&self, batch: &OutgoingBatch<'_>) -> Vec<u8> {
        contract::seal_batch(batch)
    }

    /// The most records and bytes one batch may hold.
    fn batch_limits(&self) -> (usize, usize) {
        (contract::MAX_BATCH_RECORDS, contract::MAX_BODY_BYTES)
    }

    /// Sends a batch once, under its key.
    async fn post_batch(&self, batch_id: &str, body: &[u8]) -> Exchange;

    /// Asks once for a batch's receipt.
    async fn poll_batch(&self, batch_id: &str) -> Exchange;

    /// The summary of what the platform holds of one dataset from one reporting unit.
    async fn summary(&self, dataset: &str, source_unit: &str) -> Result<Summary, PlatformError>;

    /// One page of what the platform holds (`page_token` empty for the first).
    async fn list_records(
        &self,
        dataset: &str,
        source_unit: &str,
        page_token: &str,
    ) -> Result<RecordPage, PlatformError>;

    /// What the wire did so far.
    fn wire_stats(&self) -> WireStats;
}
