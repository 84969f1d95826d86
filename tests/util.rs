//! A scratch deployment for end-to-end tests: a temporary directory holding copies of
//! `mappings/` and `fixtures/drop/`, a configuration pointing at simulators started as
//! child processes, and helpers to run `xinyong` and read what it left.

use pipeline::platform::{Dialect, Platform, PlatformConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// (dataset, source_unit) → {(record_id, version, status)}: what a platform holds.
pub type Holdings = BTreeMap<(String, String), BTreeSet<(String, String, String)>>;

pub const BIN: &str = env!("CARGO_BIN_EXE_xinyong");
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A platform simulator running as a child process.
pub struct Simulator {
    pub name: String,
    pub url: String,
    pub secret: String,
    child: Child,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Simulator {
    /// Starts `xinyong simulate` on a free loopback port with extra flags.
    pub fn start(name: &str, extra: &[&str]) -> Simulator {
        let secret = format!("test-secret-{name}");
        let mut child = Command::new(BIN)
            .args([
                "simulate",
                "--platform",
                name,
                "--listen",
                "127.0.0.1:0",
                "--app",
            ])
            .arg(format!("tongjiang-city={secret}"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the simulator starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("the simulator prints its address")
            .to_string();
        Simulator {
            name: name.to_string(),
            url,
            secret,
            child,
        }
    }

    pub fn client(&self) -> Box<dyn Platform> {
        PlatformConfig {
            name: self.name.clone(),
            title: self.name.clone(),
            dialect: Dialect::V1,
            base_url: self.url.clone(),
            app_id: "tongjiang-city".into(),
            secret: Some(self.secret.clone()),
            secret_env: None,
            timeout_seconds: 10.0,
            retry_budget_seconds: 10.0,
            batch_records: 500,
            max_in_flight: 4,
        }
        .connect()
        .unwrap()
    }

    /// What the platform holds: (dataset, source_unit) → {(record_id, version, status)}.
    pub fn holdings(&self, groups: &BTreeSet<(String, String)>) -> Holdings {
        let client = self.client();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut out = BTreeMap::new();
        for (ds, unit) in groups {
            let mut set = BTreeSet::new();
            let mut token = String::new();
            loop {
                let page = rt.block_on(client.list_records(ds, unit, &token)).unwrap();
                for r in page.records {
                    set.insert((r.record_id, r.version, r.status));
                }
                match page.next_page_token {
                    Some(t) => token = t,
                    None => break,
                }
            }
            out.insert((ds.clone(), unit.clone()), set);
        }
        out
    }

    /// The simulator's own counters.
    pub fn stats(&self) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let body = reqwest::get(format!("{}/sim/stats", self.url))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            serde_json::from_str(&body).unwrap()
        })
    }
}

/// Platform settings for a test configuration.
pub struct PlatformOpts {
    pub timeout_seconds: f64,
    pub budget_seconds: f64,
    pub batch_records: usize,
}

impl Default for PlatformOpts {
    fn default() -> Self {
        PlatformOpts {
            timeout_seconds: 5.0,
            budget_seconds: 30.0,
            batch_records: 500,
        }
    }
}

/// A scratch deployment.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        let dir = tempfile::Builder::new()
            .prefix("xinyong-e2e-")
            .tempdir()
            .unwrap();
        copy_dir(
            &Path::new(ROOT).join("mappings"),
            &dir.path().join("mappings"),
        );
        // Feeds read from a database or an API need it set up first (`xinyong demo` does
        // that for the demo); the tests that read them add them (`add_sql_feed`).
        for e in std::fs::read_dir(dir.path().join("mappings")).unwrap() {
            let path = e.unwrap().path();
            if std::fs::read_to_string(&path)
                .is_ok_and(|t| t.contains("type = \"sql\"") || t.contains("type = \"http\""))
            {
                std::fs::remove_file(path).unwrap();
            }
        }
        copy_dir(
            &Path::new(ROOT).join("fixtures/drop"),
            &dir.path().join("fixtures/drop"),
        );
        Workdir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `xinyong demo` here with a copy of the demo's configuration (at
    /// `fixtures/demo/xinyong.toml`, as in the repository); its path and the output.
    pub fn demo(&self) -> (PathBuf, Output) {
        let config = self.path().join("fixtures/demo/xinyong.toml");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(ROOT).join("fixtures/demo/xinyong.toml"), &config).unwrap();
        let o = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("demo")
            .current_dir(self.path())
            .output()
            .unwrap();
        (config, o)
    }

    /// Adds the housing bureau's SQL feed (`mappings/zjj_xzcf.toml`) with its SQLite
    /// database made from the demo's fixture, where the mapping looks for it; returns
    /// the database file.
    pub fn add_sql_feed(&self) -> PathBuf {
        std::fs::copy(
            Path::new(ROOT).join("mappings/zjj_xzcf.toml"),
            self.path().join("mappings/zjj_xzcf.toml"),
        )
        .unwrap();
        let dir = self.path().join("out/demo/sources");
        let db = dir.join("zjj.db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(devtools::demo::prepare_sql_fixture(
            &Path::new(ROOT).join(devtools::demo::SQL_FIXTURE),
            &db,
            &dir.join("zjj_xzcf.url"),
        ))
        .unwrap();
        db
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("xinyong.toml")
    }

    pub fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    /// Writes the configuration, pushing to the given simulators.
    pub fn configure(&self, sims: &[&Simulator], p: &PlatformOpts) {
        let mut text = String::from("data_dir = \"data\"\nmappings = \"mappings\"\n\n");
        for s in sims {
            text.push_str(&format!(
                "[[platform]]\nname = \"{}\"\ntitle = \"{}\"\nbase_url = \"{}\"\napp_id = \"tongjiang-city\"\nsecret = \"{}\"\ntimeout_seconds = {}\nretry_budget_seconds = {}\nbatch_records = {}\n\n",
                s.name, s.name, s.url, s.secret, p.timeout_seconds, p.budget_seconds, p.batch_records
            ));
        }
        std::fs::write(self.config(), text).unwrap();
    }

    /// Runs `xinyong --config <this> ARGS`.
    pub fn xinyong(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--config")
            .arg(self.config())
            .args(args)
            .current_dir(self.path())
            .env("RUST_LOG", "warn,xinyong=info")
            .output()
            .unwrap()
    }

    /// Runs `xinyong --config <this> ARGS` with extra environment variables.
    pub fn xinyong_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(self.config())
            .args(args)
            .current_dir(self.path())
            .env("RUST_LOG", "warn,xinyong=info");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// The newest run report (JSON) under `data/runs/`.
    pub fn latest_report(&self) -> serde_json::Value {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.data().join("runs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort_by_key(|p| (std::fs::metadata(p).unwrap().modified().unwrap(), p.clone()));
        serde_json::from_slice(&std::fs::read(files.last().unwrap()).unwrap()).unwrap()
    }

    /// The snapshot's (dataset, source_unit) → {(record_id, version, "active")}.
    pub fn snapshot_holdings(&self) -> Holdings {
        let mut out: Holdings = BTreeMap::new();
        let store = pipeline::snapshot::SnapshotStore::new(&self.data());
        for ds in ["xzcf", "xzxk"] {
            store
                .read_dataset(ds, Some(&["record_id", "version", "source_unit"]), |b| {
                    let ids = pipeline::snapshot::str_col(&b, "record_id").unwrap();
                    let vers = pipeline::snapshot::str_col(&b, "version").unwrap();
                    let units = pipeline::snapshot::str_col(&b, "source_unit").unwrap();
                    for i in 0..b.num_rows() {
                        out.entry((ds.to_string(), units.value(i).to_string()))
                            .or_default()
                            .insert((
                                ids.value(i).to_string(),
                                vers.value(i).to_string(),
                                "active".to_string(),
                            ));
                    }
                    Ok(())
                })
                .unwrap();
        }
        out
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts an exit code, showing the output when it differs.
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Headless Chromium (Debian's package): `None` when it is absent, which fails under
/// CI=true (where `.ci/run` installs it).
fn chromium() -> Option<Command> {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is required under CI=true (.ci/run installs Debian's chromium package)"
        );
        eprintln!(
            "skipping the browser check: /usr/bin/chromium is absent (apt-get install chromium)"
        );
        return None;
    }
    let mut c = Command::new(chromium);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]);
    Some(c)
}

/// Runs Chromium to its end within two minutes; its stdout.
fn run_chromium(mut c: Command, scratch: &Path) -> Vec<u8> {
    let mut child = c
        .arg(format!(
            "--user-data-dir={}",
            scratch.join("chromium").display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut buf);
        buf
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// A screenshot of `url` at `size` into `png`, checked to be a PNG of that size; `None`
/// without Chromium.
pub fn chromium_screenshot(
    url: &str,
    scratch: &Path,
    png: &Path,
    size: (u32, u32),
) -> Option<Vec<u8>> {
    let mut c = chromium()?;
    c.arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(url);
    run_chromium(c, scratch);
    let bytes = std::fs::read(png).expect("chromium wrote the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), size);
    Some(bytes)
}

/// The document Chromium built from `url` (what a person sees, as HTML); `None` without
/// Chromium.
pub fn chromium_dom(url: &str, scratch: &Path) -> Option<String> {
    let mut c = chromium()?;
    c.arg("--dump-dom").arg(url);
    Some(String::from_utf8_lossy(&run_chromium(c, scratch)).into_owned())
}
