//! The v1 dialect (shared/upstream-api.md) over HTTP: signed requests, and what each
//! answer means — a receipt, still processing, come back later, worth another try, or a
//! refusal. Redirects are never followed (a 3xx is a refusal naming its `Location`),
//! every body is read through a cap, `Retry-After` is read as seconds or a date and
//! clamped. The retries around a batch are [`super::delivery`]'s; reads (summary,
//! listing) retry under the same policy ([`connectors::retry`]) within the platform's
//! budget.

use super::contract::{self, signing, Receipt, RecordPage, Summary};
use super::{Exchange, Platform, PlatformConfig, PlatformError, SendOutcome, WireStats};
use connectors::retry::{retry, Backoff, Verdict};
use connectors::wire;
use std::time::{Duration, Instant};

/// The longest receipt or listing page read; a longer answer is a protocol error.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// A signed HTTP client of one v1 platform.
pub struct HttpV1 {
    config: PlatformConfig,
    secret: String,
    http: reqwest::Client,
    stats: std::sync::Mutex<WireStats>,
}

fn excerpt(s: &str) -> String {
    s.chars().take(300).collect()
}

impl HttpV1 {
    /// A client for a platform.
    pub fn new(config: PlatformConfig) -> Result<Self, String> {
        let secret = config.resolve_secret()?;
        let http = wire::client_builder()
            .timeout(Duration::from_secs_f64(config.timeout_seconds))
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(2)
            .build()
            .map_err(|e| format!("platform {}: {e}", config.name))?;
        Ok(HttpV1 {
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
    async fn request(
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

    /// GET a JSON document (signed), retried under the shared policy within the
    /// platform's budget: transport faults, 429 and 5xx are tried again; a redirect,
    /// another status, an answer over the cap or not of the contract's form is final.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path_q: &str,
    ) -> Result<T, PlatformError> {
        let fail = |message: String| PlatformError {
            platform: self.config.name.clone(),
            request: format!("GET {path_q}"),
            message,
        };
        let deadline = Instant::now() + Duration::from_secs_f64(self.config.retry_budget_seconds);
        let text = retry(&Backoff::until(deadline), |_| async {
            let resp = self.request(reqwest::Method::GET, path_q, None, None).await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    self.bump(|s| s.transport_errors += 1);
                    return Verdict::Retry {
                        why: format!("transport: {}", connectors::wire::describe(&e)),
                        after: None,
                    };
                }
            };
            let status = resp.status();
            if status.is_redirection() {
                return Verdict::Fatal(wire::redirect_refused(status, resp.headers()));
            }
            let after = retry_after(&resp);
            let text = match wire::read_capped(resp, MAX_ANSWER_BYTES).await {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e @ wire::BodyError::TooLong { .. }) => return Verdict::Fatal(e.to_string()),
                Err(e) => {
                    self.bump(|s| s.transport_errors += 1);
                    return Verdict::Retry {
                        why: e.to_string(),
                        after: None,
                    };
                }
            };
            match status.as_u16() {
                200..=299 => Verdict::Done(text),
                429 => {
                    self.bump(|s| s.rate_limited += 1);
                    Verdict::Retry {
                        why: "429 rate_limited".into(),
                        after: Some(after.unwrap_or(Duration::from_secs(1))),
                    }
                }
                500..=599 if status.as_u16() != 501 => {
                    self.bump(|s| s.server_errors += 1);
                    Verdict::Retry {
                        why: format!("{status}: {}", excerpt(&text)),
                        after: None,
                    }
                }
                _ => Verdict::Fatal(format!("{status}: {}", excerpt(&text))),
            }
        })
        .await
        .map_err(|e| fail(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| fail(format!("not the contract's JSON: {e}")))
    }

    /// What an answer to a POST or a poll means.
    async fn classify(&self, resp: reqwest::Result<reqwest::Response>) -> Exchange {
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                self.bump(|s| s.transport_errors += 1);
                return Exchange::Retry(format!("transport: {}", connectors::wire::describe(&e)));
            }
        };
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            return Exchange::Final(SendOutcome::Refused {
                status,
                answer: wire::redirect_refused(resp.status(), resp.headers()),
            });
        }
        let retry_after = retry_after(&resp);
        let text = match wire::read_capped(resp, MAX_ANSWER_BYTES).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e @ wire::BodyError::TooLong { .. }) => {
                // The batch may or may not have been applied: its outcome is unknown, so
                // it goes again under the same key.
                return Exchange::Retry(format!("({status}) protocol error: {e}"));
            }
            Err(e) => {
                self.bump(|s| s.transport_errors += 1);
                return Exchange::Retry(format!("({status}) {e}"));
            }
        };
        match status {
            200 => match serde_json::from_str::<Receipt>(&text) {
                Ok(r) if r.status == contract::BatchStatus::Done => {
                    Exchange::Final(SendOutcome::Done {
                        status,
                        receipt: r,
                        raw: text,
                    })
                }
                Ok(_) => Exchange::Processing,
                Err(e) => Exchange::Retry(format!("unreadable receipt: {e}")),
            },
            202 => Exchange::Processing,
            429 => {
                self.bump(|s| s.rate_limited += 1);
                Exchange::RetryAfter(
                    retry_after.unwrap_or(Duration::from_secs(1)),
                    "429 rate_limited".into(),
                )
            }
            500..=599 if status != 501 => {
                self.bump(|s| s.server_errors += 1);
                Exchange::Retry(format!("{status}: {}", excerpt(&text)))
            }
            _ => Exchange::Final(SendOutcome::Refused {
                status,
                answer: excerpt(&text),
            }),
        }
    }
}

/// The wait an answer's `Retry-After` asks for (seconds or an HTTP date, clamped).
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| wire::retry_after(v, chrono::Utc::now()))
}

#[async_trait::async_trait]
impl Platform for HttpV1 {
    fn config(&self) -> &PlatformConfig {
        &self.config
    }

    async fn post_batch(&self, batch_id: &str, body: &[u8]) -> Exchange {
        let resp = self
            .request(
                reqwest::Method::POST,
                contract::BATCHES_PATH,
                Some(body),
                Some(batch_id),
            )
            .await;
        self.classify(resp).await
    }

    async fn poll_batch(&self, batch_id: &str) -> Exchange {
        self.bump(|s| s.polls += 1);
        let resp = self
            .request(
                reqwest::Method::GET,
                &contract::batch_path(batch_id),
                None,
                None,
            )
            .await;
        match resp {
            Ok(r) if r.status().as_u16() == 404 => Exchange::UnknownBatch,
            other => self.classify(other).await,
        }
    }

    async fn summary(&self, dataset: &str, source_unit: &str) -> Result<Summary, PlatformError> {
        self.get_json(&contract::summary_path(dataset, source_unit))
            .await
    }

    async fn list_records(
        &self,
        dataset: &str,
        source_unit: &str,
        page_token: &str,
    ) -> Result<RecordPage, PlatformError> {
        self.get_json(&contract::records_path(
            dataset,
            source_unit,
            contract::MAX_PAGE_SIZE,
            page_token,
        ))
        .await
    }

    fn wire_stats(&self) -> WireStats {
        self.stats.lock().expect("not poisoned").clone()
    }
}
