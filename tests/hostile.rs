//! A platform that answers badly: receipts that lie about their batch, redirects to
//! another host, nonsense `Retry-After`, endless bodies, slow headers, 202 forever. The
//! push must believe none of it: nothing it did not legitimately accept is marked
//! acknowledged, no redirect target hears from us, nothing panics, and an honest
//! platform afterwards receives every record.

use crate::util::*;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How the hostile platform answers a batch.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// A 200 receipt accepting a tenth of the records, rejecting none.
    FewerAccepted,
    /// A receipt naming another batch.
    OtherBatchId,
    /// A receipt rejecting a record id that was never sent.
    UnknownRejected,
    /// A receipt accepting more records than were sent.
    MoreAccepted,
    /// 301 to another host.
    Redirect301,
    /// 307 to another host (which would receive the whole batch).
    Redirect307,
    /// 429 with `Retry-After: NaN`.
    RetryAfterNan,
    /// 429 with `Retry-After: -5`.
    RetryAfterNegative,
    /// 200 with a body that never ends.
    EndlessBody,
    /// Headers that come after the client's timeout.
    SlowHeaders,
    /// 202, and every poll says still processing.
    ProcessingForever,
}

/// A hostile platform on loopback, and the host it redirects to.
struct Hostile {
    url: String,
    redirect_hits: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

impl Hostile {
    fn start(lie: Lie) -> Hostile {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let redirect_hits = Arc::new(AtomicU64::new(0));
        let (url, _) = runtime.block_on(async {
            let hits = redirect_hits.clone();
            let elsewhere = Router::new().fallback(move || {
                let hits = hits.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    "a receipt from elsewhere"
                }
            });
            let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let other_url = format!("http://{}", other.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(other, elsewhere).await });
            let app = Router::new()
                .route(
                    "/api/v1/batches",
                    post({
                        let other_url = other_url.clone();
                        move |body: Bytes| answer(lie, body, other_url.clone())
                    }),
                )
                .route(
                    "/api/v1/batches/{id}",
                    get(move || async move {
                        (
                            StatusCode::OK,
                            [("Content-Type", "application/json")],
                            r#"{"batch_id": "x", "status": "processing"}"#,
                        )
                    }),
                );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            (url, other_url)
        });
        Hostile {
            url,
            redirect_hits,
            _runtime: runtime,
        }
    }
}

async fn answer(lie: Lie, body: Bytes, elsewhere: String) -> Response {
    let batch: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = batch["batch_id"].as_str().unwrap_or("").to_string();
    let n = batch["records"].as_array().map_or(0, |r| r.len()) as u64;
    let first = batch["records"][0]["record_id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let receipt = |v: serde_json::Value| {
        (
            StatusCode::OK,
            [("Content-Type", "application/json")],
            v.to_string(),
        )
            .into_response()
    };
    let done = |accepted: u64, rejected: serde_json::Value, batch_id: &str| {
        serde_json::json!({"batch_id": batch_id, "status": "done", "accepted": accepted,
            "rejected": rejected, "received_at": "2026-12-01T08:00:00Z"})
    };
    match lie {
        Lie::FewerAccepted => receipt(done(n / 10, serde_json::json!([]), &id)),
        Lie::OtherBatchId => receipt(done(n, serde_json::json!([]), "someone-else")),
        Lie::UnknownRejected => receipt(done(
            n - 1,
            serde_json::json!([{"record_id": "never-sent", "code": "bad_value", "message": ""}]),
            &id,
        )),
        Lie::MoreAccepted => receipt(done(n + 5, serde_json::json!([]), &id)),
        Lie::Redirect301 | Lie::Redirect307 => {
            let status = if matches!(lie, Lie::Redirect301) {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::TEMPORARY_REDIRECT
            };
            (
                status,
                [("Location", format!("{elsewhere}/api/v1/batches"))],
            )
                .into_response()
        }
        Lie::RetryAfterNan | Lie::RetryAfterNegative => {
            let v = if matches!(lie, Lie::RetryAfterNan) {
                "NaN"
            } else {
                "-5"
            };
            let mut h = HeaderMap::new();
            h.insert("Retry-After", v.parse().unwrap());
            (StatusCode::TOO_MANY_REQUESTS, h, "slow down").into_response()
        }
        Lie::EndlessBody => {
            let chunk = Bytes::from(vec![b' '; 1 << 20]);
            let stream =
                futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
            Response::new(Body::from_stream(stream))
        }
        Lie::SlowHeaders => {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            receipt(done(n, serde_json::json!([]), &id))
        }
        Lie::ProcessingForever => (
            StatusCode::ACCEPTED,
            [("Content-Type", "application/json")],
            serde_json::json!({"batch_id": id, "status": "processing", "first": first}).to_string(),
        )
            .into_response(),
    }
}

