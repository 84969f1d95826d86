//! Fuzzing on stable Rust (proptest): the configuration and mapping parsers and the
//! receipt check never panic, whatever the text. Each target is a `fuzz_` test;
//! `make test` runs a smoke of proptest's default 256 cases, `make fuzz` runs
//! `PROPTEST_CASES=100000`. Inputs are arbitrary text and mutations of the
//! repository's own files.

use crate::mapping::Feed;
use crate::platform::contract::Receipt;
use proptest::prelude::*;
use std::path::Path;

fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel))
        .unwrap_or_default()
}

/// A text with some characters replaced, some lines dropped or doubled.
fn mutated_text(base: String) -> impl Strategy<Value = String> {
    let lines: Vec<String> = base.lines().map(str::to_string).collect();
    let n = lines.len().max(1);
    let pieces = prop_oneof![
        Just("\"".to_string()),
        Just("=".to_string()),
        Just("[".to_string()),
        Just("]]".to_string()),
        Just("../".to_string()),
        Just("\u{0}".to_string()),
        Just("-1".to_string()),
        Just("1e309".to_string()),
        Just("18446744073709551616".to_string()),
        Just("nan".to_string()),
        "[\\PC]{0,6}",
    ];
    (
        proptest::collection::vec((0..n, 0..80usize, pieces), 0..6),
        proptest::collection::vec((0..n, any::<bool>()), 0..4),
    )
        .prop_map(move |(edits, moves)| {
            let mut lines = lines.clone();
            for (l, col, piece) in edits {
                if let Some(line) = lines.get_mut(l) {
                    let at = line
                        .char_indices()
                        .map(|(i, _)| i)
                        .nth(col)
                        .unwrap_or(line.len());
                    line.insert_str(at, &piece);
                }
            }
            for (l, double) in moves {
                if l < lines.len() {
                    if double {
                        let copy = lines[l].clone();
                        lines.insert(l, copy);
                    } else {
                        lines.remove(l);
                    }
                }
            }
            lines.join("\n")
        })
}

fn load_config(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("mappings")).unwrap();
    let path = dir.path().join("xinyong.toml");
    std::fs::write(&path, text).unwrap();
    if let Ok(c) = crate::config::Config::load(&path) {
        let _ = c.feeds_each();
        for p in &c.platforms {
            let _ = p.connect();
        }
    }
}

fn receipt_json() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        Just("b1".to_string()),
        Just("r1".to_string()),
        "[a-z0-9]{0,4}",
        Just(String::new())
    ];
    (
        id.clone(),
        prop_oneof![Just("done"), Just("processing"), Just("other")],
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(2),
            Just(3),
            Just(-1),
            Just(i64::MAX)
        ],
        proptest::collection::vec((id, "[a-z_]{0,8}"), 0..5),
    )
        .prop_map(|(batch, status, accepted, rejected)| {
            let rejected: Vec<serde_json::Value> = rejected
                .into_iter()
                .map(|(r, c)| serde_json::json!({ "record_id": r, "code": c }))
                .collect();
            serde_json::json!({
                "batch_id": batch,
                "status": status,
                "accepted": accepted,
                "rejected": rejected,
                "received_at": "2026-12-01T08:00:00+08:00",
            })
            .to_string()
        })
}

proptest! {
    #[test]
    fn fuzz_mapping_toml_arbitrary(text in "[\\PC\n]{0,400}") {
        let _ = Feed::parse(Path::new("mappings/x.toml"), &text);
    }

    #[test]
    fn fuzz_mapping_toml_mutated(text in mutated_text(repo_file("mappings/scjgj_xzcf.toml"))) {
        let _ = Feed::parse(Path::new("mappings/scjgj_xzcf.toml"), &text);
    }

    #[test]
    fn fuzz_mapping_toml_mutated_sources(text in mutated_text(repo_file("mappings/fy_sxbzxr.toml") + "\n" + &repo_file("mappings/zjj_xzcf.toml"))) {
        let _ = Feed::parse(Path::new("mappings/x.toml"), &text);
    }

    #[test]
    fn fuzz_configuration_toml_mutated(text in mutated_text(
        "data_dir = \"data\"\nmappings = \"mappings\"\nstate = \"data/state.sqlite\"\n\n[[platform]]\nname = \"jiamusi\"\ntitle = \"信用佳木斯\"\nbase_url = \"http://127.0.0.1:9\"\napp_id = \"tongjiang-city\"\nsecret = \"s\"\ntimeout_seconds = 5\nretry_budget_seconds = 30\nbatch_records = 500\nmax_in_flight = 4\n".to_string()
    )) {
        load_config(&text);
    }

    #[test]
    fn fuzz_receipts(json in receipt_json(), sent in proptest::collection::vec("[a-z0-9]{0,3}", 0..5)) {
        if let Ok(r) = serde_json::from_str::<Receipt>(&json) {
            let _ = crate::push::receipt::check("b1", &sent, &r);
        }
    }

    #[test]
    fn fuzz_receipts_arbitrary(json in "[\\PC]{0,200}") {
        if let Ok(r) = serde_json::from_str::<Receipt>(&json) {
            let _ = crate::push::receipt::check("b1", &["r1".to_string()], &r);
        }
    }
}
