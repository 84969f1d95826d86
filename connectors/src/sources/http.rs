//! The HTTP JSON source: a department's API (e.g. a court's list of 失信被执行人) read
//! page by page — page number, offset/limit, or an opaque next-page cursor — with
//! retries and backoff on timeouts, connection errors, 429 (honouring `Retry-After`)
//! and 5xx. Any other 4xx stops the feed with the status and an excerpt of the body.
//!
//! Incremental: with `since_param` and `updated_field`, a run asks only for records
//! updated since the greatest update time the last recorded run saw. The parameter is
//! inclusive on most APIs, so records at that very time come again and deduplication
//! absorbs them. The token (from an environment variable) never appears in errors.

use super::Runtime;
use crate::header::normalise_header;
use crate::{ConnectorError, InputUnit, RawBatch, RawRow, ReadContext, Result, Source};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `[source] type = "http"` in a mapping file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Scheme, host and port, e.g. `https://api.court.example`.
    #[serde(default)]
    pub base_url: String,
    /// A file holding the base URL instead (relative to the configuration's base
    /// directory): for an address known only at run time, like the demo's court API.
    #[serde(default)]
    pub base_url_file: Option<PathBuf>,
    /// Path of the listing, e.g. `/api/v1/dishonest`.
    pub path: String,
    /// Fixed query parameters.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Environment variable holding a static token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// HMAC signing of `upstream-api.md` (departments reuse the platforms' scheme): the
    /// application id.
    #[serde(default)]
    pub hmac_app_id: Option<String>,
    /// Environment variable holding the HMAC application secret.
    #[serde(default)]
    pub hmac_secret_env: Option<String>,
    /// Header carrying the token.
    #[serde(default = "default_token_header")]
    pub token_header: String,
    /// Text put before the token in that header.
    #[serde(default = "default_token_prefix")]
    pub token_prefix: String,
    /// Dotted path of the records array in a response, e.g. `data.list`.
    pub records: String,
    /// How pages follow one another.
    pub pagination: Pagination,
    /// Query parameter asking for records updated since a time.
    #[serde(default)]
    pub since_param: Option<String>,
    /// Record field holding its update time (the incremental position is its maximum).
    #[serde(default)]
    pub updated_field: Option<String>,
    /// Attempts per request before the feed fails.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First backoff, doubled at each retry (capped at 30 s).
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Per-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// The longest answer read, in bytes (a longer one fails the feed).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

fn default_max_body_bytes() -> usize {
    64 * 1024 * 1024
}

/// Pagination styles.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// `?page=1&page_size=100`, until a page comes back short.
    Page {
        /// Page-number parameter.
        param: String,
        /// Page-size parameter.
        size_param: String,
        /// Records per page.
        size: usize,
        /// Number of the first page (usually 1).
        #[serde(default = "one")]
        first: u64,
    },
    /// `?offset=0&limit=100`, until a page comes back short.
    Offset {
        /// Offset parameter.
        offset_param: String,
        /// Limit parameter.
        limit_param: String,
        /// Records per page.
        limit: usize,
    },
    /// `?cursor=<token>`, the next token read from the response, until there is none.
    Cursor {
        /// Cursor parameter.
        param: String,
        /// Dotted path of the next token in a response.
        next: String,
    },
}

fn default_token_header() -> String {
    "Authorization".into()
}
fn default_token_prefix() -> String {
    "Bearer ".into()
}
fn default_attempts() -> u32 {
    6
}
fn default_backoff_ms() -> u64 {
    500
}
fn default_timeout() -> f64 {
    30.0
}
fn one() -> u64 {
    1
}

/// Where the next request starts.
enum Next {
    Page(u64),
    Offset(u64),
    Cursor(Option<String>),
    Done,
}

/// Reads one HTTP feed, a page per batch.
pub struct HttpSource {
    feed: String,
    cfg: HttpConfig,
    runtime: Runtime,
    client: reqwest::Client,
    token: Option<String>,
    /// HMAC application id and secret, when requests are signed.
    hmac: Option<(String, String)>,
    since: Option<String>,
    newest: Option<String>,
    next: Next,
    unit: Option<Arc<InputUnit>>,
    rows_read: u64,
}

