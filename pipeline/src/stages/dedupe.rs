//! Deduplication by business key, in memory proportional to rows, not to their size:
//! every valid row leaves a 40-byte entry (id, update time, version hash, read order);
//! once the feed is read, the entries are sorted and each id's winner picked — the
//! newest update time, and on a tie the row read later. Against the previous snapshot
//! an incoming winner replaces the snapshot's copy unless that copy is strictly newer;
//! an identical version is simply "unchanged".
//!
//! A sorted vector and a bitset of winning read positions replace a hash map: half the
//! memory at a million rows, and no rehashing as the feed grows.

/// One valid row: who it is, how new, what it says, where it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    id: [u8; 16],
    updated: i64,
    version: u64,
    seq: u32,
}

/// A row offered to the index.
#[derive(Debug, Clone, Copy)]
pub struct Winner {
    /// Update time (seconds; `i64::MIN` when the source has none).
    pub updated: i64,
    /// Read order within the run (1-based).
    pub seq: u64,
    /// Packed content version.
    pub version: [u8; 16],
}

/// What comparing with the previous snapshot decided.
#[derive(Debug, Default)]
pub struct AgainstPrevious {
    /// Ids whose snapshot copy is replaced by this run's record.
    pub replaced: std::collections::HashSet<[u8; 16]>,
    /// Records identical to the snapshot's copy.
    pub unchanged: u64,
    /// Records older than the snapshot's copy (counted as superseded).
    pub older: u64,
}

/// The dedupe index of one feed's run.
#[derive(Debug, Default)]
pub struct DedupeIndex {
    entries: Vec<Entry>,
    /// Bit `seq` set: the row read at `seq` is a winner still to be written.
    winners: Vec<u64>,
    resolved: bool,
    superseded: u64,
    remaining: usize,
}

fn version_key(v: &[u8; 16]) -> u64 {
    u64::from_le_bytes(v[..8].try_into().expect("8 bytes"))
}

impl DedupeIndex {
    /// Records a valid row.
    pub fn offer(&mut self, id: [u8; 16], w: Winner) {
        debug_assert!(!self.resolved, "offer after resolve");
        self.entries.push(Entry {
            id,
            updated: w.updated,
            version: version_key(&w.version),
            seq: u32::try_from(w.seq).expect("fewer than 4 billion rows a run"),
        });
    }

    /// Makes room for `rows` offers in all, once the source can estimate its size: a
    /// vector that grows by doubling briefly holds the old and the new copy (at ten
    /// million rows, 1.7× the entries), while room reserved ahead costs nothing until it
    /// is filled.
    pub fn expect_rows(&mut self, rows: usize) {
        self.entries
            .reserve(rows.saturating_sub(self.entries.len()));
    }

    /// Rows offered so far.
    pub fn offered(&self) -> usize {
        self.entries.len()
    }

    /// Picks each id's winner; the losers are counted as superseded.
    pub fn resolve(&mut self) {
        self.entries
            .sort_unstable_by_key(|e| (e.id, e.updated, e.seq));
        let max_seq = self.entries.iter().map(|e| e.seq).max().unwrap_or(0) as usize;
        self.winners = vec![0u64; max_seq / 64 + 1];
        let n = self.entries.len();
        // Each id's last entry is kept, compacted in place: a second vector would double
        // the peak at ten million rows.
        let mut kept = 0;
        for i in 0..n {
            let e = self.entries[i];
            if i + 1 < n && self.entries[i + 1].id == e.id {
                continue; // a newer (or later) row of the same id follows
            }
            self.entries[kept] = e;
            kept += 1;
            self.winners[e.seq as usize / 64] |= 1 << (e.seq % 64);
        }
        self.entries.truncate(kept);
        self.superseded = (n - kept) as u64;
        self.remaining = kept;
        self.resolved = true;
    }

