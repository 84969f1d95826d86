//! Cutting encoded record operations into batches: one reporting unit per batch, at
//! most the platform's records per batch and bytes per body (with room for the
//! envelope).

use serde_json::value::RawValue;
use std::collections::HashMap;

/// Room kept in a body for the envelope around the records.
const ENVELOPE_ROOM: usize = 16 * 1024;

/// One batch being filled.
pub struct BatchBuilder {
    /// Its reporting unit.
    pub source_unit: String,
    /// Encoded record operations.
    pub records: Vec<Box<RawValue>>,
    /// Their record ids, in the same order.
    pub ids: Vec<String>,
    bytes: usize,
}

impl BatchBuilder {
    fn new(unit: &str) -> BatchBuilder {
        BatchBuilder {
            source_unit: unit.to_string(),
            records: Vec::new(),
            ids: Vec::new(),
            bytes: 0,
        }
    }
}

/// Batches of encoded records per reporting unit, cut at the limits.
pub struct Batcher {
    max_records: usize,
    max_bytes: usize,
    open: HashMap<String, BatchBuilder>,
    full: Vec<BatchBuilder>,
}

impl Batcher {
    /// A batcher for `max_records` records and `max_body_bytes` bytes of body a batch.
    pub fn new(max_records: usize, max_body_bytes: usize) -> Batcher {
        Batcher {
            max_records: max_records.max(1),
            max_bytes: max_body_bytes.saturating_sub(ENVELOPE_ROOM).max(1),
            open: HashMap::new(),
            full: Vec::new(),
        }
    }

    /// Adds one record of a unit.
    pub fn add(&mut self, unit: &str, id: &str, record: Box<RawValue>) {
        let len = record.get().len();
        let builder = self
            .open
            .entry(unit.to_string())
            .or_insert_with(|| BatchBuilder::new(unit));
        if builder.records.len() >= self.max_records || builder.bytes + len > self.max_bytes {
            self.full
                .push(std::mem::replace(builder, BatchBuilder::new(unit)));
        }
        builder.bytes += len + 1;
        builder.records.push(record);
        builder.ids.push(id.to_string());
    }

    /// The batches filled so far (the open ones stay).
    pub fn take_full(&mut self) -> Vec<BatchBuilder> {
        std::mem::take(&mut self.full)
    }

    /// Every batch, the open ones last (by unit).
    pub fn finish(mut self) -> Vec<BatchBuilder> {
        let mut rest: Vec<BatchBuilder> = self.open.into_values().collect();
        rest.sort_by(|a, b| a.source_unit.cmp(&b.source_unit));
        self.full.extend(rest);
        self.full.retain(|b| !b.records.is_empty());
        self.full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: usize) -> Box<RawValue> {
        RawValue::from_string(format!("\"{}\"", "x".repeat(n))).unwrap()
    }

    #[test]
    fn cuts_at_the_record_and_byte_limits_per_unit() {
        let mut b = Batcher::new(2, ENVELOPE_ROOM + 100);
        for i in 0..5 {
            b.add("u1", &format!("a{i}"), rec(10));
        }
        b.add("u2", "b", rec(10));
        let batches = b.finish();
        let sizes: Vec<(String, usize)> = batches
            .iter()
            .map(|x| (x.source_unit.clone(), x.records.len()))
            .collect();
        assert_eq!(
            sizes,
            [("u1", 2), ("u1", 2), ("u1", 1), ("u2", 1)].map(|(u, n)| (u.to_string(), n))
        );
        let mut b = Batcher::new(500, ENVELOPE_ROOM + 100);
        for i in 0..4 {
            b.add("u", &i.to_string(), rec(40));
        }
        assert!(b.finish().iter().all(|x| x.records.len() <= 2));
    }
}
