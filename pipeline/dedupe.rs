//! Deduplication by business key: within a run the newest update time wins, and on a
//! tie the row read later wins; against the previous snapshot an incoming record wins
//! unless the snapshot's copy is strictly newer, and an identical version is simply
//! "unchanged". The index holds 16-byte ids and versions, not rows.

use std::collections::{HashMap, HashSet};

/// The current winner for one record id.
#[derive(Debug, Clone, Copy)]
pub struct Winner {
    /// Update time (seconds; `i64::MIN` when the source has none).
    pub updated: i64,
    /// Read order within the run.
    pub seq: u64,
    /// Packed content version.
    pub version: [u8; 16],
}

/// What comparing with the previous snapshot decided.
#[derive(Debug, Default)]
pub struct AgainstPrevious {
    /// Ids whose snapshot copy is replaced by this run's record.
    pub replaced: HashSet<[u8; 16]>,
    /// Records identical to the snapshot's copy.
    pub unchanged: u64,
    /// Records older than the snapshot's copy (counted as superseded).
    pub older: u64,
}

/// The in-run dedupe index.
#[derive(Debug, Default)]
pub struct DedupeIndex {
    winners: HashMap<[u8; 16], Winner>,
    superseded: u64,
}

impl DedupeIndex {
    /// Offers a record; returns whether it is (for now) the winner of its id.
    pub fn offer(&mut self, id: [u8; 16], w: Winner) -> bool {
        match self.winners.get_mut(&id) {
            None => {
                self.winners.insert(id, w);
                true
            }
            Some(cur) => {
                self.superseded += 1;
                if (w.updated, w.seq) > (cur.updated, cur.seq) {
                    *cur = w;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Whether an id is in the index.
    pub fn contains(&self, id: &[u8; 16]) -> bool {
        self.winners.contains_key(id)
    }

    /// Whether the row with this id and read order is the final winner.
    pub fn is_winner(&self, id: &[u8; 16], seq: u64) -> bool {
        self.winners.get(id).is_some_and(|w| w.seq == seq)
    }

    /// Rows that lost to a newer row of the same id in this run.
    pub fn superseded(&self) -> u64 {
        self.superseded
    }

    /// Distinct ids still to be written.
    pub fn len(&self) -> usize {
        self.winners.len()
    }

    /// Whether nothing is left to write.
    pub fn is_empty(&self) -> bool {
        self.winners.is_empty()
    }

    /// Compares the winners with the previous snapshot's copies (id → (update time,
    /// version)); unchanged and older records leave the index.
    pub fn against_previous(
        &mut self,
        previous: &HashMap<[u8; 16], (i64, [u8; 16])>,
    ) -> AgainstPrevious {
        let mut out = AgainstPrevious::default();
        for (id, (t, ver)) in previous {
            let Some(w) = self.winners.get(id) else {
                continue;
            };
            if w.version == *ver {
                out.unchanged += 1;
                self.winners.remove(id);
            } else if w.updated >= *t {
                out.replaced.insert(*id);
            } else {
                out.older += 1;
                self.winners.remove(id);
            }
        }
        out
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
        assert!(ix.offer(id, w(10, 1, 1)));
        assert!(!ix.offer(id, w(5, 2, 2)), "older loses");
        assert!(ix.offer(id, w(10, 3, 3)), "tie: later row wins");
        assert!(ix.is_winner(&id, 3));
        assert_eq!(ix.superseded(), 2);
        assert_eq!(ix.len(), 1);
    }

    #[test]
    fn against_previous_snapshot() {
        let mut ix = DedupeIndex::default();
        ix.offer([1; 16], w(10, 1, 1)); // same version as before: unchanged
        ix.offer([2; 16], w(10, 2, 2)); // newer than before: replaces
        ix.offer([3; 16], w(10, 3, 3)); // older than before: superseded
        ix.offer([4; 16], w(10, 4, 4)); // new
        let prev = HashMap::from([
            ([1; 16], (5, [1; 16])),
            ([2; 16], (5, [9; 16])),
            ([3; 16], (20, [9; 16])),
        ]);
        let a = ix.against_previous(&prev);
        assert_eq!((a.unchanged, a.older, a.replaced.len()), (1, 1, 1));
        assert!(a.replaced.contains(&[2; 16]));
        assert_eq!(ix.len(), 2);
    }
}
