//! The demo's court API: 同江市人民法院's list of enterprise 失信被执行人, served on
//! loopback by `xinyong demo` the way courts' data interfaces serve it — JSON pages
//! (`?page=&page_size=`), an `updated_since` filter, vendor field names (iname, cardNum,
//! caseCode, …; see standards.md §6.1). Deterministic, so every demo run sees the same list.

use axum::extract::Query;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;

/// 同江市人民法院's credit code (generated; no real code is known, standards.md §9).
pub const COURT_CODE: &str = "11230881MB00345691";

const NAMES: [&str; 12] = [
    "北疆建筑工程",
    "三江物流",
    "赫哲水产",
    "宏远商贸",
    "界江粮贸",
    "东极木业",
    "沃野农机",
    "祥和宾馆",
    "金穗米业",
    "龙江石油经销",
    "同盛建材",
    "鸿运运输",
];
const REPS: [&str; 12] = [
    "王建国",
    "李秀兰",
    "张志强",
    "刘海燕",
    "陈国庆",
    "杨丽娟",
    "赵宝山",
    "黄淑芬",
    "周春生",
    "吴玉梅",
    "徐德胜",
    "孙桂芝",
];
const CONDUCT: [&str; 3] = [
    "有履行能力而拒不履行生效法律文书确定义务",
    "违反财产报告制度",
    "以伪造证据、暴力、威胁等方法妨碍、抗拒执行",
];

/// The court's list: 36 enterprises, with update times spread over 2024.
pub fn records() -> Vec<Value> {
    (0..36u32)
        .map(|i| {
            let body = format!("MA{:06}", 100_000 + i * 7919 % 899_999);
            let code = pipeline::domain::ids::complete_uscc(&format!("91230881{body}"))
                .unwrap_or_default();
            let day = 1 + (i * 9) % 330;
            let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("a date")
                + chrono::Days::new(day as u64);
            json!({
                "iname": format!("同江市{}有限公司", NAMES[i as usize % 12]),
                "cardNum": code,
                "businessEntity": REPS[(i as usize * 5) % 12],
                "caseCode": format!("（2024）黑0881执{}号", 100 + i),
                "courtName": "同江市人民法院",
                "areaName": "黑龙江",
                "gistId": format!("（2023）黑0881民初{}号", 500 + i),
                "gistUnit": "同江市人民法院",
                "duty": "被告于判决生效后十日内给付原告货款及利息",
                "performance": if i % 4 == 0 { "部分未履行" } else { "全部未履行" },
                "disruptTypeName": CONDUCT[i as usize % 3],
                "publishDate": date.format("%Y年%m月%d日").to_string(),
                "regDate": (date - chrono::Days::new(40)).to_string(),
                "type": "1",
                "updated_at": format!("{} 09:{:02}:00", date, i % 60),
            })
        })
        .collect()
}

async fn list(Query(q): Query<HashMap<String, String>>) -> axum::response::Response {
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let size: usize = q
        .get("page_size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let since = q.get("updated_since").cloned().unwrap_or_default();
    let all: Vec<Value> = records()
        .into_iter()
        .filter(|r| r["updated_at"].as_str().unwrap_or_default() >= since.as_str())
        .collect();
    let list: Vec<Value> = all
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .cloned()
        .collect();
    let body = json!({"code": 0, "message": "ok", "data": {"total": all.len(), "list": list}});
    ([("Content-Type", "application/json")], body.to_string()).into_response()
}

/// The API's routes.
pub fn router() -> Router {
    Router::new().route("/api/v1/dishonest", get(list))
}

/// Serves the API on a free loopback port until the returned sender is dropped or used.
pub async fn start() -> std::io::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router())
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok((url, stop))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_list_carries_valid_credit_codes() {
        let r = super::records();
        assert_eq!(r.len(), 36);
        for x in &r {
            assert_eq!(
                pipeline::domain::ids::check_uscc(x["cardNum"].as_str().unwrap()),
                Ok(()),
                "{x}"
            );
        }
        assert_eq!(pipeline::domain::ids::check_uscc(super::COURT_CODE), Ok(()));
    }
}
