//! `xinyong serve`: the web console on the demo's state, as a person sees it in a
//! browser (headless Chromium), and its guard (loopback by default, a token otherwise).

use crate::util::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A console running as a child process; stopped (SIGTERM) when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn start(config: &Path, cwd: &Path, listen: &str, token: Option<&str>) -> Served {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(config)
            .args(["serve", "--listen", listen])
            .current_dir(cwd)
            .env_remove("XINYONG_CONSOLE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(t) = token {
            c.env("XINYONG_CONSOLE_TOKEN", t);
        }
        let mut child = c.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("serve says where it listens: {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Served { child, url }
    }

    fn stop(mut self) -> i32 {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        std::mem::forget(self);
        code
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the demo in a scratch directory with all its feeds (its database and court
/// API too: the demo sets them up) and its schedules, for the page's next runs; its
/// configuration.
fn demo(w: &Workdir) -> PathBuf {
    for dir in ["mappings", "schedules", "fixtures/sql"] {
        copy_dir(&Path::new(ROOT).join(dir), &w.path().join(dir));
    }
    let (config, o) = w.demo();
    assert_exit(&o, 0);
    config
}

fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String, reqwest::header::HeaderMap) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut req = client.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let h = r.headers().clone();
        (status, r.text().await.unwrap(), h)
    })
}

/// The page on the demo's state, rendered in Chromium, shows every feed and both
/// platforms, open corrections per department and the office report's links; it is
/// masked, self-contained and read-only.
#[test]
fn the_console_shows_the_demo_in_a_browser() {
    let w = Workdir::new();
    let config = demo(&w);
    let served = Served::start(&config, w.path(), "127.0.0.1:0", None);

    let (status, page, headers) = get(&format!("{}/", served.url), &[]);
    assert_eq!(status, 200, "{page}");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    for forbidden in ["<script", "<link", "src=", "https://"] {
        assert!(!page.contains(forbidden), "{forbidden} in the page");
    }
    assert_eq!(
        pipeline::domain::masking::mask_ids_in_text(&page),
        page,
        "an identity number unmasked in the page"
    );

    // What a person sees, as Chromium built it.
    let Some(dom) = chromium_dom(&format!("{}/", served.url), w.path()) else {
        return;
    };
    let s: serde_json::Value =
        serde_json::from_str(&get(&format!("{}/status.json", served.url), &[]).1).unwrap();
    let feeds = s["feeds"].as_array().unwrap();
    assert_eq!(feeds.len(), 5, "{s}");
    for f in feeds {
        for key in ["name", "title"] {
            let text = f[key].as_str().unwrap();
            assert!(dom.contains(text), "the page lacks the feed {key} {text}");
        }
    }
    for platform in ["信用佳木斯", "信用黑龙江"] {
        assert!(dom.contains(platform), "the page lacks {platform}");
    }
    for heading in [
        "数据源",
        "上报平台",
        "待整改问题（按部门）",
        "撤回与异议",
        "最近对账",
        "计划运行",
        "办公室报告",
    ] {
        assert!(dom.contains(heading), "the page lacks {heading}");
    }
    assert!(
        dom.contains("同江市市场监督管理局"),
        "open corrections per department"
    );
    assert!(dom.contains("成功"), "feed outcomes in Chinese");
    assert!(!dom.contains("RunOnce"), "no internal names");

    // The latest office report is linked, and opens.
    let link = dom
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|h| h.ends_with("/report.html"))
        .unwrap_or_else(|| panic!("a link to the office report"))
        .to_string();
    let (status, report, _) = get(&format!("{}{link}", served.url), &[]);
    assert_eq!(status, 200);
    assert!(report.contains("双公示"));
    let (status, _, h) = get(
        &format!("{}{}", served.url, link.replace(".html", ".xlsx")),
        &[],
    );
    assert_eq!(status, 200);
    assert!(h["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    // Nothing else of the data directory is served.
    for path in [
        "/reports/%2e%2e/state.sqlite",
        "/reports/..%2F..%2Fout/report.html",
        "/reports/x/corrections.xlsx",
        "/state.sqlite",
    ] {
        assert_eq!(get(&format!("{}{path}", served.url), &[]).0, 404, "{path}");
    }

    // The screenshot (kept where XINYONG_SCREENSHOTS points, for people to look at).
    let dir = std::env::var_os("XINYONG_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| w.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("console.png");
    let bytes =
        chromium_screenshot(&format!("{}/", served.url), w.path(), &png, (1280, 2000)).unwrap();
    assert!(
        bytes.len() > 100_000,
        "a blank page is a few KB: {}",
        bytes.len()
    );
    assert_eq!(served.stop(), 0, "SIGTERM stops the console cleanly");
}

/// Loopback by default; any other address needs a token, which every request then
/// carries (header, or `?token=` once for a cookie).
#[test]
fn the_console_needs_a_token_off_loopback() {
    let w = Workdir::new();
    std::fs::write(w.config(), "data_dir = \"data\"\nmappings = \"mappings\"\n").unwrap();
    let o = w.xinyong(&["serve", "--listen", "0.0.0.0:0"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("needs a token"), "{}", stderr(&o));
    let o = w.xinyong_env(
        &["serve", "--listen", "0.0.0.0:0"],
        &[("XINYONG_CONSOLE_TOKEN", "short")],
    );
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("at least 16"), "{}", stderr(&o));

    let token = "0123456789abcdef-console";
    let served = Served::start(&w.config(), w.path(), "0.0.0.0:0", Some(token));
    let port = served.url.rsplit(':').next().unwrap().to_string();
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(get(&format!("{base}/"), &[]).0, 401);
    assert_eq!(get(&format!("{base}/status.json"), &[]).0, 401);
    let bearer = format!("Bearer {token}");
    let (status, page, _) = get(&format!("{base}/"), &[("authorization", &bearer)]);
    assert_eq!(status, 200);
    assert!(page.contains("数据源"));
    let (status, _, h) = get(&format!("{base}/?token={token}"), &[]);
    assert_eq!(status, 303);
    assert_eq!(h["location"], "/");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().unwrap().to_string();
    assert_eq!(get(&format!("{base}/"), &[("cookie", &pair)]).0, 200);
    assert_eq!(get(&format!("{base}/?token=wrong"), &[]).0, 401);
    // Read-only: nothing but GET.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let code = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/"))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(code, 405);
}
