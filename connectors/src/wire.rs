//! What every HTTP exchange with an outside party needs, for the HTTP source and the
//! platforms' client alike: a client that follows no redirect (a 3xx is an answer, not
//! an instruction to send signed headers elsewhere), bodies read through a cap (a huge
//! or endless body is an error, never a buffer without bound), and `Retry-After` read
//! as seconds or an HTTP date, clamped.

use std::time::Duration;

/// The longest wait a `Retry-After` may ask for; longer asks are clamped to it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// A client builder that follows no redirect.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none())
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is longer than allowed.
    #[error("the answer is longer than {cap} bytes; reading stopped there")]
    TooLong {
        /// The cap.
        cap: usize,
    },
    /// The connection failed while reading.
    #[error("connection lost reading the answer: {0}")]
    Transport(#[from] reqwest::Error),
}

/// Reads a response body of at most `cap` bytes.
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLong { cap });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLong { cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The wait a `Retry-After` value asks for: delay-seconds (a number, fractions allowed)
/// or an HTTP date, at `now`. `None` for a value that is neither, or not a finite
/// non-negative wait; a wait over [`MAX_RETRY_AFTER`] is clamped to it.
pub fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        return Some(Duration::from_secs_f64(
            secs.min(MAX_RETRY_AFTER.as_secs_f64()),
        ));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = (at.with_timezone(&chrono::Utc) - now)
        .to_std()
        .unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

/// A redirect, as an error text naming where it pointed.
pub fn redirect_refused(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> String {
    let location = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(no Location)");
    format!("HTTP {status} redirect to {location}: redirects are not followed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_refuses_nonsense() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(" 0.5 ", now), Some(Duration::from_millis(500)));
        assert_eq!(retry_after("NaN", now), None);
        assert_eq!(retry_after("inf", now), None);
        assert_eq!(retry_after("-3", now), None);
        assert_eq!(retry_after("1e300", now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(
            retry_after("Tue, 01 Dec 2026 08:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Tue, 01 Dec 2026 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after("Fri, 01 Jan 2100 00:00:00 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
    }
}

/// An error with its causes, each once: reqwest's top line alone (`error sending
/// request for url`) hides the reason an operator needs (connection refused, name not
/// resolved, TLS).
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod describe_tests {
    #[test]
    fn a_refused_connection_says_so() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt
            .block_on(reqwest::Client::new().get("http://127.0.0.1:1/").send())
            .unwrap_err();
        let text = super::describe(&e);
        assert!(text.to_lowercase().contains("refused"), "{text}");
        assert_eq!(text.matches("error sending request").count(), 1, "{text}");
    }
}