    fn find(&self, id: &[u8; 16]) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.id.cmp(id))
            .ok()
            .map(|i| &self.entries[i])
    }

    fn drop_winner(&mut self, seq: u32) {
        let word = &mut self.winners[seq as usize / 64];
        if *word & (1 << (seq % 64)) != 0 {
            *word &= !(1 << (seq % 64));
            self.remaining -= 1;
        }
    }

    /// Whether the row read at `seq` is a winner still to be written.
    pub fn is_winner(&self, seq: u64) -> bool {
        self.winners
            .get(seq as usize / 64)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }

    /// Rows that lost to a newer row of the same id in this run.
    pub fn superseded(&self) -> u64 {
        self.superseded
    }

    /// Winners still to be written.
    pub fn len(&self) -> usize {
        self.remaining
    }

    /// Whether nothing is left to write.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// Compares one record of the previous snapshot (id, update time, version) with
    /// this run's winner of the same id, if any. Call after [`resolve`](Self::resolve).
    pub fn against_previous(
        &mut self,
        out: &mut AgainstPrevious,
        id: &[u8; 16],
        updated: &dyn Fn() -> i64,
        version: &[u8; 16],
    ) {
        let Some(&w) = self.find(id) else {
            return;
        };
        if !self.is_winner(w.seq as u64) {
            return;
        }
        let updated = updated();
        if w.version == version_key(version) {
            out.unchanged += 1;
            self.drop_winner(w.seq);
        } else if w.updated >= updated {
            out.replaced.insert(*id);
        } else {
            out.older += 1;
            self.drop_winner(w.seq);
        }
    }

    /// Whether this id has a winner still to be written (after resolve).
    pub fn has_winner(&self, id: &[u8; 16]) -> bool {
        self.find(id)
            .is_some_and(|e| self.is_winner(u64::from(e.seq)))
    }

    /// Whether any row of this id was offered (after resolve).
    pub fn contains(&self, id: &[u8; 16]) -> bool {
        self.find(id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(updated: i64, seq: u64, v: u8) -> Winner {
        Winner {
            updated,
            seq,
            version: [v; 16],
        }
    }

    #[test]
    fn newest_wins_and_ties_go_to_the_later_row() {
        let mut ix = DedupeIndex::default();
        let id = [1; 16];
        ix.offer(id, w(10, 1, 1));
        ix.offer(id, w(5, 2, 2)); // older, later in the file: loses
        ix.offer(id, w(10, 3, 3)); // tie with row 1: the later row wins
        ix.offer([2; 16], w(i64::MIN, 4, 4));
        ix.resolve();
        assert!(ix.is_winner(3) && ix.is_winner(4));
        assert!(!ix.is_winner(1) && !ix.is_winner(2));
        assert_eq!(ix.superseded(), 2);
        assert_eq!(ix.len(), 2);
    }

    #[test]
    fn against_previous_snapshot() {
        let mut ix = DedupeIndex::default();
        ix.offer([1; 16], w(10, 1, 1)); // same version as before: unchanged
        ix.offer([2; 16], w(10, 2, 2)); // newer than before: replaces
        ix.offer([3; 16], w(10, 3, 3)); // older than before: superseded
        ix.offer([4; 16], w(10, 4, 4)); // new
        ix.resolve();
        let mut a = AgainstPrevious::default();
        ix.against_previous(&mut a, &[1; 16], &|| 5, &[1; 16]);
        ix.against_previous(&mut a, &[2; 16], &|| 5, &[9; 16]);
        ix.against_previous(&mut a, &[3; 16], &|| 20, &[9; 16]);
        ix.against_previous(&mut a, &[7; 16], &|| 20, &[9; 16]); // not in this run
        assert_eq!((a.unchanged, a.older, a.replaced.len()), (1, 1, 1));
        assert!(a.replaced.contains(&[2; 16]));
        assert_eq!(ix.len(), 2);
        assert!(ix.is_winner(2) && ix.is_winner(4) && !ix.is_winner(1) && !ix.is_winner(3));
    }

    #[test]
    fn an_entry_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 40);
    }
}
