//! Crash points for the crash tests: `XINYONG_CRASH_AT=<point>:<n>` makes the process
//! kill itself with SIGKILL the n-th time it passes the named point — the same abrupt
//! end as `kill -9` or a power cut, at a chosen place. Without the variable a crash
//! point costs one relaxed atomic load.
//!
//! Points: `ingest.batch` (after each batch of rows is mapped and spilled),
//! `snapshot.published` (a dataset's new snapshot is in place, its files not yet
//! recorded as read), `feed.recorded`, `push.batch_opened` (a batch is recorded as sent
//! but has not left), `push.batch_answered` (the platform answered, the receipt is not
//! yet recorded), `push.batch_closed`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn target() -> &'static Option<(String, u64)> {
    TARGET.get_or_init(|| {
        let v = std::env::var("XINYONG_CRASH_AT").ok()?;
        let (name, n) = v.rsplit_once(':')?;
        Some((name.to_string(), n.parse().ok()?))
    })
}

/// Passes a crash point.
pub fn hit(point: &str) {
    if let Some((name, n)) = target() {
        if name == point && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            eprintln!("crash point {point}:{n}: killing this process with SIGKILL");
            // SAFETY: kill(2) on our own pid with a valid signal number has no memory effects.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}
