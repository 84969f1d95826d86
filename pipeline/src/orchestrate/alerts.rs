//! Alerts after a run: `[[alert]]` entries of the configuration — a generic JSON webhook,
//! or the WeCom (企业微信) and DingTalk (钉钉) group-robot formats — told of failed
//! feeds, platform configuration errors, rejected and pending records, set-aside files
//! and the holiday calendar running out. A failing alert is logged, never fails the run.

use crate::orchestrate::runner::RunReport;
use serde::Deserialize;
use std::time::Duration;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A feed of the run failed.
    FeedFailed,
    /// A platform refuses our requests (secret, redirect, protocol 4xx).
    PlatformError,
    /// A platform rejected records.
    Rejected,
    /// Records are left pending after the run.
    Pending,
    /// Files were set aside as unreadable.
    SetAside,
    /// The holiday calendar's coverage ends within 60 days.
    Calendar,
}

/// The message format of an alert's receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// `{"source": "xinyong", "run_id", "events": [{"event", "subject", "message"}]}`.
    Webhook,
    /// 企业微信 group robot: `{"msgtype": "text", "text": {"content"}}`.
    Wecom,
    /// 钉钉 group robot: `{"msgtype": "text", "text": {"content"}}`.
    Dingtalk,
}

/// `[[alert]]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// The receiver's format.
    pub kind: AlertKind,
    /// Where to POST.
    pub url: String,
    /// Which events (default: all).
    #[serde(default)]
    pub on: Vec<Event>,
}

/// One thing to tell.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Alert {
    /// What happened.
    pub event: Event,
    /// The feed or platform concerned.
    pub subject: String,
    /// In plain Chinese.
    pub message: String,
}

/// What a run's report has to tell.
pub fn alerts_of(report: &RunReport) -> Vec<Alert> {
    let mut out = Vec::new();
    for f in &report.feeds {
        if let Some(e) = &f.error {
            out.push(Alert {
                event: Event::FeedFailed,
                subject: f.feed.clone(),
                message: format!(
                    "数据源 {} {} 读取失败：{}",
                    f.feed,
                    f.title,
                    crate::domain::masking::mask_ids_in_text(e)
                ),
            });
        }
        for a in &f.set_aside {
            let name = a
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(Alert {
                event: Event::SetAside,
                subject: f.feed.clone(),
                message: format!(
                    "数据源 {} 的文件 {name} 无法读取，已搁置：{}",
                    f.feed, a.reason
                ),
            });
        }
    }
    for p in &report.platforms {
        if let Some(e) = &p.configuration_error {
            out.push(Alert {
                event: Event::PlatformError,
                subject: p.platform.clone(),
                message: format!("上级平台 {} 拒绝请求（密钥或配置错误）：{e}", p.title),
            });
        }
        let rejected: u64 = p.rejected.values().sum();
        if rejected > 0 {
            out.push(Alert {
                event: Event::Rejected,
                subject: p.platform.clone(),
                message: format!(
                    "上级平台 {} 退回 {rejected} 条记录，见退回整改清单",
                    p.title
                ),
            });
        }
        if p.pending > 0 {
            out.push(Alert {
                event: Event::Pending,
                subject: p.platform.clone(),
                message: format!("上级平台 {} 仍有 {} 条记录待推送", p.title, p.pending),
            });
        }
    }
    if let Some(w) = crate::orchestrate::status::calendar_warning(
        crate::domain::calendar::Calendar::built_in(),
        crate::clock::today(),
    ) {
        out.push(Alert {
            event: Event::Calendar,
            subject: "calendar".into(),
            message: w,
        });
    }
    out
}

/// Sends a run's alerts to every configured receiver that wants them. Failures are
/// logged; the run's outcome does not change.
pub async fn send(alerts: &[AlertConfig], report: &RunReport) {
    if alerts.is_empty() {
        return;
    }
    let all = alerts_of(report);
    if all.is_empty() {
        return;
    }
    let client = match connectors::wire::client_builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "alerts not sent: no HTTP client");
            return;
        }
    };
    for a in alerts {
        let wanted: Vec<&Alert> = all
            .iter()
            .filter(|x| a.on.is_empty() || a.on.contains(&x.event))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let text = format!(
            "xinyong 运行 {}：\n{}",
            report.run_id,
            wanted
                .iter()
                .map(|x| format!("· {}", x.message))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let body = match a.kind {
            AlertKind::Webhook => serde_json::json!({
                "source": "xinyong",
                "run_id": report.run_id,
                "events": wanted,
            }),
            AlertKind::Wecom | AlertKind::Dingtalk => {
                serde_json::json!({ "msgtype": "text", "text": { "content": text } })
            }
        };
        let request = client
            .post(&a.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        match request.send().await {
            Ok(r) if r.status().is_success() => {
                tracing::info!(url = %redact(&a.url), alerts = wanted.len(), "alert sent")
            }
            Ok(r) => tracing::warn!(url = %redact(&a.url), status = %r.status(), "alert refused"),
            Err(e) => {
                tracing::warn!(url = %redact(&a.url), error = %connectors::wire::describe(&e), "alert not sent")
            }
        }
    }
}

/// A receiver's URL without its query (robot URLs carry their key there).
fn redact(url: &str) -> String {
    url.split('?').next().unwrap_or_default().to_string()
}
