//! The `xinyong` command line: parses arguments, sets up logging, and dispatches to one
//! file per command under `commands/`. Exit codes: 0 ok; 1 finished, but something was
//! left for the next run (records pending on a platform, a quarantine over its
//! threshold, an overdue hold); 2 failed.

/// `println!` for a command's output that does not panic when its reader went away
/// (`xinyong status | head -1`): a closed pipe means nobody reads the rest, so it is
/// dropped, and the command's work and exit code stay what they are.
macro_rules! outln {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// [`outln!`] without the newline.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod commands;
mod console;

use clap::{Parser, Subcommand, ValueEnum};
use commands::*;
use std::path::PathBuf;

/// mimalloc: rows are allocated on mapper threads and freed on others; glibc's malloc
/// spent a third more CPU on that traffic in the full-load benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "xinyong",
    version,
    about = "Public-credit data exchange: departmental feeds → 信用佳木斯 / 信用黑龙江"
)]
struct Cli {
    /// Configuration file (default: $XINYONG_CONFIG, then ./xinyong.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run feeds: read, map, validate, deduplicate, snapshot, push.
    Run(run::RunArgs),
    /// Re-read one feed's window of decision dates (all its files, read before or not) without moving the nightly position: upserts for what changed, withdrawals for what vanished.
    Backfill(run::BackfillArgs),
    /// Push what the snapshot and the ledger say each platform is owed, reading no feed.
    Push(run::PushArgs),
    /// Withdraw a record from every platform by hand (credit repair, revocation); recorded with who and why.
    Withdraw(overrides::OverrideArgs),
    /// Put a record under objection (异议): withdrawn from public display upstream and not re-pushed while held.
    Hold(overrides::OverrideArgs),
    /// End an objection hold: `confirmed` re-publishes the record, `corrected` waits for the corrected record.
    Release(overrides::ReleaseArgs),
    /// List withdrawals and holds in force; holds older than 20 working days are called out.
    Holds,
    /// The quarantine's problems (退回整改): each refused decision once, open until a later file brings it valid, resolved with the date.
    Corrections(corrections::CorrectionsArgs),
    /// A consistent copy of the state store while runs may be going (SQLite VACUUM INTO), checked.
    Backup(backup::BackupArgs),
    /// Write a new deployment in DIR: configuration, mappings with an annotated example, schedules, secrets folder, systemd unit.
    Init(init::InitArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `xinyong man > /usr/local/share/man/man1/xinyong.1`.
    Man,
    /// Find records by document number (--wsh), code or name: their record ids, datasets and what each platform holds.
    Find(find::FindArgs),
    /// Run the schedules in the foreground (systemd- and container-friendly); `--next N` lists fire times and checks the files.
    Schedule(schedule::ScheduleArgs),
    /// The read-only web console in Chinese (feeds, platforms, corrections, holds, reconciliation, schedule, office reports); loopback unless a token is set.
    Serve(serve::ServeArgs),
    /// Did the last runs work? Per feed, platform and job; exit 2 when a feed's last run failed.
    Status(status::StatusArgs),
    /// Write the leading-group office's report: HTML, XLSX, JSON and one correction workbook per department (default period: the latest run).
    Report(report::ReportArgs),
    /// Compare what each platform holds with the ledger; `--repair` converges.
    Reconcile(reconcile::ReconcileArgs),
    /// The demo: start both platform simulators on loopback and run every fixture feed.
    Demo(devtools::DemoArgs),
    /// Serve the platforms' contract on loopback (with fault injection).
    Simulate(devtools::SimulateArgs),
    /// Parse and check the configuration, every mapping file and the schema files.
    Check(check::CheckArgs),
    /// Identifier tools.
    Id {
        #[command(subcommand)]
        command: id::IdCommand,
    },
    /// The State Council working-day calendar (built in: 2018–2026; `calendar` in the configuration adds years; outside them an estimate, 估算)
    Calendar {
        #[command(subcommand)]
        command: calendar::CalendarCommand,
    },
    /// Generate the benchmark's penalties export (deterministic; GB18030).
    #[command(hide = true)]
    GenLoad(devtools::GenLoadArgs),
    /// Regenerate the demo fixtures (deterministic).
    #[command(hide = true)]
    GenFixtures(devtools::GenFixturesArgs),
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,xinyong=info,pipeline=info,devtools=info")
    });
    // Colours only for a person at a terminal: a file or a pipe gets plain text.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A log line that cannot be written (the reader of stderr went away: `2>&1 |
        // head`, a log collector that died) is dropped; by default the subscriber says
        // so with eprintln!, which panics on that same broken stderr and took the run
        // down with it.
        .log_internal_errors(false);
    let b = b.with_timer(BeijingTime);
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
    }
}

