//! A dataset's manifest (`_manifest.json`): the partition files that make one
//! consistent cut, their rows per feed, and the run that wrote each; replaced
//! atomically after its data files are in place.

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default)]
pub struct PartitionEntry {
    /// Decision month (`2024-03`) or `none`.
    pub month: String,
    /// The file, relative to the manifest.
    pub file: String,
    /// Rows in it.
    pub rows: u64,
    /// Rows per feed.
    pub rows_by_feed: std::collections::BTreeMap<String, u64>,
    /// The run that wrote it.
    pub run_id: String,
}

/// The manifest written beside each dataset's snapshot: the authority on which files
/// make up the snapshot.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default)]
pub struct Manifest {
    /// Dataset code.
    pub dataset: String,
    /// The run that last changed the snapshot.
    pub run_id: String,
    /// When (RFC 3339).
    pub written_at: String,
    /// Rows in the snapshot.
    pub rows: u64,
    /// The partition files.
    pub partitions: Vec<PartitionEntry>,
}