impl HttpSource {
    /// Checks the configuration and takes up the stored position if any.
    pub fn new(mut cfg: HttpConfig, cx: &ReadContext) -> Result<Self> {
        let feed = cx.feed.clone();
        let config_error = |what: String| ConnectorError::Config(format!("feed {feed}: {what}"));
        if let Some(file) = &cfg.base_url_file {
            let path = cx.base_dir.join(file);
            cfg.base_url = std::fs::read_to_string(&path)
                .map_err(|e| {
                    config_error(format!(
                        "cannot read the base URL from {}: {e}",
                        path.display()
                    ))
                })?
                .trim()
                .to_string();
        }
        if cfg.base_url.is_empty() {
            return Err(config_error("give `base_url` or `base_url_file`".into()));
        }
        let token = match &cfg.token_env {
            None => None,
            Some(var) => Some(std::env::var(var).map_err(|_| {
                config_error(format!(
                    "environment variable {var} (the API token) is not set"
                ))
            })?),
        };
        let hmac = match (&cfg.hmac_app_id, &cfg.hmac_secret_env) {
            (Some(app), Some(var)) => Some((
                app.clone(),
                std::env::var(var).map_err(|_| {
                    config_error(format!(
                        "environment variable {var} (the HMAC secret) is not set"
                    ))
                })?,
            )),
            (None, None) => None,
            _ => {
                return Err(config_error(
                    "give both `hmac_app_id` and `hmac_secret_env`".into(),
                ))
            }
        };
        if !(cfg.timeout_seconds.is_finite()
            && cfg.timeout_seconds > 0.0
            && cfg.timeout_seconds <= 3600.0)
        {
            return Err(config_error(format!(
                "timeout_seconds = {} is not a number of seconds from 0 to 3600",
                cfg.timeout_seconds
            )));
        }
        let client = crate::wire::client_builder()
            .timeout(Duration::from_secs_f64(cfg.timeout_seconds))
            .build()
            .map_err(|e| config_error(format!("cannot build the HTTP client: {e}")))?;
        let runtime = Runtime::current_or_own()
            .map_err(|e| config_error(format!("cannot start a runtime: {e}")))?;
        let next = match &cfg.pagination {
            Pagination::Page { first, .. } => Next::Page(*first),
            Pagination::Offset { .. } => Next::Offset(0),
            Pagination::Cursor { .. } => Next::Cursor(None),
        };
        Ok(HttpSource {
            since: cx.position.clone(),
            newest: cx.position.clone(),
            feed,
            cfg,
            runtime,
            client,
            token,
            hmac,
            next,
            unit: None,
            rows_read: 0,
        })
    }

    fn fail(&self, message: String) -> ConnectorError {
        let message = match &self.token {
            Some(t) if !t.is_empty() => message.replace(t.as_str(), "***"),
            _ => message,
        };
        ConnectorError::Http {
            feed: self.feed.clone(),
            message,
        }
    }

    /// One GET with retries (the shared policy of [`crate::retry`]): the parsed JSON
    /// body. Timeouts, lost connections, 429 (after its `Retry-After`) and 5xx are
    /// retried; a redirect, another 4xx or an answer over the cap fail the feed.
    fn get(&self, params: &[(String, String)]) -> Result<Value> {
        let url = format!(
            "{}/{}",
            self.cfg.base_url.trim_end_matches('/'),
            self.cfg.path.trim_start_matches('/')
        );
        let policy = crate::retry::Backoff::attempts(
            self.cfg.max_attempts,
            Duration::from_millis(self.cfg.backoff_ms),
            Duration::from_secs(30),
        );
        let body = self
            .runtime
            .block_on(crate::retry::retry(&policy, |attempt| {
                self.attempt(&url, params, attempt)
            }))
            .map_err(|e| self.fail(format!("{url}: {e}")))?;
        serde_json::from_str(&body).map_err(|e| {
            self.fail(format!(
                "{url}: the response is not JSON ({e}): {}",
                excerpt(&body)
            ))
        })
    }

    /// One signed GET, and what its answer means.
    async fn attempt(
        &self,
        url: &str,
        params: &[(String, String)],
        attempt: u32,
    ) -> crate::retry::Verdict<String> {
        use crate::retry::Verdict;
        let mut req = self.client.get(url).query(params);
        if let Some((app, secret)) = &self.hmac {
            // Sign the path and query exactly as they will be sent.
            let built = match self.client.get(url).query(params).build() {
                Ok(b) => b,
                Err(e) => return Verdict::Fatal(e.to_string()),
            };
            let u = built.url();
            let path_q = match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            };
            for (k, v) in crate::signing::auth_headers(app, secret, "GET", &path_q, b"") {
                req = req.header(k, v);
            }
        }
        if let Some(t) = &self.token {
            req = req.header(
                self.cfg.token_header.as_str(),
                format!("{}{t}", self.cfg.token_prefix),
            );
        }
        let retry = |why: String, after: Option<Duration>| {
            tracing::warn!(feed = %self.feed, attempt, reason = %why, "HTTP request retried");
            Verdict::Retry { why, after }
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return retry(e.to_string(), None),
        };
        let status = resp.status();
        if status.is_redirection() {
            return Verdict::Fatal(crate::wire::redirect_refused(status, resp.headers()));
        }
        let after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::wire::retry_after(v, chrono::Utc::now()))
            .map(|d| d.min(Duration::from_secs(60)));
        let body = match crate::wire::read_capped(resp, self.cfg.max_body_bytes).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e @ crate::wire::BodyError::TooLong { .. }) => {
                return Verdict::Fatal(e.to_string())
            }
            Err(e) => return retry(e.to_string(), None),
        };
        match status.as_u16() {
            200..=299 => Verdict::Done(body),
            429 => retry(format!("HTTP {status}"), after),
            500..=599 => retry(format!("HTTP {status}: {}", excerpt(&body)), None),
            _ => Verdict::Fatal(format!("HTTP {status}: {}", excerpt(&body))),
        }
    }
}

