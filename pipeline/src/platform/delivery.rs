//! Delivering one batch: the same body under the same `Idempotency-Key`, sent until a
//! final answer or the platform's time budget runs out, surviving rate limits, 5xx,
//! timeouts, dropped connections and 202s. What an answer means is the dialect's
//! ([`super::Exchange`]); how long to wait is decided here (exponential backoff with
//! jitter, from `backon`), as Vector keeps its `RetryLogic` apart from the backoff.

use super::{Exchange, Platform, SendOutcome};
use backon::BackoffBuilder;
use std::time::{Duration, Instant};

/// Sends one batch until a final answer or `deadline`. Each try is signed anew by the
/// dialect; after a 202 the batch is polled instead of sent again.
pub async fn deliver(
    platform: &dyn Platform,
    batch_id: &str,
    body: &[u8],
    deadline: Instant,
) -> SendOutcome {
    let mut backoff = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build();
    let mut processing = false;
    let mut last_error = String::from("no attempt made");
    loop {
        if Instant::now() >= deadline {
            return SendOutcome::Unresolved { last_error };
        }
        let exchange = if processing {
            platform.poll_batch(batch_id).await
        } else {
            platform.post_batch(batch_id, body).await
        };
        let wait = match exchange {
            Exchange::Final(outcome) => return outcome,
            Exchange::Processing => {
                processing = true;
                last_error = "still processing (202)".into();
                backoff.next().unwrap_or(Duration::from_secs(1))
            }
            Exchange::UnknownBatch => {
                // The platform does not know the batch after all: send it again.
                processing = false;
                last_error = "404 unknown_batch while polling".into();
                backoff.next().unwrap_or(Duration::from_secs(1))
            }
            Exchange::RetryAfter(d, why) => {
                last_error = why;
                d
            }
            Exchange::Retry(why) => {
                last_error = why;
                backoff.next().unwrap_or(Duration::from_secs(1))
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if wait >= left {
            tokio::time::sleep(left).await;
            return SendOutcome::Unresolved { last_error };
        }
        tokio::time::sleep(wait).await;
    }
}
