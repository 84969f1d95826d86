//! `xinyong serve`: the read-only web console (see `console/`). Loopback by default; any
//! other address needs a token (`XINYONG_CONSOLE_TOKEN` or `--token-file`), which every
//! request must then carry. Runs beside `xinyong schedule`: it only reads the state.

use super::{deployment, shutdown_signal};
use crate::console::{self, Console};
use pipeline::state::StateStore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Shortest token accepted.
const TOKEN_MIN_CHARS: usize = 16;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; anything but loopback needs a token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A file holding the token (default: $XINYONG_CONSOLE_TOKEN); at least 16 characters.
    #[arg(long)]
    token_file: Option<PathBuf>,
}

fn token(a: &ServeArgs) -> anyhow::Result<Option<String>> {
    let token = match &a.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", path.display()))?
                .trim()
                .to_string(),
        ),
        None => std::env::var("XINYONG_CONSOLE_TOKEN")
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()),
    };
    if let Some(t) = &token {
        if t.chars().count() < TOKEN_MIN_CHARS {
            anyhow::bail!(
                "the console token has {} characters: use at least {TOKEN_MIN_CHARS} (e.g. `openssl rand -hex 16`)",
                t.chars().count()
            );
        }
        if !t.chars().all(|c| c.is_ascii_graphic()) || t.contains(';') {
            anyhow::bail!("the console token must be printable ASCII without spaces or ';'");
        }
    }
    if token.is_none() && !a.listen.ip().is_loopback() {
        anyhow::bail!(
            "--listen {}: any address but loopback needs a token (set XINYONG_CONSOLE_TOKEN or pass --token-file)",
            a.listen
        );
    }
    Ok(token)
}

/// `xinyong serve`.
pub async fn serve(config: Option<PathBuf>, a: ServeArgs) -> anyhow::Result<i32> {
    let token = token(&a)?;
    let config = deployment(config)?;
    let state = StateStore::open(&config.state).await?;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", a.listen))?;
    let addr = listener.local_addr()?;
    outln!(
        "控制台 console: http://{addr}/{}",
        if token.is_some() {
            " (令牌 token required)"
        } else {
            ""
        }
    );
    tracing::info!(%addr, token = token.is_some(), "console listening");
    let console = Arc::new(Console {
        config,
        state: state.clone(),
        token,
    });
    axum::serve(listener, console::router(console))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    state.close().await;
    Ok(0)
}
