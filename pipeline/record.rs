//! A record once mapped and valid: its dataset values plus identity (`record_id` from
//! the business key, `version` from the content) and provenance.

use crate::schema::Dataset;
use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A valid record on its way to the snapshot.
#[derive(Debug, Clone)]
pub struct Record {
    /// Stable id from the business key (32 lowercase hex).
    pub record_id: String,
    /// Content version (32 lowercase hex); changes whenever a field value changes.
    pub version: String,
    /// The feed it came from.
    pub feed: Arc<str>,
    /// The reporting unit's credit code.
    pub source_unit: Arc<str>,
    /// The source's update time (dedupe: newest wins).
    pub updated_at: Option<NaiveDateTime>,
    /// The file it came from.
    pub source_file: Arc<str>,
    /// 1-based line in that file.
    pub source_line: u64,
    /// The run that read it.
    pub run_id: Arc<str>,
    /// Values in the dataset's field order.
    pub values: Vec<String>,
}

/// `record_id`: the first 32 lowercase hex characters of SHA-256 over
/// `<dataset>|<key value 1>|<key value 2>…` (for `xzcf`: `xzcf|<credit code>|<文号>`).
pub fn record_id(ds: &Dataset, values: &[String]) -> String {
    hex::encode(record_id_bytes(ds, values))
}

/// [`record_id`] as its 16 bytes.
pub fn record_id_bytes(ds: &Dataset, values: &[String]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(ds.code.as_bytes());
    for k in &ds.key {
        h.update(b"|");
        h.update(values[*k].as_bytes());
    }
    first16(&h.finalize())
}

fn first16(digest: &[u8]) -> [u8; 16] {
    digest[..16].try_into().expect("SHA-256 has 32 bytes")
}

/// `version`: the first 32 hex characters of SHA-256 over the canonical record — each
/// non-empty field as `CODE=value`, in field order, separated by U+001E. The update time
/// and provenance are not content: a re-export that differs only in 更新时间 has the
/// same version.
pub fn version(ds: &Dataset, values: &[String]) -> String {
    hex::encode(version_bytes(ds, values))
}

/// [`version`] as its 16 bytes.
pub fn version_bytes(ds: &Dataset, values: &[String]) -> [u8; 16] {
    let mut h = Sha256::new();
    for (f, v) in ds.fields.iter().zip(values) {
        if !v.is_empty() {
            h.update(f.code.as_bytes());
            h.update(b"=");
            h.update(v.as_bytes());
            h.update(b"\x1e");
        }
    }
    first16(&h.finalize())
}

/// A 32-hex id packed into 16 bytes (for compact in-memory indexes).
pub fn pack_id(hex32: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    if hex::decode_to_slice(hex32.as_bytes(), &mut out).is_err() {
        // Not one of ours: hash it so it still has a stable compact key.
        let d = Sha256::digest(hex32.as_bytes());
        out.copy_from_slice(&d[..16]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::registry;

    #[test]
    fn xzcf_record_id_is_the_documented_hash() {
        let ds = registry().get("xzcf").unwrap();
        let mut v = vec![String::new(); ds.fields.len()];
        v[ds.position("CF_XDR_SHXYM").unwrap()] = "91110000802100433B".into();
        v[ds.position("CF_WSH").unwrap()] = "同市监罚〔2024〕12号".into();
        let expected = hex::encode(
            &Sha256::digest("xzcf|91110000802100433B|同市监罚〔2024〕12号".as_bytes())[..16],
        );
        assert_eq!(record_id(&ds, &v), expected);
        let v1 = version(&ds, &v);
        v[ds.position("CF_NR").unwrap()] = "罚款".into();
        assert_ne!(version(&ds, &v), v1);
        assert_eq!(pack_id(&expected).to_vec(), hex::decode(&expected).unwrap());
    }
}
