//! The court's API feed end to end: `xinyong run` reads the 失信被执行人 list page by page
//! into the blacklist dataset; killed with SIGKILL mid-read, between the snapshot and
//! its bookkeeping, or after it, the rerun ends with every record exactly once.

use crate::util::*;
use std::os::unix::process::ExitStatusExt;

/// Serves the demo's court API from this test process; returns its base URL.
fn court_api() -> (
    String,
    std::thread::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (url, stop) = devtools::court_api::start().await.unwrap();
            tx.send(url).unwrap();
            let _ = stop_rx.await;
            let _ = stop.send(());
        });
    });
    (rx.recv().unwrap(), handle, stop_tx)
}

#[test]
fn the_court_feed_killed_anywhere_converges_to_every_record_once() {
    let (url, handle, stop) = court_api();
    for point in ["ingest.batch:2", "snapshot.published:1", "feed.recorded:1"] {
        let w = Workdir::new();
        w.configure(&[], &PlatformOpts::default());
        std::fs::copy(
            std::path::Path::new(ROOT).join("mappings/fy_sxbzxr.toml"),
            w.path().join("mappings/fy_sxbzxr.toml"),
        )
        .unwrap();
        std::fs::create_dir_all(w.path().join("out/demo/sources")).unwrap();
        std::fs::write(w.path().join("out/demo/sources/court-api.url"), &url).unwrap();
        // The mapping's base_url_file is relative to the configuration's base directory.
        let cfg = std::fs::read_to_string(w.config()).unwrap().replace(
            "mappings = \"mappings\"",
            "mappings = \"mappings\"\nbase_dir = \".\"",
        );
        std::fs::write(w.config(), cfg).unwrap();
        let args = ["run", "--no-push", "--feed", "fy_sxbzxr"];
        let killed = w.xinyong_env(&args, &[("XINYONG_CRASH_AT", point)]);
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{point}: {}",
            stderr(&killed)
        );
        let out = w.xinyong(&args);
        assert_exit(&out, 0);
        let r = w.latest_report();
        let c = &r["feeds"][0]["counts"];
        assert_eq!(
            c["read"].as_u64().unwrap(),
            c["kept"].as_u64().unwrap()
                + c["quarantined"].as_u64().unwrap()
                + c["superseded"].as_u64().unwrap()
        );
        let mut held = 0;
        let store = pipeline::snapshot::SnapshotStore::new(&w.data());
        let mut ids = std::collections::BTreeSet::new();
        store
            .read_dataset("blacklist", Some(&["record_id"]), |b| {
                let col = pipeline::snapshot::str_col(&b, "record_id").unwrap();
                for i in 0..b.num_rows() {
                    held += 1;
                    ids.insert(col.value(i).to_string());
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(
            (held, ids.len()),
            (36, 36),
            "{point}: every record exactly once"
        );
    }
    let _ = stop.send(());
    handle.join().unwrap();
}
