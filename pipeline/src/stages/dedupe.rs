//! Deduplication by business key, in memory bounded by configuration, not by the input:
//! every valid row leaves a 40-byte entry (id, update time, version hash, read order).
//! Up to [`DedupeIndex::budget`] entries stay in memory; past that they are sorted and
//! written to scratch as a run (an external sort). Once the feed is read, the entries
//! (merged from the runs) are taken in id order and each id's winner picked — the newest
//! update time, and on a tie the row read later. The winners are then held in memory
//! when they fit, or as id-range shards on scratch, each within the budget: the
//! comparison with the previous snapshot takes one shard at a time. Against the
//! previous snapshot an incoming winner replaces the snapshot's copy unless that copy
//! is strictly newer; an identical version is simply "unchanged".
//!
//! A bitset of winning read positions (one bit a row) is all the rewrite needs.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

/// One valid row: who it is, how new, what it says, where it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    id: [u8; 16],
    updated: i64,
    version: u64,
    seq: u32,
}

/// Entries below this many are sorted on the calling thread alone.
const SORT_IN_TWO_FROM: usize = 1 << 16;

/// Sorts entries by [`Entry::key`], the two halves of the id space side by side: ids are
/// hashes, so the top bit splits them evenly, and every id of the lower half sorts
/// before every id of the upper. A full load's million entries, sorted on one thread
/// between the read and the snapshot writes, held the other core idle for 0.1 s.
fn sort_entries(entries: &mut [Entry]) {
    let lower = |e: &Entry| e.id[0] < 0x80;
    let (mut i, mut j) = (0, entries.len());
    while i < j {
        if lower(&entries[i]) {
            i += 1;
        } else {
            j -= 1;
            entries.swap(i, j);
        }
    }
    let (low, high) = entries.split_at_mut(i);
    if low.len() < SORT_IN_TWO_FROM || high.len() < SORT_IN_TWO_FROM {
        low.sort_unstable_by_key(Entry::key);
        high.sort_unstable_by_key(Entry::key);
        return;
    }
    std::thread::scope(|s| {
        s.spawn(|| low.sort_unstable_by_key(Entry::key));
        high.sort_unstable_by_key(Entry::key);
    });
}

/// An entry on scratch: id, update time, version, read order (little-endian).
const ENTRY_BYTES: usize = 36;

impl Entry {
    fn key(&self) -> ([u8; 16], i64, u32) {
        (self.id, self.updated, self.seq)
    }

    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut b = [0u8; ENTRY_BYTES];
        b[..16].copy_from_slice(&self.id);
        b[16..24].copy_from_slice(&self.updated.to_le_bytes());
        b[24..32].copy_from_slice(&self.version.to_le_bytes());
        b[32..].copy_from_slice(&self.seq.to_le_bytes());
        w.write_all(&b)
    }

    fn read(r: &mut impl Read) -> std::io::Result<Option<Entry>> {
        let mut b = [0u8; ENTRY_BYTES];
        match r.read_exact(&mut b) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[..16]);
        let le8 = |s: &[u8]| -> [u8; 8] { s.try_into().unwrap_or([0; 8]) };
        Ok(Some(Entry {
            id,
            updated: i64::from_le_bytes(le8(&b[16..24])),
            version: u64::from_le_bytes(le8(&b[24..32])),
            seq: u32::from_le_bytes(b[32..].try_into().unwrap_or([0; 4])),
        }))
    }
}

/// Bytes an entry takes in memory.
pub const ENTRY_MEMORY: usize = std::mem::size_of::<Entry>();

/// Entries held in memory by default: 48 MiB of them (1.26 million: a million-row
/// export dedupes in memory).
pub const DEFAULT_BUDGET: usize = (48 << 20) / ENTRY_MEMORY;

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
    pub replaced: crate::domain::identity::IdSet,
    /// Records identical to the snapshot's copy.
    pub unchanged: u64,
    /// Records older than the snapshot's copy (counted as superseded).
    pub older: u64,
}

/// Winners of one id range, on scratch.
#[derive(Debug)]
struct Shard {
    /// The range's first id (the first shard's is all zeroes).
    from: [u8; 16],
    path: PathBuf,
}

