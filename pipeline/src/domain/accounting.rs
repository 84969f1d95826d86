//! The accounting of rows (DESIGN.md, invariant 1): every row read ends in exactly one
//! of the snapshot (kept), the quarantine, or superseded by a newer row of the same
//! record, so `read = kept + quarantined + superseded` per feed and run; and the files a
//! feed read to the end, known by content hash.

use std::collections::BTreeMap;

/// Counts for one feed in one run. `read = kept + quarantined + superseded`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct FeedCounts {
    /// Data rows read.
    pub read: u64,
    /// Rows whose record is in the snapshot (new + changed + unchanged).
    pub kept: u64,
    /// Kept records new to the snapshot.
    pub new: u64,
    /// Kept records replacing an older version.
    pub changed: u64,
    /// Kept records identical to the snapshot's copy.
    pub unchanged: u64,
    /// Rows sent to the quarantine.
    pub quarantined: u64,
    /// Quarantined rows by reason code.
    pub quarantined_by_reason: BTreeMap<String, u64>,
    /// Rows superseded by a newer row of the same record.
    pub superseded: u64,
    /// Backfills: rows passed over because their decision date is outside the window
    /// (not counted in `read`).
    #[serde(default)]
    pub outside_window: u64,
    /// Backfills: records of the window that the source no longer has; they leave the
    /// snapshot and are withdrawn upstream.
    #[serde(default)]
    pub vanished: u64,
    /// Kept records whose credit code has a registration-authority / institution-type
    /// pair outside the published table: a warning, never a rejection (standards.md §1.4).
    #[serde(default)]
    pub uscc_unknown_type: u64,
}

impl FeedCounts {
    /// Whether the accounting identity holds.
    pub fn balanced(&self) -> bool {
        self.read == self.kept + self.quarantined + self.superseded
    }
}

/// One input file read to the end.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileRead {
    /// Path.
    pub path: String,
    /// Content hash.
    pub sha256: String,
    /// Data rows.
    pub rows: u64,
    /// Size in bytes (files only).
    pub bytes: Option<u64>,
    /// Detected encoding.
    pub encoding: String,
}
