//! The stages a row goes through after its connector, in this order: [`map`] (source
//! cells → dataset fields, through [`crate::mapping::transforms`]), [`resolve`] (legacy codes → credit
//! codes through the legal-entity register), [`validate`] (the dataset's rules), then,
//! over the rows of a feed, [`dedupe`] (one winner per record id). Each is a pure
//! function of its inputs; [`crate::ingest`] drives them.

pub mod dedupe;
pub mod map;
pub mod resolve;
pub mod validate;

use crate::domain::reasons::Reason;

/// Why a row cannot become a record: the first problem in field order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// Why.
    pub reason: Reason,
    /// The provincial field (or source column) concerned.
    pub field: String,
    /// The value as it was in the source cell.
    pub value: String,
}
