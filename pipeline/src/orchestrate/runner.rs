//! One run: every selected feed is ingested (each on its own: one feed's failure never
//! stops the others), its files recorded as read only once its records are safely in
//! the snapshot, then the snapshot is pushed to each platform concurrently (one
//! platform's trouble never holds up the other). The run's report is kept in the state
//! store and as JSON under `<data>/runs/`.

use super::progress::progress_for;
use crate::config::Config;
use crate::domain::accounting::{FeedCounts, FileRead};
use crate::domain::schema::Dataset;
use crate::ingest::{self, IngestOptions, IngestOutput};
use crate::mapping::Feed;
use crate::push::{self, PlatformReport};
use crate::snapshot::SnapshotStore;
use crate::stages::resolve::Register;
use crate::state::{RunKind, StateStore};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// What started the run (recorded with it).
    pub kind: RunKind,
    /// Feeds to run (all when empty).
    pub feeds: Vec<String>,
    /// Platforms to push to (`None`: all configured; `Some(empty)`: no push).
    pub platforms: Option<Vec<String>>,
    /// Read, map, validate and count; write and push nothing.
    pub dry_run: bool,
    /// Read no feed: only push what the snapshot and the ledger say is owed.
    pub skip_ingest: bool,
    /// A backfill's window of decision dates: every file of the source is read again,
    /// whatever was read before, and the nightly position is left as it was.
    pub window: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    /// Set to stop the run early (a scheduled job's timeout): the feed being read stops
    /// at its next batch and fails, the feeds after it and the push are not started.
    /// The run returns only when its threads have stopped.
    pub cancel: Cancel,
}

/// A run's cancellation flag, shared with its threads.
pub type Cancel = Arc<std::sync::atomic::AtomicBool>;

/// Whether a run was asked to stop.
pub fn cancelled(cancel: &Cancel) -> bool {
    cancel.load(std::sync::atomic::Ordering::Relaxed)
}

impl RunOptions {
    /// A run of `kind` over the given feeds (all when empty), pushing to the given
    /// platforms (`None`: all; `Some(empty)`: none).
    pub fn feeds(
        kind: RunKind,
        feeds: Vec<String>,
        platforms: Option<Vec<String>>,
        dry_run: bool,
    ) -> RunOptions {
        RunOptions {
            kind,
            feeds,
            platforms,
            dry_run,
            skip_ingest: false,
            window: None,
            cancel: Cancel::default(),
        }
    }

    /// A backfill of one feed over a window of decision dates.
    pub fn backfill(
        feed: String,
        window: (chrono::NaiveDate, chrono::NaiveDate),
        push: bool,
        dry_run: bool,
    ) -> RunOptions {
        RunOptions {
            window: Some(window),
            ..RunOptions::feeds(
                RunKind::Backfill,
                vec![feed],
                if push || dry_run {
                    None
                } else {
                    Some(Vec::new())
                },
                dry_run,
            )
        }
    }

    /// A push of what is owed, reading no feed.
    pub fn push_only(kind: RunKind, platforms: Option<Vec<String>>) -> RunOptions {
        RunOptions {
            skip_ingest: true,
            ..RunOptions::feeds(kind, Vec::new(), platforms, false)
        }
    }
}

/// One feed's part of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeedReport {
    /// Feed name.
    pub feed: String,
    /// Title for people.
    pub title: String,
    /// Reporting unit.
    pub department: String,
    /// Dataset.
    pub dataset: String,
    /// Counts.
    pub counts: FeedCounts,
    /// Files read in this run.
    pub files: Vec<FileRead>,
    /// Files skipped as already read.
    pub skipped_files: Vec<String>,
    /// Files set aside with their reason: they cannot be read (empty, not a workbook,
    /// corrupt, no header); the feed's other files were read.
    #[serde(default)]
    pub set_aside: Vec<connectors::SetAside>,
    /// What the source says an operator should know (rows it could not place, such as
    /// a NULL watermark).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// This run's quarantine file of the feed.
    pub quarantine_file: Option<String>,
    /// What stopped the feed, if anything.
    pub error: Option<String>,
    /// The feed's quarantine threshold (share of rows), when it has one.
    pub max_quarantine_ratio: Option<f64>,
}

