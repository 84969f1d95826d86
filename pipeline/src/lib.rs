//! The xinyong product: gathers departmental public-credit records, normalises them to
//! the provincial schema, deduplicates them, keeps Parquet snapshots and pushes them to
//! the prefecture (信用佳木斯) and provincial (信用黑龙江) platforms.
//!
//! The rooms, in the order data meets them (ARCHITECTURE.md has the map):
//!
//! - [`mapping`]: a department's mapping file becomes a [`mapping::Feed`]; its source
//!   (a `connectors` source) yields raw rows;
//! - [`stages`]: map (with [`mapping::transforms`]), validate, resolve legacy codes,
//!   dedupe — what happens to one row and to the rows of one feed;
//! - [`ingest`]: drives one feed through the stages into the snapshot, in one direction;
//! - [`snapshot`]: the Parquet snapshot and the quarantine — layout, writing, atomic
//!   publish, manifest, reading;
//! - [`push`]: what each platform is owed, batched and delivered through a
//!   [`platform::Platform`];
//! - [`platform`]: the platforms' contract (envelope, receipt, signing, digest, listing)
//!   and its dialects;
//! - [`reconcile`]: what each platform holds against the ledger;
//! - [`report`]: the leading-group office's reports.
//!
//! Around them: [`orchestrate`] (a run, the scheduler, the run summary, status),
//! [`state`] (the embedded state store), [`domain`] (schema, identifiers, calendar,
//! masking, reasons, record identity), [`config`] and [`clock`].

pub mod clock;
pub mod config;
pub mod crashpoint;
pub mod domain;
pub mod ingest;
pub mod mapping;
pub mod memory;
pub mod orchestrate;
pub mod platform;
pub mod push;
pub mod reconcile;
pub mod report;
pub mod snapshot;
pub mod stages;
pub mod state;

#[cfg(test)]
mod fuzz;
