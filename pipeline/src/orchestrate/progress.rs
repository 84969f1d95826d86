//! Progress of one feed while it is read: a bar with rate and ETA on a terminal (bytes
//! of the source when it knows its size), plain periodic log lines otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Called with the rows read so far and, when the source knows its size, (bytes read,
/// bytes in all).
pub type ProgressFn = Arc<dyn Fn(u64, Option<(u64, u64)>) + Send + Sync>;

/// The bar (hidden off a terminal) and the callback of one feed.
pub fn progress_for(feed: &str) -> (ProgressBar, ProgressFn) {
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix} [{bar:30}] {percent:>3}% {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} · {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(feed.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        let b = bar.clone();
        (
            bar,
            Arc::new(move |rows, bytes| {
                if let Some((done, total)) = bytes {
                    b.set_length(total);
                    b.set_position(done);
                }
                b.set_message(format!("{rows} 行 rows"));
            }),
        )
    } else {
        let start = Instant::now();
        let last = std::sync::Mutex::new(Instant::now());
        let name = feed.to_string();
        (
            ProgressBar::hidden(),
            Arc::new(move |rows, bytes| {
                let mut l = last.lock().expect("not poisoned");
                if l.elapsed() >= Duration::from_secs(5) {
                    *l = Instant::now();
                    let secs = start.elapsed().as_secs_f64().max(0.001);
                    let rate = rows as f64 / secs;
                    match bytes {
                        Some((done, total)) if done > 0 && total > 0 => {
                            let eta = secs * (total.saturating_sub(done)) as f64 / done as f64;
                            tracing::info!(feed = %name, rows, rows_per_second = rate as u64, percent = 100 * done / total, eta_seconds = eta as u64, "reading");
                        }
                        _ => {
                            tracing::info!(feed = %name, rows, rows_per_second = rate as u64, "reading")
                        }
                    }
                }
            }),
        )
    }
}
