//! The HTTP JSON source against a local court API listing 失信被执行人: it pages, throttles
//! (429 with Retry-After), fails now and then (500), and changes records between runs.
//! Checks: every record once, retries absorbed, values as strings, the incremental
//! parameter on the next run, and a 401 that stops the feed without showing the token.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use connectors::sources::http::{HttpConfig, HttpSource, Pagination};
use connectors::{ReadContext, Source};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "court-token-7f3a";

/// The court's list and how many requests it has seen.
#[derive(Default)]
struct Court {
    records: Vec<Value>,
    requests: u64,
    throttled: u64,
    failed: u64,
}

fn record(i: u64, updated: &str) -> Value {
    let company = i.is_multiple_of(3);
    json!({
        "caseCode": format!("（2024）黑0881执{}号", 100 + i),
        "iname": if company { format!("同江市第{i}建筑工程有限公司") } else { format!("张某{i}") },
        "cardNum": if company { Value::from(format!("91230881MA{:08}", i)) } else { Value::from(format!("2308811980********{:02}", i % 100)) },
        "age": if company { Value::Null } else { Value::from(30 + i) },
        "businessEntity": if company { Value::from("李某") } else { Value::Null },
        "courtName": "同江市人民法院",
        "gistId": format!("（2023）黑0881民初{}号", 500 + i),
        "regDate": "2024-01-15",
        "duty": "支付货款及利息",
        "performance": "全部未履行",
        "disruptTypeName": "有履行能力而拒不履行生效法律文书确定义务",
        "updated": updated,
    })
}

async fn list(
    State(court): State<Arc<Mutex<Court>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut c = court.lock().unwrap();
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            "{\"code\":401,\"msg\":\"令牌无效\"}",
        )
            .into_response();
    }
    c.requests += 1;
    if c.requests % 4 == 1 {
        c.throttled += 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "请求过于频繁",
        )
            .into_response();
    }
    if c.requests % 7 == 3 {
        c.failed += 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, "服务器内部错误").into_response();
    }
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let size: usize = q
        .get("page_size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(10);
    let since = q.get("updated_since").cloned().unwrap_or_default();
    let mut matching: Vec<&Value> = c
        .records
        .iter()
        .filter(|r| r["updated"].as_str().unwrap() >= since.as_str())
        .collect();
    let key = |r: &Value| (r["updated"].to_string(), r["caseCode"].to_string());
    matching.sort_by_key(|r| key(r));
    let list: Vec<&Value> = matching
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .copied()
        .collect();
    (
        [("content-type", "application/json")],
        json!({"code": 0, "data": {"total": matching.len(), "list": list}}).to_string(),
    )
        .into_response()
}

/// Starts the court API on a free port; returns its base URL.
fn start(court: Arc<Mutex<Court>>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new()
                .route("/api/v1/dishonest", axum::routing::get(list))
                .with_state(court);
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

fn config(base_url: &str, token_env: &str) -> HttpConfig {
    HttpConfig {
        base_url: base_url.into(),
        base_url_file: None,
        hmac_app_id: None,
        hmac_secret_env: None,
        path: "/api/v1/dishonest".into(),
        params: BTreeMap::new(),
        token_env: Some(token_env.into()),
        token_header: "Authorization".into(),
        token_prefix: "Bearer ".into(),
        records: "data.list".into(),
        pagination: Pagination::Page {
            param: "page".into(),
            size_param: "page_size".into(),
            size: 10,
            first: 1,
        },
        since_param: Some("updated_since".into()),
        updated_field: Some("updated".into()),
        max_attempts: 5,
        backoff_ms: 5,
        timeout_seconds: 5.0,
        max_body_bytes: 1 << 20,
        max_pages: 10_000,
    }
}

fn read_all(
    cfg: &HttpConfig,
    position: Option<String>,
) -> (Vec<BTreeMap<String, String>>, Option<String>) {
    let mut source = HttpSource::new(
        cfg.clone(),
        &ReadContext {
            feed: "fy_sxbzxr".into(),
            position,
            ..Default::default()
        },
    )
    .unwrap();
    let mut rows = Vec::new();
    while let Some(b) = source.next_batch().unwrap() {
        for r in b.rows {
            rows.push(
                b.unit
                    .headers
                    .iter()
                    .cloned()
                    .zip(r.values.to_vec())
                    .collect(),
            );
        }
    }
    (rows, source.checkpoint())
}

#[test]
fn pages_through_throttling_and_failures_then_reads_only_what_changed() {
    std::env::set_var("XINYONG_TEST_COURT_TOKEN", TOKEN);
    let court = Arc::new(Mutex::new(Court {
        records: (1..=35)
            .map(|i| record(i, &format!("2024-03-{:02} 10:00:00", 1 + i % 20)))
            .collect(),
        ..Default::default()
    }));
    let url = start(court.clone());
    let cfg = config(&url, "XINYONG_TEST_COURT_TOKEN");

    let (rows, position) = read_all(&cfg, None);
    let mut cases: Vec<&str> = rows.iter().map(|r| r["caseCode"].as_str()).collect();
    cases.sort();
    cases.dedup();
    assert_eq!((rows.len(), cases.len()), (35, 35), "every record once");
    {
        let c = court.lock().unwrap();
        assert!(
            c.throttled > 0 && c.failed > 0,
            "throttled {} failed {}",
            c.throttled,
            c.failed
        );
    }
    let person = rows
        .iter()
        .find(|r| r["caseCode"] == "（2024）黑0881执101号")
        .unwrap();
    assert_eq!(person["age"], "31", "numbers arrive as text");
    assert_eq!(person["businessEntity"], "", "null arrives empty");
    assert_eq!(person["iname"], "张某1");
    assert_eq!(position.as_deref(), Some("2024-03-20 10:00:00"));

    // Between runs: two records change, one is added.
    {
        let mut c = court.lock().unwrap();
        c.records[4] = record(5, "2024-04-02 08:30:00");
        c.records[9]["performance"] = json!("部分履行");
        c.records[9]["updated"] = json!("2024-04-02 08:30:00");
        c.records.push(record(36, "2024-04-03 09:00:00"));
    }
    let (rows, position) = read_all(&cfg, position);
    let cases: Vec<&str> = rows.iter().map(|r| r["caseCode"].as_str()).collect();
    // The records at the stored time itself come again (the parameter is inclusive).
    let at_position = 1;
    assert_eq!(rows.len(), at_position + 3, "{cases:?}");
    for c in [
        "（2024）黑0881执105号",
        "（2024）黑0881执110号",
        "（2024）黑0881执136号",
    ] {
        assert!(cases.contains(&c), "{c} in {cases:?}");
    }
    assert_eq!(position.as_deref(), Some("2024-04-03 09:00:00"));
}

#[test]
fn a_refused_token_stops_the_feed_with_the_status_and_never_shows_the_token() {
    std::env::set_var("XINYONG_TEST_WRONG_COURT_TOKEN", "wrong-token-e91c");
    let url = start(Arc::new(Mutex::new(Court::default())));
    let cfg = config(&url, "XINYONG_TEST_WRONG_COURT_TOKEN");
    let mut source = HttpSource::new(
        cfg,
        &ReadContext {
            feed: "fy_sxbzxr".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let err = source.next_batch().unwrap_err().to_string();
    assert!(
        err.contains("fy_sxbzxr") && err.contains("401") && err.contains("令牌无效"),
        "{err}"
    );
    assert!(!err.contains("wrong-token-e91c"), "{err}");
}

/// A department API that reuses the platforms' HMAC scheme (upstream-api.md).
async fn signed_list(uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let path_q = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let ok = h("X-App-Id") == "tongjiang-city"
        && connectors::signing::nonce_ok(&h("X-Nonce"))
        && connectors::signing::verify(
            "dept-secret",
            "GET",
            &path_q,
            &h("X-Timestamp"),
            &h("X-Nonce"),
            b"",
            &h("X-Signature"),
        );
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            "{\"error\":{\"code\":\"bad_signature\"}}",
        )
            .into_response();
    }
    let page: usize = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("page=")))
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let all: Vec<Value> = (1..=12).map(|i| record(i, "2024-05-01 09:00:00")).collect();
    let list: Vec<Value> = all.into_iter().skip((page - 1) * 10).take(10).collect();
    (
        [("Content-Type", "application/json")],
        json!({"data": {"list": list}}).to_string(),
    )
        .into_response()
}