/// The value at a dotted path (`data.list`).
fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(v, |v, key| v.get(key))
}

/// A JSON value as a file export's cell text.
fn cell_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn excerpt(body: &str) -> String {
    let mut s: String = body.chars().take(200).collect();
    if s.len() < body.len() {
        s.push('…');
    }
    s
}

impl Source for HttpSource {
    fn next_batch(&mut self) -> Result<Option<RawBatch>> {
        let mut params: Vec<(String, String)> = self
            .cfg
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let (Some(p), Some(since)) = (&self.cfg.since_param, &self.since) {
            params.push((p.clone(), since.clone()));
        }
        let page_size = match (&self.next, &self.cfg.pagination) {
            (Next::Done, _) => return Ok(None),
            (
                Next::Page(n),
                Pagination::Page {
                    param,
                    size_param,
                    size,
                    ..
                },
            ) => {
                params.push((param.clone(), n.to_string()));
                params.push((size_param.clone(), size.to_string()));
                Some(*size)
            }
            (
                Next::Offset(o),
                Pagination::Offset {
                    offset_param,
                    limit_param,
                    limit,
                },
            ) => {
                params.push((offset_param.clone(), o.to_string()));
                params.push((limit_param.clone(), limit.to_string()));
                Some(*limit)
            }
            (Next::Cursor(c), Pagination::Cursor { param, .. }) => {
                if let Some(c) = c {
                    params.push((param.clone(), c.clone()));
                }
                None
            }
            _ => unreachable!("the position matches the pagination"),
        };
        let body = self.get(&params)?;
        let records = at_path(&body, &self.cfg.records)
            .and_then(Value::as_array)
            .ok_or_else(|| {
                self.fail(format!(
                    "no records array at {:?} in a response",
                    self.cfg.records
                ))
            })?;
        let n = records.len() as u64;
        self.next = match (&self.next, &self.cfg.pagination, page_size) {
            (_, _, Some(size)) if records.len() < size || records.is_empty() => Next::Done,
            (Next::Page(p), _, _) => Next::Page(p + 1),
            (Next::Offset(o), _, _) => Next::Offset(o + n),
            (Next::Cursor(_), Pagination::Cursor { next, .. }, _) => {
                match at_path(&body, next).map(|v| cell_text(Some(v))) {
                    Some(t) if !t.is_empty() => Next::Cursor(Some(t)),
                    _ => Next::Done,
                }
            }
            _ => Next::Done,
        };
        if records.is_empty() {
            return Ok(None);
        }
        let first = records[0]
            .as_object()
            .ok_or_else(|| self.fail("a record is not a JSON object".into()))?;
        let keys: Vec<String> = first.keys().cloned().collect();
        let headers: Vec<String> = keys.iter().map(|k| normalise_header(k)).collect();
        let unit = match &self.unit {
            Some(u) if u.headers == headers => u.clone(),
            _ => {
                let u = Arc::new(InputUnit {
                    path: PathBuf::from(format!("http:{}", self.feed)),
                    bytes: None,
                    sha256: hex::encode(Sha256::digest(
                        format!(
                            "http\0{}\0{}{}",
                            self.feed, self.cfg.base_url, self.cfg.path
                        )
                        .as_bytes(),
                    )),
                    headers,
                    header_line: 0,
                    encoding: "json",
                });
                self.unit = Some(u.clone());
                u
            }
        };
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            let obj = r
                .as_object()
                .ok_or_else(|| self.fail("a record is not a JSON object".into()))?;
            if let Some(f) = &self.cfg.updated_field {
                let t = cell_text(obj.get(f));
                if !t.is_empty() && self.newest.as_ref().is_none_or(|n| t > *n) {
                    self.newest = Some(t);
                }
            }
            self.rows_read += 1;
            rows.push(RawRow::new(
                self.rows_read,
                keys.iter().map(|k| cell_text(obj.get(k))).collect(),
            ));
        }
        Ok(Some(RawBatch { unit, rows }))
    }

    fn completed(&self) -> Vec<Arc<InputUnit>> {
        Vec::new()
    }

    fn checkpoint(&self) -> Option<String> {
        self.newest.clone()
    }
}
