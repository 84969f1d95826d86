//! One file per command; this file holds what they share: finding and loading the
//! configuration, and waiting for a shutdown signal.

pub mod backup;
pub mod calendar;
pub mod check;
pub mod corrections;
pub mod devtools;
pub mod find;
pub mod id;
pub mod init;
pub mod overrides;
pub mod reconcile;
pub mod report;
pub mod run;
pub mod schedule;
pub mod serve;
pub mod status;

use pipeline::config::Config;
use std::path::{Path, PathBuf};

/// The demo's configuration, used by `demo` and `check` when no other is named.
pub const DEMO_CONFIG: &str = "fixtures/demo/xinyong.toml";

/// The configuration file: `--config`, then `$XINYONG_CONFIG`, then `./xinyong.toml`
/// (the demo's for the demo).
pub fn config_path(cli: Option<PathBuf>, demo: bool) -> PathBuf {
    cli.or_else(|| std::env::var_os("XINYONG_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(if demo { DEMO_CONFIG } else { "xinyong.toml" }))
}

/// Loads and checks a configuration file.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    if !path.exists() {
        anyhow::bail!(
            "no configuration at {}: pass --config FILE or set XINYONG_CONFIG (the demo's is {DEMO_CONFIG})",
            path.display()
        );
    }
    Ok(Config::load(path)?)
}

/// Loads the deployment's configuration (not the demo's).
pub fn deployment(cli: Option<PathBuf>) -> anyhow::Result<Config> {
    load_config(&config_path(cli, false))
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "no SIGTERM handler; Ctrl-C only");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