/// Points the workdir's configuration at one platform by URL.
fn configure_url(w: &Workdir, url: &str, budget_seconds: f64) {
    std::fs::write(
        w.config(),
        format!(
            "data_dir = \"data\"\nmappings = \"mappings\"\n\n[[platform]]\nname = \"jiamusi\"\ntitle = \"信用佳木斯\"\nbase_url = \"{url}\"\napp_id = \"tongjiang-city\"\nsecret = \"test-secret-jiamusi\"\ntimeout_seconds = 1\nretry_budget_seconds = {budget_seconds}\n"
        ),
    )
    .unwrap();
}

/// The ledger's line for the platform in `xinyong status`.
fn ledger_line(w: &Workdir) -> String {
    let o = w.xinyong(&["status"]);
    stdout(&o)
        .lines()
        .find(|l| l.trim_start().starts_with("jiamusi"))
        .unwrap_or_default()
        .to_string()
}

/// After the hostile platform, an honest one receives every record of the snapshot.
fn honest_push_delivers_everything(w: &Workdir) {
    let honest = Simulator::start("jiamusi", &[]);
    w.configure(&[&honest], &PlatformOpts::default());
    let o = w.xinyong(&["push"]);
    assert_exit(&o, 0);
    let expected = w.snapshot_holdings();
    let groups = expected.keys().cloned().collect();
    assert_eq!(honest.holdings(&groups), expected);
}

fn run_against(lie: Lie, budget_seconds: f64) -> (Workdir, Hostile, std::process::Output) {
    let hostile = Hostile::start(lie);
    let w = Workdir::new();
    configure_url(&w, &hostile.url, budget_seconds);
    let o = w.xinyong(&["run"]);
    (w, hostile, o)
}

#[test]
fn lying_receipts_acknowledge_nothing_they_do_not_confirm() {
    for lie in [
        Lie::FewerAccepted,
        Lie::OtherBatchId,
        Lie::UnknownRejected,
        Lie::MoreAccepted,
    ] {
        let (w, _hostile, o) = run_against(lie, 10.0);
        assert_exit(&o, 1);
        let out = stdout(&o);
        assert!(
            out.contains("jiamusi")
                && (out.contains("accounts for") || out.contains("protocol error")),
            "{lie:?}: {out}"
        );
        let line = ledger_line(&w);
        assert!(line.contains("acked 0"), "{lie:?}: {line}");
        assert!(line.contains("sent 0"), "{lie:?}: {line}");
        honest_push_delivers_everything(&w);
    }
}

#[test]
fn redirects_are_not_followed() {
    for lie in [Lie::Redirect301, Lie::Redirect307] {
        let (w, hostile, o) = run_against(lie, 5.0);
        // A base URL that redirects is a configuration error: loud.
        assert_exit(&o, 2);
        assert!(stdout(&o).contains("密钥或配置错误"), "{}", stdout(&o));
        assert!(stdout(&o).contains("redirect"), "{lie:?}: {}", stdout(&o));
        assert_eq!(hostile.redirect_hits.load(Ordering::SeqCst), 0, "{lie:?}");
        assert!(ledger_line(&w).contains("acked 0"));
        honest_push_delivers_everything(&w);
    }
}

