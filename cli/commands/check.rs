//! `xinyong check`: parses and checks the configuration, every mapping file, the
//! platforms' secrets and the schema files, and says what it found.

use super::{config_path, load_config};
use std::path::PathBuf;

/// `xinyong check`.
pub fn check(config: Option<PathBuf>) -> anyhow::Result<i32> {
    pipeline::domain::schema::check_built_in().map_err(anyhow::Error::msg)?;
    let path = config_path(config, true);
    let config = load_config(&path)?;
    let feeds = config.feeds()?;
    for p in &config.platforms {
        p.resolve_secret().map_err(anyhow::Error::msg)?;
    }
    println!(
        "ok: {} ({} feeds, {} platforms, {} datasets)",
        path.display(),
        feeds.len(),
        config.platforms.len(),
        pipeline::domain::schema::registry().codes().len()
    );
    for f in &feeds {
        println!(
            "  {} → {} ({} fields mapped) from {}",
            f.name,
            f.dataset.code,
            f.rules.len(),
            f.file.display()
        );
    }
    Ok(0)
}