impl FeedReport {
    /// The report of a feed ingested.
    fn of(feed: &Feed, out: IngestOutput) -> FeedReport {
        FeedReport {
            feed: feed.name.clone(),
            title: feed.title.clone(),
            department: feed.department.clone(),
            dataset: feed.dataset.code.clone(),
            counts: out.counts,
            files: out.files,
            skipped_files: out.skipped_files,
            set_aside: out.set_aside,
            warnings: out.warnings,
            quarantine_file: out.quarantine_file.map(|p| p.display().to_string()),
            error: None,
            max_quarantine_ratio: feed.max_quarantine_ratio,
        }
    }

    /// The report of a feed that failed.
    fn failed(feed: &Feed, error: String) -> FeedReport {
        FeedReport {
            title: feed.title.clone(),
            department: feed.department.clone(),
            dataset: feed.dataset.code.clone(),
            max_quarantine_ratio: feed.max_quarantine_ratio,
            ..FeedReport::failed_named(&feed.name, error)
        }
    }

    /// The report of a feed known only by name (its mapping is broken) that failed.
    fn failed_named(name: &str, error: String) -> FeedReport {
        FeedReport {
            feed: name.to_string(),
            title: String::new(),
            department: String::new(),
            dataset: String::new(),
            counts: FeedCounts::default(),
            files: Vec::new(),
            skipped_files: Vec::new(),
            set_aside: Vec::new(),
            warnings: Vec::new(),
            quarantine_file: None,
            error: Some(error),
            max_quarantine_ratio: None,
        }
    }

    /// Whether the quarantined share is over the feed's threshold.
    pub fn over_threshold(&self) -> bool {
        let c = &self.counts;
        self.max_quarantine_ratio
            .is_some_and(|max| c.read > 0 && c.quarantined as f64 / c.read as f64 > max)
    }
}

/// The report of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    /// Run id.
    pub run_id: String,
    /// What started it.
    pub kind: RunKind,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Start (RFC 3339).
    pub started_at: String,
    /// Seconds taken.
    pub seconds: f64,
    /// Per feed.
    pub feeds: Vec<FeedReport>,
    /// Per platform.
    pub platforms: Vec<PlatformReport>,
    /// Snapshot root.
    pub snapshot_dir: PathBuf,
    /// Quarantine root.
    pub quarantine_dir: PathBuf,
    /// State store.
    pub state_path: PathBuf,
    /// This report as JSON.
    pub report_file: Option<PathBuf>,
    /// The leading-group office's report of this run (HTML), when one was written
    /// (the demo writes one).
    pub office_report: Option<PathBuf>,
}

impl RunReport {
    /// 0 ok; 1 finished, but a feed's quarantine is over its threshold or a platform was
    /// left with records pending (they go next run) or answered what cannot be trusted;
    /// 2 a feed failed, the accounting does not balance, or a platform refuses our
    /// requests (a configuration error: a wrong secret, a redirect, a protocol 4xx).
    pub fn exit_code(&self) -> i32 {
        if self
            .feeds
            .iter()
            .any(|f| f.error.is_some() || !f.counts.balanced())
            || self
                .platforms
                .iter()
                .any(|p| p.configuration_error.is_some())
        {
            2
        } else if self.platforms.iter().any(|p| p.error.is_some())
            || self.feeds.iter().any(FeedReport::over_threshold)
            || self.feeds.iter().any(|f| !f.set_aside.is_empty())
        {
            1
        } else {
            0
        }
    }
}