/// The dedupe index of one feed's run.
#[derive(Debug)]
pub struct DedupeIndex {
    /// Before resolve: the entries not yet spilled; after: the loaded shard's winners.
    entries: Vec<Entry>,
    /// Where runs and shards go (`None`: everything stays in memory).
    scratch: Option<PathBuf>,
    budget: usize,
    /// Sorted runs spilled while offering.
    runs: Vec<PathBuf>,
    offered: usize,
    max_seq: u32,
    /// After resolve, when the winners did not fit: their id-range shards.
    shards: Vec<Shard>,
    /// The shard loaded into `entries`.
    loaded: usize,
    /// No shard is loaded (after resolve, and after [`Self::drop_lookups`]).
    loaded_none: bool,
    /// Bit `seq` set: the row read at `seq` is a winner still to be written.
    winners: Vec<u64>,
    /// The loaded entries' ids, as a sieve in front of the lookups.
    sieve: IdSieve,
    resolved: bool,
    superseded: u64,
    remaining: usize,
}

impl Default for DedupeIndex {
    /// An index that keeps everything in memory (tests, small inputs).
    fn default() -> Self {
        DedupeIndex {
            entries: Vec::new(),
            scratch: None,
            budget: usize::MAX,
            runs: Vec::new(),
            offered: 0,
            max_seq: 0,
            shards: Vec::new(),
            loaded: 0,
            loaded_none: true,
            winners: Vec::new(),
            sieve: IdSieve::default(),
            resolved: false,
            superseded: 0,
            remaining: 0,
        }
    }
}

fn version_key(v: &[u8; 16]) -> u64 {
    u64::from_le_bytes(v[..8].try_into().expect("8 bytes"))
}

/// A bitset of the loaded entries' ids (16 bits an entry, one set): a night's snapshot
/// scan asks about every record of the history, and most are not among this run's
/// winners; one bit read turns nearly all of them away, where a binary search over the
/// entries takes twenty comparisons. Ids are hashes, so their first bits spread evenly.
#[derive(Debug, Default)]
struct IdSieve {
    /// Empty: no sieve (every id may be held).
    bits: Vec<u64>,
    /// 64 minus the bit count's log: an id's bit is its first 8 bytes shifted by it.
    shift: u32,
}

impl IdSieve {
    fn over(entries: &[Entry]) -> IdSieve {
        let len = entries
            .len()
            .saturating_mul(16)
            .clamp(1 << 10, 1 << 27)
            .next_power_of_two();
        let mut sieve = IdSieve {
            bits: vec![0; len / 64],
            shift: 64 - len.trailing_zeros(),
        };
        for e in entries {
            let b = sieve.bit(&e.id);
            sieve.bits[b / 64] |= 1 << (b % 64);
        }
        sieve
    }

    fn bit(&self, id: &[u8; 16]) -> usize {
        let mut first = [0u8; 8];
        first.copy_from_slice(&id[..8]);
        (u64::from_be_bytes(first) >> self.shift) as usize
    }

    /// False when `id` is surely not among the entries.
    fn may_hold(&self, id: &[u8; 16]) -> bool {
        if self.bits.is_empty() {
            return true;
        }
        let b = self.bit(id);
        self.bits[b / 64] & (1 << (b % 64)) != 0
    }
}

impl DedupeIndex {
    /// An index holding at most `budget` entries in memory, the rest under `scratch`
    /// (created when first needed; removed with the run's spill).
    pub fn spilling(scratch: PathBuf, budget: usize) -> DedupeIndex {
        DedupeIndex {
            scratch: Some(scratch),
            budget: budget.max(1024),
            ..Default::default()
        }
    }

    /// Records a valid row (an I/O error: a run could not be spilled).
    pub fn offer(&mut self, id: [u8; 16], w: Winner) -> std::io::Result<()> {
        debug_assert!(!self.resolved, "offer after resolve");
        let seq = u32::try_from(w.seq).map_err(|_| {
            std::io::Error::other("more than 4 billion rows in one run of one feed")
        })?;
        self.entries.push(Entry {
            id,
            updated: w.updated,
            version: version_key(&w.version),
            seq,
        });
        self.offered += 1;
        self.max_seq = self.max_seq.max(seq);
        if self.entries.len() >= self.budget && self.scratch.is_some() {
            self.spill_run()?;
        }
        Ok(())
    }

    fn scratch_file(&self, name: &str) -> std::io::Result<PathBuf> {
        let dir = self
            .scratch
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no scratch directory"))?;
        std::fs::create_dir_all(dir)?;
        Ok(dir.join(name))
    }

