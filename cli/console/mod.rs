//! `xinyong serve`'s web console: a read-only page in Chinese over the state store (the
//! feeds, the platforms, open corrections per department, holds, the latest
//! reconciliation, the next scheduled runs) with links to the office reports, served by
//! the binary itself. Nothing is loaded from elsewhere: no script, font or style.
//!
//! Only `GET`: the console changes nothing. A token, when set, is required on every
//! request: `Authorization: Bearer TOKEN`, or `?token=TOKEN` once, which sets a
//! same-site cookie and redirects to the address without it.

mod page;
mod view;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use pipeline::config::Config;
use pipeline::state::StateStore;
use std::sync::Arc;

/// The cookie a browser keeps the token in after `?token=`.
const COOKIE: &str = "xinyong_console";

/// What every request reads.
pub struct Console {
    /// The deployment.
    pub config: Config,
    /// Its state store (SQLite in WAL mode: reading beside `xinyong schedule` is fine).
    pub state: StateStore,
    /// The token requests must carry, if one is set.
    pub token: Option<String>,
}

/// The console's routes.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/status.json", get(status_json))
        .route("/reports/{period}/{file}", get(report_file))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(console)
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Whether a request may read: no token set, or the right one in the header or cookie.
fn authorized(token: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(token) = token else {
        return true;
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='));
    bearer
        .into_iter()
        .chain(cookie)
        .any(|given| same_secret(given, token))
}

/// Compares a given token with the set one in time independent of where they differ.
fn same_secret(given: &str, token: &str) -> bool {
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The gate before every page: `None` to go on, or the answer to give instead.
fn gate(
    console: &Console,
    headers: &HeaderMap,
    query: &TokenQuery,
    path: &str,
) -> Option<Response> {
    if let (Some(given), Some(token)) = (&query.token, &console.token) {
        if same_secret(given, token) {
            let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
            let mut r = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, path.to_string())],
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            return Some(r);
        }
    }
    if authorized(console.token.as_deref(), headers) {
        return None;
    }
    Some(
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "需要令牌 token required: open the address with ?token=… or send Authorization: Bearer …\n",
        )
            .into_response(),
    )
}

/// Headers every answer of the console carries: nothing cached, nothing loaded from
/// elsewhere, nothing sniffed.
fn guarded(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn failure(e: anyhow::Error) -> Response {
    let why = pipeline::domain::masking::mask_ids_in_text(&connectors::wire::describe(e.as_ref()));
    tracing::error!(error = %why, "console: cannot read the state");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("无法读取运行状态 cannot read the state: {why}\n"),
    )
        .into_response()
}

async fn home(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    if let Some(r) = gate(&console, &headers, &query, "/") {
        return guarded(r);
    }
    guarded(match view::gather(&console.config, &console.state).await {
        Ok(v) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page::render(&v),
        )
            .into_response(),
        Err(e) => failure(e),
    })
}

async fn status_json(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    if let Some(r) = gate(&console, &headers, &query, "/status.json") {
        return guarded(r);
    }
    let config = &console.config;
    guarded(
        match pipeline::orchestrate::status::gather(config, &console.state).await {
            Ok(s) => (
                [(header::CONTENT_TYPE, "application/json")],
                crate::commands::status::json(&config.state, &s).to_string(),
            )
                .into_response(),
            Err(e) => failure(e),
        },
    )
}

/// An office report's page or workbook (`report.html`, `report.xlsx`: masked as
/// written); the correction workbooks, which carry departments' full values, are not
/// served.
async fn report_file(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    Path((period, file)): Path<(String, String)>,
) -> Response {
    let here = format!("/reports/{period}/{file}");
    if let Some(r) = gate(&console, &headers, &query, &here) {
        return guarded(r);
    }
    let kind = match file.as_str() {
        "report.html" => "text/html; charset=utf-8",
        "report.xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => return guarded(StatusCode::NOT_FOUND.into_response()),
    };
    if !view::is_report_period(&period) {
        return guarded(StatusCode::NOT_FOUND.into_response());
    }
    let path = console
        .config
        .data_dir
        .join("reports")
        .join(&period)
        .join(&file);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let disposition = if file.ends_with(".xlsx") {
                format!("attachment; filename=\"xinyong-{period}.xlsx\"")
            } else {
                "inline".to_string()
            };
            let mut r = ([(header::CONTENT_TYPE, kind)], bytes).into_response();
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            guarded(r)
        }
        Err(_) => guarded(StatusCode::NOT_FOUND.into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_secret("s3cret-token", "s3cret-token"));
        assert!(!same_secret("s3cret-toke", "s3cret-token"));
        assert!(!same_secret("", "s3cret-token"));
        assert!(!same_secret("s3cret-tokex", "s3cret-token"));
    }

    #[test]
    fn the_token_is_read_from_the_header_or_the_cookie() {
        let token = Some("abcdefghijklmnop");
        assert!(authorized(None, &HeaderMap::new()));
        assert!(!authorized(token, &HeaderMap::new()));
        let bearer = headers(&[(header::AUTHORIZATION, "Bearer abcdefghijklmnop")]);
        assert!(authorized(token, &bearer));
        let cookie = headers(&[(header::COOKIE, "a=b; xinyong_console=abcdefghijklmnop")]);
        assert!(authorized(token, &cookie));
        let wrong = headers(&[(header::COOKIE, "xinyong_console=abcdefghijklmnoq")]);
        assert!(!authorized(token, &wrong));
        let other = headers(&[(header::COOKIE, "xinyong_consoleX=abcdefghijklmnop")]);
        assert!(!authorized(token, &other));
    }
}