/// Log lines carry Beijing time with its offset, like everything else a person reads
/// (`2026-12-02T11:20:33.412+08:00`).
struct BeijingTime;

impl tracing_subscriber::fmt::time::FormatTime for BeijingTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let now = pipeline::clock::now_in_china();
        write!(w, "{}", now.format("%Y-%m-%dT%H:%M:%S%.3f%:z"))
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let config = cli.config;
    match cli.command {
        Command::Run(a) => run::run(config, a).await,
        Command::Backfill(a) => run::backfill(config, a).await,
        Command::Push(a) => run::push(config, a).await,
        Command::Withdraw(a) => {
            overrides::add(config, pipeline::state::OverrideKind::Withdraw, a).await
        }
        Command::Hold(a) => overrides::add(config, pipeline::state::OverrideKind::Hold, a).await,
        Command::Release(a) => overrides::release(config, a).await,
        Command::Holds => overrides::list(config).await,
        Command::Corrections(a) => corrections::corrections(config, a).await,
        Command::Find(a) => find::find(config, a).await,
        Command::Backup(a) => backup::backup(config, a).await,
        Command::Init(a) => init::init(a),
        Command::Completions { shell } => {
            // Into a buffer first: a closed pipe (`| head`) is not a panic.
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "xinyong", &mut out);
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &out);
            Ok(0)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &out);
            Ok(0)
        }
        Command::Schedule(a) => schedule::schedule(config, a).await,
        Command::Status(a) => status::status(config, a).await,
        Command::Serve(a) => serve::serve(config, a).await,
        Command::Report(a) => report::report(config, a).await,
        Command::Reconcile(a) => reconcile::reconcile(config, a).await,
        Command::Demo(a) => devtools::demo(config, a).await,
        Command::Simulate(a) => devtools::simulate(a).await,
        Command::Check(a) => check::check(config, a),
        Command::Id { command } => id::id(command),
        Command::Calendar { command } => calendar::calendar(config, command),
        Command::GenLoad(a) => devtools::gen_load(a),
        Command::GenFixtures(a) => devtools::gen_fixtures(a),
    }
}

/// mimalloc's `mi_option_purge_delay` (its `mimalloc.h`, v3 as v2): how long freed memory is
/// kept before it goes back to the OS.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Milliseconds freed memory is kept for reuse before it goes back to the OS.
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

fn main() {
    // No transparent huge pages: mimalloc asks for them on its arenas, and every fresh
    // page then costs the kernel 2 MiB of zeroing (a fifth of a night's CPU) and holds
    // more memory than the rows need.
    #[cfg(target_os = "linux")]
    // SAFETY: a process attribute, no pointers.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    // Freed memory goes back to the OS after a second (mimalloc's default is 10 ms):
    // rows are allocated on one thread and freed on another, and returning them sooner
    // costs page faults and TLB shootdowns. Unsorted 1M full load: 100 ms 5.8 s, 1000 ms
    // 5.1 s; 10M: 100 ms 84 s (50 s in the kernel), 1000 ms 68 s. What a phase leaves
    // behind is returned at once between phases (`pipeline::memory`), so the peak stays
    // one phase's (1M: 173 MiB, against 204 without). An operator's MIMALLOC_PURGE_DELAY
    // (milliseconds) is left to mimalloc.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an option value, before any thread of ours starts.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    // SAFETY: mi_collect only walks the allocator's own structures.
    pipeline::memory::set_return_freed(|| unsafe { libmimalloc_sys::mi_collect(true) });
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            // Each cause once: a wrapper that prints its source is not repeated.
            eprintln!("error: {}", connectors::wire::describe(e.as_ref()));
            2
        }
    };
    std::process::exit(code);
}