    /// Sorts the entries in memory and writes them as one run.
    fn spill_run(&mut self) -> std::io::Result<()> {
        self.entries.sort_unstable_by_key(Entry::key);
        let path = self.scratch_file(&format!("run-{}.bin", self.runs.len()))?;
        let mut w = BufWriter::with_capacity(1 << 16, std::fs::File::create(&path)?);
        for e in &self.entries {
            e.write(&mut w)?;
        }
        w.flush()?;
        self.entries.clear();
        self.runs.push(path);
        Ok(())
    }

    /// Makes room for `rows` offers in all (within the budget), once the source can
    /// estimate its size: a vector that grows by doubling briefly holds the old and the
    /// new copy, while room reserved ahead costs nothing until it is filled.
    pub fn expect_rows(&mut self, rows: usize) {
        let rows = rows.min(self.budget);
        self.entries
            .reserve(rows.saturating_sub(self.entries.len()));
    }

    /// Rows offered so far.
    pub fn offered(&self) -> usize {
        self.offered
    }

    /// Picks each id's winner; the losers are counted as superseded. With runs on
    /// scratch, they are merged and the winners written as id-range shards.
    pub fn resolve(&mut self) -> std::io::Result<()> {
        self.winners = vec![0u64; self.max_seq as usize / 64 + 1];
        if self.runs.is_empty() {
            sort_entries(&mut self.entries);
            let n = self.entries.len();
            // Each id's last entry is kept, compacted in place: a second vector would
            // double the peak.
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
            self.sieve = IdSieve::over(&self.entries);
            return Ok(());
        }
        if !self.entries.is_empty() {
            self.spill_run()?;
        }
        self.entries = Vec::new();
        // A k-way merge of the runs, in (id, update time, read order).
        let mut readers = Vec::with_capacity(self.runs.len());
        for path in &self.runs {
            readers.push(BufReader::with_capacity(
                1 << 16,
                std::fs::File::open(path)?,
            ));
        }
        let mut heap = std::collections::BinaryHeap::new();
        for (k, r) in readers.iter_mut().enumerate() {
            if let Some(e) = Entry::read(r)? {
                heap.push(std::cmp::Reverse((e.key(), k, e.version)));
            }
        }
        let mut shard: Option<BufWriter<std::fs::File>> = None;
        let mut in_shard = 0usize;
        let mut pending: Option<Entry> = None;
        let (mut kept, mut total) = (0usize, 0usize);
        let mut put = |this: &mut DedupeIndex,
                       shard: &mut Option<BufWriter<std::fs::File>>,
                       e: Entry|
         -> std::io::Result<()> {
            if shard.is_none() || in_shard >= this.budget {
                if let Some(mut w) = shard.take() {
                    w.flush()?;
                }
                let path = this.scratch_file(&format!("shard-{}.bin", this.shards.len()))?;
                let from = if this.shards.is_empty() {
                    [0u8; 16]
                } else {
                    e.id
                };
                *shard = Some(BufWriter::with_capacity(
                    1 << 16,
                    std::fs::File::create(&path)?,
                ));
                this.shards.push(Shard { from, path });
                in_shard = 0;
            }
            if let Some(w) = shard.as_mut() {
                e.write(w)?;
            }
            in_shard += 1;
            this.winners[e.seq as usize / 64] |= 1 << (e.seq % 64);
            Ok(())
        };
        while let Some(std::cmp::Reverse(((id, updated, seq), k, version))) = heap.pop() {
            total += 1;
            if let Some(next) = Entry::read(&mut readers[k])? {
                heap.push(std::cmp::Reverse((next.key(), k, next.version)));
            }
            let e = Entry {
                id,
                updated,
                version,
                seq,
            };
            match pending {
                Some(p) if p.id == e.id => {} // a newer (or later) row of the same id
                Some(p) => {
                    put(self, &mut shard, p)?;
                    kept += 1;
                }
                None => {}
            }
            pending = Some(e);
        }
        if let Some(p) = pending {
            put(self, &mut shard, p)?;
            kept += 1;
        }
        if let Some(mut w) = shard.take() {
            w.flush()?;
        }
        for path in self.runs.drain(..) {
            let _ = std::fs::remove_file(path);
        }
        self.superseded = (total - kept) as u64;
        self.remaining = kept;
        self.resolved = true;
        if self.shards.len() <= 1 {
            // The winners fit: back in memory, as without runs.
            let shards = std::mem::take(&mut self.shards);
            if let Some(s) = shards.first() {
                self.entries = read_entries(&s.path)?;
                let _ = std::fs::remove_file(&s.path);
            }
            self.sieve = IdSieve::over(&self.entries);
        }
        // Shards are loaded when the comparison asks for them.
        Ok(())
    }

