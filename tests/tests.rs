//! End-to-end tests: they run the built `xinyong` binary against copies of the fixtures
//! and against platform simulators started as separate processes, as an operator would.

mod util;

mod backfill;
mod bench_semantics;
mod cli;
mod console;
mod crash;
mod hostile;
mod http_feed;
mod jobs;
mod push_faults;
mod reconcile;
mod report;
mod sql_feed;
