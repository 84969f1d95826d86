//! `xinyong backup DEST`: a consistent copy of the state store while runs may be going
//! (SQLite `VACUUM INTO`), checked by opening it. DEST is a file, or a directory that
//! gets `state-<Beijing time>.sqlite`.

use super::deployment;
use pipeline::state::StateStore;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct BackupArgs {
    /// Where the copy goes: a new file, or a directory.
    dest: PathBuf,
}

/// `xinyong backup`.
pub async fn backup(config: Option<PathBuf>, a: BackupArgs) -> anyhow::Result<i32> {
    let config = deployment(config)?;
    let dest = if a.dest.is_dir() {
        let stamp = pipeline::clock::now()
            .with_timezone(&pipeline::clock::CHINA)
            .format("%Y%m%dT%H%M%S");
        a.dest.join(format!("state-{stamp}.sqlite"))
    } else {
        a.dest.clone()
    };
    let state = StateStore::open(&config.state).await?;
    let done = state.backup_to(&dest).await;
    state.close().await;
    done?;
    // The copy must open and pass the same check as the store itself.
    let copy = StateStore::open(&dest).await?;
    copy.close().await;
    let bytes = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
    outln!(
        "backup written: {} ({bytes} bytes), checked",
        dest.display()
    );
    Ok(0)
}
