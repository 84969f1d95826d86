//! `make bench`, part 2: micro-benchmarks of the hot stages of the penalties full load
//! (divan): decode + parse, credit-code check, date parsing, dedupe, Parquet write.

use devtools::loadgen;
use pipeline::stages::dedupe::{DedupeIndex, Winner};
use std::collections::HashSet;

fn main() {
    divan::main();
}

const ROWS: u64 = 20_000;

fn export_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in").join("export.csv");
    loadgen::write_export(&path, ROWS, 8, None).unwrap();
    (dir, path)
}

#[divan::bench(sample_count = 10)]
fn decode_and_parse_20k_rows(bencher: divan::Bencher) {
    let (dir, _) = export_file();
    let cfg = connectors::SourceConfig::FileDrop(connectors::sources::file_drop::FileDropConfig {
        dir: dir.path().join("in"),
        pattern: "*.csv".into(),
        sheet: None,
    });
    let cx = connectors::ReadContext {
        expected_columns: loadgen::HEADER.split(',').map(String::from).collect(),
        already_read: HashSet::new(),
        base_dir: "/".into(),
        ..Default::default()
    };
    bencher.bench(|| {
        let mut src = cfg.build(&cx).unwrap();
        let mut n = 0;
        while let Some(b) = src.next_batch().unwrap() {
            n += b.rows.len();
        }
        assert_eq!(n as u64, ROWS);
    });
}

#[divan::bench]
fn credit_code_check_10k(bencher: divan::Bencher) {
    let codes: Vec<String> = (0..10_000)
        .map(|i| pipeline::domain::ids::normalise_code(&loadgen::export_row(8, i).code))
        .collect();
    bencher.bench(|| {
        codes
            .iter()
            .filter(|c| pipeline::domain::ids::check_uscc(c).is_ok())
            .count()
    });
}

#[divan::bench]
fn date_parse_10k(bencher: divan::Bencher) {
    let dates: Vec<String> = (0..10_000)
        .map(|i| loadgen::export_row(8, i).date)
        .collect();
    bencher.bench(|| {
        dates
            .iter()
            .filter(|d| pipeline::mapping::transforms::parse_date(d, false).is_some())
            .count()
    });
}

#[divan::bench]
fn dedupe_100k(bencher: divan::Bencher) {
    // 100k rows over 95k records: ~5% repeats, as in the full load.
    let ids: Vec<[u8; 16]> = (0..100_000u64)
        .map(|i| {
            pipeline::domain::identity::pack_id(&format!(
                "{:032x}",
                (i % 95_000).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ))
        })
        .collect();
    bencher.bench(|| {
        let mut ix = DedupeIndex::default();
        for (seq, id) in ids.iter().enumerate() {
            ix.offer(
                *id,
                Winner {
                    updated: seq as i64 % 7,
                    seq: seq as u64 + 1,
                    version: *id,
                },
            )
            .expect("in memory, nothing to spill");
        }
        ix.resolve().expect("in memory, nothing to spill");
        ix.len()
    });
}

#[divan::bench(sample_count = 10)]
fn parquet_write_20k(bencher: divan::Bencher) {
    use pipeline::snapshot::{Provenance, RowIdentity, SnapshotRows};
    let ds = pipeline::domain::schema::registry().get("xzcf").unwrap();
    let schema = pipeline::snapshot::arrow_schema(&ds);
    let rows: Vec<Vec<String>> = (0..ROWS)
        .map(|i| {
            let r = loadgen::base_row(8, i, false);
            let mut values = vec![String::new(); ds.fields.len()];
            values[ds.position("CF_XDR_MC").unwrap()] = r.name;
            values[ds.position("CF_XDR_SHXYM").unwrap()] = r.code;
            values[ds.position("CF_WSH").unwrap()] = r.wsh;
            values[ds.position("CF_SY").unwrap()] = r.fact;
            values[ds.position("CF_NR").unwrap()] = r.content;
            values
        })
        .collect();
    let from = Provenance {
        feed: "f",
        source_unit: "f",
        source_file: "f",
        run_id: "f",
    };
    let dir = tempfile::tempdir().unwrap();
    bencher.bench(|| {
        let mut w = pipeline::snapshot::AtomicParquet::create(
            &dir.path().join("x.parquet"),
            schema.clone(),
        )
        .unwrap();
        for (c, chunk) in rows.chunks(8192).enumerate() {
            let mut batch = SnapshotRows::with_capacity(ds.fields.len(), chunk.len());
            for (i, values) in chunk.iter().enumerate() {
                let line = (c * 8192 + i) as u64;
                batch.push(
                    &RowIdentity {
                        record_id: &pipeline::domain::identity::record_id_bytes(&ds, values),
                        version: &pipeline::domain::identity::version_bytes(&ds, values),
                        updated_at: None,
                        source_line: line,
                    },
                    &from,
                    values,
                );
            }
            w.write(&batch.finish(&schema)).unwrap();
        }
        w.publish().unwrap()
    });
}