#[test]
fn signs_requests_with_the_platforms_hmac_scheme() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app =
                axum::Router::new().route("/api/v1/dishonest", axum::routing::get(signed_list));
            axum::serve(listener, app).await.unwrap();
        });
    });
    let url = format!("http://{}", rx.recv().unwrap());
    std::env::set_var("XINYONG_TEST_DEPT_SECRET", "dept-secret");
    std::env::set_var("XINYONG_TEST_DEPT_WRONG", "not-the-secret");
    let mut cfg = config(&url, "UNUSED");
    cfg.token_env = None;
    cfg.since_param = None;
    cfg.hmac_app_id = Some("tongjiang-city".into());
    cfg.hmac_secret_env = Some("XINYONG_TEST_DEPT_SECRET".into());
    let (rows, _) = read_all(&cfg, None);
    assert_eq!(rows.len(), 12, "both pages signed and accepted");
    // A wrong secret: the API refuses, the feed stops with the status, no secret shown.
    cfg.hmac_secret_env = Some("XINYONG_TEST_DEPT_WRONG".into());
    let mut source = HttpSource::new(
        cfg,
        &ReadContext {
            feed: "fy".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let err = source.next_batch().unwrap_err().to_string();
    assert!(
        err.contains("401") && !err.contains("not-the-secret"),
        "{err}"
    );
}

/// A source that answers with a redirect to another host, or with a body longer than
/// the feed's cap: the feed fails naming why, and the other host hears nothing.
#[test]
fn redirects_are_not_followed_and_bodies_are_capped() {
    let hits = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let hits_c = hits.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let other_url = format!("http://{}", other.local_addr().unwrap());
            let elsewhere = axum::Router::new().fallback(move || {
                let hits = hits_c.clone();
                async move {
                    hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    "{}"
                }
            });
            tokio::spawn(async move { axum::serve(other, elsewhere).await });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new()
                .route(
                    "/redirect/api/v1/dishonest",
                    axum::routing::get(move || async move {
                        (
                            StatusCode::TEMPORARY_REDIRECT,
                            [("Location", format!("{other_url}/api/v1/dishonest"))],
                        )
                    }),
                )
                .route(
                    "/huge/api/v1/dishonest",
                    axum::routing::get(|| async { "x".repeat(2 << 20) }),
                );
            axum::serve(listener, app).await.unwrap();
        });
    });
    let base = format!("http://{}", rx.recv().unwrap());
    std::env::set_var("XINYONG_TEST_COURT_TOKEN_R", TOKEN);
    for (prefix, expected) in [("redirect", "redirect"), ("huge", "longer than")] {
        let cfg = config(&format!("{base}/{prefix}"), "XINYONG_TEST_COURT_TOKEN_R");
        let mut source = HttpSource::new(
            cfg,
            &ReadContext {
                feed: "fy_sxbzxr".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let err = source.next_batch().unwrap_err().to_string();
        assert!(err.contains(expected), "{prefix}: {err}");
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}
