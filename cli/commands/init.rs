//! `xinyong init DIR`: a new deployment — the configuration (annotated), a mappings
//! folder with an annotated example, the schedules, a drop folder, a secrets folder
//! (where the platforms' secrets go, readable by the service only) and a hardened
//! systemd unit. Nothing existing is overwritten.

use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct InitArgs {
    /// The deployment's directory (created if missing).
    dir: PathBuf,
}

const CONFIG: &str = r#"# xinyong deployment. Paths are relative to this file.
# `xinyong --config xinyong.toml check` checks everything, `status` shows the state.
data_dir = "data"                 # snapshots, quarantine, reports, the state store
mappings = "mappings"             # one file per departmental feed (see mappings/*.example)
schedules = "schedules"           # the nightly run and the midday push
base_dir = "."                    # relative source paths in mappings start here
# calendar = "holidays.toml"      # years of the State Council holiday notice after 2026

# The platforms pushed to. Secrets come from the environment (systemd: the
# EnvironmentFile secrets/xinyong.env), never from this file.
[[platform]]
name = "jiamusi"
title = "信用佳木斯"
base_url = "https://xyjms.example.gov.cn"   # the address the prefecture gives you
app_id = "tongjiang-city"
secret_env = "XINYONG_JIAMUSI_SECRET"

[[platform]]
name = "province"
title = "信用黑龙江"
base_url = "https://xyhlj.example.gov.cn"   # the address the province gives you
app_id = "tongjiang-city"
secret_env = "XINYONG_PROVINCE_SECRET"

# Tell someone when a night fails (WeCom / DingTalk group robots, or a JSON webhook).
# [[alert]]
# kind = "wecom"
# url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"
# on = ["feed_failed", "platform_error", "set_aside", "calendar"]
"#;

const SECRETS: &str = "# The platforms' application secrets, read by the systemd unit\n\
# (EnvironmentFile). chmod 600; never commit this file.\n\
XINYONG_JIAMUSI_SECRET=\n\
XINYONG_PROVINCE_SECRET=\n";

const EXAMPLE: &str = include_str!("../../mappings/scjgj_xzcf.toml");
const SCHEDULE: &str = include_str!("../../schedules/nightly.toml");

/// The systemd unit for `xinyong schedule`, hardened.
fn unit(dir: &Path, bin: &Path) -> String {
    format!(
        "# /etc/systemd/system/xinyong.service — `systemctl enable --now xinyong`\n\
[Unit]\n\
Description=xinyong public-credit data exchange (scheduled runs)\n\
After=network-online.target\n\
Wants=network-online.target\n\
\n\
[Service]\n\
Type=simple\n\
User=xinyong\n\
Group=xinyong\n\
WorkingDirectory={dir}\n\
EnvironmentFile={dir}/secrets/xinyong.env\n\
ExecStart={bin} --config {dir}/xinyong.toml --log-format json schedule\n\
Restart=on-failure\n\
RestartSec=30\n\
TimeoutStopSec=60\n\
NoNewPrivileges=yes\n\
ProtectSystem=strict\n\
ProtectHome=yes\n\
PrivateTmp=yes\n\
PrivateDevices=yes\n\
ProtectKernelTunables=yes\n\
ProtectKernelModules=yes\n\
ProtectControlGroups=yes\n\
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n\
RestrictNamespaces=yes\n\
LockPersonality=yes\n\
MemoryDenyWriteExecute=yes\n\
SystemCallArchitectures=native\n\
CapabilityBoundingSet=\n\
ReadWritePaths={dir}/data\n\
UMask=0027\n\
\n\
[Install]\n\
WantedBy=multi-user.target\n",
        dir = dir.display(),
        bin = bin.display()
    )
}

/// The systemd unit for `xinyong serve` on loopback (it writes only SQLite's shared
/// memory file beside the state store).
fn console_unit(dir: &Path, bin: &Path) -> String {
    unit(dir, bin)
        .replace(
            "/etc/systemd/system/xinyong.service — `systemctl enable --now xinyong`",
            "/etc/systemd/system/xinyong-console.service — `systemctl enable --now xinyong-console`",
        )
        .replace("(scheduled runs)", "(web console, read-only)")
        .replace(
            "--log-format json schedule",
            "--log-format json serve --listen 127.0.0.1:8080",
        )
}

/// `xinyong init`.
pub fn init(a: InitArgs) -> anyhow::Result<i32> {
    let dir = &a.dir;
    if dir.join("xinyong.toml").exists() {
        anyhow::bail!(
            "{} already holds a deployment (xinyong.toml); nothing was changed",
            dir.display()
        );
    }
    for sub in ["mappings", "schedules", "drop", "data", "secrets"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let abs = std::fs::canonicalize(dir)?;
    let bin = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/local/bin/xinyong"));
    let files: [(&str, String); 6] = [
        ("xinyong.toml", CONFIG.to_string()),
        (
            "mappings/行政处罚-示例.toml.example",
            format!(
                "# An annotated example: copy to <feed>.toml, set feed, department, source_unit\n\
# and [source] dir (e.g. \"drop/<feed>\"), and name each provincial field's column.\n{EXAMPLE}"
            ),
        ),
        ("schedules/nightly.toml", SCHEDULE.to_string()),
        ("secrets/xinyong.env", SECRETS.to_string()),
        ("xinyong.service", unit(&abs, &bin)),
        ("xinyong-console.service", console_unit(&abs, &bin)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, text)?;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("secrets"), std::fs::Permissions::from_mode(0o700))?;
        std::fs::set_permissions(
            dir.join("secrets/xinyong.env"),
            std::fs::Permissions::from_mode(0o600),
        )?;
    }
    outln!(
        "deployment written in {}:\n  xinyong.toml            the configuration (set the platforms' addresses)\n  mappings/               one file per feed (see the .example)\n  schedules/nightly.toml  01:30 Beijing time, every feed, both platforms\n  drop/                   where departments' files arrive\n  secrets/xinyong.env     the platforms' secrets (chmod 600)\n  xinyong.service         systemd unit: cp xinyong.service /etc/systemd/system/ && systemctl enable --now xinyong\n  xinyong-console.service the web console on 127.0.0.1:8080 (the same way)\nnext: xinyong --config {}/xinyong.toml check",
        dir.display(),
        dir.display()
    );
    Ok(0)
}
