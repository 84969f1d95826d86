//! `xinyong check`: parses and checks the configuration, every mapping file, the
//! platforms' secrets and the schema files; then opens each file source (the drop
//! folder exists, a file's header has every mapped column — with a "did you mean"),
//! and with `--online` asks each SQL and HTTP source for a first batch. It warns about
//! required dataset fields a mapping leaves unfilled. Exit 2 on any error.

use super::{config_path, load_config};
use connectors::{ReadContext, SourceConfig};
use pipeline::mapping::{Feed, FieldSource};
use std::path::PathBuf;

#[derive(clap::Args, Default)]
pub struct CheckArgs {
    /// Also connect to the SQL and HTTP sources and read a first batch.
    #[arg(long)]
    online: bool,
}

/// `xinyong check`.
pub fn check(config: Option<PathBuf>, a: CheckArgs) -> anyhow::Result<i32> {
    pipeline::domain::schema::check_built_in().map_err(anyhow::Error::msg)?;
    let path = config_path(config, true);
    let config = load_config(&path)?;
    let feeds = config.feeds()?;
    for p in &config.platforms {
        p.resolve_secret().map_err(anyhow::Error::msg)?;
    }
    outln!(
        "ok: {} ({} feeds, {} platforms, {} datasets)",
        path.display(),
        feeds.len(),
        config.platforms.len(),
        pipeline::domain::schema::registry().codes().len()
    );
    let mut errors = 0;
    for f in &feeds {
        outln!(
            "  {} → {} ({} fields mapped) from {}",
            f.name,
            f.dataset.code,
            f.rules.len(),
            f.file.display()
        );
        for w in unfilled_required(f) {
            outln!("    ⚠ warning: {w}");
        }
        let online = !matches!(f.source, SourceConfig::FileDrop(_));
        if online && !a.online {
            continue;
        }
        match probe(f, &config.base_dir) {
            Ok(lines) => {
                for l in lines {
                    outln!("    {l}");
                }
            }
            Err(e) => {
                errors += 1;
                outln!("    ✗ error: {e}");
            }
        }
    }
    if errors > 0 {
        eprintln!("error: {errors} feed(s) cannot be read as configured (see above)");
        return Ok(2);
    }
    Ok(0)
}

/// Required fields of the dataset that no rule fills (no column, constant or default).
fn unfilled_required(f: &Feed) -> Vec<String> {
    let ds = &f.dataset;
    ds.fields
        .iter()
        .enumerate()
        .filter(|(i, field)| field.required && !f.rules.iter().any(|r| r.target == *i))
        .filter(|(i, _)| {
            // A credit code the register can fill from a mapped legacy code is filled.
            !ds.resolve_from
                .get(*i)
                .is_some_and(|from| from.iter().any(|j| f.rules.iter().any(|r| r.target == *j)))
        })
        .map(|(_, field)| {
            format!(
                "required field {} {} is not mapped: every row would be quarantined as missing_field",
                field.code, field.name
            )
        })
        .collect()
}

/// Opens the feed's source and reads a first batch (on a thread of its own: sources
/// run their own runtime): what it found, or why it cannot be read.
fn probe(f: &Feed, base_dir: &std::path::Path) -> Result<Vec<String>, String> {
    let cx = ReadContext {
        expected_columns: f.expected_columns(),
        base_dir: base_dir.to_path_buf(),
        feed: f.name.clone(),
        ..Default::default()
    };
    let source = f.source.clone();
    let columns: Vec<(String, bool)> = f
        .rules
        .iter()
        .filter_map(|r| match &r.source {
            FieldSource::Column(c) => Some((c.clone(), r.optional)),
            FieldSource::Value(_) => None,
        })
        .chain(f.updated_at.iter().map(|c| (c.clone(), false)))
        .collect();
    std::thread::spawn(move || -> Result<Vec<String>, String> {
        let mut src = source.build(&cx).map_err(|e| e.to_string())?;
        let first = src.next_batch().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for s in src.set_aside() {
            out.push(format!("⚠ set aside: {} — {}", s.path.display(), s.reason));
        }
        let Some(batch) = first else {
            out.push("ok: nothing new to read".into());
            return Ok(out);
        };
        let headers = &batch.unit.headers;
        let mut missing = Vec::new();
        for (c, optional) in &columns {
            let wanted = connectors::header::normalise_header(c);
            if *optional || headers.contains(&wanted) {
                continue;
            }
            let near = headers
                .iter()
                .min_by_key(|h| distance(h, &wanted))
                .filter(|h| distance(h, &wanted) <= wanted.chars().count().div_ceil(2))
                .map(|h| format!(" (did you mean {h:?}?)"))
                .unwrap_or_default();
            missing.push(format!("column {c:?} is not in the header{near}"));
        }
        if !missing.is_empty() {
            return Err(format!(
                "{}: {}; its columns are: {}",
                batch.unit.display_name(),
                missing.join("; "),
                headers.join(", ")
            ));
        }
        out.push(format!(
            "ok: {} read, every mapped column found (header at line {})",
            batch.unit.display_name(),
            batch.unit.header_line
        ));
        Ok(out)
    })
    .join()
    .unwrap_or_else(|_| Err("the source failed while it was opened".into()))
}

/// Edit distance between two texts, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
