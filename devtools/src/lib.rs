//! Development tools of xinyong, kept out of the product: the product library
//! (`pipeline`) never depends on this crate. The `xinyong` binary exposes them as the
//! `demo`, `simulate`, `gen-fixtures` and `gen-load` commands.
//!
//! - [`simulator`]: the platforms' contract served on loopback, with fault injection,
//!   built on the same contract types as the product's client;
//! - [`court_api`]: the court's 失信被执行人 JSON API that the demo reads;
//! - [`fixtures`]: the deterministic generator of the demo's departmental exports;
//! - [`loadgen`]: the benchmark's generated penalties exports;
//! - [`demo`]: `make run` — simulators, court API and SQL fixture up, every feed run,
//!   the office's report written.

pub mod court_api;
pub mod demo;
pub mod fixtures;
pub mod loadgen;
pub mod simulator;