#[test]
fn nonsense_answers_end_the_push_without_a_panic() {
    for lie in [
        Lie::RetryAfterNan,
        Lie::RetryAfterNegative,
        Lie::EndlessBody,
        Lie::SlowHeaders,
        Lie::ProcessingForever,
    ] {
        let (w, _hostile, o) = run_against(lie, 3.0);
        assert_exit(&o, 1);
        assert!(!stderr(&o).contains("panicked"), "{lie:?}: {}", stderr(&o));
        // The run finished and wrote its report; nothing was acknowledged.
        let r = w.latest_report();
        assert!(r["platforms"][0]["error"].is_string(), "{lie:?}: {r}");
        assert!(ledger_line(&w).contains("acked 0"), "{lie:?}");
    }
}

#[test]
fn reconcile_survives_the_contracts_ordinary_faults() {
    let sim = Simulator::start(
        "jiamusi",
        &[
            "--fault-rate",
            "0.3",
            "--read-fault-rate",
            "0.5",
            "--faults",
            "rate-limit,error-before,drop-before,error-after,drop-after",
        ],
    );
    let w = Workdir::new();
    w.configure(&[&sim], &PlatformOpts::default());
    assert_exit(&w.xinyong(&["run"]), 0);
    for _ in 0..3 {
        let o = w.xinyong(&["reconcile"]);
        assert_exit(&o, 0);
    }
}

#[test]
fn a_wrong_secret_is_loud_until_a_push_succeeds() {
    let sim = Simulator::start("jiamusi", &[]);
    let w = Workdir::new();
    std::fs::write(
        w.config(),
        format!(
            "data_dir = \"data\"\nmappings = \"mappings\"\n\n[[platform]]\nname = \"jiamusi\"\ntitle = \"信用佳木斯\"\nbase_url = \"{}\"\napp_id = \"tongjiang-city\"\nsecret = \"not-the-secret\"\ntimeout_seconds = 2\nretry_budget_seconds = 5\n",
            sim.url
        ),
    )
    .unwrap();
    let o = w.xinyong(&["run"]);
    assert_exit(&o, 2);
    let o = w.xinyong(&["status"]);
    assert_exit(&o, 2);
    assert!(stdout(&o).contains("密钥或配置错误"), "{}", stdout(&o));
    assert!(stdout(&o).contains("401"), "{}", stdout(&o));
    // The right secret: the push succeeds and the error is gone.
    w.configure(&[&sim], &PlatformOpts::default());
    assert_exit(&w.xinyong(&["push"]), 0);
    let o = w.xinyong(&["status"]);
    assert_exit(&o, 0);
    assert!(!stdout(&o).contains("密钥或配置错误"), "{}", stdout(&o));
}

#[test]
fn absurd_limits_are_refused_by_check_naming_file_and_key() {
    let w = Workdir::new();
    for (key, value) in [
        ("timeout_seconds", "-1"),
        ("timeout_seconds", "nan"),
        ("retry_budget_seconds", "1e12"),
        ("batch_records", "0"),
    ] {
        std::fs::write(
            w.config(),
            format!(
                "data_dir = \"data\"\nmappings = \"mappings\"\n\n[[platform]]\nname = \"jiamusi\"\ntitle = \"信用佳木斯\"\nbase_url = \"http://127.0.0.1:9\"\napp_id = \"a\"\nsecret = \"s\"\n{key} = {value}\n"
            ),
        )
        .unwrap();
        let o = w.xinyong(&["check"]);
        assert_exit(&o, 2);
        let e = stderr(&o);
        assert!(
            e.contains("xinyong.toml") && e.contains(key),
            "{key} = {value}: {e}"
        );
        assert!(!e.contains("panicked"), "{e}");
    }
}
