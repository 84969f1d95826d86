//! Crash tests: the run is killed with SIGKILL at seeded points (while reading, between
//! a snapshot and its bookkeeping, before a batch leaves, after the platform answered
//! but before the receipt is recorded, …); each rerun converges to the holdings of a
//! clean run, and the platform never applies a record twice.

use crate::util::*;
use rand::{Rng, SeedableRng};
use std::os::unix::process::ExitStatusExt;

fn seeded_points(seed: u64, n: usize) -> Vec<(String, u32)> {
    let kinds: [(&str, u32); 6] = [
        ("ingest.batch", 3),
        ("snapshot.published", 3),
        ("feed.recorded", 3),
        ("push.batch_opened", 19),
        ("push.batch_answered", 19),
        ("push.batch_closed", 19),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out: Vec<(String, u32)> = Vec::new();
    // Every kind at least once, then seeded picks.
    for (k, max) in kinds {
        out.push((k.to_string(), rng.random_range(1..=max)));
    }
    while out.len() < n {
        let (k, max) = kinds[rng.random_range(3..kinds.len())];
        let p = (k.to_string(), rng.random_range(1..=max));
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

#[test]
fn sigkill_at_24_seeded_points_then_rerun_converges_to_the_clean_holdings() {
    let opts = || PlatformOpts {
        batch_records: 40,
        ..Default::default()
    };
    let clean = Workdir::new();
    let clean_sim = Simulator::start("jiamusi", &[]);
    clean.configure(&[&clean_sim], &opts());
    assert_exit(&clean.xinyong(&["run"]), 0);
    let expected = clean.snapshot_holdings();
    let groups = expected.keys().cloned().collect();

    let mut killed = 0;
    for (point, n) in seeded_points(2024, 24) {
        let w = Workdir::new();
        let sim = Simulator::start("jiamusi", &[]);
        w.configure(&[&sim], &opts());
        let o = w.xinyong_env(&["run"], &[("XINYONG_CRASH_AT", &format!("{point}:{n}"))]);
        if o.status.signal() == Some(libc_sigkill()) {
            killed += 1;
        } else {
            assert_exit(&o, 0);
        }
        let mut runs = 0;
        loop {
            runs += 1;
            let o = w.xinyong(&["run"]);
            if o.status.code() == Some(0) {
                break;
            }
            assert!(
                runs < 3,
                "{point}:{n}: no convergence\n{}\n{}",
                stdout(&o),
                stderr(&o)
            );
        }
        assert_eq!(w.snapshot_holdings(), expected, "{point}:{n}: snapshot");
        assert_eq!(
            sim.holdings(&groups),
            expected,
            "{point}:{n}: platform holdings"
        );
        let stats = sim.stats();
        assert_eq!(
            stats["same_version_upserts"], 0,
            "{point}:{n}: a record was applied twice: {stats}"
        );
        assert_eq!(
            w.latest_report()["platforms"][0]["pending"],
            0,
            "{point}:{n}"
        );
    }
    assert!(killed >= 20, "only {killed} of the points were reached");
}

fn libc_sigkill() -> i32 {
    9
}
