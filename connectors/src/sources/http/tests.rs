//! The HTTP source against listings that misbehave: pages that repeat, cursors that
//! loop, a list that shifts while it is read, a GBK body, a listing without end.

use super::*;
use axum::extract::Query;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use std::collections::HashMap;
use std::sync::Mutex;

/// What the test server answers to a query.
type Answer = Arc<dyn Fn(&HashMap<String, String>) -> (String, Vec<u8>) + Send + Sync>;

/// Serves `answer` on loopback; the server lives as long as the returned runtime.
fn serve(answer: Answer) -> (String, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(async move {
        let app = axum::Router::new().fallback(move |Query(q): Query<HashMap<String, String>>| {
            let answer = answer.clone();
            async move {
                let (content_type, body) = answer(&q);
                ([(CONTENT_TYPE, content_type)], body).into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    });
    (url, rt)
}

fn config(url: &str, pagination: Pagination) -> HttpConfig {
    HttpConfig {
        base_url: url.to_string(),
        base_url_file: None,
        path: "/list".into(),
        params: BTreeMap::new(),
        token_env: None,
        hmac_app_id: None,
        hmac_secret_env: None,
        token_header: default_token_header(),
        token_prefix: default_token_prefix(),
        records: "data.list".into(),
        pagination,
        since_param: None,
        updated_field: None,
        max_attempts: 1,
        backoff_ms: 1,
        timeout_seconds: 5.0,
        max_body_bytes: 1 << 20,
        max_pages: 200,
    }
}

fn pages(size: usize) -> Pagination {
    Pagination::Page {
        param: "page".into(),
        size_param: "size".into(),
        size,
        first: 1,
    }
}

/// Every name read, or the feed's error.
fn read_all(cfg: HttpConfig) -> std::result::Result<Vec<String>, String> {
    let cx = ReadContext {
        feed: "test_feed".into(),
        ..Default::default()
    };
    let mut src = HttpSource::new(cfg, &cx).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    while let Some(b) = src.next_batch().map_err(|e| e.to_string())? {
        let i = b.unit.headers.iter().position(|h| h == "name").unwrap();
        names.extend(b.rows.iter().map(|r| r.values.get(i).unwrap().to_string()));
    }
    Ok(names)
}

fn json_page(names: &[String]) -> (String, Vec<u8>) {
    let list: Vec<Value> = names
        .iter()
        .map(|n| serde_json::json!({ "name": n }))
        .collect();
    (
        "application/json".into(),
        serde_json::json!({ "data": { "list": list } })
            .to_string()
            .into_bytes(),
    )
}

fn num(q: &HashMap<String, String>, k: &str) -> usize {
    q.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[test]
fn a_page_that_repeats_ends_the_feed_with_an_error() {
    let names: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    let (url, _rt) = serve(Arc::new(move |_| json_page(&names)));
    let e = read_all(config(&url, pages(10))).unwrap_err();
    assert!(e.contains("test_feed") && e.contains("repeats"), "{e}");
}

#[test]
fn a_cursor_that_comes_back_ends_the_feed_with_an_error() {
    let (url, _rt) = serve(Arc::new(|q| {
        let (name, next) = match q.get("cursor").map(String::as_str) {
            None => ("first", "A"),
            Some("A") => ("a", "B"),
            _ => ("b", "A"),
        };
        let body = serde_json::json!({ "data": { "list": [{ "name": name }], "next": next } });
        ("application/json".into(), body.to_string().into_bytes())
    }));
    let cursor = Pagination::Cursor {
        param: "cursor".into(),
        next: "data.next".into(),
    };
    let e = read_all(config(&url, cursor)).unwrap_err();
    assert!(e.contains("test_feed") && e.contains("loops"), "{e}");
}

#[test]
fn a_listing_without_end_stops_at_max_pages() {
    let (url, _rt) = serve(Arc::new(|q| {
        let p = num(q, "page");
        json_page(&(0..5).map(|i| format!("p{p}-{i}")).collect::<Vec<_>>())
    }));
    let mut cfg = config(&url, pages(5));
    cfg.max_pages = 30;
    let e = read_all(cfg).unwrap_err();
    assert!(e.contains("max_pages"), "{e}");
}

/// 35 records; after the second page is served, the third record is deleted (the
/// list shifts down by one). Paged naively, the 21st record would be skipped.
fn shifting_list(page_mode: bool) -> Vec<String> {
    let list = Arc::new(Mutex::new(
        (0..35).map(|i| format!("r{i:02}")).collect::<Vec<_>>(),
    ));
    let served = Arc::new(Mutex::new(0usize));
    let (url, _rt) = serve(Arc::new(move |q| {
        let mut list = list.lock().unwrap();
        let (start, size) = if page_mode {
            let size = num(q, "size");
            ((num(q, "page") - 1) * size, size)
        } else {
            (num(q, "offset"), num(q, "limit"))
        };
        let page: Vec<String> = list.iter().skip(start).take(size).cloned().collect();
        let mut served = served.lock().unwrap();
        *served += 1;
        if *served == 2 {
            list.remove(2);
        }
        json_page(&page)
    }));
    let pagination = if page_mode {
        pages(10)
    } else {
        Pagination::Offset {
            offset_param: "offset".into(),
            limit_param: "limit".into(),
            limit: 10,
        }
    };
    read_all(config(&url, pagination)).unwrap()
}

#[test]
fn a_list_that_shifts_while_paged_loses_no_record() {
    for page_mode in [true, false] {
        let mut names = shifting_list(page_mode);
        let read = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), read, "no record handed on twice");
        let expected: Vec<String> = (0..35).map(|i| format!("r{i:02}")).collect();
        assert_eq!(names, expected, "page mode: {page_mode}");
    }
}

#[test]
fn the_charset_of_the_answer_is_honoured() {
    let (url, _rt) = serve(Arc::new(|q| {
        let names: Vec<String> = if num(q, "page") == 1 {
            vec!["同江市某某公司".into()]
        } else {
            vec![]
        };
        let (_, body) = json_page(&names);
        let text = String::from_utf8(body).unwrap();
        let (gbk, _, _) = encoding_rs::GBK.encode(&text);
        ("application/json; charset=GBK".into(), gbk.into_owned())
    }));
    assert_eq!(
        read_all(config(&url, pages(10))).unwrap(),
        vec!["同江市某某公司"]
    );
}

#[test]
fn charsets_are_read_from_the_content_type() {
    assert_eq!(
        charset_of("application/json; charset=gbk"),
        Some(encoding_rs::GBK)
    );
    assert_eq!(
        charset_of("application/json;charset=\"UTF-8\""),
        Some(encoding_rs::UTF_8)
    );
    assert_eq!(charset_of("application/json"), None);
    assert_eq!(charset_of("text/plain; charset=nonsense"), None);
}