    /// Frees the lookups once the comparison with the previous snapshot is done: the
    /// rewrite needs the winners' bitset only.
    pub fn drop_lookups(&mut self) {
        self.entries = Vec::new();
        self.sieve = IdSieve::default();
        self.loaded_none = true;
    }

    /// How many id-range shards the winners are in (1 when they are in memory). The
    /// lookups below answer for the loaded shard's ids only (see [`Self::in_loaded`]).
    pub fn shard_count(&self) -> usize {
        self.shards.len().max(1)
    }

    /// Loads shard `k` for the lookups (a no-op when the winners are in memory).
    pub fn load_shard(&mut self, k: usize) -> std::io::Result<()> {
        if self.shards.is_empty() || (k == self.loaded && !self.loaded_none) {
            return Ok(());
        }
        let shard = self
            .shards
            .get(k)
            .ok_or_else(|| std::io::Error::other("no such shard"))?;
        self.entries = Vec::new();
        self.entries = read_entries(&shard.path)?;
        self.sieve = IdSieve::over(&self.entries);
        self.loaded = k;
        self.loaded_none = false;
        Ok(())
    }

    /// Whether `id` falls in the loaded shard's range (always, in memory).
    pub fn in_loaded(&self, id: &[u8; 16]) -> bool {
        if self.shards.is_empty() {
            return true;
        }
        let k = self.loaded;
        *id >= self.shards[k].from && self.shards.get(k + 1).is_none_or(|next| *id < next.from)
    }

    fn find(&self, id: &[u8; 16]) -> Option<&Entry> {
        if !self.sieve.may_hold(id) {
            return None;
        }
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
    /// this run's winner of the same id, if any (in the loaded shard). Call after
    /// [`resolve`](Self::resolve).
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

    /// The loaded shard's ids that have a winner still to be written (after resolve).
    pub fn loaded_winners(&self) -> impl Iterator<Item = &[u8; 16]> + '_ {
        self.entries
            .iter()
            .filter(|e| self.is_winner(u64::from(e.seq)))
            .map(|e| &e.id)
    }

    /// Whether this id has a winner still to be written (after resolve; loaded shard).
    pub fn has_winner(&self, id: &[u8; 16]) -> bool {
        self.find(id)
            .is_some_and(|e| self.is_winner(u64::from(e.seq)))
    }

    /// Whether any row of this id was offered (after resolve; loaded shard).
    pub fn contains(&self, id: &[u8; 16]) -> bool {
        self.find(id).is_some()
    }
}

