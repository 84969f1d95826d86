//! Delivering one batch: the same body under the same `Idempotency-Key`, sent until a
//! final answer or the platform's time budget runs out, surviving rate limits, 5xx,
//! timeouts, dropped connections and 202s. What an answer means is the dialect's
//! ([`super::Exchange`]); how long to wait and when to give up is the shared policy of
//! [`connectors::retry`] (exponential backoff with jitter, `Retry-After` honoured).

use super::{Exchange, Platform, SendOutcome};
use connectors::retry::{retry, Backoff, RetryError, Verdict};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Sends one batch until a final answer or `deadline`. Each try is signed anew by the
/// dialect; after a 202 the batch is polled instead of sent again, and after a poll's
/// 404 it is sent again.
pub async fn deliver(
    platform: &dyn Platform,
    batch_id: &str,
    body: &[u8],
    deadline: Instant,
) -> SendOutcome {
    if Instant::now() >= deadline {
        return SendOutcome::Unresolved {
            last_error: "the platform's retry budget was spent before this batch".into(),
        };
    }
    let polling = AtomicBool::new(false);
    let outcome = retry(&Backoff::until(deadline), |_| async {
        let exchange = if polling.load(Ordering::Relaxed) {
            platform.poll_batch(batch_id).await
        } else {
            platform.post_batch(batch_id, body).await
        };
        let retry = |why: &str| Verdict::Retry {
            why: why.to_string(),
            after: None,
        };
        match exchange {
            Exchange::Final(outcome) => Verdict::Done(outcome),
            Exchange::Processing => {
                polling.store(true, Ordering::Relaxed);
                retry("still processing (202)")
            }
            Exchange::UnknownBatch => {
                // The platform does not know the batch after all: send it again.
                polling.store(false, Ordering::Relaxed);
                retry("404 unknown_batch while polling")
            }
            Exchange::RetryAfter(after, why) => Verdict::Retry {
                why,
                after: Some(after),
            },
            Exchange::Retry(why) => Verdict::Retry { why, after: None },
        }
    })
    .await;
    match outcome {
        Ok(outcome) => outcome,
        Err(RetryError::Exhausted { last, .. }) | Err(RetryError::Fatal(last)) => {
            SendOutcome::Unresolved { last_error: last }
        }
    }
}