/// A new run id: UTC time and a random suffix (safe in batch ids and file names).
pub fn new_run_id() -> String {
    let suffix: u16 = rand::random();
    format!(
        "{}-{suffix:04x}",
        crate::clock::now().format("%Y%m%dT%H%M%S%.3fZ")
    )
}

/// Runs the selected feeds and pushes (the demo points the configuration's platforms at
/// its simulators before calling this).
pub async fn run(config: &Config, opts: &RunOptions) -> anyhow::Result<RunReport> {
    let run_id = new_run_id();
    let span = tracing::info_span!("run", run_id = %run_id);
    run_with_id(config, opts, run_id).instrument(span).await
}

/// The feeds a run reads, the register's first (the other feeds resolve legacy codes
/// with it), and the selected mappings that are broken (they fail on their own).
fn select_feeds(
    config: &Config,
    opts: &RunOptions,
) -> anyhow::Result<(Vec<Feed>, Vec<crate::mapping::BrokenFeed>)> {
    let loaded = config.feeds_each().map_err(anyhow::Error::from)?;
    for f in &opts.feeds {
        if !loaded.feeds.iter().any(|x| &x.name == f) && !loaded.broken.iter().any(|x| &x.name == f)
        {
            anyhow::bail!(
                "unknown feed {f:?}; the feeds are: {}",
                loaded
                    .feeds
                    .iter()
                    .map(|x| x.name.as_str())
                    .chain(loaded.broken.iter().map(|x| x.name.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let wanted = |name: &str| {
        !opts.skip_ingest && (opts.feeds.is_empty() || opts.feeds.iter().any(|f| f == name))
    };
    let mut selected: Vec<_> = loaded
        .feeds
        .into_iter()
        .filter(|f| wanted(&f.name))
        .collect();
    selected.sort_by_key(|f| f.dataset.push);
    let broken = loaded
        .broken
        .into_iter()
        .filter(|b| wanted(&b.name))
        .collect();
    Ok((selected, broken))
}

async fn run_with_id(
    config: &Config,
    opts: &RunOptions,
    run_id: String,
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let started_at = crate::clock::now().to_rfc3339();
    let (selected, broken) = select_feeds(config, opts)?;
    for p in opts.platforms.iter().flatten() {
        if !config.platforms.iter().any(|c| &c.name == p) {
            anyhow::bail!(
                "unknown platform {p:?}; the platforms are: {}",
                config
                    .platforms
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let state = StateStore::open(&config.state).await?;
    let store = SnapshotStore::new(&config.data_dir);
    if !opts.dry_run {
        crate::snapshot::sweep_leftovers(&config.data_dir);
        state.begin_run(&run_id, &opts.kind).await?;
    }
    tracing::info!(
        feeds = selected.len(),
        dry_run = opts.dry_run,
        "run started"
    );
    let mut reports = Vec::new();
    for b in broken {
        let error = b.error.to_string();
        tracing::error!(feed = %b.name, error = %error, "mapping broken: this feed fails, the others go on");
        record_failure(opts, &run_id, &state, &b.name, "", &error).await?;
        let mut report = FeedReport::failed_named(&b.name, error);
        report.title = b.name;
        reports.push(report);
    }
    let mut register = Arc::new(store.register()?);
    for feed in &selected {
        let result = if cancelled(&opts.cancel) {
            Err(ingest::IngestError::Connector(
                connectors::ConnectorError::Cancelled,
            ))
        } else {
            ingest_one(config, opts, &run_id, &state, &store, feed, &register).await?
        };
        let report = match result {
            Ok((mut out, refused_recorded)) => {
                if let Some(read) = out.register_entries.take() {
                    let mut merged = store.register()?;
                    merged.merge(read);
                    register = Arc::new(merged);
                    tracing::info!(entities = register.len(), "legal-entity register updated");
                }
                record_feed_done(opts, &run_id, &state, feed, &out, refused_recorded).await?;
                let c = &out.counts;
                tracing::info!(feed = %feed.name, read = c.read, kept = c.kept, quarantined = c.quarantined, superseded = c.superseded, files = out.files.len(), skipped = out.skipped_files.len(), "feed done");
                FeedReport::of(feed, out)
            }
            Err(e) => {
                tracing::error!(feed = %feed.name, error = %e, "feed failed; the other feeds go on");
                record_failure(
                    opts,
                    &run_id,
                    &state,
                    &feed.name,
                    &feed.dataset.code,
                    &e.to_string(),
                )
                .await?;
                FeedReport::failed(feed, e.to_string())
            }
        };
        reports.push(report);
    }
    let platform_reports = if cancelled(&opts.cancel) {
        tracing::warn!("run cancelled: no push");
        Vec::new()
    } else {
        push_all(config, opts, &run_id, &state, &store).await?
    };
    let mut report = RunReport {
        run_id: run_id.clone(),
        kind: opts.kind.clone(),
        dry_run: opts.dry_run,
        started_at,
        seconds: started.elapsed().as_secs_f64(),
        feeds: reports,
        platforms: platform_reports,
        snapshot_dir: store.snapshot_root(),
        quarantine_dir: store.quarantine_root(),
        state_path: config.state.clone(),
        report_file: None,
        office_report: None,
    };
    if !opts.dry_run {
        let path = config.data_dir.join("runs").join(format!("{run_id}.json"));
        report.report_file = Some(path.clone());
        let json = serde_json::to_value(&report)?;
        crate::snapshot::write_atomic(&path, &serde_json::to_vec_pretty(&json)?)?;
        let outcome = match report.exit_code() {
            0 => "ok",
            1 => "degraded",
            _ => "failed",
        };
        state.finish_run(&run_id, outcome, &json).await?;
        crate::orchestrate::alerts::send(&config.alerts, &report).await;
        if let Some(r) = &config.retention {
            crate::orchestrate::retention::sweep(&config.data_dir, r, std::time::SystemTime::now());
        }
    }
    state.close().await;
    Ok(report)
}

/// Ingests one feed on a blocking thread, with its progress shown.
async fn ingest_one(
    config: &Config,
    opts: &RunOptions,
    run_id: &str,
    state: &StateStore,
    store: &SnapshotStore,
    feed: &Feed,
    register: &Arc<Register>,
) -> anyhow::Result<Result<(IngestOutput, bool), ingest::IngestError>> {
    // A backfill reads its sources whole; a nightly run skips the files it read and
    // resumes after the stored position.
    let (already, already_sizes) = if opts.window.is_some() {
        (Default::default(), Some(Default::default()))
    } else {
        state.files_read(&feed.name).await?
    };
    let position = if opts.window.is_some() {
        None
    } else {
        state.source_position(&feed.name).await?
    };
    // Read beside the ingest's start (the mappers wait for them at their first batch).
    let (send_documents, open_documents) = ingest::OpenDocuments::pending();
    let fetch_documents = async {
        match state.open_documents(&feed.name).await {
            Ok(documents) => {
                let _ = send_documents.send(Ok(documents));
                Ok(())
            }
            Err(e) => {
                let _ = send_documents.send(Err(e.to_string()));
                Err(e)
            }
        }
    };
    let dedupe_budget = config.dedupe_budget;
    let patch_row_groups = config.patch_row_groups;
    let (bar, progress) = progress_for(&feed.name);
    let (feed_c, store_c, run_c, base) = (
        feed.clone(),
        store.clone(),
        run_id.to_string(),
        config.base_dir.clone(),
    );
    let (dry, reg, window) = (opts.dry_run, register.clone(), opts.window);
    let cancel = opts.cancel.clone();
    let (tell_quarantine, quarantine_published) = tokio::sync::oneshot::channel();
    let ingest = tokio::task::spawn_blocking(move || {
        let p = progress.clone();
        ingest::ingest_feed(
            &feed_c,
            &store_c,
            IngestOptions {
                run_id: &run_c,
                base_dir: &base,
                already_read: already,
                already_read_sizes: already_sizes,
                dry_run: dry,
                progress: &move |n, b| p(n, b),
                register: Some(&reg),
                window,
                position,
                cancel: Some(&cancel),
                open_documents: &open_documents,
                dedupe_budget,
                patch_row_groups,
                quarantine_published: Some(tell_quarantine),
            },
        )
    });
    // The quarantine is published as soon as the read pass ends: its problems are
    // recorded meanwhile (the state store's work overlaps the comparison with the
    // previous snapshot and the partitions' encoding).
    let reopen = opts.window.is_none();
    let refused = async {
        match quarantine_published.await {
            Ok(path) => Some(record_refused_rows(state, feed, run_id, Some(path), reopen).await),
            Err(_) => None,
        }
    };
    let (result, refused, fetched) = tokio::join!(ingest, refused, fetch_documents);
    fetched?;
    let result = result.context("a feed's worker thread panicked")?;
    bar.finish_and_clear();
    let refused_recorded = match refused {
        Some(recorded) => {
            recorded?;
            true
        }
        None => false,
    };
    Ok(result.map(|out| (out, refused_recorded)))
}

/// Refused rows read and handed to the state store at a time.
const REFUSED_CHUNK_ROWS: usize = 500;

/// The rows this run of a feed refused, from its quarantine file, each known by its
/// document number or, without one, by its raw content.
fn refused_rows(
    feed: &Feed,
    path: &std::path::Path,
    chunks: &tokio::sync::mpsc::Sender<Vec<crate::state::problems::Refused>>,
) -> anyhow::Result<()> {
    use sha2::Digest;
    // Small batches, read page by page: this runs beside the snapshot's encoding, and
    // its memory must stay a few hundred rows deep.
    crate::snapshot::read_small_batches(path, REFUSED_CHUNK_ROWS, |b| {
        let col = |n: &str| crate::snapshot::required_str_col(&b, n);
        let (file, reason, field, value, raw) = (
            col("source_file")?,
            col("reason")?,
            col("field")?,
            col("value")?,
            col("raw")?,
        );
        let lines = crate::snapshot::u64_col(&b, "source_line");
        let mut refused = Vec::with_capacity(b.num_rows());
        for i in 0..b.num_rows() {
            let raw_text = raw.value(i);
            let raw_json: serde_json::Value = serde_json::from_str(raw_text).unwrap_or_default();
            let identity = match feed.document_of_raw(&raw_json) {
                Some(d) => format!("wsh:{d}"),
                None => format!(
                    "raw:{}",
                    &hex::encode(sha2::Sha256::digest(raw_text.as_bytes()))[..32]
                ),
            };
            let name = std::path::Path::new(file.value(i))
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            refused.push(crate::state::problems::Refused {
                identity,
                file: name,
                line: lines.map(|l| l.value(i)).unwrap_or(0),
                field: field.value(i).to_string(),
                reason: reason.value(i).to_string(),
                value: value.value(i).to_string(),
                raw: raw_text.to_string(),
            });
        }
        // The state side hung up: it failed, and says so itself.
        let _ = chunks.blocking_send(refused);
        Ok(())
    })?;
    Ok(())
}

/// Records the problems of a feed's quarantine file (`None`: nothing was quarantined),
/// read in chunks on a blocking thread while the state store takes them. Their
/// resolution follows once the feed's snapshot is written
/// ([`StateStore::resolve_problems`]).
async fn record_refused_rows(
    state: &StateStore,
    feed: &Feed,
    run_id: &str,
    quarantine_file: Option<std::path::PathBuf>,
    reopen: bool,
) -> anyhow::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let reader = quarantine_file.map(|path| {
        let feed = feed.clone();
        tokio::task::spawn_blocking(move || refused_rows(&feed, &path, &tx))
    });
    let recorded = state
        .record_refused_rows(
            &feed.name,
            &feed.dataset.code,
            &feed.source_unit,
            run_id,
            &mut rx,
            reopen,
        )
        .await;
    drop(rx);
    if let Some(reader) = reader {
        reader
            .await
            .context("the quarantine reader thread panicked")??;
    }
    Ok(recorded?)
}

/// Records that a feed failed (nothing of it is in the snapshot).
async fn record_failure(
    opts: &RunOptions,
    run_id: &str,
    state: &StateStore,
    feed: &str,
    dataset: &str,
    error: &str,
) -> anyhow::Result<()> {
    if !opts.dry_run {
        state
            .record_feed(
                run_id,
                feed,
                dataset,
                &FeedCounts::default(),
                &[],
                Some(error),
            )
            .await?;
    }
    Ok(())
}

/// Records a feed's outcome and files — only now that its records are safely in the
/// snapshot — its refused rows unless they were recorded while the snapshot was made
/// (`refused_recorded`), the problems it resolved, and its source's position (not for a
/// backfill, which leaves the nightly position alone). Refused rows recorded early stay
/// recorded should the snapshot then fail: they were refused all the same, and the
/// feed's file, not marked read, is read again by the next run.
async fn record_feed_done(
    opts: &RunOptions,
    run_id: &str,
    state: &StateStore,
    feed: &Feed,
    out: &IngestOutput,
    refused_recorded: bool,
) -> anyhow::Result<()> {
    if opts.dry_run {
        return Ok(());
    }
    let files: &[FileRead] = if opts.window.is_some() {
        &[]
    } else {
        &out.files
    };
    state
        .record_feed(
            run_id,
            &feed.name,
            &feed.dataset.code,
            &out.counts,
            files,
            None,
        )
        .await?;
    state
        .record_set_aside(run_id, &feed.name, &out.set_aside)
        .await?;
    if !refused_recorded {
        record_refused_rows(
            state,
            feed,
            run_id,
            out.quarantine_file.clone(),
            opts.window.is_none(),
        )
        .await?;
    }
    state
        .resolve_problems(&feed.name, run_id, &out.valid_documents)
        .await?;
    if let (Some(position), None) = (&out.checkpoint, opts.window) {
        state
            .save_source_position(&feed.name, run_id, position)
            .await?;
    }
    crate::crashpoint::hit("feed.recorded");
    Ok(())
}

/// Pushes every dataset that has feeds in this deployment (not only this run's: the
/// difference between snapshot and ledger is what gets sent) to each selected platform,
/// the platforms concurrently.
async fn push_all(
    config: &Config,
    opts: &RunOptions,
    run_id: &str,
    state: &StateStore,
    store: &SnapshotStore,
) -> anyhow::Result<Vec<PlatformReport>> {
    let mut datasets: Vec<Arc<Dataset>> = Vec::new();
    for f in config.feeds_each().map_err(anyhow::Error::from)?.feeds {
        if f.dataset.push && !datasets.iter().any(|d| d.code == f.dataset.code) {
            datasets.push(f.dataset.clone());
        }
    }
    let mut tasks = Vec::new();
    for p in config.platforms.iter().filter(|p| {
        opts.platforms
            .as_ref()
            .is_none_or(|sel| sel.contains(&p.name))
    }) {
        let platform = p.connect().map_err(anyhow::Error::msg)?;
        let (state, store, datasets, run_id, dry) = (
            state.clone(),
            store.clone(),
            datasets.clone(),
            run_id.to_string(),
            opts.dry_run,
        );
        tasks.push(tokio::spawn(
            async move {
                push::push_platform(platform.as_ref(), &state, &store, &datasets, &run_id, dry)
                    .await
            }
            .instrument(tracing::Span::current()),
        ));
    }
    let mut reports = Vec::new();
    for t in tasks {
        let r = t.await.context("a push task panicked")?;
        tracing::info!(platform = %r.platform, pushed = r.pushed, accepted = r.accepted, pending = r.pending, "push done");
        reports.push(r);
    }
    Ok(reports)
}