fn read_entries(path: &std::path::Path) -> std::io::Result<Vec<Entry>> {
    let len = std::fs::metadata(path)?.len() as usize / ENTRY_BYTES;
    let mut out = Vec::with_capacity(len);
    let mut r = BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    while let Some(e) = Entry::read(&mut r)? {
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn entries_sorted_in_two_halves_are_sorted_whole() {
        use super::{sort_entries, Entry, SORT_IN_TWO_FROM};
        for n in [0, 1, 7, 1000, SORT_IN_TWO_FROM * 2 + 3] {
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut entries: Vec<Entry> = (0..n)
                .map(|i| {
                    let mut id = [0u8; 16];
                    // Few distinct ids, so equal ids meet their update times and read orders.
                    id[..8].copy_from_slice(&(next() % (n as u64 / 3 + 1)).to_be_bytes());
                    id[0] = (next() % 256) as u8;
                    Entry {
                        id,
                        updated: (next() % 5) as i64,
                        version: i as u64,
                        seq: i as u32,
                    }
                })
                .collect();
            let mut expected = entries.clone();
            expected.sort_unstable_by_key(Entry::key);
            sort_entries(&mut entries);
            let keys = |v: &[Entry]| v.iter().map(Entry::key).collect::<Vec<_>>();
            assert_eq!(keys(&entries), keys(&expected), "{n} entries");
        }
    }

    use super::*;
    use proptest::prelude::*;

    impl DedupeIndex {
        fn offer_ok(&mut self, id: [u8; 16], w: Winner) {
            self.offer(id, w).unwrap();
        }
    }

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
        ix.offer_ok(id, w(10, 1, 1));
        ix.offer_ok(id, w(5, 2, 2)); // older, later in the file: loses
        ix.offer_ok(id, w(10, 3, 3)); // tie with row 1: the later row wins
        ix.offer_ok([2; 16], w(i64::MIN, 4, 4));
        ix.resolve().unwrap();
        assert!(ix.is_winner(3) && ix.is_winner(4));
        assert!(!ix.is_winner(1) && !ix.is_winner(2));
        assert_eq!(ix.superseded(), 2);
        assert_eq!(ix.len(), 2);
    }

    #[test]
    fn against_previous_snapshot() {
        let mut ix = DedupeIndex::default();
        ix.offer_ok([1; 16], w(10, 1, 1)); // same version as before: unchanged
        ix.offer_ok([2; 16], w(10, 2, 2)); // newer than before: replaces
        ix.offer_ok([3; 16], w(10, 3, 3)); // older than before: superseded
        ix.offer_ok([4; 16], w(10, 4, 4)); // new
        ix.resolve().unwrap();
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

    /// What an index decided, shard by shard: winners, counts, and the verdicts against
    /// a previous snapshot holding every third id.
    fn decisions(
        mut ix: DedupeIndex,
        rows: &[(u8, u8, i64, u8)],
    ) -> (Vec<u64>, u64, usize, (u64, u64, usize)) {
        for (seq, (a, b, updated, v)) in rows.iter().enumerate() {
            let mut id = [0u8; 16];
            id[0] = *a;
            id[1] = *b;
            ix.offer_ok(id, w(*updated, seq as u64 + 1, *v));
        }
        ix.resolve().unwrap();
        let mut a = AgainstPrevious::default();
        for k in 0..ix.shard_count() {
            ix.load_shard(k).unwrap();
            for x in 0..=255u8 {
                for y in (0..=255u8).step_by(3) {
                    let mut id = [0u8; 16];
                    id[0] = x;
                    id[1] = y;
                    if ix.in_loaded(&id) {
                        ix.against_previous(&mut a, &id, &|| 50, &[(x % 4); 16]);
                    }
                }
            }
        }
        let winners = (1..=rows.len() as u64)
            .filter(|s| ix.is_winner(*s))
            .collect();
        (
            winners,
            ix.superseded(),
            ix.len(),
            (a.unchanged, a.older, a.replaced.len()),
        )
    }

    proptest! {
        /// The sieve never turns away an id it was built over.
        #[test]
        fn the_sieve_keeps_every_entry(ids in proptest::collection::vec(any::<[u8; 16]>(), 0..3000)) {
            let entries: Vec<Entry> = ids
                .iter()
                .map(|&id| Entry { id, updated: 0, version: 0, seq: 0 })
                .collect();
            let sieve = IdSieve::over(&entries);
            prop_assert!(ids.iter().all(|id| sieve.may_hold(id)));
        }
    }

    #[test]
    fn the_sieve_turns_away_most_strangers() {
        use sha2::Digest;
        let id = |n: u64| {
            let mut id = [0u8; 16];
            id.copy_from_slice(&sha2::Sha256::digest(n.to_le_bytes())[..16]);
            id
        };
        let entries: Vec<Entry> = (0..10_000)
            .map(|n| Entry {
                id: id(n),
                updated: 0,
                version: 0,
                seq: 0,
            })
            .collect();
        let sieve = IdSieve::over(&entries);
        let let_through = (10_000..110_000)
            .filter(|&n| sieve.may_hold(&id(n)))
            .count();
        // 16 bits an entry: about one stranger in 16 (or fewer) gets past.
        assert!(
            let_through < 10_000,
            "{let_through} of 100000 strangers let through"
        );
        assert!(!IdSieve::over(&[]).may_hold(&id(1)));
        assert!(IdSieve::default().may_hold(&id(1)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Spilled to scratch in sorted runs and shards, the index decides exactly as in
        /// memory.
        #[test]
        fn spilling_decides_as_in_memory(rows in proptest::collection::vec((0u8..8, any::<u8>(), 0i64..100, 0u8..4), 0..6000)) {
            let dir = tempfile::tempdir().unwrap();
            let spilled = DedupeIndex::spilling(dir.path().join("dedupe"), 1024);
            let expected = decisions(DedupeIndex::default(), &rows);
            prop_assert_eq!(decisions(spilled, &rows), expected);
        }
    }
}
