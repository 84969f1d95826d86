//! The one retry policy of every exchange with an outside party — the platforms' batch
//! sends, polls, summaries and listings, and the HTTP source's pages. What an answer
//! means (done, come back later, worth another try, or final) is the caller's
//! [`Verdict`]; how long to wait and when to give up is the [`Backoff`]'s, kept apart as
//! Vector keeps its `RetryLogic` apart from the backoff.

use backon::BackoffBuilder;
use std::future::Future;
use std::time::{Duration, Instant};

/// What one attempt came to.
#[derive(Debug)]
pub enum Verdict<T> {
    /// Done: the value.
    Done(T),
    /// Final failure: retrying will not help (a refusal, a protocol error).
    Fatal(String),
    /// Worth another try: after the backoff's wait, or after the wait the other side
    /// asked for (`Retry-After`).
    Retry {
        /// Why.
        why: String,
        /// The wait the other side asked for, if any.
        after: Option<Duration>,
    },
}

/// How long to wait between attempts and when to stop.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The first wait (doubled at each retry, with jitter).
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
    /// At most this many attempts (`None`: until the deadline).
    pub attempts: Option<u32>,
    /// No attempt starts after this.
    pub deadline: Option<Instant>,
}

impl Backoff {
    /// The platforms' policy: 100 ms doubling to 5 s, until `deadline`.
    pub fn until(deadline: Instant) -> Backoff {
        Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(5),
            attempts: None,
            deadline: Some(deadline),
        }
    }

    /// A policy of at most `attempts` attempts.
    pub fn attempts(attempts: u32, first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            attempts: Some(attempts.max(1)),
            deadline: None,
        }
    }
}

/// How retrying ended without a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryError {
    /// A final failure.
    #[error("{0}")]
    Fatal(String),
    /// Attempts or time ran out.
    #[error("gave up after {attempts} attempts; last: {last}")]
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The last reason to retry.
        last: String,
    },
}

/// Runs `attempt` until it is done or final, or the policy gives up. `attempt` is told
/// the attempt's number (1, 2, …).
pub async fn retry<T, F, Fut>(policy: &Backoff, mut attempt: F) -> Result<T, RetryError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Verdict<T>>,
{
    let mut waits = backon::ExponentialBuilder::default()
        .with_min_delay(policy.first)
        .with_max_delay(policy.max)
        .with_jitter()
        .without_max_times()
        .build();
    let mut n = 0;
    loop {
        n += 1;
        let (why, after) = match attempt(n).await {
            Verdict::Done(v) => return Ok(v),
            Verdict::Fatal(why) => return Err(RetryError::Fatal(why)),
            Verdict::Retry { why, after } => (why, after),
        };
        let exhausted = RetryError::Exhausted {
            attempts: n,
            last: why.clone(),
        };
        if policy.attempts.is_some_and(|max| n >= max) {
            return Err(exhausted);
        }
        let wait = after.unwrap_or_else(|| waits.next().unwrap_or(policy.max));
        if let Some(deadline) = policy.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if wait >= left {
                tokio::time::sleep(left).await;
                return Err(exhausted);
            }
        }
        tracing::debug!(attempt = n, wait_ms = wait.as_millis() as u64, reason = %why, "retrying");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_until_done_and_stops_at_a_final_answer_or_the_budget() {
        let policy = Backoff::attempts(5, Duration::from_millis(10), Duration::from_secs(1));
        let got = retry(&policy, |n| async move {
            if n < 3 {
                Verdict::Retry {
                    why: "503".into(),
                    after: None,
                }
            } else {
                Verdict::Done(n)
            }
        })
        .await;
        assert_eq!(got, Ok(3));
        let got: Result<(), _> = retry(&policy, |_| async { Verdict::Fatal("401".into()) }).await;
        assert_eq!(got, Err(RetryError::Fatal("401".into())));
        let got: Result<(), _> = retry(&policy, |_| async {
            Verdict::Retry {
                why: "429".into(),
                after: Some(Duration::from_secs(1)),
            }
        })
        .await;
        assert_eq!(
            got,
            Err(RetryError::Exhausted {
                attempts: 5,
                last: "429".into()
            })
        );
        let policy = Backoff::until(Instant::now() + Duration::from_secs(2));
        let got: Result<(), _> = retry(&policy, |_| async {
            Verdict::Retry {
                why: "slow".into(),
                after: Some(Duration::from_secs(10)),
            }
        })
        .await;
        assert!(matches!(
            got,
            Err(RetryError::Exhausted { attempts: 1, .. })
        ));
    }
}
