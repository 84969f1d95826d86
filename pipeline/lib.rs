//! xinyong: gathers departmental public-credit records, normalises them to the
//! provincial schema, deduplicates them, keeps Parquet snapshots and pushes them to the
//! prefecture (信用佳木斯) and provincial (信用黑龙江) platforms.
//!
//! The stages, in the order data meets them: [`mapping`] (with [`transforms`] and
//! [`schema`] validation) → [`record`] identity → [`dedupe`] → [`snapshot`] (all driven
//! per feed by [`ingest`]) → [`push`]. [`state`] is the embedded state store, [`runner`]
//! drives a whole run, [`report`] writes the leading-group office's reports, [`simulator`]
//! serves the platforms' contract for the demo and tests.

pub mod calendar;
pub mod config;
pub mod court_api;
pub mod crashpoint;
pub mod dedupe;
pub mod demo;
pub mod fixtures_gen;
pub mod ids;
pub mod ingest;
pub mod loadgen;
pub mod mapping;
pub mod masking;
pub mod push;
pub mod reconcile;
pub mod record;
pub mod register;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod schema;
pub mod simulator;
pub mod snapshot;
/// Request signing of the platforms' contract, shared with the HTTP source.
pub use connectors::signing;
pub mod state;
pub mod summary;
pub mod transforms;
