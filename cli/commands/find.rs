//! `xinyong find`: a record by its decision's document number (文书号), a credit code or
//! a name — its record id, dataset, feed, and what each platform holds of it. The
//! clerk's way to the id that `withdraw`, `hold` and `release` take.

use super::deployment;
use pipeline::domain::masking::mask_ids_in_text;
use pipeline::domain::schema::{registry, FieldType};
use pipeline::state::StateStore;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct FindArgs {
    /// The decision's document number (文书号), exactly.
    #[arg(long)]
    wsh: Option<String>,
    /// A unified social credit code (or another code of the record), exactly.
    #[arg(long)]
    code: Option<String>,
    /// Part of the subject's name.
    #[arg(long)]
    name: Option<String>,
    /// JSON instead of lines.
    #[arg(long)]
    json: bool,
}

/// `xinyong find`.
pub async fn find(config: Option<PathBuf>, a: FindArgs) -> anyhow::Result<i32> {
    let given = [&a.wsh, &a.code, &a.name]
        .iter()
        .filter(|x| x.is_some())
        .count();
    if given != 1 {
        anyhow::bail!("give one of --wsh, --code or --name");
    }
    let config = deployment(config)?;
    let store = pipeline::snapshot::SnapshotStore::new(&config.data_dir);
    let mut found: Vec<serde_json::Value> = Vec::new();
    let state = StateStore::open(&config.state).await?;
    for code in registry().codes() {
        let Some(ds) = registry().get(&code) else {
            continue;
        };
        if !store.exists(&ds.code) {
            continue;
        }
        let document = ds.document_position();
        let subject = ds.fields.iter().position(|f| f.subject_name);
        let codes: Vec<usize> = ds
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                matches!(
                    f.ty,
                    FieldType::Uscc | FieldType::OrgCode | FieldType::Regno
                )
            })
            .map(|(i, _)| i)
            .collect();
        let mut hits = Vec::new();
        store.read_dataset(&ds.code, None, |b| {
            let col = |name: &str| pipeline::snapshot::str_col(&b, name);
            let (Some(ids), Some(feeds)) = (col("record_id"), col("feed")) else {
                return Ok(());
            };
            let value = |i: Option<usize>, row: usize| -> String {
                i.and_then(|i| col(&ds.fields[i].code))
                    .map(|c| c.value(row).to_string())
                    .unwrap_or_default()
            };
            for row in 0..b.num_rows() {
                let hit = match (&a.wsh, &a.code, &a.name) {
                    (Some(w), _, _) => value(document, row).trim() == w.trim(),
                    (_, Some(c), _) => codes
                        .iter()
                        .any(|&i| value(Some(i), row).eq_ignore_ascii_case(c.trim())),
                    (_, _, Some(n)) => {
                        !n.trim().is_empty() && value(subject, row).contains(n.trim())
                    }
                    _ => false,
                };
                if hit {
                    hits.push((
                        ids.value(row).to_string(),
                        feeds.value(row).to_string(),
                        value(document, row),
                        value(subject, row),
                        codes
                            .first()
                            .map(|&i| value(Some(i), row))
                            .unwrap_or_default(),
                    ));
                }
            }
            Ok(())
        })?;
        for (record_id, feed, wsh, name, code) in hits {
            let platforms: Vec<serde_json::Value> = state
                .ledger_of_record(&ds.code, &record_id)
                .await?
                .into_iter()
                .map(|(platform, version, op, status, code)| {
                    serde_json::json!({"platform": platform, "version": version, "op": op, "status": status, "code": code})
                })
                .collect();
            found.push(serde_json::json!({
                "dataset": ds.code,
                "dataset_name": ds.name,
                "record_id": record_id,
                "feed": feed,
                "document_number": mask_ids_in_text(&wsh),
                "subject": name,
                "code": code,
                "platforms": platforms,
            }));
        }
    }
    state.close().await;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(if found.is_empty() { 1 } else { 0 });
    }
    if found.is_empty() {
        outln!("无 none: no record in the snapshot matches");
        return Ok(1);
    }
    for f in &found {
        outln!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            f["dataset"].as_str().unwrap_or_default(),
            f["record_id"].as_str().unwrap_or_default(),
            f["document_number"].as_str().unwrap_or_default(),
            f["subject"].as_str().unwrap_or_default(),
            f["code"].as_str().unwrap_or_default(),
            f["feed"].as_str().unwrap_or_default()
        );
        for p in f["platforms"].as_array().into_iter().flatten() {
            outln!(
                "    {}: {} {} (version {}){}",
                p["platform"].as_str().unwrap_or_default(),
                p["op"].as_str().unwrap_or_default(),
                p["status"].as_str().unwrap_or_default(),
                p["version"].as_str().unwrap_or_default(),
                p["code"]
                    .as_str()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default()
            );
        }
        if f["platforms"].as_array().is_none_or(|p| p.is_empty()) {
            outln!("    未推送 not pushed yet");
        }
    }
    Ok(0)
}
