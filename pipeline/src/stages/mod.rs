//! The stages a row goes through after its connector, in this order: [`map`] (source
//! cells → dataset fields, through [`transforms`]), [`resolve`] (legacy codes → credit
//! codes through the legal-entity register), [`validate`] (the dataset's rules), then,
//! over the rows of a feed, [`dedupe`] (one winner per record id). Each is a pure
//! function of its inputs; [`crate::ingest`] drives them.

pub mod dedupe;
pub mod map;
pub mod resolve;
pub mod transforms;
pub mod validate;
